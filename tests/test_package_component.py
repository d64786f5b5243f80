"""`mlops-ci:index:TeamCi` for other languages (mlops_ci/components/package.py): its inputs are the
configuration keys, and they become settings through the same rules as a stack file."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.errors import InputPropertiesError
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.runtime import config as runtime_config

from mlops_ci.components.package import TeamCi, settings_of
from mlops_ci.settings.derive import derive_service_account_id
from mlops_ci.settings.model import ConfigError
from mlops_ci.settings.schema import CONFIG_FILE
from tests.helpers import make_settings

REPOSITORY = Path(__file__).resolve().parents[1]
GITHUB = {"gcp_project": "acme-ml-test", "platform": "github", "repository": "acme-ml/churn-model"}


@pytest.fixture(autouse=True)
def clean_config() -> Any:
    yield
    runtime_config.set_all_config({}, [])


def schema() -> dict[str, Any]:
    """The package schema Pulumi infers from the component's annotations (what `pulumi package add` reads)."""
    provider = ComponentProvider([TeamCi], "mlops-ci", version="0.0.0")
    assert provider.schema is not None
    return dict(json.loads(provider.schema)["resources"]["mlops-ci:index:TeamCi"])


def test_its_inputs_are_the_configuration_keys_with_their_types_and_descriptions() -> None:
    declared: dict[str, dict[str, Any]] = yaml.safe_load(CONFIG_FILE.read_text())["config"]
    inputs = schema()["inputProperties"]

    expected = {name: ("boolean" if d.get("type") == "boolean" else "string", d["description"]) for name, d in declared.items()}
    assert {
        name: (p["type"], " ".join(p["description"].split())) for name, p in inputs.items() if name != "gcpProject"
    } == expected
    assert inputs["gcpProject"] == {"type": "string", "description": "Google Cloud project id."}
    required = ["gcpProject", *(name for name, d in declared.items() if "default" not in d)]
    assert schema()["requiredInputs"] == required


def test_its_outputs_are_a_stacks_exports() -> None:
    outputs = schema()["properties"]
    exports = ["bucketName", "bucketUrl", "dvcRemoteUrl", "serviceAccountEmail", "ciFile", "ciRunsUrl", "nextSteps"]
    assert sorted(outputs) == sorted([*exports, "workloadIdentityProvider", "secretName"])


def test_only_the_outputs_of_every_mode_are_required() -> None:
    """Direct keyless mode has no service account: a program must not rely on its email."""
    assert sorted(schema()["required"]) == sorted(["bucketName", "bucketUrl", "dvcRemoteUrl", "ciFile", "ciRunsUrl", "nextSteps"])


def test_inputs_give_the_settings_a_stack_file_gives() -> None:
    """As a stack file of a project of the program's own name (the account id says which project)."""
    given = {**GITHUB, "auth": "key", "access": "push", "protect_bucket": False, "python_version": "3.12"}
    settings = settings_of("team-a", given)

    project = pulumi.get_project()
    assert settings == make_settings(
        "github",
        access="push",
        protect_bucket=False,
        python_version="3.12",
        pulumi_project=project,
        service_account_id=derive_service_account_id("team-a", project),
        defaulted=frozenset({"keylessMode"}),
    )


def test_every_bad_input_is_named_in_one_error() -> None:
    loop = asyncio.new_event_loop()  # an Output needs one; earlier tests may have closed theirs
    asyncio.set_event_loop(loop)
    secret = pulumi.Output.secret("2026-11")
    with pytest.raises(ConfigError) as raised:
        settings_of("team-a", {**GITHUB, "access": "all", "bucket_name": "Bad_Name", "key_rotation": secret})

    assert [p.split(" = ")[0].split(": ")[0] for p in raised.value.problems] == [
        "mlops-ci:keyRotation",
        "mlops-ci:bucketName",
        "mlops-ci:access",
    ]
    assert raised.value.problems[0].endswith(": a plain value, known before any resource (not a secret nor an output)")
    assert str(raised.value).startswith("stack 'team-a' has 3 configuration problems; nothing was created:")
    loop.run_until_complete(secret.future())
    loop.close()


def test_the_program_config_gives_the_platform_token_and_nothing_else() -> None:
    runtime_config.set_all_config({"github:token": "ghp_x", "platform-yaml:anything": "y"}, ["github:token"])

    settings_of("team-a", GITHUB)

    assert runtime_config.CONFIG.get() == {
        "gcp:project": "acme-ml-test",
        "mlops-ci:platform": "github",
        "mlops-ci:repository": "acme-ml/churn-model",
        "github:token": "ghp_x",
    }
    assert runtime_config.is_config_secret("github:token")


def test_an_input_the_component_does_not_take_is_refused_with_the_others() -> None:
    """The provider would drop a miscased or unknown key silently: the team would get a default."""
    spec = importlib.util.spec_from_file_location("mlops_ci_package", REPOSITORY / "package" / "__main__.py")
    assert spec is not None
    assert spec.loader is not None
    host = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(host)
    provider = host.Provider([TeamCi], "mlops-ci", version="0.0.0")
    definition = next(iter(provider._component_defs.values()))  # pyright: ignore[reportPrivateUsage]
    inputs = {"gcpProject": "acme-ml-test", "platform": "github", "repository": "acme-ml/churn-model"}

    with pytest.raises(InputPropertiesError) as raised:
        provider.map_inputs({**inputs, "pythonversion": "3.12", "bucketname": "x"}, definition)

    assert str(raised.value).startswith("TeamCi: unknown inputs 'bucketname', 'pythonversion'; the inputs are access, auth,")
    assert provider.map_inputs(inputs, definition)["repository"] == "acme-ml/churn-model"
