"""Run the CI file committed in a workspace (a fresh clone) on this machine, with the credential
passed the way the platform passes it.

GitLab: gitlab-ci-local runs the job's scripts in a shell, with its rules, variables and
after_script. GitHub: act runs the workflow, its pinned actions mapped to the stand-ins of
localcloud/actions (the runner there says what it stands in for)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from localcloud.actions.runner import Event, run_workflow
from mlops_ci.settings.rules import REPORT_TOKEN_VARIABLE

from . import sample_project as sample
from .commands import NODE_BIN, host_env, run
from .review_apis import ReviewApi
from .servers import TokenEndpoint
from .stack import Deployment, service_account_key
from .wheelhouse import install_env

JOB_TIMEOUT = 420.0


@dataclasses.dataclass(frozen=True)
class JobRun:
    returncode: int
    log: str
    """The job log as the platform shows it: the secret's value masked."""
    platform_key_files: tuple[Path, ...] = ()
    """Key files the platform itself puts in the workspace during the job."""
    outcomes: Mapping[str, str] = dataclasses.field(default_factory=dict[str, str])
    """GitHub: each job's outcome (success, failure, skipped), in the workflow's order."""
    job_workspaces: tuple[Path, ...] = ()
    """GitHub: where the runner puts each job's workspace while it runs (GitLab's job runs in the workspace)."""


def masked(log: str, secret_value: str) -> str:
    # GitLab masks the variable's exact value in job logs, nothing else (act masks GitHub's secrets).
    return log.replace(secret_value, "[MASKED]")


@dataclasses.dataclass(frozen=True)
class MergeRequest:
    """A merge-request pipeline: the request, its target branch, and GitLab's API for its notes."""

    iid: int
    source_branch: str
    target_branch: str
    api: ReviewApi
    project_id: str
    """CI_PROJECT_ID: the API names the project by its number."""


def run_gitlab_job(
    deployment: Deployment,
    workspace: Path,
    env: Mapping[str, str],
    merge_request: MergeRequest | None = None,
    more_variables: Mapping[str, str] | None = None,
) -> JobRun:
    """The pipeline of a push to the branch, or of `merge_request`: every job its rules let run;
    `more_variables`: other CI/CD variables (a keyless stack's) and the `id_tokens:` variables."""
    # Predefined variables (CI_PROJECT_PATH...) come from this remote, as on GitLab.
    run(["git", "remote", "add", "gcl-origin", f"git@gitlab.com:{deployment.repository}.git"], workspace, env, timeout=30)
    # CI/CD variables, masked and raw: the values as the program sent them.
    variables = {**dict(deployment.variables), deployment.secret_name: deployment.secret_value}
    if deployment.report_token:
        variables[REPORT_TOKEN_VARIABLE] = deployment.report_token
    variables |= dict(more_variables or {})
    # With an `image:`, gitlab-ci-local sets CI_PROJECT_DIR=/builds/...; the shell runs here.
    predefined = {"CI_PROJECT_DIR": str(workspace)}
    if merge_request:
        predefined |= {
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": str(merge_request.iid),
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": merge_request.source_branch,
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": merge_request.target_branch,
            "CI_API_V4_URL": merge_request.api.api_url,
            "CI_PROJECT_ID": merge_request.project_id,
        }
    result = run(
        [
            NODE_BIN / "gitlab-ci-local",
            "--file", deployment.ci_file,
            "--force-shell-executor",
            "--no-color",
            *(arg for name, value in (predefined | variables).items() for arg in ("--variable", f"{name}={value}")),
            "--ignore-predefined-vars", ",".join(predefined),
        ],
        cwd=workspace,
        env=env,
        timeout=JOB_TIMEOUT,
        check=False,
    )  # fmt: skip
    log = result.stdout
    for name, value in variables.items():
        if name not in dict(deployment.variables):  # the credentials; the keyless settings are not secret
            log = masked(log, value)
    return JobRun(result.returncode, log)


# --- GitHub Actions ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GithubEvent:
    """What triggers the run: a push to the deployment's branch, or a pull request to it."""

    name: str = "push"
    pull_request: int = 0
    """The pull request's number (event `pull_request`)."""
    head_repository: str = ""
    """Full name of the repository the pull request comes from; another than the deployment's: a fork."""
    api: ReviewApi | None = None
    """GitHub's REST API at GITHUB_API_URL, which issues the run's GITHUB_TOKEN; None: unreachable."""
    head_ref: str = ""
    """The pull request's branch."""


def may_write_pull_requests(workflow: Mapping[str, Any], fork: bool) -> dict[str, bool]:
    """Whether each job's GITHUB_TOKEN may write to pull requests: the job's `permissions`, else the
    workflow's, else the repository's default (restricted: read only); a fork's run: read only."""
    default = workflow.get("permissions", {})
    jobs: dict[str, dict[str, Any]] = workflow["jobs"]
    may_write: dict[str, bool] = {}
    for job_id, spec in jobs.items():
        permissions: str | dict[str, str] = spec.get("permissions", default)
        granted = permissions == "write-all" or (isinstance(permissions, dict) and permissions.get("pull-requests") == "write")
        may_write[job_id] = granted and not fork
    return may_write


def run_github_workflow(
    deployment: Deployment, workspace: Path, env: Mapping[str, str], event: GithubEvent | None = None
) -> JobRun:
    """The workflow run by act (localcloud/actions) for `event` on the commit `workspace` holds;
    afterwards `workspace` holds what the first job that checked it out left in its workspace."""
    event = event or GithubEvent()
    workflow = yaml.safe_load((workspace / deployment.ci_file).read_text())
    triggers: dict[str, Any] = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    trigger: dict[str, list[str]] = triggers.get(event.name) or {}
    if deployment.branch not in trigger.get("branches", []):
        raise AssertionError(f"the workflow does not run on {event.name} to {deployment.branch}")
    run_event = Event(event.name, deployment.branch, event.pull_request, event.head_ref, event.head_repository)
    api = event.api
    may_write = may_write_pull_requests(workflow, run_event.fork(deployment.repository))
    run = run_workflow(
        workspace,
        Path(deployment.ci_file),
        deployment.repository,
        env,
        directory=workspace.with_name(f"{workspace.name}-runner"),
        event=run_event,
        secrets_={deployment.secret_name: deployment.secret_value},
        github_token=api.issue_github_token(may_write) if api else None,
        api_url=api.api_url if api else None,
    )
    if kept := next(iter(run.workspaces.values()), None):
        shutil.rmtree(workspace)
        kept.rename(workspace)
    return JobRun(run.returncode, run.log, run.credential_files, run.outcomes, (run.job_workspaces,))


def ci_runner_env(root: Path, storage_url: str, wheelhouse: Path) -> dict[str, str]:
    """The CI runner's environment: this machine's, without credentials or virtualenvs (HOME and
    TMPDIR under `root`), with Cloud Storage at `storage_url` and pip and uv reading the
    wheelhouse only."""
    return (
        host_env(root)
        | {
            "STORAGE_EMULATOR_HOST": storage_url,
            # Without it, gcsfs with real credentials tries gRPC and hangs on timeouts.
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        }
        | install_env(wheelhouse)
    )


def push_as_maintainer(
    project: Path, deployment: Deployment, token_endpoint: TokenEndpoint, env: dict[str, str], key_dir: Path
) -> None:
    """`dvc push` to the stack's bucket by a team maintainer, with a key of their own: the CI
    account stays unused until the job runs, so every token it gets is the job's."""
    email = f"maintainer@{deployment.gcp_project}.iam.gserviceaccount.com"
    key_file, public_key = service_account_key(email, deployment.gcp_project, token_endpoint.url)
    token_endpoint.trust(email, public_key)
    key_dir.mkdir()
    (key_dir / "key.json").write_text(json.dumps(key_file))
    maintainer_env = env | {"GOOGLE_APPLICATION_CREDENTIALS": str(key_dir / "key.json")}
    sample.dvc(project, maintainer_env, "remote", "add", "--local", "--force", "stack", deployment.remote_url)
    sample.dvc(project, maintainer_env, "push", "--quiet", "--remote", "stack")
