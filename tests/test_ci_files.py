"""The committed CI files: valid against the platforms' published schemas, what the chapter needs,
and the credential kept away from everything but the step that needs it."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcloud.kit.stack import service_account_key
from localcloud.kit.variants import PLATFORMS, VARIANTS, rendered
from mlops_ci.ci.files import UV_VERSION, job_script_path, render_ci_file, render_job_script
from tests.helpers import make_settings, write_job_script
from tests.test_ci_linters import actionlint, schema, zizmor

PINNED_USES = re.compile(r"^ +(?:- )?uses: (?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40}) # (?P<tag>v\d+\.\d+\.\d+)$")

# The job script of the stacks make_settings builds (team-a).
JOB_SCRIPT = job_script_path("team-a")


def unpinned_uses(content: str) -> list[str]:
    """Every `uses:` that is not `owner/repo@<40-hex commit> # vX.Y.Z`, read both as text (the
    comment) and as YAML (so no `uses:` escapes the text check by its layout)."""
    lines = [line for line in content.splitlines() if re.match(r"^ +(?:- )?uses:", line)]
    problems = [line.strip() for line in lines if not PINNED_USES.match(line)]
    steps = [step for job in yaml.safe_load(content)["jobs"].values() for step in job.get("steps", [])]
    uses = [step["uses"] for step in steps if "uses" in step]
    problems += [value for value in uses if not re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", value)]
    if len(uses) != len(lines):
        problems.append(f"{len(uses)} uses in the YAML, {len(lines)} uses: lines")
    return problems


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_ci_file_passes_the_platform_schema(platform: str, variant: str, tmp_path: Path) -> None:
    assert schema(platform, rendered(platform, variant), tmp_path) == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_schema_check_can_fail(platform: str, tmp_path: Path) -> None:
    broken = render_ci_file(make_settings(platform))
    broken = (
        broken.replace("runs-on: ubuntu-latest", "runs-on: 7")
        if platform == "github"
        else broken.replace('GIT_DEPTH: "0"', "GIT_DEPTH: [0]")
    )
    assert schema(platform, broken, tmp_path) != []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_rendering_is_deterministic(platform: str) -> None:
    settings = make_settings(platform)
    assert render_ci_file(settings) == render_ci_file(settings)
    assert render_ci_file(settings).endswith("\n")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_action_is_pinned_to_a_commit_with_its_release(variant: str) -> None:
    assert unpinned_uses(rendered("github", variant)) == []


def test_pin_check_can_fail() -> None:
    content = rendered("github", "key")
    pinned = PINNED_USES.match(next(line for line in content.splitlines() if "uses: actions/checkout@" in line))
    assert pinned
    by_tag = content.replace(f"@{pinned['sha']} # {pinned['tag']}", "@v7")
    short_sha = content.replace(f"@{pinned['sha']}", f"@{pinned['sha'][:12]}")
    no_comment = content.replace(f" # {pinned['tag']}", "")
    flow_step = content.replace("    steps:\n", "    steps:\n      - {uses: actions/checkout@v7}\n", 1)
    for broken in (by_tag, short_sha, no_comment, flow_step):
        assert broken != content
        assert unpinned_uses(broken) != []


def test_each_action_has_one_pin_across_variants() -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for variant in VARIANTS:
        for line in rendered("github", variant).splitlines():
            if pinned := PINNED_USES.match(line):
                pins.setdefault(pinned["action"], set()).add((pinned["sha"], pinned["tag"]))
    assert sorted(pins) == [
        "actions/checkout",
        "actions/download-artifact",
        "actions/setup-python",
        "actions/upload-artifact",
        "google-github-actions/auth",
    ]
    assert all(len(versions) == 1 for versions in pins.values()), pins


# The inputs each pinned release declares (`inputs:` of its action.yml at the pinned commit, read
# in the action's repository). actionlint 1.7.7 knows no input of these releases, so this is what
# catches a misspelt or removed input; a bump records the new release's inputs here.
RELEASE_INPUTS = {
    "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1": (
        "allow-unsafe-pr-checkout clean fetch-depth fetch-tags filter github-server-url lfs path persist-credentials"
        " ref repository set-safe-directory show-progress sparse-checkout sparse-checkout-cone-mode ssh-key"
        " ssh-known-hosts ssh-strict ssh-user submodules token"
    ),
    "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97": (
        "allow-prereleases architecture cache cache-dependency-path check-latest freethreaded pip-version"
        " python-version python-version-file token update-environment"
    ),
    "google-github-actions/auth@7c6bc770dae815cd3e89ee6cdf493a5fab2cc093": (
        "access_token_lifetime access_token_scopes access_token_subject audience cleanup_credentials"
        " create_credentials_file credentials_json delegates export_environment_variables id_token_audience"
        " id_token_include_email project_id request_reason service_account token_format universe"
        " workload_identity_provider"
    ),
    "actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f": (
        "archive compression-level if-no-files-found include-hidden-files name overwrite path retention-days"
    ),
    "actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c": (
        "artifact-ids digest-mismatch github-token merge-multiple name path pattern repository run-id skip-decompress"
    ),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_input_is_declared_by_the_pinned_release(variant: str) -> None:
    jobs = yaml.safe_load(rendered("github", variant))["jobs"].values()
    for step in (step for job in jobs for step in job["steps"] if "uses" in step):
        assert step["uses"] in RELEASE_INPUTS, f"{step['uses']}: record the inputs of this release"
        assert set(step.get("with", {})) <= set(RELEASE_INPUTS[step["uses"]].split()), step


def test_github_workflow_runs_the_chapter_job_with_least_permissions() -> None:
    settings = make_settings(
        "github", branch="develop", python_version="3.12", requirements_file="ci/req.txt", secret_name="GCP_KEY"
    )
    workflow = yaml.safe_load(render_ci_file(settings))
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert triggers == {"push": {"branches": ["develop"]}, "workflow_dispatch": None}
    assert workflow["permissions"] == {}
    assert workflow["concurrency"] == {"group": "${{ github.workflow }}-${{ github.ref }}", "cancel-in-progress": True}
    job = workflow["jobs"]["reproduce"]
    assert job["permissions"] == {"contents": "read"}
    assert job["timeout-minutes"] == 60
    steps = job["steps"]
    # The guide's steps under its names, in its order, with the login checked before the data.
    names = [step["name"] for step in steps]
    assert names == [
        "Checkout repository",
        "Setup Python",
        "Install dependencies",
        "Login to Google Cloud",
        "Check the login",
        "Train model",
    ]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    assert uses == ["actions/checkout", "actions/setup-python", "", "google-github-actions/auth", "", ""]
    assert steps[0]["with"] == {"persist-credentials": False}
    assert steps[1]["with"] == {"python-version": "3.12"}, "no dependency cache in a job that holds a credential"
    assert steps[2]["run"] == f"pip install uv=={UV_VERSION} && uv pip install --python python3 -r ci/req.txt"
    assert steps[3]["with"] == {"credentials_json": "${{ secrets.GCP_KEY }}"}
    assert steps[4]["run"] == f"python3 {JOB_SCRIPT} check-login", "a refused credential must fail before the data check"
    assert steps[5]["run"] == f"python3 {JOB_SCRIPT} repro"


@pytest.mark.parametrize("variant", VARIANTS)
def test_github_secrets_reach_only_the_auth_step(variant: str) -> None:
    job = yaml.safe_load(rendered("github", variant))["jobs"]["reproduce"]
    where = [
        (number, key)
        for number, step in enumerate(job["steps"])
        for key, value in step.items()
        if "secrets." in str(value) or "github.token" in str(value)
    ]
    assert where == ([] if VARIANTS[variant].get("auth") == "workload-identity" else [(3, "with")])
    assert "env" not in job


def test_gitlab_job_keeps_the_key_outside_the_project_and_removes_it() -> None:
    settings = make_settings("gitlab", branch="develop", python_version="3.12", requirements_file="ci/req.txt")
    job = yaml.safe_load(render_ci_file(settings))["reproduce"]
    assert job["image"] == "python:3.12"
    assert job["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"', "interruptible": True},
        {"if": '$CI_COMMIT_BRANCH == "develop"', "interruptible": True},
    ]
    assert job["timeout"] == "60 minutes"
    variables = job["variables"]
    assert variables["GIT_DEPTH"] == "0"
    assert variables["PIP_CACHE_DIR"].startswith("$CI_PROJECT_DIR/")
    key_path = variables["GOOGLE_APPLICATION_CREDENTIALS"]
    assert not key_path.startswith("$CI_PROJECT_DIR/"), "the key file must live outside the project directory"
    assert job["cache"] == {"key": {"files": ["ci/req.txt"]}, "paths": [".cache/pip", ".cache/uv"]}
    assert job["before_script"] == [
        "python3 -m venv .venv",
        'export PATH="$CI_PROJECT_DIR/.venv/bin:$PATH"',
        f"(unset GOOGLE_SERVICE_ACCOUNT_KEY && pip install uv=={UV_VERSION} && uv pip install --python python3 -r ci/req.txt)",
        f"python3 {JOB_SCRIPT} login",
        "unset GOOGLE_SERVICE_ACCOUNT_KEY",
        f"python3 {JOB_SCRIPT} check-login",
    ]
    assert job["script"] == [f"python3 {JOB_SCRIPT} repro"]
    assert job["after_script"] == ['rm -rf "$(dirname "$GOOGLE_APPLICATION_CREDENTIALS")"']


# --- The credential never reaches the install step: the committed scripts run with stubs ------

CREDENTIALS = {"key": "GOOGLE_SERVICE_ACCOUNT_KEY", "keyless": "GCP_ID_TOKEN"}
# A key file with a fresh RSA key, generated per run (no key material in the repository).
KEY_FILE = json.dumps(service_account_key("ci@acme-ml-test.iam.gserviceaccount.com", "acme-ml-test", "http://127.0.0.1/token")[0])
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzdHViIn0.c2lnbmF0dXJl"
GITHUB_ID_TOKEN_REQUEST = {
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runner-request-token",
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://pipelines.actions.example/idtoken",
}
# A command of the job, stood in for: it records its environment and the credential file it finds.
RECORDER = """#!/bin/sh
{{ env; printf 'credential-file=%s\\n' "$(cat "$GOOGLE_APPLICATION_CREDENTIALS" 2>/dev/null)"; }} > "{log}/$(basename "$0").log"
"""
# `python3 -m venv .venv`: a virtualenv whose pip and uv are recorders, and whose python3 records the
# job script's steps that call Google (check-login) and DVC (repro, push), and runs anything else
# (the job script's login, which writes the credential file).
FAKE_PYTHON = """#!/bin/sh
[ "$1 $2 $3" = "-m venv .venv" ] || exec {python} "$@"
mkdir -p .venv/bin
cp "{stubs}/recorder" .venv/bin/pip
cp "{stubs}/recorder" .venv/bin/uv
cp "{stubs}/venv-python3" .venv/bin/python3
"""
VENV_PYTHON = """#!/bin/sh
case "$1 $2" in
"{job_script} check-login") exec "{stubs}/credential-check" ;;
"{job_script} repro" | "{job_script} push") exec "{stubs}/dvc" ;;
esac
exec {python} "$@"
"""


def stubs(tmp_path: Path) -> tuple[Path, Path]:
    """A PATH directory with recording `pip`, `uv`, `dvc` (and a `python3` making a virtualenv of
    them, whose python3 records the credential check, and running the real one otherwise)."""
    stub_dir, log = tmp_path / "stubs", tmp_path / "log"
    stub_dir.mkdir()
    log.mkdir()
    python = shutil.which("python3")
    stub_files = (
        *(("recorder", RECORDER), ("pip", RECORDER), ("uv", RECORDER), ("dvc", RECORDER), ("credential-check", RECORDER)),
        *(("python3", FAKE_PYTHON), ("venv-python3", VENV_PYTHON)),
    )
    for name, text in stub_files:
        (stub_dir / name).write_text(text.format(log=log, stubs=stub_dir, python=python, job_script=JOB_SCRIPT))
        (stub_dir / name).chmod(0o755)
    return stub_dir, log


def recorded(log: Path, command: str) -> tuple[dict[str, str], str]:
    """The environment a stubbed command ran with, and the credential file's content then."""
    lines = (log / f"{command}.log").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("credential-file="))
    return env, next(line for line in lines if line.startswith("credential-file=")).removeprefix("credential-file=")


def run_gitlab_scripts(variant: str, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """before_script and script in one POSIX shell, as the runner runs them, with the variables a
    pipeline of this variant has."""
    job = yaml.safe_load(rendered("gitlab", variant))["reproduce"]
    stub_dir, log = stubs(tmp_path)
    project = tmp_path / "project"
    (project / ".dvc").mkdir(parents=True)  # a DVC project's clone
    write_job_script(project, make_settings("gitlab", **VARIANTS[variant]))
    env = {
        "PATH": f"{stub_dir}{os.pathsep}{os.environ['PATH']}",
        "CI_PROJECT_DIR": str(project),
        "GOOGLE_APPLICATION_CREDENTIALS": job["variables"]["GOOGLE_APPLICATION_CREDENTIALS"].replace(
            "$CI_PROJECT_DIR", str(project)
        ),
    }
    if variant == "key":
        env["GOOGLE_SERVICE_ACCOUNT_KEY"] = base64.b64encode(KEY_FILE.encode()).decode()
    else:
        env |= {"GCP_ID_TOKEN": ID_TOKEN, "GCP_WORKLOAD_IDENTITY_PROVIDER": "projects/1/x", "GCP_SERVICE_ACCOUNT": "a@b"}
    script = "set -e\n" + "\n".join(job["before_script"] + job["script"])
    subprocess.run(["sh", "-c", script], cwd=project, env=env, check=True, timeout=30)
    return log, env


@pytest.mark.parametrize("variant", ["key", "keyless"])
def test_gitlab_install_runs_before_the_credential_exists_and_without_its_variable(variant: str, tmp_path: Path) -> None:
    log, env = run_gitlab_scripts(variant, tmp_path)
    variable = CREDENTIALS[variant]
    secret = env[variable]
    for installer in ("pip", "uv"):
        pip_env, pip_credential = recorded(log, installer)
        assert variable not in pip_env
        assert not any(secret in value for value in pip_env.values())
        assert pip_credential == "", "the credential file existed while the requirements were installed"
    # The job's commands (the credential check, then DVC) get the credential as a file only; the
    # variable is gone.
    for command in ("credential-check", "dvc"):
        command_env, credential = recorded(log, command)
        assert variable not in command_env
        if variant == "key":
            assert credential == KEY_FILE
        else:
            configuration = json.loads(credential)
            assert configuration["type"] == "external_account"
            assert Path(configuration["credential_source"]["file"]).read_text() == ID_TOKEN


def test_gitlab_job_fails_without_the_key_variable_and_writes_no_key(tmp_path: Path) -> None:
    job = yaml.safe_load(rendered("gitlab", "key"))["reproduce"]
    stub_dir, log = stubs(tmp_path)
    write_job_script(tmp_path, make_settings("gitlab"))
    key_path = tmp_path / "key-dir" / "key.json"
    env = {"PATH": f"{stub_dir}{os.pathsep}{os.environ['PATH']}", "CI_PROJECT_DIR": str(tmp_path)}
    script = "set -e\n" + "\n".join(job["before_script"] + job["script"])
    env["GOOGLE_APPLICATION_CREDENTIALS"] = str(key_path)
    result = subprocess.run(["sh", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "ERROR: this pipeline has no CI/CD variable GOOGLE_SERVICE_ACCOUNT_KEY." in result.stderr
    assert "`pulumi destroy`" in result.stderr
    assert not key_path.exists()
    assert not (log / "dvc.log").exists()


@pytest.mark.parametrize("variant", ["key", "keyless"])
def test_github_install_step_sees_no_credential(variant: str, tmp_path: Path) -> None:
    """The `run:` steps in bash as the runner runs them, with what the runner puts in their
    environment: in keyless mode (id-token: write) the variables to request an ID token."""
    job: dict[str, Any] = yaml.safe_load(rendered("github", variant))["jobs"]["reproduce"]
    stub_dir, log = stubs(tmp_path)
    env = {"PATH": f"{stub_dir}{os.pathsep}{os.environ['PATH']}"}
    if "id-token" in job["permissions"]:
        env |= GITHUB_ID_TOKEN_REQUEST
    install = next(step for step in job["steps"] if step.get("name") == "Install dependencies")
    subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", install["run"]], env=env, check=True, timeout=30)
    assert (variant == "keyless") == ("ACTIONS_ID_TOKEN_REQUEST_TOKEN" in env)
    for installer in ("pip", "uv"):
        installer_env, _ = recorded(log, installer)
        assert not set(GITHUB_ID_TOKEN_REQUEST) & set(installer_env)
    assert job["steps"].index(install) < next(i for i, s in enumerate(job["steps"]) if "auth" in s.get("uses", ""))


@pytest.mark.parametrize("name", ["true", "null", "3.10", "yes"])
def test_a_requirements_file_named_like_a_yaml_scalar_stays_a_file_name(name: str) -> None:
    job = yaml.safe_load(render_ci_file(make_settings("gitlab", requirements_file=name)))["reproduce"]
    assert job["cache"]["key"]["files"] == [name]


@pytest.mark.parametrize("persona", ["regular", "pedantic"])
def test_the_projects_own_workflow_is_clean_too(persona: str, tmp_path: Path) -> None:
    content = (Path(__file__).resolve().parent.parent / ".github/workflows/check-stacks.yaml").read_text()
    assert zizmor(content, tmp_path, persona) == []
    assert actionlint(content, tmp_path) == []
    assert unpinned_uses(content) == []


# --- Which runs push to the bucket ------------------------------------------------------------


@pytest.mark.parametrize("access", ["pull", "push", "admin"])
def test_github_pushes_on_the_branch_only_with_write_access(access: str) -> None:
    workflow = yaml.safe_load(render_ci_file(make_settings("github", access=access, branch="release/2026.11")))
    steps = workflow["jobs"]["reproduce"]["steps"]
    pushes = [step for step in steps if step.get("run") == f"python3 {JOB_SCRIPT} push"]
    if access == "pull":
        assert pushes == []
        assert workflow["concurrency"]["cancel-in-progress"] is True
        return
    assert pushes == [
        {
            "name": "Push the outputs to the bucket",
            "if": "github.ref == 'refs/heads/release/2026.11'",
            "run": f"python3 {JOB_SCRIPT} push",
        }
    ]
    assert steps[-1] == pushes[0], "the push comes after the repro"
    assert workflow["concurrency"]["cancel-in-progress"] is False, "a newer run must not cancel a push"


@pytest.mark.parametrize("access", ["pull", "push", "admin"])
def test_gitlab_pushes_outside_merge_requests_only_with_write_access(access: str) -> None:
    job = yaml.safe_load(render_ci_file(make_settings("gitlab", access=access)))["reproduce"]
    pushes = [line for line in job["script"] if f"{JOB_SCRIPT} push" in line]
    merge_request_rule, branch_rule = job["rules"]
    assert merge_request_rule["interruptible"] is True
    if access == "pull":
        assert pushes == []
        assert branch_rule["interruptible"] is True
        return
    assert pushes == [f'if [ "$CI_PIPELINE_SOURCE" != "merge_request_event" ]; then python3 {JOB_SCRIPT} push; fi']
    assert job["script"][-1] == pushes[0], "the push comes after the repro"
    assert branch_rule["interruptible"] is False, "a newer pipeline must not cancel a push"


@pytest.mark.parametrize("source", ["push", "merge_request_event"])
def test_gitlab_push_line_runs_dvc_push_only_outside_merge_requests(source: str, tmp_path: Path) -> None:
    """The push variant's script, stubbed, as a pipeline of each source runs it (in the job's virtualenv)."""
    job = yaml.safe_load(rendered("gitlab", "push"))["reproduce"]
    stub_dir, log = stubs(tmp_path)
    env = {"PATH": f"{stub_dir}{os.pathsep}{os.environ['PATH']}", "CI_PIPELINE_SOURCE": source}
    push_line = next(line for line in job["script"] if f"{JOB_SCRIPT} push" in line)
    script = f'python3 -m venv .venv\nexport PATH="$PWD/.venv/bin:$PATH"\n{push_line}'
    subprocess.run(["sh", "-c", script], cwd=tmp_path, env=env, check=True, timeout=30)
    assert (log / "dvc.log").exists() == (source == "push")


def test_two_stacks_on_one_branch_call_each_its_own_job_script() -> None:
    """Two stacks on one repository and branch, each with its own ciFile: each CI file calls a job
    script of its own stack's settings, or the second `pulumi up` overwrites the first's (bucket,
    secret name, report marker) and the first `pulumi destroy` deletes the script both need."""
    a = make_settings("github", ci_file=".github/workflows/mlops-a.yaml", report=True)
    b = make_settings(
        "github",
        stack="team-b",
        ci_file=".github/workflows/mlops-b.yaml",
        bucket_name="acme-ml-test-team-b-dvc",
        secret_name="TEAM_B_KEY",
        report=True,
    )
    for settings in (a, b):
        called = set(re.findall(r"python3 (\.mlops-ci/\S+) ", render_ci_file(settings)))
        fetched = re.findall(r"/contents/(\S+)\?ref=", render_ci_file(settings))
        assert called == set(fetched) == {job_script_path(settings.stack)}
        assert f'JOB_SCRIPT = "{job_script_path(settings.stack)}"' in render_job_script(settings)
    assert job_script_path(a.stack) != job_script_path(b.stack)
