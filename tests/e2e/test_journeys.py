"""The two journeys of the README, end to end, with Cloud Storage checking who may read each bucket
(the stack's grants applied as Google applies them): the team that followed the guide's chapter
2.2 (its own bucket, its remote committed, its data pushed) and points the stack at it with
`existingBucket`; and a new team, whose first run on the stack's new bucket fails saying what to
push, until it runs the stack's `nextSteps`.

One platform each: what differs between the platforms (the CI file, the credential's delivery, the
runner) is proven on both by test_ci_jobs.py, including the first run on an empty bucket; these
journeys add what is the same on both (the bucket the stack grants on, the `nextSteps` export),
so a second platform would repeat the same DVC commands against the same bucket."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from localcloud.kit import sample_project as sample
from localcloud.kit.ci_runners import run_github_workflow, run_gitlab_job
from localcloud.kit.commands import run
from localcloud.kit.servers import StorageEmulator, StorageProxy, TokenEndpoint
from localcloud.kit.stack import deploy, service_account_key

from .conftest import commit_ci_file
from .test_ci_jobs import job_lines

pytestmark = pytest.mark.e2e

# The bucket of the guide's chapter 2.2 (`gcloud storage buckets create gs://...`), the team's own.
TEAM_BUCKET = "acme-vision-team-dvc"


def team_credential(
    token_endpoint: TokenEndpoint, project: str, directory: Path, env: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """A team maintainer's own key (never the CI account's), and `env` using it."""
    email = f"maintainer@{project}.iam.gserviceaccount.com"
    key_file, public_key = service_account_key(email, project, token_endpoint.url)
    token_endpoint.trust(email, public_key)
    directory.mkdir()
    (directory / "key.json").write_text(json.dumps(key_file))
    return email, env | {"GOOGLE_APPLICATION_CREDENTIALS": str(directory / "key.json")}


def guarded(storage_proxy: StorageProxy, token_endpoint: TokenEndpoint, bucket: str, *members: str) -> None:
    """`bucket` answers only the accounts granted on it (as Google does), from now on."""
    storage_proxy.tokens = token_endpoint.issued
    storage_proxy.members.setdefault(bucket, set()).update(members)


def test_guide_layout_on_its_existing_bucket_is_green_with_only_the_stack_credential(
    sample_project: Path,
    storage: StorageEmulator,
    storage_proxy: StorageProxy,
    token_endpoint: TokenEndpoint,
    runner_env: dict[str, str],
    tmp_path: Path,
) -> None:
    # Chapter 2.2, before any stack: the team's private bucket, `dvc remote add -d data
    # gs://<bucket>/dvcstore` committed, the data pushed with the team's own credential.
    storage.create_bucket(TEAM_BUCKET, "acme-ml-vision")
    team_email, team_env = team_credential(token_endpoint, "acme-ml-vision", tmp_path / "team-key", runner_env)
    guarded(storage_proxy, token_endpoint, TEAM_BUCKET, team_email)
    project = tmp_path / "project"
    shutil.copytree(sample_project, project, symlinks=True)
    assert (project / "requirements-freeze.txt").is_file()
    sample.git(project, runner_env, "branch", "--move", "--force", "main")
    sample.dvc(project, runner_env, "remote", "add", "--default", "data", f"gs://{TEAM_BUCKET}/dvcstore")
    sample.commit_all(project, runner_env, "DVC remote: the team's bucket")
    sample.dvc(project, team_env, "push", "--quiet")
    pushed = storage.object_names(TEAM_BUCKET)
    assert pushed

    # `pulumi up` with existingBucket: no bucket of its own, one read grant on the team's.
    deployment = deploy("github", token_endpoint.url, existingBucket=TEAM_BUCKET)
    assert not deployment.owns_bucket
    assert deployment.grants == ((TEAM_BUCKET, "roles/storage.objectViewer"),)
    assert deployment.remote_url == f"gs://{TEAM_BUCKET}/dvcstore"
    token_endpoint.trust(deployment.account_email, deployment.public_key)
    guarded(storage_proxy, token_endpoint, TEAM_BUCKET, deployment.account_email)
    commit_ci_file(project, deployment, runner_env)
    workspace = tmp_path / "workspace"
    sample.git(tmp_path, runner_env, "clone", "--quiet", project, workspace)
    team_tokens = len(token_endpoint.granted_to(team_email))
    storage_proxy.reset()

    job = run_github_workflow(deployment, workspace, runner_env)

    assert job.returncode == 0, job.log
    assert "Data and pipelines are up to date." in job.log
    assert not (workspace / sample.STAGE_LOG).exists(), "a stage ran"
    # Every request of the job reached the team's bucket as the stack's account (the bucket
    # refuses anyone else), which is the only account that got a token meanwhile.
    requests = storage_proxy.to(TEAM_BUCKET)
    assert requests
    assert [(r.method, r.path, r.status) for r in requests if r.status in (401, 403)] == []
    assert token_endpoint.granted_to(deployment.account_email)
    assert len(token_endpoint.granted_to(team_email)) == team_tokens
    assert storage.object_names(TEAM_BUCKET) == pushed, "a pull-only job wrote to the team's bucket"


def test_new_team_first_run_fails_then_its_next_steps_make_the_next_run_green(
    sample_project: Path,
    storage: StorageEmulator,
    storage_proxy: StorageProxy,
    token_endpoint: TokenEndpoint,
    runner_env: dict[str, str],
    tmp_path: Path,
) -> None:
    # The team's repository on the platform, and the team's clone: the DVC project, no remote;
    # the data only in the clone's cache.
    origin = tmp_path / "origin.git"
    sample.git(tmp_path, runner_env, "init", "--quiet", "--bare", "--initial-branch=main", origin)
    team = tmp_path / "team-clone"
    shutil.copytree(sample_project, team, symlinks=True)
    sample.git(team, runner_env, "branch", "--move", "--force", "main")
    sample.git(team, runner_env, "remote", "add", "origin", origin)
    sample.git(team, runner_env, "push", "--quiet", "--set-upstream", "origin", "main")

    # `pulumi up`: the stack's new, empty bucket, its grants, and the CI file committed to the
    # branch through the platform's API (on the platform, not in the team's clone).
    deployment = deploy("gitlab", token_endpoint.url)
    assert deployment.owns_bucket
    token_endpoint.trust(deployment.account_email, deployment.public_key)
    storage.create_bucket(deployment.bucket, deployment.gcp_project)
    team_email, team_env = team_credential(token_endpoint, deployment.gcp_project, tmp_path / "team-key", runner_env)
    # The stack's grants, and the team's own access it gives itself (README: teammates' access).
    granted = {bucket for bucket, _ in deployment.grants}
    assert granted == {deployment.bucket}
    guarded(storage_proxy, token_endpoint, deployment.bucket, deployment.account_email, team_email)
    platform_side = tmp_path / "platform-commit"
    sample.git(tmp_path, runner_env, "clone", "--quiet", origin, platform_side)
    commit_ci_file(platform_side, deployment, runner_env)
    sample.git(platform_side, runner_env, "push", "--quiet", "origin", "main")

    # The CI file's commit runs the job: the bucket is empty.
    first = tmp_path / "first-run"
    sample.git(tmp_path, runner_env, "clone", "--quiet", origin, first)
    job = run_gitlab_job(deployment, first, runner_env)
    assert job.returncode != 0, job.log
    lines = job_lines(job)
    assert f"ERROR: {deployment.remote_url} lacks data this commit names (in its .dvc files and dvc.lock):" in lines, job.log
    assert not (first / sample.STAGE_LOG).exists()

    # The team runs the stack's nextSteps, as printed, in its clone, with its own credential.
    commands = [line for line in deployment.next_steps.splitlines() if line and not line.startswith("#")]
    script = "\n".join(["set -euo pipefail", *commands])
    run(["bash", "--noprofile", "--norc", "-c", script], cwd=team, env=sample.tool_env(team_env), timeout=300)
    assert storage.object_names(deployment.bucket)

    # The next run, from a fresh clone of what the team pushed: green, nothing to re-run.
    second = tmp_path / "second-run"
    sample.git(tmp_path, runner_env, "clone", "--quiet", origin, second)
    storage_proxy.reset()
    job = run_gitlab_job(deployment, second, runner_env)
    assert job.returncode == 0, job.log
    assert "Data and pipelines are up to date." in job.log
    assert not (second / sample.STAGE_LOG).exists(), "a stage ran"
    assert storage_proxy.to(deployment.bucket)
    assert [(r.method, r.path, r.status) for r in storage_proxy.to(deployment.bucket) if r.status in (401, 403)] == []
