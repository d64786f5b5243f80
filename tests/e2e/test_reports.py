"""The proof of `mlops-ci:report`: a pull request (GitHub, the workflow run by act) or a merge
request (GitLab, gitlab-ci-local running the merge-request pipeline) that changes a parameter
gets one comment holding the parameter and metric changes
against the target branch, posted to a local stand-in of the platform's API that checks the
token; the next push updates that comment instead of adding one. The team's code in the request
never sees the token that may write, and a pull request from a fork runs nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.kit import sample_project as sample
from localcloud.kit.ci_runners import GithubEvent, JobRun, MergeRequest, run_github_workflow, run_gitlab_job
from localcloud.kit.review_apis import ReviewApi
from localcloud.kit.servers import StorageEmulator, TokenEndpoint
from localcloud.kit.stack import STACKS, Deployment, deploy
from mlops_ci.ci.files import REPORT_DIRECTORY, report_marker
from mlops_ci.settings.rules import REPORT_TOKEN_VARIABLE

from .conftest import clone, team_repository

pytestmark = pytest.mark.e2e

FEATURE = "fewer-epochs"
NUMBER = 7
GITLAB_PROJECT_ID = "4242"
# Comments by people before the report: more than one page of the API (100), so that finding the
# report to update takes the pagination.
OTHER_COMMENTS = 120
# Written by the request's `train`: what of the platform's tokens the team's code can read.
SEEN = "seen-by-train.json"
TOKEN_VARIABLES = (REPORT_TOKEN_VARIABLE, "GITHUB_TOKEN", "ACTIONS_RUNTIME_TOKEN")
CURVE = "learning_curve.csv"


def marker(platform: str) -> str:
    return report_marker(STACKS[platform])


def push_to_request(project: Path, env: dict[str, str], epochs: int) -> None:
    """A commit on the request's branch: `train` with `epochs`, a plot the team adds, and a
    `train` that writes down which tokens it can see."""
    params = project / "params.yaml"
    params.write_text(re.sub(r"epochs: \d+", f"epochs: {epochs}", params.read_text()))
    train = project / "src/train.py"
    if SEEN not in train.read_text():
        names = ", ".join(repr(name) for name in TOKEN_VARIABLES)
        spy = f"import json, os; json.dump({{n: os.environ.get(n, '') for n in ({names},)}}, open({SEEN!r}, 'w'))\n"
        train.write_text(spy + train.read_text())
    rows = "".join(f"{epoch},{1 / (epoch + 1):.4f}\n" for epoch in range(0, epochs, 5))
    (project / CURVE).write_text(f"epoch,loss\n{rows}")
    dvc_yaml = project / "dvc.yaml"
    if "plots:" not in dvc_yaml.read_text():
        dvc_yaml.write_text(dvc_yaml.read_text() + f"plots:\n  - {CURVE}:\n      x: epoch\n      y: loss\n")
    sample.commit_all(project, env, f"{epochs} epochs")


def table(markdown: str, heading: str) -> list[list[str]]:
    """The rows of the Markdown table under `#### heading`, cells stripped, header and rule dropped."""
    section = markdown.split(f"#### {heading}\n", 1)[1].split("\n#### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def request_pipeline(
    platform: str, deployment: Deployment, project: Path, env: dict[str, str], api: ReviewApi, tmp_path: Path, run: int
) -> tuple[JobRun, Path]:
    """The CI of the request's head: GitHub checks out the merge of the request into the branch;
    GitLab the request's own head commit."""
    workspace = tmp_path / f"workspace-{run}"
    sample.git(tmp_path, env, "clone", "--quiet", project, workspace)
    if platform == "github":
        sample.git(workspace, env, "checkout", "--quiet", "--detach", f"origin/{deployment.branch}")
        sample.git(workspace, env, "merge", "--quiet", "--no-ff", "--no-edit", f"origin/{FEATURE}")
        event = GithubEvent("pull_request", NUMBER, deployment.repository, api, FEATURE)
        return run_github_workflow(deployment, workspace, env, event), workspace
    sample.git(workspace, env, "checkout", "--quiet", FEATURE)
    merge_request = MergeRequest(NUMBER, FEATURE, deployment.branch, api, GITLAB_PROJECT_ID)
    return run_gitlab_job(deployment, workspace, env, merge_request), workspace


@pytest.fixture
def reporting(platform: str, token_endpoint: TokenEndpoint) -> Deployment:
    deployment = deploy(platform, token_endpoint.url, report=True)
    token_endpoint.trust(deployment.account_email, deployment.public_key)
    return deployment


@pytest.fixture
def review_api(platform: str, reporting: Deployment) -> Iterator[ReviewApi]:
    project = reporting.repository if platform == "github" else GITLAB_PROJECT_ID
    api = ReviewApi(platform, project, NUMBER, others=OTHER_COMMENTS)
    # The job script as `pulumi up` committed it on the branch: the report job runs that one.
    api.files[reporting.job_script_path, reporting.branch] = reporting.job_script
    if reporting.report_token_grant:
        # The project access token `pulumi up` created, with the role and scopes it asked for.
        assert reporting.report_token
        role, scopes = reporting.report_token_grant
        api.accept_gitlab_token(reporting.report_token, role, scopes)
    api.start()
    try:
        yield api
    finally:
        api.stop()


def test_request_gets_one_report_of_its_changes_updated_on_the_next_push(
    platform: str,
    reporting: Deployment,
    review_api: ReviewApi,
    sample_project: Path,
    storage: StorageEmulator,
    token_endpoint: TokenEndpoint,
    runner_env: dict[str, str],
    tmp_path: Path,
) -> None:
    project = team_repository(reporting, sample_project, storage, token_endpoint, runner_env, tmp_path)
    sample.git(project, runner_env, "checkout", "--quiet", "-b", FEATURE)
    push_to_request(project, runner_env, epochs=20)
    base_mse = json.loads((sample_project / "metrics.json").read_text())["mse"]
    people = {c.id: c.body for c in review_api.comments.values()}

    first, workspace = request_pipeline(platform, reporting, project, runner_env, review_api, tmp_path, 1)

    assert first.returncode == 0, first.log
    if platform == "github":
        assert first.outcomes == {"reproduce": "success", "report": "success"}
    (report,) = review_api.reports(marker(platform))
    print(f"--- the report as posted ({platform}) ---\n{report.body}")
    assert table(report.body, "Parameters") == [["params.yaml", "train.epochs", "400", "20"]]
    mse = json.loads((workspace / "metrics.json").read_text())["mse"]
    ((path, metric, before, after, change),) = table(report.body, "Metrics")
    assert (path, metric) == ("metrics.json", "mse")
    # DVC's tables round to 5 decimals.
    assert (float(before), float(after), float(change)) == (round(base_mse, 5), round(mse, 5), round(mse - base_mse, 5))
    assert f"against `{reporting.branch}` at `" in report.body
    assert "`plots/index.html` in the artifact of [the job](" in report.body
    assert report.author != "reviewer"
    # The team's code (the request's own `train`) ran without any token that may write.
    assert json.loads((workspace / SEEN).read_text()) == dict.fromkeys(TOKEN_VARIABLES, "")
    assert reporting.report_token is None or reporting.report_token not in first.log

    sample.git(project, runner_env, "checkout", "--quiet", FEATURE)
    push_to_request(project, runner_env, epochs=30)
    second, _ = request_pipeline(platform, reporting, project, runner_env, review_api, tmp_path, 2)

    assert second.returncode == 0, second.log
    (updated,) = review_api.reports(marker(platform))
    assert (updated.id, updated.updated) == (report.id, 1)
    assert table(updated.body, "Parameters") == [["params.yaml", "train.epochs", "400", "30"]]
    # Found past the first page, and nobody else's comment touched.
    assert any("page=2" in r.path for r in review_api.requests if r.method == "GET")
    assert {c.id: c.body for c in review_api.comments.values() if c.id != report.id} == people
    writes = [r for r in review_api.requests if r.method != "GET"]
    assert [(r.method, r.status) for r in writes] == [("POST", 201), ("PATCH" if platform == "github" else "PUT", 200)]


# GitLab runs a fork's merge-request pipeline in the fork's project, which has none of the variables.
@pytest.mark.parametrize("platform", ["github"])
def test_pull_request_from_a_fork_runs_nothing_and_posts_nothing(
    platform: str,
    reporting: Deployment,
    review_api: ReviewApi,
    sample_project: Path,
    storage: StorageEmulator,
    token_endpoint: TokenEndpoint,
    runner_env: dict[str, str],
    tmp_path: Path,
) -> None:
    project = team_repository(reporting, sample_project, storage, token_endpoint, runner_env, tmp_path)
    workspace = clone(project, runner_env, tmp_path)
    event = GithubEvent("pull_request", NUMBER, "someone/fork-of-it", review_api, FEATURE)

    job = run_github_workflow(reporting, workspace, runner_env, event)

    assert job.outcomes == {"reproduce": "skipped", "report": "skipped"}, job.log
    assert review_api.requests == []
    assert not (workspace / REPORT_DIRECTORY).exists()
