"""Hostile stack files and environments under the REAL Pulumi CLI: the program's own settings step
(`load_settings`, what `__main__.py` runs first) refuses what `make plan` and `make check` refuse,
and a stack file made exactly as the README says passes both offline commands."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_ci.offline.stacks import StackFileError, load_stack_file, stack_files
from tests.engine.conftest import ROOT, Engine

pytestmark = pytest.mark.engine

# The program's first step, as __main__.py runs it, from this checkout.
SETTINGS_PROGRAM = f"""
import sys

sys.path.insert(0, {str(ROOT)!r})
from mlops_ci.settings.loader import load_settings

load_settings()
"""
HEAD = "config:\n  mlops-ci:platform: github\n  mlops-ci:repository: acme-ml/churn\n"


@pytest.fixture
def settings_engine(engine: Engine) -> Engine:
    (engine.project / "__main__.py").write_text(SETTINGS_PROGRAM)
    return engine


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variable", "key"),
    [
        ("PULUMI_CONFIG_GCP_PROJECT", "gcp:project"),
        ("PULUMI_CONFIG_GITHUB_TOKEN", "github:token"),
        ("PULUMI_CONFIG_MLOPS_CI_BRANCH", "mlops-ci:branch"),
    ],
)
def test_config_from_the_environment_is_refused_under_the_cli(settings_engine: Engine, variable: str, key: str) -> None:
    settings_engine.init_stack("dev", HEAD + "  gcp:project: acme-ml-test\n")
    result, _ = settings_engine.preview("dev", env={**settings_engine.env, variable: "from-the-environment"})
    assert result.returncode != 0
    assert f"{variable} (environment): refused: Pulumi's SDK reads it as {key} when the stack file lacks the key" in output(
        result
    )
    assert "Traceback" not in output(result)
    # Without it, the same stack runs.
    assert settings_engine.preview("dev")[0].returncode == 0


def test_keys_no_one_reviews_are_refused_under_the_cli(settings_engine: Engine) -> None:
    lines = "  gcp:project: acme-ml-test\n  gcp:storageCustomEndpoint: http://127.0.0.1:9/storage/v1/\n  mlopsci:access: admin\n"
    settings_engine.init_stack("dev", HEAD + lines)
    result, _ = settings_engine.preview("dev")
    assert result.returncode != 0
    assert "gcp:storageCustomEndpoint: refused: it would send the Google API calls of `pulumi up`" in output(result)
    assert "mlopsci:access: unknown namespace 'mlopsci' (did you mean mlops-ci?)" in output(result)
    assert "has 2 configuration problems" in output(result)


def test_a_base_url_the_platform_did_not_allow_or_under_secure_is_refused_under_the_cli(settings_engine: Engine) -> None:
    # Decrypted, the secret base URL is a well-formed URL: only its being secret is refused.
    settings_engine.init_stack("dev", HEAD + "  gcp:project: acme-ml-test\n")
    settings_engine.run("config", "set", "--secret", "--stack", "dev", "github:baseUrl", "https://api.github.com/")
    result, _ = settings_engine.preview("dev")
    assert result.returncode != 0
    assert "github:baseUrl: not a secret: write it in plain text" in output(result)
    settings_engine.init_stack(
        "elsewhere", HEAD + "  gcp:project: acme-ml-test\n  github:baseUrl: https://evil.example/api/v3/\n"
    )
    result, _ = settings_engine.preview("elsewhere")
    assert result.returncode != 0
    assert (
        "github:baseUrl = 'https://evil.example/api/v3/': not an API the platform lets stack files send its token to"
        in output(result)
    )


def test_plain_text_under_secure_is_refused_offline_and_fails_under_the_cli(engine: Engine) -> None:
    path = engine.init_stack("dev", HEAD + "  gcp:project: acme-ml-test\n  github:token:\n    secure: ghp_0123456789abcdef0123\n")
    result, seen = engine.preview("dev")
    assert result.returncode != 0
    assert seen is None  # the CLI stops at decryption, before the program
    with pytest.raises(StackFileError, match=r"github:token: the secure: value is not Pulumi ciphertext"):
        load_stack_file(path)


def test_a_stack_file_made_as_the_readme_says_passes_plan_and_check(engine: Engine, tmp_path: Path) -> None:
    engine.run("stack", "init", "team-x")
    for key, value in (("gcp:project", "acme-ml-x"), ("mlops-ci:platform", "github"), ("mlops-ci:repository", "acme-ml/x")):
        engine.run("config", "set", "--stack", "team-x", key, value)
    engine.run("config", "set", "--secret", "--stack", "team-x", "github:token", "ghp_0123456789abcdef0123456789abcdef0123")
    made = engine.stack_file("team-x")
    document = yaml.safe_load(made.read_text())
    assert document["encryptionsalt"].startswith("v1:")
    assert document["config"]["github:token"]["secure"].startswith("v1:")

    stacks = tmp_path / "stacks"
    stacks.mkdir()
    for path in [*stack_files(), made]:
        shutil.copy(path, stacks)
    plan = subprocess.run(
        [sys.executable, "-m", "mlops_ci.offline.plan", "--stacks", str(stacks), "--out", str(tmp_path / "out"), "team-x"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert "github:token" not in plan.stdout or "[secret]" in plan.stdout
    check = subprocess.run(
        [sys.executable, "-m", "mlops_ci.offline.check", "--jobs", "1", "--stacks", str(stacks)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "OK    team-x" in check.stdout
