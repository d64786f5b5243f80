"""The committed CI files: valid against the platforms' published schemas, and what the chapter needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.ci_files import render_ci_file
from tests.helpers import make_settings

CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
SCHEMAS = {
    "github": ["--builtin-schema", "vendor.github-workflows"],
    "gitlab": ["--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci"],
}

VARIANTS = [
    {},
    {"branch": "release/2026.11", "python_version": "3.11", "requirements_file": "ci/requirements-ci.txt"},
    {"secret_name": "GCP_DVC_KEY", "stack": "Team.A"},
    {"auth": "workload-identity"},
]


def check_schema(platform: str, content: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / ("workflow.yaml" if platform == "github" else ".gitlab-ci.yml")
    path.write_text(content)
    return subprocess.run([CHECK_JSONSCHEMA, *SCHEMAS[platform], str(path)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("platform", ["github", "gitlab"])
@pytest.mark.parametrize("fields", VARIANTS)
def test_ci_file_passes_the_platform_schema(platform: str, fields: dict[str, str], tmp_path: Path) -> None:
    result = check_schema(platform, render_ci_file(make_settings(platform, **fields)), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("platform", ["github", "gitlab"])
def test_schema_check_can_fail(platform: str, tmp_path: Path) -> None:
    broken = render_ci_file(make_settings(platform)).replace("dvc repro --pull", "{dvc: [repro]}")
    broken = (
        broken.replace("runs-on: ubuntu-latest", "runs-on: 7")
        if platform == "github"
        else broken.replace('GIT_DEPTH: "0"', "GIT_DEPTH: [0]")
    )
    assert check_schema(platform, broken, tmp_path).returncode != 0


@pytest.mark.parametrize("platform", ["github", "gitlab"])
def test_rendering_is_deterministic(platform: str) -> None:
    settings = make_settings(platform)
    assert render_ci_file(settings) == render_ci_file(settings)
    assert render_ci_file(settings).endswith("\n")


def test_github_workflow_runs_the_chapter_job_with_least_permissions() -> None:
    settings = make_settings(
        "github", branch="develop", python_version="3.12", requirements_file="ci/req.txt", secret_name="GCP_KEY"
    )
    workflow = yaml.safe_load(render_ci_file(settings))
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert triggers == {"push": {"branches": ["develop"]}, "workflow_dispatch": None}
    assert workflow["permissions"] == {"contents": "read"}
    steps = workflow["jobs"]["reproduce"]["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    assert uses == ["actions/checkout", "actions/setup-python", "", "google-github-actions/auth", ""]
    assert steps[1]["with"] == {"python-version": "3.12", "cache": "pip", "cache-dependency-path": "ci/req.txt"}
    assert steps[2]["run"] == "pip install -r ci/req.txt"
    assert steps[3]["with"] == {"credentials_json": "${{ secrets.GCP_KEY }}"}
    assert steps[4]["run"] == "dvc repro --pull"


def test_gitlab_job_keeps_the_key_outside_the_project_and_removes_it() -> None:
    settings = make_settings("gitlab", branch="develop", python_version="3.12", requirements_file="ci/req.txt")
    job = yaml.safe_load(render_ci_file(settings))["reproduce"]
    assert job["image"] == "python:3.12"
    assert job["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'},
        {"if": '$CI_COMMIT_BRANCH == "develop"'},
    ]
    variables = job["variables"]
    assert variables["GIT_DEPTH"] == "0"
    assert variables["PIP_CACHE_DIR"].startswith("$CI_PROJECT_DIR/")
    key_path = variables["GOOGLE_APPLICATION_CREDENTIALS"]
    assert not key_path.startswith("$CI_PROJECT_DIR/"), "the key file must live outside the project directory"
    assert job["cache"] == {"key": {"files": ["ci/req.txt"]}, "paths": [".cache/pip"]}
    commands = job["before_script"] + job["script"] + job["after_script"]
    assert any("base64 -d" in c and "$GOOGLE_SERVICE_ACCOUNT_KEY" in c for c in commands)
    assert "pip install -r ci/req.txt" in commands
    assert job["script"] == ["dvc repro --pull"]
    assert any(c.startswith("rm -rf") for c in job["after_script"])
    assert "python3 -m venv .venv" in commands
    assert not any("python3." in c for c in commands), "no minor-version interpreter in commands"
