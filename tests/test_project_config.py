"""The offline runtime hands the program what the Pulumi CLI would: Pulumi.yaml's defaults merged
in, and the CLI's own errors for a missing or mistyped key (before the program runs)."""

from __future__ import annotations

import pytest
import yaml

from mlops_ci.offline.project_config import ProjectConfigError, apply_project_config
from mlops_ci.settings.loader import ConfigError
from mlops_ci.settings.schema import PROJECT_FILE
from tests.helpers import KEY, CountingMocks, config_for, run


def test_every_declared_default_reaches_the_program_as_text() -> None:
    merged = apply_project_config("team-a", config_for("github", auth=None))
    declared = yaml.safe_load(PROJECT_FILE.read_text())["config"]
    for name, declaration in declared.items():
        if "default" in declaration:
            expected = str(declaration["default"]).lower() if isinstance(declaration["default"], bool) else declaration["default"]
            assert merged[f"mlops-ci:{name}"] == expected, name
    assert merged["mlops-ci:protectBucket"] == "true"
    assert merged["mlops-ci:keyRotation"] == ""


def test_a_stack_value_wins_over_the_default() -> None:
    merged = apply_project_config("team-a", config_for("github", branch="develop"))
    assert merged["mlops-ci:branch"] == "develop"


def test_missing_required_keys_are_refused_in_the_cli_words() -> None:
    mocks = CountingMocks()
    with pytest.raises(ProjectConfigError, match=r"^Stack 'team-a' is missing configuration values 'platform' and 'repository'$"):
        run("github", mocks=mocks, platform=None, repository=None)
    assert mocks.created == []


@pytest.mark.parametrize(("key", "value"), [("protectBucket", "yes"), ("protectedVariable", "1")])
def test_a_mistyped_boolean_is_refused_in_the_cli_words(key: str, value: str) -> None:
    with pytest.raises(ProjectConfigError, match=rf"^Stack 'team-a' with configuration key '{key}' must be of type 'boolean'$"):
        run("gitlab", {key: value})


@pytest.mark.parametrize("platform", ["github", "gitlab"])
def test_keyless_stack_runs_with_every_default_merged(platform: str) -> None:
    # The defect the CLI found: its merged defaults of key-only keys counted as "set".
    evaluation = run(platform, auth="workload-identity")
    assert evaluation.find(KEY) == []


@pytest.mark.parametrize(
    ("platform", "key", "value"),
    [
        ("gitlab", "secretName", "MY_KEY"),
        ("gitlab", "keyRotation", "2026-12"),
        ("gitlab", "protectedVariable", "true"),
        ("gitlab", "hiddenVariable", "false"),
        ("github", "githubEnvironment", "ci"),
    ],
)
def test_keyless_stack_still_refuses_a_key_only_setting(platform: str, key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"mlops-ci:{key}: applies to auth key only"):
        run(platform, {key: value}, auth="workload-identity")


@pytest.mark.parametrize("stack", ["team a", "$(touch x)", "team\nconfig:", "t" * 101, ""])
def test_stack_names_the_cli_refuses_are_refused(stack: str) -> None:
    mocks = CountingMocks()
    with pytest.raises(ProjectConfigError, match="stack names may only contain alphanumeric, hyphens, underscores, or periods"):
        run("github", stack=stack, mocks=mocks)
    assert mocks.created == []
