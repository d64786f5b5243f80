"""The proof: the CI file and the credential a stack delivers make a real CI job reproduce the
team's pipeline from the stack's bucket (whatever remote the repository commits), authenticated as
the stack's service account, downloading only what re-run stages read, failing with the push to
run when the bucket lacks data, pushing only with write access, and leaving the key behind nowhere.
Each test runs once per platform (the example stack of GitLab and of GitHub)."""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from pathlib import Path

import pytest

from localcloud.kit import sample_project as sample
from localcloud.kit.ci_runners import JobRun, run_github_workflow, run_gitlab_job
from localcloud.kit.servers import StorageEmulator, StorageProxy, TokenEndpoint
from localcloud.kit.stack import Deployment, deploy

from .checks import files_containing, sha256
from .conftest import GUIDE_BUCKET, clone, team_repository

pytestmark = pytest.mark.e2e

RUNNERS = {"gitlab": run_gitlab_job, "github": run_github_workflow}
STORAGE_SCOPE = "https://www.googleapis.com/auth/devstorage."


def assert_key_left_nothing(deployment: Deployment, job: JobRun, tmp_path: Path) -> None:
    """No copy of the key in any file once the job is over (workspace, its siblings, HOME), and
    none in the log the platform shows."""
    assert files_containing(tmp_path, deployment.key_needles) == []
    assert not any(needle in job.log for needle in deployment.key_needles), "key material in the job log"


def job_lines(job: JobRun) -> list[str]:
    """The job's own output, without gitlab-ci-local's `<job> > ` prefix."""
    return [re.sub(r"^reproduce > ", "", line) for line in job.log.splitlines()]


def media_downloads(proxy: StorageProxy, bucket: str) -> list[str]:
    """Objects whose content the job downloaded (not listings or metadata)."""
    return [urllib.parse.unquote(r.path.split("?")[0]) for r in proxy.to(bucket) if "alt=media" in r.path]


def test_job_reproduces_from_the_stack_bucket_as_the_stack_account(
    platform: str,
    deployment: Deployment,
    workspace: Path,
    token_endpoint: TokenEndpoint,
    storage_proxy: StorageProxy,
    runner_env: dict[str, str],
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
    # The stack's bucket, not the one the repository's .dvc/config names (refused if asked).
    assert not storage_proxy.to(GUIDE_BUCKET), storage_proxy.to(GUIDE_BUCKET)
    assert storage_proxy.to(deployment.bucket), "the job never asked the stack's bucket"
    # Nothing to re-run, and nothing downloaded but the directory manifests the check reads.
    assert not (workspace / sample.STAGE_LOG).exists(), f"stages ran: {(workspace / sample.STAGE_LOG).read_text()}"
    assert "Data and pipelines are up to date." in job.log
    assert [path for path in media_downloads(storage_proxy, deployment.bucket) if not path.endswith(".dir")] == []
    assert not [output for output in sample.OUTPUTS if (workspace / output).exists()]
    # While the job held its token, its key file existed, outside the workspace (GitHub's auth
    # action writes its own into the workspace and deletes it after the job).
    assert key_files_during_job, "no token request while the job ran"
    assert all(key_files_during_job), "the scan did not find the key file the job was using"
    for key_files in key_files_during_job:
        in_workspace = {path for path in key_files if any(path.is_relative_to(w) for w in (workspace, *job.job_workspaces))}
        assert in_workspace <= set(job.platform_key_files), f"key material in workspace files: {in_workspace}"
    assert_key_left_nothing(deployment, job, tmp_path)


def test_job_fails_with_another_key_of_the_account(
    platform: str,
    deployment: Deployment,
    workspace: Path,
    token_endpoint: TokenEndpoint,
    storage_proxy: StorageProxy,
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
    # Refused at its first token request, which names the credential and the fix; the job stops
    # there: no retry, and no request to the bucket.
    where = "the secret" if platform == "github" else "the CI/CD variable"
    refused = f"ERROR: no Google Cloud token for the key in {where} {other.secret_name}: invalid_grant: Invalid JWT Signature."
    assert refused in job_lines(job), job.log
    assert len(token_endpoint.rejected_for(deployment.account_email)) == 1, f"{token_endpoint.exchanges}\n{job.log}"
    assert not token_endpoint.granted_to(deployment.account_email)
    assert storage_proxy.to(deployment.bucket) == []
    assert not [output for output in sample.OUTPUTS if (workspace / output).exists()], "outputs came without the key"
    assert_key_left_nothing(other, job, tmp_path)


def test_first_run_on_an_empty_bucket_names_what_is_missing_and_the_push(
    platform: str,
    deployment: Deployment,
    sample_project: Path,
    storage: StorageEmulator,
    token_endpoint: TokenEndpoint,
    runner_env: dict[str, str],
    tmp_path: Path,
) -> None:
    project = team_repository(deployment, sample_project, storage, token_endpoint, runner_env, tmp_path, pushed=False)
    workspace = clone(project, runner_env, tmp_path)

    job = RUNNERS[platform](deployment, workspace, runner_env)

    assert job.returncode != 0, job.log
    lines = job_lines(job)
    error = f"ERROR: {deployment.remote_url} lacks data this commit names (in its .dvc files and dvc.lock):"
    assert error in lines, job.log
    start = lines.index(error) + 1
    end = lines.index("A first run? Push it once from a clone that has it:", start)
    assert sorted(lines[start:end]) == ["data/prepared/", "data/raw.csv", "metrics.json", "models/model.json"], job.log
    push = f"dvc remote add --local --force mlops-ci {deployment.remote_url} && dvc push --remote mlops-ci"
    assert lines[end + 1] == f"  {push}", job.log
    assert not (workspace / sample.STAGE_LOG).exists(), "a stage ran although the bucket lacks its data"
    assert_key_left_nothing(deployment, job, tmp_path)


@pytest.mark.parametrize("access", ["pull", "push"])
def test_changed_parameter_reruns_its_stages_and_pushes_only_with_push_access(
    platform: str,
    access: str,
    sample_project: Path,
    storage: StorageEmulator,
    storage_proxy: StorageProxy,
    token_endpoint: TokenEndpoint,
    runner_env: dict[str, str],
    tmp_path: Path,
) -> None:
    deployment = deploy(platform, token_endpoint.url, access=access)
    token_endpoint.trust(deployment.account_email, deployment.public_key)
    project = team_repository(deployment, sample_project, storage, token_endpoint, runner_env, tmp_path)
    sample.change_parameter(project, runner_env)
    workspace = clone(project, runner_env, tmp_path)
    before = storage.object_names(deployment.bucket)
    storage_proxy.reset()

    job = RUNNERS[platform](deployment, workspace, runner_env)

    assert job.returncode == 0, job.log
    assert (workspace / sample.STAGE_LOG).read_text().split() == ["train", "evaluate"], job.log
    # What train reads came from the bucket, identical; the raw data prepare would read did not.
    for output in ("data/prepared/train.csv", "data/prepared/test.csv"):
        assert sha256(workspace / output) == sha256(sample_project / output), output
    assert not (workspace / "data/raw.csv").exists()
    assert sha256(workspace / "models/model.json") != sha256(sample_project / "models/model.json")
    after = storage.object_names(deployment.bucket)
    if access == "pull":
        assert after == before
        assert storage_proxy.uploads(deployment.bucket) == []
        return
    new = after - before
    remote_path = deployment.remote_url.removeprefix(f"gs://{deployment.bucket}/")
    for output in ("models/model.json", "metrics.json"):
        digest = hashlib.md5((workspace / output).read_bytes()).hexdigest()
        assert f"{remote_path}/files/md5/{digest[:2]}/{digest[2:]}" in new, (output, sorted(new))
    assert [name for name in new if name.startswith(f"{remote_path}/runs/")], f"no run-cache entry pushed: {sorted(new)}"
