"""Red-team findings on issue 19 (branch rt19): each test fails on `readable` for the reason it names."""

from __future__ import annotations

import re
from pathlib import Path

from mlops_ci.ci.files import render_ci_file, render_job_script
from tests.e2e.review_apis import Comment, ReviewApi
from tests.helpers import make_settings
from tests.test_job_script import comment_env, project, run_step  # noqa: F401  # pyright: ignore[reportUnusedImport] - the fixture, by name

MARKER = "<!-- mlops-ci report: stack team-a -->"


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
