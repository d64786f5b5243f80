"""`mlops-ci:report`: the results on the pull or merge request. GitHub: a `pull_request` trigger and
a separate job with `pull-requests: write` that posts with GitHub's own token. GitLab: a project
access token the stack creates (least role and scope, rotated, hidden variable), read only by a
separate job; the CI file is committed after its variable."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.runtime import rpc

from localcloud.kit.review_apis import ReviewApi
from mlops_ci.ci.files import REPORT_DIRECTORY, render_ci_file, render_job_script
from mlops_ci.offline.project_config import ProjectConfigError
from mlops_ci.offline.runtime import evaluate
from mlops_ci.settings.loader import ConfigError
from mlops_ci.settings.rules import REPORT_TOKEN_VARIABLE
from tests.helpers import (
    GITHUB_FILE,
    GITLAB_FILE,
    GITLAB_TOKEN,
    GITLAB_VARIABLE,
    CountingMocks,
    committed_file,
    config_for,
    make_settings,
    run,
)


def github_workflow(**fields: Any) -> dict[Any, Any]:
    return yaml.safe_load(render_ci_file(make_settings("github", **fields)))


def gitlab_pipeline(**fields: Any) -> dict[str, Any]:
    return yaml.safe_load(render_ci_file(make_settings("gitlab", **fields)))


def report_variable(evaluation: Any) -> Any:
    (variable,) = [v for v in evaluation.find(GITLAB_VARIABLE) if v.plain("key") == REPORT_TOKEN_VARIABLE]
    return variable


# --- GitHub ------------------------------------------------------------------------------------


def test_github_report_runs_on_pull_requests_to_the_branch_never_pull_request_target() -> None:
    triggers = github_workflow(report=True, branch="develop")[True]  # YAML 1.1 reads `on` as true
    assert triggers == {
        "push": {"branches": ["develop"]},
        "pull_request": {"branches": ["develop"]},
        "workflow_dispatch": None,
    }
    assert "pull_request" not in github_workflow()[True]


def test_github_report_posts_from_its_own_job_with_pull_requests_write_only() -> None:
    workflow = github_workflow(report=True)
    assert workflow["permissions"] == {}
    reproduce, report = workflow["jobs"]["reproduce"], workflow["jobs"]["report"]
    # The job that runs the team's code with the Google credential cannot write to the pull request.
    assert reproduce["permissions"] == {"contents": "read"}
    assert report["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert report["needs"] == "reproduce"
    assert report["if"] == "github.event_name == 'pull_request'"
    # GitHub's own token, no checkout, no secret: the job script as the branch has it, never the pull request's.
    post = report["steps"][-1]
    assert post["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
    assert "secrets." not in yaml.safe_dump(report)
    assert [step.get("uses", "").split("@")[0] for step in report["steps"]] == ["actions/download-artifact", ""]
    fetch, comment = post["run"].splitlines()
    assert '"$GITHUB_API_URL/repos/$GITHUB_REPOSITORY/contents/.mlops-ci/team-a.py?ref=main" || ' in fetch
    assert comment == 'python3 "$RUNNER_TEMP/job.py" comment'
    # The report only on pull requests, kept as an artifact of the run.
    written, kept = reproduce["steps"][-2:]
    assert written["if"] == kept["if"] == "github.event_name == 'pull_request'"
    assert kept["uses"].startswith("actions/upload-artifact@")
    assert kept["with"] == {"name": REPORT_DIRECTORY, "path": f"{REPORT_DIRECTORY}/", "if-no-files-found": "error"}


def test_github_runs_from_forks_run_nothing() -> None:
    reproduce = github_workflow(report=True)["jobs"]["reproduce"]
    assert reproduce["if"] == (
        "github.event_name != 'pull_request' || github.event.pull_request.head.repo.full_name == github.repository"
    )
    # The report job needs it: skipped with it.
    assert "if" not in github_workflow()["jobs"]["reproduce"]


def test_github_report_compares_with_the_branch_fetched_at_checkout() -> None:
    reproduce = github_workflow(report=True, branch="release/2026.11")["jobs"]["reproduce"]
    checkout = reproduce["steps"][0]
    assert checkout["with"] == {"persist-credentials": False, "fetch-depth": 0}
    assert reproduce["steps"][-2]["run"] == "python3 .mlops-ci/team-a.py report"
    assert 'BRANCH = "release/2026.11"\n' in render_job_script(make_settings("github", report=True, branch="release/2026.11"))
    assert "fetch-depth" not in github_workflow()["jobs"]["reproduce"]["steps"][0]["with"]


def test_github_report_creates_no_token_and_no_new_resource() -> None:
    plain, reporting = run("github"), run("github", report="true")
    assert sorted(r.urn for r in plain.registrations) == sorted(r.urn for r in reporting.registrations)
    assert "report:" in committed_file(reporting, GITHUB_FILE).plain("content")


@pytest.mark.parametrize("auth", ["key", "workload-identity"])
def test_report_is_the_same_in_both_auth_modes(auth: str) -> None:
    workflow = github_workflow(report=True, auth=auth)
    assert workflow["jobs"]["report"] == github_workflow(report=True)["jobs"]["report"]
    pipeline = gitlab_pipeline(report=True, auth=auth)
    assert pipeline["report"] == gitlab_pipeline(report=True)["report"]


# --- GitLab ------------------------------------------------------------------------------------


def test_gitlab_report_job_runs_on_merge_requests_only_with_the_token() -> None:
    pipeline = gitlab_pipeline(report=True)
    report = pipeline["report"]
    assert report["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"', "interruptible": True}]
    assert report["needs"] == [{"job": "reproduce", "artifacts": True}]
    # Nothing of the repository runs there: no clone.
    assert report["variables"] == {"GIT_STRATEGY": "none"}
    # The job script as the branch has it, never the merge request's.
    fetch, comment = report["script"]
    assert f'-H "PRIVATE-TOKEN: ${{{REPORT_TOKEN_VARIABLE}:?' in fetch
    assert '/repository/files/.mlops-ci%2Fteam-a.py/raw?ref=main" || ' in fetch
    assert comment == 'python3 "$CI_PROJECT_DIR.tmp/mlops-ci/job.py" comment'
    # The reproduce job drops the token before anything runs, and keeps the report as its artifact.
    reproduce = pipeline["reproduce"]
    assert reproduce["before_script"][0] == f"unset {REPORT_TOKEN_VARIABLE}"
    assert reproduce["artifacts"]["paths"] == [f"{REPORT_DIRECTORY}/"]
    assert reproduce["script"][-1] == (
        'if [ "$CI_PIPELINE_SOURCE" = "merge_request_event" ]; then python3 .mlops-ci/team-a.py report; fi'
    )
    plain = gitlab_pipeline()
    assert "report" not in plain
    assert "artifacts" not in plain["reproduce"]
    assert REPORT_TOKEN_VARIABLE not in render_ci_file(make_settings("gitlab"))


def test_gitlab_report_token_has_the_least_role_and_scope_and_expires() -> None:
    token = run("gitlab", report="true").one(GITLAB_TOKEN)
    assert token.plain("project") == "acme-ml/research/churn-model"
    assert token.plain("accessLevel") == "reporter"
    assert token.plain("scopes") == ["api"]
    assert token.plain("rotationConfiguration") == {"expirationDays": 365, "rotateBeforeDays": 30}
    assert token.plain("name") == "mlops-ci report (team-a)"


def test_gitlab_report_token_is_replaced_when_key_rotation_changes() -> None:
    before = run("gitlab", report="true").one(GITLAB_TOKEN)
    after = run("gitlab", report="true", keyRotation="2026-12").one(GITLAB_TOKEN)
    assert before.replace_on_changes == after.replace_on_changes == ("description",)
    assert before.plain("description") != after.plain("description")
    assert "2026-12" in after.plain("description")


def test_gitlab_report_token_reaches_a_masked_hidden_unprotected_secret_variable() -> None:
    evaluation = run("gitlab", report="true", protectedVariable="true")
    variable = report_variable(evaluation)
    assert rpc.is_rpc_secret(variable.inputs["value"])
    assert variable.plain("value") == evaluation.one(GITLAB_TOKEN).outputs["token"]
    assert variable.plain("masked") is True
    assert variable.plain("hidden") is True
    assert variable.plain("raw") is True
    # Merge-request pipelines run on unprotected branches: protectedVariable is the key's only.
    assert variable.plain("protected") is False
    assert evaluation.one(GITLAB_TOKEN).urn in {r.urn for r in evaluation.waits_for(variable)}
    assert report_variable(run("gitlab", report="true", hiddenVariable="false")).plain("hidden") is False


def test_gitlab_ci_file_is_committed_after_the_report_token_variable() -> None:
    evaluation = run("gitlab", report="true")
    waits = {r.urn for r in evaluation.waits_for(committed_file(evaluation, GITLAB_FILE))}
    assert report_variable(evaluation).urn in waits


def test_gitlab_without_report_creates_no_token() -> None:
    evaluation = run("gitlab")
    assert evaluation.find(GITLAB_TOKEN) == []
    assert [v for v in evaluation.find(GITLAB_VARIABLE) if v.plain("key") == REPORT_TOKEN_VARIABLE] == []


def test_gitlab_report_works_keyless_where_key_rotation_and_hidden_variable_shape_the_token() -> None:
    evaluation = run("gitlab", report="true", auth="workload-identity", keyRotation="2027-01", hiddenVariable="false")
    assert "2027-01" in evaluation.one(GITLAB_TOKEN).plain("description")
    assert report_variable(evaluation).plain("hidden") is False


def test_keyless_without_report_still_refuses_key_rotation_naming_the_report() -> None:
    with pytest.raises(ConfigError) as error:
        evaluate("team-a", config_for("gitlab", auth="workload-identity", keyRotation="2027-01"))
    assert error.value.problems == [
        "mlops-ci:keyRotation: applies to auth key only; workload-identity creates no key"
        " (and to the report token, with mlops-ci:report true)"
    ]
    # GitHub's report has no token of the stack's: the key-only rule stands, without the hint.
    with pytest.raises(ConfigError) as error:
        evaluate("team-a", config_for("github", auth="workload-identity", keyRotation="2027-01", report="true"))
    assert error.value.problems == ["mlops-ci:keyRotation: applies to auth key only; workload-identity creates no key"]


def test_the_report_token_variable_name_is_reserved() -> None:
    with pytest.raises(ConfigError) as error:
        evaluate("team-a", config_for("gitlab", secretName=REPORT_TOKEN_VARIABLE))
    assert len(error.value.problems) == 1
    assert error.value.problems[0].startswith(f"mlops-ci:secretName = {REPORT_TOKEN_VARIABLE!r}: must not")


def test_report_must_be_a_boolean_as_the_cli_says() -> None:
    with pytest.raises(ProjectConfigError, match="configuration key 'report' must be of type 'boolean'"):
        evaluate("team-a", config_for("gitlab", report="yes"))


# --- The report job's fetch of the job script ----------------------------------------------------

FETCH_FAILED = (
    "ERROR: .mlops-ci/team-a.py could not be fetched from the target branch (above): pulumi destroy deleted it,"
    " or the first pulumi up of the stack team-a has not committed it yet\n"
)


def run_fetch(platform: str, api: ReviewApi, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The report job's first line (the fetch of the branch's job script), as its runner's shell runs it."""
    if platform == "github":
        fetch = github_workflow(report=True)["jobs"]["report"]["steps"][-1]["run"].splitlines()[0]
        env = {"GITHUB_API_URL": api.api_url, "GITHUB_REPOSITORY": api.project, "RUNNER_TEMP": str(tmp_path)} | env
    else:
        fetch = gitlab_pipeline(report=True)["report"]["script"][0]
        env = {"CI_API_V4_URL": api.api_url, "CI_PROJECT_ID": api.project, "CI_PROJECT_DIR": str(tmp_path / "p")} | env
    shell = {"PATH": "/usr/bin:/bin"} | env
    return subprocess.run(["sh", "-c", fetch], env=shell, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("platform", ["github", "gitlab"])
def test_a_job_script_missing_from_the_branch_is_one_line_with_its_causes(platform: str, tmp_path: Path) -> None:
    """After `pulumi destroy`, or before the stack's first commit, the branch has no job script: the
    fetch fails with the platform's 404 and one line saying why."""
    api = ReviewApi(platform, "acme-ml/churn-model" if platform == "github" else "4242", 7)
    if platform == "github":
        token = {"GITHUB_TOKEN": api.issue_github_token({"": True})}
    else:
        api.accept_gitlab_token("glpat-report-token", "reporter", ("api",))
        token = {REPORT_TOKEN_VARIABLE: "glpat-report-token"}
    api.start()
    try:
        missing = run_fetch(platform, api, token, tmp_path)
        api.files[".mlops-ci/team-a.py", "main"] = "print('the job script')\n"
        found = run_fetch(platform, api, token, tmp_path)
    finally:
        api.stop()
    assert missing.returncode == 1
    assert "404" in missing.stderr.splitlines()[0]
    assert missing.stderr.splitlines()[1:] == [FETCH_FAILED.rstrip("\n")]
    assert (found.returncode, found.stderr) == (0, "")


def test_a_gitlab_report_job_without_its_token_says_the_stack_creates_and_destroy_deletes_it(tmp_path: Path) -> None:
    api = ReviewApi("gitlab", "4242", 7)
    result = run_fetch("gitlab", api, {}, tmp_path)
    assert result.returncode != 0
    assert result.stderr.rstrip("\n").endswith(
        f"{REPORT_TOKEN_VARIABLE}: is not set: the stack team-a creates it with mlops-ci:report and deletes it on pulumi destroy"
    )


class UnmaskableReportTokenMocks(CountingMocks):
    """GitLab answering a project access token its own masking would refuse (a space in it)."""

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        if args.typ == GITLAB_TOKEN:
            outputs["token"] = "glpat report token"
        return resource_id, outputs


def test_an_unmaskable_report_token_is_refused_naming_the_report_and_its_variable_is_not_created() -> None:
    mocks = UnmaskableReportTokenMocks()
    refusal = f"mlops-ci:report ({REPORT_TOKEN_VARIABLE}): the value cannot be masked by GitLab"
    with pytest.raises(Exception, match=re.escape(refusal)):
        run("gitlab", mocks=mocks, report="true")
    assert [c for c in mocks.created if c.startswith(GITLAB_TOKEN)]
    assert not [c for c in mocks.created if c.startswith(f"{GITLAB_VARIABLE}::gitlab-report-token-variable")]
    assert not [c for c in mocks.created if c.startswith(GITLAB_FILE)]
