"""The proof: the CI file and the credential a stack delivers make a real CI job pull the team's
data and outputs from the stack's bucket, authenticated as the stack's service account, without
re-running a stage and without leaving the key behind. Each test runs once per platform (the
example stack of GitLab and of GitHub)."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import sample_project as sample
from .checks import files_containing, sha256
from .ci_runners import JobRun, run_github_workflow, run_gitlab_job
from .servers import TokenEndpoint
from .stack import Deployment, deploy

pytestmark = pytest.mark.e2e

RUNNERS = {"gitlab": run_gitlab_job, "github": run_github_workflow}
STORAGE_SCOPE = "https://www.googleapis.com/auth/devstorage."


def assert_key_left_nothing(deployment: Deployment, job: JobRun, tmp_path: Path) -> None:
    """No copy of the key in any file once the job is over (workspace, its siblings, HOME), and
    none in the log the platform shows."""
    assert files_containing(tmp_path, deployment.key_needles) == []
    assert not any(needle in job.log for needle in deployment.key_needles), "key material in the job log"


def test_job_restores_the_pipeline_as_the_stack_account(
    platform: str,
    deployment: Deployment,
    workspace: Path,
    token_endpoint: TokenEndpoint,
    runner_env: dict[str, str],
    sample_project: Path,
    tmp_path: Path,
) -> None:
    assert deployment.secret_marked, "the key must reach the CI platform as a Pulumi secret"
    key_files_during_job: list[list[Path]] = []
    token_endpoint.on_grant = lambda: key_files_during_job.append(files_containing(tmp_path, deployment.key_needles))

    job = RUNNERS[platform](deployment, workspace, runner_env)

    assert job.returncode == 0, job.log
    # Authenticated with the stack's key: the endpoint verified its signature, for storage.
    grants = token_endpoint.granted_to(deployment.account_email)
    assert grants, f"no token for {deployment.account_email}: {token_endpoint.exchanges}"
    assert all(grant.scope.startswith(STORAGE_SCOPE) for grant in grants), grants
    # Every output came back from the bucket, identical; no stage ran.
    for output in sample.OUTPUTS:
        assert (workspace / output).is_file(), f"{output} was not restored\n{job.log}"
        assert sha256(workspace / output) == sha256(sample_project / output), output
    assert not (workspace / sample.STAGE_LOG).exists(), f"stages ran: {(workspace / sample.STAGE_LOG).read_text()}"
    assert "Data and pipelines are up to date." in sample.dvc(workspace, runner_env, "status")
    # While the job held its token, its key file existed, outside the workspace (GitHub's auth
    # action writes its own into the workspace and deletes it after the job).
    assert key_files_during_job, "no token request while the job ran"
    assert all(key_files_during_job), "the scan did not find the key file the job was using"
    for key_files in key_files_during_job:
        in_workspace = {path for path in key_files if path.is_relative_to(workspace)}
        assert in_workspace <= set(job.platform_key_files), f"key material in workspace files: {in_workspace}"
    assert_key_left_nothing(deployment, job, tmp_path)


def test_job_fails_with_another_key_of_the_account(
    platform: str,
    deployment: Deployment,
    workspace: Path,
    token_endpoint: TokenEndpoint,
    runner_env: dict[str, str],
    tmp_path: Path,
) -> None:
    # A second `pulumi up` creates another key of the same account, which Google never issued
    # here (as a revoked or foreign key): the job sends it and must be refused.
    other = deploy(platform, token_endpoint.url)
    assert other.account_email == deployment.account_email
    assert other.secret_value != deployment.secret_value

    job = RUNNERS[platform](other, workspace, runner_env)

    assert job.returncode != 0, job.log
    assert token_endpoint.rejected_for(deployment.account_email), f"no rejected assertion\n{job.log}"
    assert not token_endpoint.granted_to(deployment.account_email)
    assert not [output for output in sample.OUTPUTS if (workspace / output).exists()], "outputs came without the key"
    assert_key_left_nothing(other, job, tmp_path)
