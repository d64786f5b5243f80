"""The job script the stack commits beside the CI file (`.mlops-ci/job.py`): rendered from
mlops_ci/ci/templates/job.py, each of its steps run as the CI file runs it (`python3
.mlops-ci/job.py <step>`), with the stand-in DVC of tests/stand_ins and, for Google's token
endpoint and the platforms' comment APIs, the stand-ins of localcloud/kit."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.kit.review_apis import Comment, ReviewApi
from localcloud.kit.servers import TokenEndpoint
from localcloud.kit.stack import service_account_key
from localcloud.kit.variants import VARIANTS
from mlops_ci import __version__
from mlops_ci.ci.files import TEMPLATES, job_script_path, render_job_script
from mlops_ci.settings.rules import REPORT_TOKEN_VARIABLE
from tests.e2e.test_credential_check import external_account, federation_propagating  # noqa: F401  # pyright: ignore[reportUnusedImport] - the fixture, by name
from tests.helpers import make_settings, write_job_script

STAND_INS = Path(__file__).parent / "stand_ins"
URL = "gs://acme-ml-test-team-a-dvc/dvcstore"
EMAIL = "dvc-ci-team-a@acme-ml-test.iam.gserviceaccount.com"
DATA_STATUS = ["data_status", "--granular", "--not-in-remote", "--remote-refresh"]
REPRO = ["repro", "--pull", "--allow-missing"]


def run_step(
    project: Path, step: str, env: dict[str, str] | None = None, **settings: Any
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """`python3 .mlops-ci/job.py <step>` in `project` as the CI file runs it, the job script rendered
    for `settings` and the stand-in DVC importable; its result (stderr merged into stdout, as a CI log
    shows it) and the DVC calls it made."""
    script = write_job_script(project, make_settings(settings.pop("platform", "github"), **settings))
    calls = project.parent / f"{project.name}-dvc-calls.jsonl"
    calls.unlink(missing_ok=True)
    base = {"PATH": os.environ["PATH"], "PYTHONPATH": str(STAND_INS), "DVC_CALLS": str(calls), "HOME": str(project.parent)}
    result = subprocess.run(
        [sys.executable, str(script.relative_to(project)), step],
        cwd=project,
        env=base | (env or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    return result, [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A clone of a DVC project: its .dvc folder, no .dvc/config.local."""
    (tmp_path / "project" / ".dvc").mkdir(parents=True)
    return tmp_path / "project"


# --- Rendering ---------------------------------------------------------------------------------


def test_the_template_is_the_script_of_the_default_stack_so_lint_and_pyright_check_what_teams_get() -> None:
    rendered = render_job_script(make_settings("github"))
    template = (TEMPLATES / "job.py").read_text()
    assert rendered.splitlines()[1:] == template.splitlines()[1:]
    assert rendered.endswith("\n")


@pytest.mark.parametrize("platform", ["github", "gitlab"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_rendering_is_deterministic_and_the_first_line_names_the_version_and_pulumi_up(platform: str, variant: str) -> None:
    settings = make_settings(platform, **VARIANTS[variant])
    script = render_job_script(settings)
    assert script == render_job_script(settings)
    first = script.splitlines()[0]
    assert first.startswith(f"# Written by mlops-ci {__version__} for the stack {settings.stack}: ")
    assert first.endswith(": `pulumi up` overwrites it, so change the stack instead.")
    compile(script, job_script_path(settings.stack), "exec")


def test_settings_are_python_literals_whatever_they_hold() -> None:
    odd = 'ci/"quoted"\\req\u2028.txt'
    script = render_job_script(make_settings("gitlab", requirements_file=odd, auth="workload-identity", protected_variable=True))
    namespace: dict[str, Any] = {}
    settings_block = script.split("# The stack's settings: `pulumi up` writes them here.\n")[1].split("# End of")[0]
    exec(settings_block, namespace)
    assert (namespace["REQUIREMENTS_FILE"], namespace["PLATFORM"]) == (odd, "gitlab")
    assert (namespace["KEYLESS"], namespace["PROTECTED_VARIABLE"]) == (True, True)


def test_an_unknown_step_prints_the_steps(project: Path) -> None:
    result, calls = run_step(project, "deploy")
    assert result.returncode == 2
    assert result.stdout == "usage: python3 .mlops-ci/team-a.py {login,check-login,repro,push,report,comment}\n"
    assert calls == []


# --- repro and push ----------------------------------------------------------------------------


def local_dvc_config(project: Path) -> dict[str, dict[str, str]]:
    """The sections of .dvc/config.local, read as DVC's INI format: `[section]`, `key = value`."""
    sections: dict[str, dict[str, str]] = {}
    section: dict[str, str] = {}
    for line in (project / ".dvc/config.local").read_text().splitlines():
        if header := re.fullmatch(r"\[(?P<name>.+)\]", line):
            section = sections.setdefault(header["name"].strip("'"), {})
        elif line.strip():
            key, value = (part.strip() for part in line.split("=", 1))
            section[key] = value
    return sections


# What `dvc remote add --local --force --default mlops-ci gs://acme-ml-test-team-a-dvc/dvcstore`
# writes in a fresh clone (DVC 3.67.1, read with or without the quotes around the section name).
STACK_REMOTE_CONFIG = {"core": {"remote": "mlops-ci"}, 'remote "mlops-ci"': {"url": URL}}


@pytest.mark.parametrize("platform", ["github", "gitlab"])
def test_data_in_the_bucket_runs_the_repro_in_the_same_process_with_its_exit_code(platform: str, project: Path) -> None:
    result, calls = run_step(project, "repro", {"DVC_EXIT": "3"}, platform=platform)
    assert calls == [DATA_STATUS, REPRO]
    assert result.returncode == 3, "the job fails when the repro does"
    assert result.stdout == ""
    assert local_dvc_config(project) == STACK_REMOTE_CONFIG


def test_data_missing_from_the_bucket_fails_naming_it_and_the_push_without_a_repro(project: Path) -> None:
    result, calls = run_step(project, "repro", {"DVC_NOT_IN_REMOTE": json.dumps(["data/raw.csv", "models/model.json"])})
    assert calls == [DATA_STATUS]
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"ERROR: {URL} lacks data this commit names (in its .dvc files and dvc.lock):",
        "data/raw.csv",
        "models/model.json",
        "A first run? Push it once from a clone that has it:",
        f"  dvc remote add --local --force mlops-ci {URL} && dvc push --remote mlops-ci",
    ]


def test_a_failed_data_check_is_one_message_without_a_repro(project: Path) -> None:
    result, calls = run_step(project, "repro", {"DVC_NOT_IN_REMOTE": "error:failed to connect to gs"})
    assert calls == [DATA_STATUS]
    assert result.returncode == 1
    assert result.stdout == f"ERROR: DVC could not compare this commit's data with {URL}: failed to connect to gs\n"


def test_requirements_without_dvc_are_named(project: Path) -> None:
    result, _ = run_step(project, "repro", {"PYTHONPATH": ""}, requirements_file="ci/req.txt")
    assert result.returncode == 1
    assert result.stdout == "ERROR: No module named 'dvc': ci/req.txt must bring dvc[gs]\n"


@pytest.mark.parametrize("code", [0, 1])
def test_push_pushes_the_outputs_and_their_run_cache(code: int, project: Path) -> None:
    result, calls = run_step(project, "push", {"DVC_EXIT": str(code)}, access="push")
    assert calls == [["push", "--run-cache"]]
    assert result.returncode == code
    assert ("the stack team-a grants pushes with access push or admin" in result.stdout) == bool(code)


# --- login (GitLab) ----------------------------------------------------------------------------


def credential_env(project: Path, **variables: str) -> dict[str, str]:
    return {"GOOGLE_APPLICATION_CREDENTIALS": f"{project}.tmp/mlops-ci/credential.json", **variables}


def test_login_writes_the_key_where_only_the_job_can_read_it(project: Path) -> None:
    key_file = json.dumps(service_account_key(EMAIL, "acme-ml-test", "http://127.0.0.1/token")[0])
    env = credential_env(project, GOOGLE_SERVICE_ACCOUNT_KEY=base64.b64encode(key_file.encode()).decode())
    result, _ = run_step(project, "login", env, platform="gitlab")
    assert (result.returncode, result.stdout) == (0, "")
    written = Path(env["GOOGLE_APPLICATION_CREDENTIALS"])
    assert written.read_text() == key_file
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", ["direct", "impersonation"])
def test_login_writes_the_federation_configuration_and_the_id_token(project: Path, mode: str) -> None:
    variables = {"GCP_ID_TOKEN": "header.payload.signature", "GCP_WORKLOAD_IDENTITY_PROVIDER": "projects/1/p"}
    if mode == "impersonation":
        variables["GCP_SERVICE_ACCOUNT"] = EMAIL
    env = credential_env(project, **variables)
    result, _ = run_step(project, "login", env, platform="gitlab", auth="workload-identity", keyless_mode=mode)
    assert (result.returncode, result.stdout) == (0, "")
    configuration = json.loads(Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).read_text())
    assert configuration["audience"] == "//iam.googleapis.com/projects/1/p"
    if mode == "impersonation":
        assert configuration["service_account_impersonation_url"].endswith(f"/serviceAccounts/{EMAIL}:generateAccessToken")
    else:  # the bucket trusts the project's own identity: no service account to act as
        assert "service_account_impersonation_url" not in configuration
    token = Path(configuration["credential_source"]["file"])
    assert (token.read_text(), stat.S_IMODE(token.stat().st_mode)) == ("header.payload.signature", 0o600)


@pytest.mark.parametrize("protected", [False, True])
def test_after_destroy_the_missing_variable_is_named_with_its_cause(protected: bool, project: Path) -> None:
    result, _ = run_step(project, "login", credential_env(project), platform="gitlab", protected_variable=protected)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "ERROR: this pipeline has no CI/CD variable GOOGLE_SERVICE_ACCOUNT_KEY. The stack team-a creates it on `pulumi up`"
        " and deletes it on `pulumi destroy`, with .gitlab-ci.yml on main: the stack was destroyed (this pipeline runs an"
        " older commit) or the variable was deleted by hand. `pulumi up` for the stack team-a creates it again."
    )
    # Protection is a cause only where the stack protects the variable.
    assert lines[1:] == (
        ["It is protected (mlops-ci:protectedVariable): GitLab gives it to protected branches and tags only."]
        if protected
        else []
    )
    assert not Path(credential_env(project)["GOOGLE_APPLICATION_CREDENTIALS"]).exists()


def test_a_fork_merge_request_is_told_it_runs_in_the_fork_not_that_the_stack_was_destroyed(project: Path) -> None:
    """A merge request from a fork runs its pipeline in the fork's project (GitLab's default), which has
    none of the stack's CI/CD variables: the cause is the fork, not a destroyed stack or a deleted variable."""
    fork = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_PROJECT_ID": "9999", "CI_MERGE_REQUEST_PROJECT_ID": "4242"}
    result, _ = run_step(project, "login", credential_env(project) | fork, platform="gitlab")
    assert result.returncode == 1
    assert result.stdout == (
        "ERROR: this merge request's pipeline runs in the fork it comes from, which has none of the stack team-a's"
        " CI/CD variables (GOOGLE_SERVICE_ACCOUNT_KEY): a maintainer of the target project can run it there (the"
        " merge request's Pipelines tab, Run pipeline).\n"
    )
    # A merge request inside the project is not a fork's: the destroyed stack stays a cause.
    same = fork | {"CI_PROJECT_ID": "4242"}
    assert "the stack was destroyed" in run_step(project, "login", credential_env(project) | same, platform="gitlab")[0].stdout


# --- check-login -------------------------------------------------------------------------------


@pytest.mark.parametrize(("platform", "holder"), [("github", "the secret"), ("gitlab", "the CI/CD variable")])
@pytest.mark.parametrize("trusted", [True, False])
def test_check_login_asks_once_and_names_a_refused_key(
    platform: str, holder: str, trusted: bool, project: Path, token_endpoint: TokenEndpoint
) -> None:
    key_file, public_key = service_account_key(EMAIL, "acme-ml-test", token_endpoint.url)
    if trusted:
        token_endpoint.trust(EMAIL, public_key)
    (project.parent / "key.json").write_text(json.dumps(key_file))
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(project.parent / "key.json")}
    result, _ = run_step(project, "check-login", env, platform=platform)
    assert [(e.issuer, e.scope) for e in token_endpoint.exchanges] == [
        (EMAIL, "https://www.googleapis.com/auth/devstorage.read_only")
    ]
    if trusted:
        assert (result.returncode, result.stdout) == (0, "")
        return
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"ERROR: no Google Cloud token for the key in {holder} GOOGLE_SERVICE_ACCOUNT_KEY: invalid_grant: Invalid JWT Signature.",
        "Google refuses a key deleted, rotated away or of another stack:"
        " pulumi up for the stack team-a puts the current key there.",
    ]


@pytest.fixture
def propagating(request: pytest.FixtureRequest) -> tuple[str, str, list[int]]:
    """Google's STS granting, IAM Credentials refusing the impersonation once (tests/e2e's stand-in)."""
    return request.getfixturevalue("federation_propagating")


def test_keyless_check_login_asks_again_while_google_refuses_the_new_federation(
    propagating: tuple[str, str, list[int]],
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mlops_ci.ci.templates import job

    sts, impersonation, answered = propagating
    configuration = project.parent / "credential.json"
    configuration.write_text(json.dumps(external_account(project.parent, sts, impersonation)))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(configuration))
    monkeypatch.setattr(job, "KEYLESS", True)
    monkeypatch.setattr(job, "IMPERSONATION", True)
    pauses: list[float] = []
    monkeypatch.setattr(job.time, "sleep", pauses.append)
    job.check_login()
    assert answered == [403, 200]
    assert pauses == [10]
    assert capsys.readouterr().out == "Google does not let this job act as the service account yet: again in 10 s\n"


def test_keyless_check_login_waits_seven_minutes_at_most() -> None:
    from mlops_ci.ci.templates import job

    assert sum(job.FEDERATION_PAUSES) == 7 * 60
    assert job.FEDERATION_PAUSES[-1] == 0, "the last refusal is the answer"


def test_requirements_without_google_auth_are_named(project: Path) -> None:
    # The test's interpreter has google-auth: a module of that name that fails to import stands in for its absence.
    shadow = project.parent / "no-google" / "google"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'google'\")\n")
    result, _ = run_step(project, "check-login", {"PYTHONPATH": str(shadow.parent)}, requirements_file="req.txt")
    assert result.returncode == 1
    assert result.stdout == "ERROR: No module named 'google': req.txt must bring dvc[gs] (and with it google-auth)\n"


# --- report and comment ------------------------------------------------------------------------


def git(project: Path, *args: str) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": str(project.parent), "GIT_CONFIG_NOSYSTEM": "1"}
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    return subprocess.run(
        ["git", *identity, *args], cwd=project, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


PARAMS = "| Path | Param | HEAD | workspace |\n|--|--|--|--|\n| params.yaml | train.epochs | 400 | 20 |"


@pytest.mark.parametrize("plots", [True, False])
def test_report_compares_with_the_branch_and_says_where_the_plots_are(plots: bool, project: Path) -> None:
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "commit", "--quiet", "--allow-empty", "-m", "base")
    git(project, "update-ref", "refs/remotes/origin/main", "HEAD")
    git(project, "commit", "--quiet", "--allow-empty", "-m", "change")
    env = {
        "DVC_PARAMS": PARAMS,
        "DVC_PLOTS": "1" if plots else "",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme-ml/churn-model",
        "GITHUB_RUN_ID": "42",
    }
    result, calls = run_step(project, "report", env, report=True)
    assert (result.returncode, result.stdout) == (0, "")
    assert calls == [
        ["params", "diff", "origin/main", "--md"],
        ["metrics", "diff", "origin/main", "--md"],
        ["plots", "diff", "origin/main", "--out", "mlops-ci-report/plots"],
    ]
    head, base = git(project, "rev-parse", "--short", "HEAD"), git(project, "rev-parse", "--short", "origin/main")
    where = "`plots/index.html` in the artifact of [the job](https://github.com/acme-ml/churn-model/actions/runs/42)."
    assert (project / "mlops-ci-report/report.md").read_text() == (
        "<!-- mlops-ci report: stack team-a -->\n\n### Experiment results\n\n"
        f"Commit `{head}` reproduced by mlops-ci (stack team-a), against `main` at `{base}`.\n\n"
        f"#### Parameters\n\n{PARAMS}\n\n#### Metrics\n\nNo metric changed.\n\n"
        f"#### Plots\n\n{'The plots of both commits: ' + where if plots else 'The pipeline declares no plots.'}\n"
    )


@pytest.fixture(params=["github", "gitlab"])
def review_api(request: pytest.FixtureRequest) -> Iterator[ReviewApi]:
    api = ReviewApi(request.param, "acme-ml/churn-model" if request.param == "github" else "4242", 7, others=120)
    api.start()
    try:
        yield api
    finally:
        api.stop()


def comment_env(api: ReviewApi) -> dict[str, str]:
    """What the report job has: the API, the request, and the token that may comment."""
    if api.platform == "github":
        # The stand-in grants the caller's GITHUB_JOB what the job's permissions allow; the test runs in no job.
        token = api.issue_github_token({"": True})
        return {
            "GITHUB_API_URL": api.api_url,
            "GITHUB_REPOSITORY": "acme-ml/churn-model",
            "PULL_REQUEST": "7",
            "GITHUB_TOKEN": token,
        }
    api.accept_gitlab_token("glpat-report-token", "reporter", ("api",))
    return {
        "CI_API_V4_URL": api.api_url,
        "CI_PROJECT_ID": "4242",
        "CI_MERGE_REQUEST_IID": "7",
        REPORT_TOKEN_VARIABLE: "glpat-report-token",
    }


def test_comment_posts_the_report_once_then_updates_it_past_the_first_page(review_api: ReviewApi, project: Path) -> None:
    (project / "mlops-ci-report").mkdir()
    people = {c.id: c.body for c in review_api.comments.values()}
    env = comment_env(review_api)
    for run in (1, 2):
        (project / "mlops-ci-report/report.md").write_text(f"<!-- mlops-ci report: stack team-a -->\n\nrun {run}\n")
        result, _ = run_step(project, "comment", env, platform=review_api.platform, report=True)
        assert result.returncode == 0, result.stdout
        assert result.stdout.startswith("Report posted: " if run == 1 else "Report updated: ")
    (report,) = review_api.reports("<!-- mlops-ci report: stack team-a -->")
    assert (report.body.splitlines()[-1], report.updated) == ("run 2", 1)
    assert {c.id: c.body for c in review_api.comments.values() if c.id != report.id} == people
    writes = [(r.method, r.status) for r in review_api.requests if r.method != "GET"]
    assert writes == [("POST", 201), ("PATCH" if review_api.platform == "github" else "PUT", 200)]
    assert any("page=2" in r.path for r in review_api.requests if r.method == "GET")


MARKER = "<!-- mlops-ci report: stack team-a -->"


def test_a_marker_comment_by_someone_else_does_not_stop_or_take_the_report(review_api: ReviewApi, project: Path) -> None:
    """Anyone who may comment on the request posts a comment starting with the public marker before
    the first report: the job posts its own report, and updates only its own afterwards."""
    outsider = review_api.comments[1] = Comment(1, f"{MARKER}\nnot the report", "outsider")
    (project / "mlops-ci-report").mkdir()
    env = comment_env(review_api)
    for run in (1, 2):
        (project / "mlops-ci-report/report.md").write_text(f"{MARKER}\n\nrun {run}\n")
        result, _ = run_step(project, "comment", env, platform=review_api.platform, report=True)
        assert result.returncode == 0, result.stdout
    assert (outsider.body, outsider.updated) == (f"{MARKER}\nnot the report", 0)
    (report,) = [c for c in review_api.reports(MARKER) if c is not outsider]
    assert (report.body, report.updated) == (f"{MARKER}\n\nrun 2\n", 1)


def test_a_refused_comment_names_the_request_and_the_answer(project: Path) -> None:
    api = ReviewApi("gitlab", "4242", 7)
    api.start()
    try:
        (project / "mlops-ci-report").mkdir()
        (project / "mlops-ci-report/report.md").write_text("<!-- mlops-ci report: stack team-a -->\n")
        env = comment_env(api) | {REPORT_TOKEN_VARIABLE: "glpat-revoked"}
        result, _ = run_step(project, "comment", env, platform="gitlab", report=True)
    finally:
        api.stop()
    assert result.returncode == 1
    assert result.stdout == f"ERROR: GET {api.api_url}/user: 401 " + '{"message": "401 Unauthorized"}\n'
