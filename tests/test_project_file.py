"""The package declares the config schema once (mlops_ci/settings/config.yaml); Pulumi.yaml carries
the same `config:` for the CLI, and the settings follow it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from mlops_ci.offline.stacks import STACKS_DIR, load_stack_file, stack_files
from mlops_ci.platforms import PLATFORMS
from mlops_ci.settings.model import ACCESS_PRESETS, AUTH_MODES, Settings, field_name
from mlops_ci.settings.namespaces import GOOGLE, GOOGLE_KEYS
from mlops_ci.settings.schema import SCHEMA, declared_config, load_schema
from mlops_ci.settings.validate import DERIVED_WHEN_EMPTY, KEY_ONLY, RULES

ROOT = Path(__file__).resolve().parent.parent
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())


def test_project_file_follows_pulumi_conventions() -> None:
    assert PROJECT["name"] == "mlops-ci" == SCHEMA.project
    assert PROJECT["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    assert (ROOT / PROJECT["stackConfigDir"]).resolve() == STACKS_DIR


def test_the_project_file_declares_the_packages_config_as_it_is() -> None:
    # The CLI merges defaults and checks types from Pulumi.yaml; the settings read the package's copy.
    assert PROJECT["config"] == declared_config()


def test_every_key_is_declared_with_type_and_description() -> None:
    for name, declaration in PROJECT["config"].items():
        # Pulumi's project schema: a declaration holds only these fields; its type one of these.
        assert set(declaration) <= {"type", "description", "default", "secret", "items"}, name
        assert declaration["type"] in {"string", "boolean"}, name
        assert declaration["description"], name


def test_settings_have_one_field_per_declared_key() -> None:
    fields = {field.name for field in dataclasses.fields(Settings)}
    context = {"gcp_project", "stack", "platform_url", "defaulted", "pulumi_project"}
    assert fields - context == {field_name(name) for name in SCHEMA.names}


def test_rules_and_key_lists_name_declared_keys_only() -> None:
    assert set(RULES) | set(DERIVED_WHEN_EMPTY) | set(KEY_ONLY) <= set(SCHEMA.names)


def test_only_platform_and_repository_are_required() -> None:
    assert [key.name for key in SCHEMA.keys if key.default is None] == ["platform", "repository"]


def test_stack_files_use_namespaced_keys_of_known_namespaces() -> None:
    assert len(stack_files()) >= 2
    for path in stack_files():
        for key in load_stack_file(path).config:
            assert key.split(":")[0] in {"mlops-ci", "gcp", "github", "gitlab"}, (path.name, key)


TEMPLATE = yaml.safe_load((ROOT / "templates/python/Pulumi.yaml").read_text())
TEMPLATE_PROMPTS: dict[str, dict[str, object]] = TEMPLATE["template"]["config"]
# The template's deliberate departures from the package's defaults: a team starting afresh is keyless, and
# the platform question (required, no default in the package) suggests GitHub.
TEMPLATE_DEFAULTS = {"auth": "workload-identity", "platform": "github"}
# The values a prompted key takes, each of which its question must name.
CHOICES: dict[str, tuple[str, ...]] = {"platform": tuple(PLATFORMS), "auth": AUTH_MODES, "access": ACCESS_PRESETS}


def test_the_templates_questions_stay_in_step_with_the_packages_keys() -> None:
    # `pulumi new` asks these and writes the answers into the stack file: every question is a key mlops-ci
    # reads, with the package's default (or the template's named one), naming the values the key takes
    # and, where config.yaml says what empty means, saying it too.
    declared = declared_config()
    readable = {f"{GOOGLE}:{name}" for name in GOOGLE_KEYS} | {f"{p}:token" for p in PLATFORMS}
    for key, prompt in TEMPLATE_PROMPTS.items():
        namespace, _, name = key.partition(":")
        if namespace != SCHEMA.project:
            assert key in readable, key
            assert prompt.get("secret", False) is name.endswith("token"), key
            continue
        assert name in declared, key
        assert prompt.get("default") == TEMPLATE_DEFAULTS.get(name, declared[name].get("default")), key
        description = str(prompt["description"])
        assert all(choice in description for choice in CHOICES.get(name, ())), (key, description)
        assert ("empty" in description) == ("empty" in str(declared[name]["description"])), (key, description)
    for name, default in TEMPLATE_DEFAULTS.items():
        assert RULES[name](default) is None, name


def test_the_schema_reads_the_project_files_platform_section_and_stack_directory_as_written(tmp_path: Path) -> None:
    project_file = tmp_path / "Pulumi.yaml"
    project_file.write_text(
        "name: team\nstackConfigDir: stacks\nplatform:\n  existingBuckets: ['acme-{stack}-dvc', 2026]\n"
        "  baseUrls: [https://gitlab.acme.example/api/v4/]\n  repositories: [acme/*]\n  projects: [acme-*]\n"
        "  workloadIdentityProviders: [projects/1/*]\n"
    )
    schema = load_schema(project_file)
    assert (schema.project, schema.stack_config_dir) == ("mlops-ci", tmp_path / "stacks")
    assert (schema.existing_buckets, schema.base_urls, schema.repositories, schema.projects) == (
        ("acme-{stack}-dvc", "2026"),
        ("https://gitlab.acme.example/api/v4/",),
        ("acme/*",),
        ("acme-*",),
    )
    assert schema.workload_identity_providers == ("projects/1/*",)
    # The keys are the package's, whatever the project file declares.
    declared = declared_config()
    assert [(k.name, k.type, k.description, k.default, k.secret) for k in schema.keys] == [
        (name, d["type"], d["description"], d.get("default"), d.get("secret", False)) for name, d in declared.items()
    ]
    assert schema.key("branch").default_text == "main"
    assert [k.default_text for k in schema.keys if k.type == "boolean"] == [
        str(k.default).lower() for k in schema.keys if k.type == "boolean"
    ]
    # Without a stack directory or a platform section (or with an empty one): the project's directory, nothing allowed.
    for text in ("name: team\n", "name: team\nplatform:\n"):
        project_file.write_text(text)
        bare = load_schema(project_file)
        assert bare.stack_config_dir == tmp_path
        assert bare.existing_buckets == bare.base_urls == bare.repositories == bare.projects == ()
        assert bare.workload_identity_providers == ()
    assert load_schema(tmp_path / "absent.yaml").stack_config_dir == tmp_path
