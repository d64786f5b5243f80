"""Red-team findings on issue 19 (branch rt19): each test fails on `readable` for the reason it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlops_ci.ci.files import render_ci_file, render_job_script
from tests.e2e.review_apis import Comment, ReviewApi
from tests.helpers import make_settings
from tests.test_job_script import comment_env, run_step

MARKER = "<!-- mlops-ci report: stack team-a -->"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A clone of a DVC project, as tests/test_job_script.py's fixture."""
    (tmp_path / "project" / ".dvc").mkdir(parents=True)
    return tmp_path / "project"


def called_script(ci_file: str) -> str:
    """The job script the CI file runs for its repro step."""
    match = re.search(r"python3 (\S+) repro", ci_file)
    assert match, ci_file
    return match.group(1)


def test_two_stacks_on_one_branch_call_each_its_own_job_script() -> None:
    """Two stacks on one repository and branch, each with its own ciFile (allowed before issue 19):
    each CI file must call a job script holding its own stack's settings, or the second `pulumi up`
    overwrites the first's (bucket, secret name, CI file) and the first `pulumi destroy` deletes both's."""
    a = make_settings("github", ci_file=".github/workflows/mlops-a.yaml")
    b = make_settings(
        "github",
        stack="team-b",
        ci_file=".github/workflows/mlops-b.yaml",
        bucket_name="acme-ml-test-team-b-dvc",
        secret_name="TEAM_B_KEY",
    )
    assert render_job_script(a) != render_job_script(b)
    assert called_script(render_ci_file(a)) != called_script(render_ci_file(b))


def test_a_marker_comment_by_someone_else_does_not_stop_or_take_the_report(project: Path) -> None:
    """Anyone who may comment on the request posts a comment starting with the public marker before
    the first report: the job must post its own report, not edit (or fail on) that comment."""
    for platform in ("github", "gitlab"):
        api = ReviewApi(platform, "acme-ml/churn-model" if platform == "github" else "4242", 7)
        api.comments[1] = Comment(1, f"{MARKER}\nnot the report", "outsider")
        api.start()
        try:
            (project / "mlops-ci-report").mkdir(exist_ok=True)
            (project / "mlops-ci-report/report.md").write_text(f"{MARKER}\n\nrun 1\n")
            result, _ = run_step(project, "comment", comment_env(api), platform=platform, report=True)
        finally:
            api.stop()
        assert result.returncode == 0, result.stdout
        assert api.comments[1].body == f"{MARKER}\nnot the report"
        assert [c.body for c in api.reports(MARKER) if c.author != "outsider"] == [f"{MARKER}\n\nrun 1\n"]


def test_a_fork_merge_request_is_told_it_runs_in_the_fork_not_that_the_stack_was_destroyed(project: Path) -> None:
    """A merge request from a fork runs its pipeline in the fork's project (GitLab's default), which has
    none of the stack's CI/CD variables: the cause is the fork, not a destroyed stack or a deleted variable."""
    env = {
        "GOOGLE_APPLICATION_CREDENTIALS": f"{project}.tmp/mlops-ci/credential.json",
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_PROJECT_ID": "9999",
        "CI_MERGE_REQUEST_PROJECT_ID": "4242",
        "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "9999",
    }
    result, _ = run_step(project, "login", env, platform="gitlab")
    assert result.returncode == 1
    assert "fork" in result.stdout
    assert "the stack was destroyed" not in result.stdout
