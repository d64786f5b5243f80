"""How the REAL Pulumi CLI hands configuration to a Python program: observed behaviour, pinned.

Every expectation here was first observed with the CLI built by tools/pulumi/build.sh (pulumi
v3.274.1, the nearest pkg/v3 the module proxy serves to the SDK's 3.272.0), running the project's
real Pulumi.yaml and a program that dumps what it receives (conftest.DUMP_PROGRAM). If a CLI
upgrade changes one of them, the test says which.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.engine.conftest import PASSPHRASE, ROOT, Engine
from tests.test_stack_files import CLI_READS, INT64, KEYS, NUMBERS, STRINGS

pytestmark = pytest.mark.engine

REQUIRED = "gcp:project: acme-ml-test\n  mlops-ci:platform: github\n  mlops-ci:repository: acme-ml/churn\n"


def stack_text(*lines: str) -> str:
    return "config:\n  " + REQUIRED + "".join(f"  {line}\n" for line in lines)


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


# --- Pulumi.yaml defaults -------------------------------------------------------------------------


def project_defaults() -> dict[str, object]:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    return {f"mlops-ci:{name}": spec["default"] for name, spec in declared.items() if "default" in spec}


def test_pulumi_yaml_defaults_are_merged_into_the_config_the_program_sees(engine: Engine) -> None:
    engine.init_stack("dev", stack_text())
    result, seen = engine.preview("dev")
    assert seen is not None
    assert result.returncode == 0, result.stdout + result.stderr
    defaults = project_defaults()
    assert set(defaults) <= set(seen["config"])
    # Primitives reach the program as text: '' stays '', YAML booleans become lower-case words.
    assert seen["config"]["mlops-ci:bucketName"] == ""
    assert seen["config"]["mlops-ci:protectBucket"] == "true"
    assert seen["config"]["mlops-ci:protectedVariable"] == "false"
    assert seen["config"]["mlops-ci:pythonVersion"] == "3.13"
    assert seen["get"]["mlops-ci:bucketName"] == ""  # Config().get() is '' (not None) for a '' default
    # Exactly: the stack's own keys plus every default, nothing else.
    assert set(seen["config"]) == set(defaults) | {"gcp:project", "mlops-ci:platform", "mlops-ci:repository"}
    assert seen["secret_keys"] == []
    assert (seen["stack"], seen["project"]) == ("dev", "mlops-ci")


def test_a_stack_value_wins_over_the_default(engine: Engine) -> None:
    engine.init_stack("dev", stack_text("mlops-ci:branch: develop", "mlops-ci:protectBucket: false"))
    _, seen = engine.preview("dev")
    assert seen is not None
    assert seen["config"]["mlops-ci:branch"] == "develop"
    assert seen["config"]["mlops-ci:protectBucket"] == "false"


def test_pulumi_config_json_shows_the_merged_defaults_too(engine: Engine) -> None:
    engine.init_stack("dev", stack_text())
    result, shown = engine.config_json("dev")
    assert shown is not None
    assert result.returncode == 0
    assert shown["mlops-ci:protectBucket"] == {"value": "true", "secret": False}
    assert shown["mlops-ci:bucketName"] == {"value": "", "secret": False}
    assert set(project_defaults()) <= set(shown)


# --- validation against the Pulumi.yaml schema -----------------------------------------------------


def test_a_project_key_without_default_or_value_is_an_error_before_the_program_runs(engine: Engine) -> None:
    engine.init_stack("dev", "config:\n  gcp:project: acme-ml-test\n  mlops-ci:repository: acme-ml/churn\n")
    result, seen = engine.preview("dev")
    assert result.returncode != 0
    assert seen is None  # the program never ran
    assert "error: validating stack config: Stack 'dev' is missing configuration value 'platform'" in error_lines(result)


def test_several_missing_keys_are_named_in_one_error(engine: Engine) -> None:
    engine.init_stack("dev", "config:\n  gcp:project: acme-ml-test\n")
    result, _ = engine.preview("dev")
    assert (
        "error: validating stack config: Stack 'dev' is missing configuration values 'platform' and 'repository'"
        in error_lines(result)
    )


def test_pulumi_config_does_not_validate_missing_keys(engine: Engine) -> None:
    engine.init_stack("dev", "config:\n  gcp:project: acme-ml-test\n")
    result, shown = engine.config_json("dev")
    assert result.returncode == 0
    assert shown is not None
    assert "mlops-ci:platform" not in shown


@pytest.mark.parametrize("value", ["maybe", "yes", "on", "1", "[true]"])
def test_a_boolean_key_refuses_anything_but_a_yaml_boolean(engine: Engine, value: str) -> None:
    engine.init_stack("dev", stack_text(f"mlops-ci:protectBucket: {value}"))
    result, seen = engine.preview("dev")
    assert seen is None
    assert (
        "error: validating stack config: Stack 'dev' with configuration key 'protectBucket' must be of type 'boolean'"
        in error_lines(result)
    )


@pytest.mark.parametrize(("value", "seen_as"), [("True", "true"), ("FALSE", "false"), ("'true'", "true"), ('"false"', "false")])
def test_a_boolean_key_takes_yaml_booleans_and_their_quoted_words(engine: Engine, value: str, seen_as: str) -> None:
    engine.init_stack("dev", stack_text(f"mlops-ci:protectBucket: {value}"))
    result, seen = engine.preview("dev")
    assert seen is not None
    assert result.returncode == 0, result.stdout
    assert seen["config"]["mlops-ci:protectBucket"] == seen_as


def test_a_string_key_refuses_a_list(engine: Engine) -> None:
    engine.init_stack("dev", stack_text("mlops-ci:branch: [a, b]"))
    result, _ = engine.preview("dev")
    assert "error: validating stack config: Stack 'dev' with configuration key 'branch' must be of type 'string'" in error_lines(
        result
    )


@pytest.mark.parametrize(("value", "seen_as"), [("3.10", "3.1"), ("3", "3"), ("true", "true")])
def test_a_string_key_takes_a_yaml_number_or_boolean_as_its_text(engine: Engine, value: str, seen_as: str) -> None:
    # `type: string` does not refuse an unquoted 3.10: the program gets '3.1'.
    engine.init_stack("dev", stack_text(f"mlops-ci:pythonVersion: {value}"))
    result, seen = engine.preview("dev")
    assert seen is not None
    assert result.returncode == 0
    assert seen["config"]["mlops-ci:pythonVersion"] == seen_as


def test_an_undeclared_project_key_is_passed_through(engine: Engine) -> None:
    engine.init_stack("dev", stack_text("mlops-ci:notDeclared: x"))
    result, seen = engine.preview("dev")
    assert seen is not None
    assert result.returncode == 0
    assert seen["config"]["mlops-ci:notDeclared"] == "x"


def test_a_key_without_namespace_lands_in_the_project_namespace(engine: Engine) -> None:
    engine.init_stack("dev", stack_text("branch: from-bare-key"))
    result, seen = engine.preview("dev")
    assert seen is not None
    assert result.returncode == 0
    assert seen["config"]["mlops-ci:branch"] == "from-bare-key"


def test_a_project_that_declares_no_config_hands_the_program_an_empty_config(engine: Engine) -> None:
    # A project made by `pulumi new` from templates/python declares no key (Pulumi refuses a type or a
    # default for another namespace's): with an empty stack the engine sends no config map at all.
    (engine.project / "Pulumi.yaml").write_text(
        "name: team\nruntime:\n  name: python\n  options:\n    virtualenv: .venv\nstackConfigDir: stacks\n"
    )
    engine.init_stack("dev")
    result, seen = engine.preview("dev")
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen is not None
    assert (seen["config"], seen["project"]) == ({}, "team")


def add_secret_declaration(engine: Engine, default: str | None = None) -> None:
    project = engine.project / "Pulumi.yaml"
    extra = "  apiToken:\n    type: string\n    secret: true\n" + (f"    default: {default}\n" if default else "")
    project.write_text(project.read_text() + extra)


def test_a_secret_true_key_given_in_plain_text_is_refused(engine: Engine) -> None:
    add_secret_declaration(engine)
    engine.init_stack("dev", stack_text("mlops-ci:apiToken: plain"))
    result, seen = engine.preview("dev")
    assert seen is None
    assert (
        "error: validating stack config: Stack 'dev' with configuration key 'apiToken' must be encrypted as it's secret"
        in error_lines(result)
    )


def test_a_secret_true_key_cannot_have_a_plain_default(engine: Engine) -> None:
    add_secret_declaration(engine, default="fallback")
    engine.init_stack("dev", stack_text())
    result, _ = engine.preview("dev")
    assert (
        "error: validating stack config: Stack 'dev' with configuration key 'apiToken' must be encrypted as it's secret"
        in error_lines(result)
    )


def test_a_secret_true_key_set_with_secret_reaches_the_program_as_a_secret(engine: Engine) -> None:
    add_secret_declaration(engine)
    engine.init_stack("dev", stack_text())
    engine.run("config", "set", "--secret", "--stack", "dev", "mlops-ci:apiToken", "s3cr3t")
    result, seen = engine.preview("dev")
    assert seen is not None
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen["config"]["mlops-ci:apiToken"] == "s3cr3t"
    assert seen["secret_keys"] == ["mlops-ci:apiToken"]


# --- YAML scalars in a stack file -------------------------------------------------------------------


def an_object(written: str) -> tuple[str, str, dict[str, Any]]:
    text = dict(CLI_READS)[written]
    return written, text, {"value": text, "objectValue": json.loads(text)}


# key: (unquoted YAML in the stack file, string the program gets, `pulumi config --json` entry)
SCALARS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "f310": ("3.10", "3.1", {"value": "3.1"}),
    "f312": ("3.12", "3.12", {"value": "3.12"}),
    "leadingZero": ("010", "8", {"value": "8"}),  # YAML 1.1 octal
    "octal12": ("0o17", "15", {"value": "15"}),  # YAML 1.2 octal too
    "exponent": ("1e3", "1000", {"value": "1000"}),
    "float1": ("1.0", "1", {"value": "1"}),
    "hex": ("0x1F", "31", {"value": "31"}),
    "underscore": ("1_000", "1000", {"value": "1000"}),
    "bigInt": ("12345678901234567890", "12345678901234567890", {"value": "12345678901234567890"}),
    "yes": ("yes", "yes", {"value": "yes"}),  # not YAML 1.1 booleans: stay words
    "no": ("no", "no", {"value": "no"}),
    "on": ("on", "on", {"value": "on"}),
    "off": ("off", "off", {"value": "off"}),
    "true": ("true", "true", {"value": "true"}),
    "True": ("True", "true", {"value": "true"}),
    "TRUE": ("TRUE", "true", {"value": "true"}),
    "tilde": ("~", "", {"value": ""}),
    "null": ("null", "", {"value": ""}),
    "empty": ("", "", {"value": ""}),
    "date": ("2024-01-01", "2024-01-01 00:00:00 +0000 UTC", {"value": "2024-01-01 00:00:00 +0000 UTC"}),
    "clock": ("12:30:00", "12:30:00", {"value": "12:30:00"}),  # no YAML 1.1 sexagesimal numbers
    "sexagesimal": ("1:30", "1:30", {"value": "1:30"}),
    # An explicit !!str is text as written, as quotes are (the offline reader's CLI_READS rows of it).
    "strTagged": ("!!str 3.10", "3.10", {"value": "3.10"}),
    "strTaggedInList": ("[!!str 1.0, 1.0]", '["1.0",1]', {"value": '["1.0",1]', "objectValue": ["1.0", 1]}),
    # Go's encoding/json inside an object: what the offline reader must write (tests/test_stack_files.py).
    "numbers": an_object(NUMBERS),
    "strings": an_object(STRINGS),
    "keys": an_object(KEYS),
    # The program gets int64's bounds exact; `pulumi config --json` shows them through a float64.
    "int64": (
        INT64,
        dict(CLI_READS)[INT64],
        {"value": dict(CLI_READS)[INT64], "objectValue": [9223372036854776000, -9223372036854776000]},
    ),
    "list": ('[1, "a", true, 3.10]', '[1,"a",true,3.1]', {"value": '[1,"a",true,3.1]', "objectValue": [1, "a", True, 3.1]}),
    "mapping": (
        "{b: 1, a: x, c: [yes]}",
        '{"a":"x","b":1,"c":["yes"]}',  # compact JSON, keys sorted
        {"value": '{"a":"x","b":1,"c":["yes"]}', "objectValue": {"a": "x", "b": 1, "c": ["yes"]}},
    ),
}


@pytest.fixture(scope="module")
def scalars(module_engine: Engine) -> tuple[dict[str, Any], dict[str, Any], str]:
    lines = [f"t:{key}: {raw}".rstrip() for key, (raw, _, _) in SCALARS.items()]
    module_engine.init_stack("scalars", stack_text(*lines))
    result, seen = module_engine.preview("scalars")
    assert result.returncode == 0, result.stdout + result.stderr
    shown_result, shown = module_engine.config_json("scalars")
    assert shown_result.returncode == 0
    assert seen is not None
    assert shown is not None
    return seen, shown, result.stdout + result.stderr


@pytest.mark.parametrize("key", list(SCALARS))
def test_an_unquoted_yaml_scalar_reaches_the_program_as_this_string(
    scalars: tuple[dict[str, Any], dict[str, Any], str], key: str
) -> None:
    seen, _, _ = scalars
    _, expected, _ = SCALARS[key]
    assert seen["config"][f"t:{key}"] == expected
    assert seen["get"][f"t:{key}"] == expected  # pulumi.Config("t").get(key): the same text


@pytest.mark.parametrize("key", list(SCALARS))
def test_pulumi_config_json_shows_the_scalar_so(scalars: tuple[dict[str, Any], dict[str, Any], str], key: str) -> None:
    _, shown, _ = scalars
    _, _, expected = SCALARS[key]
    assert shown[f"t:{key}"] == {**expected, "secret": False}


def test_null_and_empty_values_are_empty_strings_with_a_warning(scalars: tuple[dict[str, Any], dict[str, Any], str]) -> None:
    _, _, output = scalars
    warning = next(line for line in output.splitlines() if line.startswith("warning: No value for configuration keys"))
    assert sorted(re.findall(r'"(t:[^"]+)"', warning)) == ["t:empty", "t:null", "t:tilde"]
    assert warning.endswith(
        'This is currently treated as an empty string `""`, but will be treated as `null` in a future version of pulumi.'
    )


@pytest.mark.parametrize(("raw", "shown"), [(".inf", "+Inf"), (".nan", "NaN")])
def test_infinity_and_nan_make_the_whole_stack_file_unreadable(engine: Engine, raw: str, shown: str) -> None:
    engine.init_stack("dev", stack_text(f"t:x: {raw}"))
    result, seen = engine.preview("dev")
    assert seen is None
    assert (
        f"error: getting stack configuration: invalid YAML file: could not unmarshal map: json: unsupported value: {shown}"
        in error_lines(result)
    )


# --- broken stack files ---------------------------------------------------------------------------

BROKEN: dict[str, tuple[bytes, list[str]]] = {
    "duplicate key": (
        stack_text("mlops-ci:branch: a", "mlops-ci:branch: b").encode(),
        [
            "error: getting stack configuration: yaml: unmarshal errors:",
            '  line 6: mapping key "mlops-ci:branch" already defined at line 5',
        ],
    ),
    "unclosed flow sequence": (
        stack_text("t:x: [a").encode(),
        # The flow sequence is on line 5 of the file; go-yaml's syntax errors name the line before.
        ["error: getting stack configuration: invalid YAML file: yaml: line 4: did not find expected ',' or ']'"],
    ),
    "tab indentation": (
        stack_text().encode() + b"\tt:x: y\n",
        ["error: getting stack configuration: invalid YAML file: yaml: line 4: found a tab character that violates indentation"],
    ),
    "latin-1 byte": (
        stack_text().encode() + b"  t:x: caf\xe9\n",
        ["error: getting stack configuration: invalid YAML file: yaml: invalid trailing UTF-8 octet"],
    ),
    "integer key": (
        stack_text("123: x").encode(),
        [
            "error: getting stack configuration: invalid YAML file: could not unmarshal map: could not parse 123 as a "
            "configuration key (configuration keys should be of the form `<namespace>:<name>`)"
        ],
    ),
    "two colons in a key": (
        stack_text("t:a:b: x").encode(),
        [
            "error: getting stack configuration: invalid YAML file: could not unmarshal map: could not parse t:a:b as a "
            "configuration key (configuration keys should be of the form `<namespace>:<name>`)"
        ],
    ),
    "config is a list": (
        b"config: [a]\n",
        [
            "error: getting stack configuration: invalid YAML file: could not unmarshal map: yaml: unmarshal errors:",
            # `config:` is line 1 of the file: this line number is not the file's.
            "  line 2: cannot unmarshal !!seq into map[string]config.Value",
        ],
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_stack_file_gets_this_cli_error(engine: Engine, case: str) -> None:
    content, expected = BROKEN[case]
    engine.init_stack("dev", content)
    result, seen = engine.preview("dev")
    assert result.returncode != 0
    assert seen is None
    lines = error_lines(result)
    assert expected[0] in lines, lines
    start = lines.index(expected[0])
    assert lines[start : start + len(expected)] == expected


def test_a_utf8_bom_is_accepted(engine: Engine) -> None:
    engine.init_stack("dev", b"\xef\xbb\xbf" + stack_text().encode())
    result, seen = engine.preview("dev")
    assert seen is not None
    assert result.returncode == 0
    assert seen["config"]["gcp:project"] == "acme-ml-test"


# --- secure: values ---------------------------------------------------------------------------------


@pytest.fixture
def secret_stack(engine: Engine) -> Engine:
    engine.init_stack("dev", stack_text())
    engine.run("config", "set", "--secret", "--stack", "dev", "t:token", "hunter2-plaintext")
    return engine


def test_config_set_secret_writes_ciphertext_to_the_stack_file(secret_stack: Engine) -> None:
    document = yaml.safe_load(secret_stack.stack_file("dev").read_text())
    assert set(document["config"]["t:token"]) == {"secure"}
    assert document["config"]["t:token"]["secure"].startswith("v1:")
    assert document["encryptionsalt"].startswith("v1:")
    assert b"hunter2-plaintext" not in secret_stack.stack_file("dev").read_bytes()


def test_the_program_receives_the_decrypted_value_marked_secret(secret_stack: Engine) -> None:
    result, seen = secret_stack.preview("dev")
    assert seen is not None
    assert result.returncode == 0
    assert seen["config"]["t:token"] == "hunter2-plaintext"
    assert seen["secret_keys"] == ["t:token"]
    assert "hunter2-plaintext" not in result.stdout + result.stderr  # the export shows as [secret]


def test_pulumi_config_json_hides_secrets_unless_show_secrets(secret_stack: Engine) -> None:
    _, hidden = secret_stack.config_json("dev")
    assert hidden is not None
    assert hidden["t:token"] == {"secret": True}
    _, shown = secret_stack.config_json("dev", "--show-secrets")
    assert shown is not None
    assert shown["t:token"] == {"value": "hunter2-plaintext", "secret": True}


def test_the_state_keeps_secrets_encrypted(secret_stack: Engine) -> None:
    secret_stack.run("up", "--yes", "--stack", "dev")
    files = [p for p in secret_stack.backend.rglob("*") if p.is_file()]
    assert files
    assert not [p for p in files if b"hunter2-plaintext" in p.read_bytes()]
    state = json.loads((secret_stack.backend / ".pulumi" / "stacks" / "mlops-ci" / "dev.json").read_text())
    deployment = state["checkpoint"]["latest"]
    assert deployment["secrets_providers"]["type"] == "passphrase"
    stack_outputs = deployment["resources"][0]["outputs"]
    assert set(stack_outputs["secret:t:token"]) == {"4dabf18193072939515e22adb298388d", "ciphertext"}
    # The update history records the config it ran with: defaults merged, secrets still `secure:`.
    history = next((secret_stack.backend / ".pulumi" / "history" / "mlops-ci" / "dev").glob("*.history.json"))
    recorded = json.loads(history.read_text())["config"]
    assert set(recorded["t:token"]) == {"secure"}
    assert recorded["mlops-ci:protectBucket"] == "true"


def test_a_wrong_passphrase_stops_the_cli(secret_stack: Engine) -> None:
    result, seen = secret_stack.preview("dev", env={**secret_stack.env, "PULUMI_CONFIG_PASSPHRASE": "wrong"})
    assert seen is None
    assert "error: getting stack configuration: get stack secrets manager: incorrect passphrase" in error_lines(result)


def test_no_passphrase_stops_the_cli(secret_stack: Engine) -> None:
    env = {k: v for k, v in secret_stack.env.items() if k != "PULUMI_CONFIG_PASSPHRASE"}
    result, _ = secret_stack.preview("dev", env=env)
    assert (
        "error: getting stack configuration: get stack secrets manager: passphrase must be set with "
        "PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables"
    ) in error_lines(result)


def test_a_corrupt_ciphertext_is_refused(secret_stack: Engine) -> None:
    path = secret_stack.stack_file("dev")
    document = yaml.safe_load(path.read_text())
    document["config"]["t:token"] = {"secure": "v1:garbage"}
    path.write_text(yaml.safe_dump(document))
    result, seen = secret_stack.preview("dev")
    assert seen is None
    assert "error: validating stack config: bad value" in error_lines(result)


def test_the_passphrase_is_what_the_fixture_set(secret_stack: Engine) -> None:
    assert secret_stack.env["PULUMI_CONFIG_PASSPHRASE"] == PASSPHRASE


# --- stack names ------------------------------------------------------------------------------------

ACCEPTED = ["dev", "vision-team", "A-b_c.d", "1abc", "-lead", ".dot", "_u", "a..b", "UPPER", "a" * 100]
BAD_CHARACTER = "error: a stack name may only contain alphanumeric, hyphens, underscores, or periods: invalid character"
REFUSED = {
    "with space": f"{BAD_CHARACTER} ' ' at position 4",
    "x:y": f"{BAD_CHARACTER} ':' at position 1",
    "x@y": f"{BAD_CHARACTER} '@' at position 1",
    "a+b": f"{BAD_CHARACTER} '+' at position 1",
    # Reported byte by byte: the first byte of é (0xC3) shown as a Latin-1 character.
    "café": f"{BAD_CHARACTER} 'Ã' at position 3",
    "a" * 101: "error: a stack name cannot exceed 100 characters",
    "team/x": "error: organization name must be 'organization'",
    "organization/other/x": 'error: could not create stack: provided project name "other" doesn\'t match Pulumi.yaml',
}


@pytest.mark.parametrize("name", ACCEPTED, ids=lambda n: n[:12])
def test_stack_names_the_cli_accepts(engine: Engine, name: str) -> None:
    result = engine.run("stack", "init", "--", name, check=False)
    assert result.returncode == 0, result.stderr
    assert (engine.project / "stacks" / f"Pulumi.{name}.yaml").is_file()


@pytest.mark.parametrize("name", list(REFUSED), ids=lambda n: n[:12])
def test_stack_names_the_cli_refuses(engine: Engine, name: str) -> None:
    result = engine.run("stack", "init", "--", name, check=False)
    assert result.returncode != 0
    assert REFUSED[name] in error_lines(result)
    assert not list((engine.project / "stacks").glob("Pulumi.*.yaml"))


def test_the_fully_qualified_diy_form_names_the_stack(engine: Engine) -> None:
    result = engine.run("stack", "init", "organization/mlops-ci/qualified")
    assert "Created stack 'qualified'" in result.stdout + result.stderr
    assert (engine.project / "stacks" / "Pulumi.qualified.yaml").is_file()


# --- offline ----------------------------------------------------------------------------------------


def test_the_cli_runs_with_no_network_at_all(engine: Engine) -> None:
    if not engine.netns:
        pytest.skip("this machine cannot make a network namespace (unshare --net)")
    engine.init_stack("dev", stack_text())
    result, seen = engine.preview("dev")  # conftest ran login, init and this inside netns
    assert result.returncode == 0
    assert seen is not None


def test_the_engine_used_our_build(engine: Engine) -> None:
    result = engine.run("version")
    assert result.stdout.strip() == "v3.274.1"
    assert Path(engine.bin_dir, "pulumi-language-python").is_file()


def test_nothing_is_fetched_and_a_missing_provider_plugin_is_not_downloaded(engine: Engine) -> None:
    # Observed without the conftest environment: the CLI asks api.pulumi.com for its latest version
    # and tries get.pulumi.com and github.com 5 times each for the provider plugin.
    main = engine.project / "__main__.py"
    main.write_text(main.read_text() + '\nimport pulumi_gcp as gcp\n\ngcp.storage.Bucket("b", location="EU")\n')
    engine.init_stack("dev", stack_text())
    result, seen = engine.preview("dev", "--logtostderr", "-v=9")
    assert seen is not None
    assert result.returncode != 0
    assert (
        "error: no resource plugin 'pulumi-resource-gcp' found in the workspace at version v10.2.0 or on your $PATH"
        in result.stdout
    )
    assert "newPlugin" in result.stderr  # the -v=9 log is there to be searched
    assert "http://" not in result.stderr
    assert "https://" not in result.stderr
