"""The guide's chapter on the local cloud, as a team lives it: a repository holding a DVC project,
`pulumi up`, the team's next steps (`dvc remote add` + `dvc push`), the committed CI file run
with what the platform delivered, `pulumi destroy`.

The sample project and the GitLab runner are the local kit's (localcloud/kit; gitlab-ci-local),
shared with tests/e2e;
GitHub's workflow runs under act (localcloud/actions).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric import rsa

from localcloud import iam, keyless, platform
from localcloud.actions.runner import run_workflow
from localcloud.kit import ci_runners
from localcloud.kit import sample_project as sample
from localcloud.kit.commands import host_env
from localcloud.kit.stack import Deployment
from localcloud.kit.wheelhouse import DEFAULT_PYTHON_VERSION, install_env, wheelhouse
from localcloud.plugins.gcp import mint_key
from localcloud.state import LocalCloud
from mlops_ci.ci.files import REMOTE_NAME, job_script_path

REQUIREMENTS_FILE = "requirements-freeze.txt"
"""The program's default `mlops-ci:requirementsFile`."""
CI_FILES = {"github": ".github/workflows/mlops.yaml", "gitlab": ".gitlab-ci.yml"}


@dataclasses.dataclass(frozen=True)
class Stack:
    """What the chapter needs of a stack file."""

    name: str
    platform: str
    repository: str
    branch: str
    ci_file: str
    secret_name: str
    access: str
    python_version: str
    instance: str
    """GitLab: the instance's root URL (from `gitlab:baseUrl`), whose jobs' ID tokens it issues."""

    @classmethod
    def from_config(cls, name: str, config: dict[str, Any]) -> Stack:
        kind = str(config["mlops-ci:platform"])
        return cls(
            name=name,
            platform=kind,
            repository=str(config["mlops-ci:repository"]),
            branch=str(config.get("mlops-ci:branch", "main")),
            ci_file=str(config.get("mlops-ci:ciFile") or CI_FILES[kind]),
            secret_name=str(config.get("mlops-ci:secretName") or "GOOGLE_SERVICE_ACCOUNT_KEY"),
            access=str(config.get("mlops-ci:access") or "pull"),
            python_version=str(config.get("mlops-ci:pythonVersion") or DEFAULT_PYTHON_VERSION),
            instance=platform.gitlab_instance(config.get("gitlab:baseUrl")),
        )


def _env(scratch: Path) -> dict[str, str]:
    return host_env(scratch)


def clone_dir(cloud: LocalCloud, stack: Stack) -> Path:
    """The team's clone of its repository, with the DVC cache of the project (kept in the state directory)."""
    return cloud.root / "team-clone"


def seed_repository(cloud: LocalCloud, stack: Stack) -> bool:
    """The stack's repository with the sample DVC project on its branch (dvc.yaml, params, code,
    the requirements file, a committed `.dvc/config`), and the team's clone of it holding the
    data in its DVC cache. False if the repository was already there."""
    if platform.find_repository(cloud, stack.platform, stack.repository) is not None:
        return False
    work = clone_dir(cloud, stack)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = _env(cloud.root / "team-env")
    sample.build(work, env)  # its requirements are in REQUIREMENTS_FILE already, as the guide keeps them
    tracked = sample.git(work, env, "ls-files", "-z").split("\0")
    files = {name: (work / name).read_bytes() for name in tracked if name}
    entry = platform.create_repository(cloud, stack.platform, stack.repository, [stack.branch], files, stack.instance)
    # The clone follows the remote's history (same files: the DVC outputs and cache stay).
    sample.git(work, env, "remote", "add", "origin", Path(entry["gitDir"]).as_uri())
    sample.git(work, env, "fetch", "--quiet", "origin")
    sample.git(work, env, "checkout", "--quiet", "-B", stack.branch, f"origin/{stack.branch}")
    sample.git(work, env, "reset", "--quiet", "--hard", f"origin/{stack.branch}")
    sample.git(work, env, "branch", "--quiet", f"--set-upstream-to=origin/{stack.branch}")
    return True


def maintainer_key(cloud: LocalCloud, gcp_project: str) -> dict[str, Any]:
    """A key of the team maintainer's own account (not the stack's), who administers the
    project's storage: their `dvc push` must not use the CI credential, so every token the CI
    account gets is CI's."""
    email = f"team-maintainer@{gcp_project}.iam.gserviceaccount.com"
    with cloud.gcp.edit() as gcp:
        accounts = gcp.setdefault("serviceAccounts", {})
        account = accounts.setdefault(
            email, {"project": gcp_project, "uniqueId": "1" * 21, "displayName": "team maintainer", "iam": [], "human": True}
        )
    iam.grant_project_role(cloud, gcp_project, "roles/storage.admin", f"serviceAccount:{email}")
    key_id, key_file, *_ = mint_key(cloud, email, gcp_project, str(account["uniqueId"]))
    with cloud.gcp.edit() as gcp:  # a key long in use: no propagation delay applies to it
        gcp["keys"][key_id]["createTime"] = 0
    return key_file


def storage_env(cloud: LocalCloud, scratch: Path) -> dict[str, str]:
    return _env(scratch) | {
        # Cloud Storage as Google serves it: IAM checked in front of the emulator.
        "STORAGE_EMULATOR_HOST": cloud.urls()["storageProxy"],
        # Without it, gcsfs with real credentials tries gRPC and hangs on timeouts.
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }


def push_data(cloud: LocalCloud, stack: Stack, gcp_project: str, remote_url: str) -> str:
    """The stack's `nextSteps` in the team's clone: pull (the CI file's commit), `dvc remote add
    --default`, `dvc push` as the maintainer, commit and push `.dvc/config`. The git output."""
    work = clone_dir(cloud, stack)
    if not work.exists():
        raise RuntimeError(f"no team clone at {work}: the repository was not seeded by `make local-up`")
    with tempfile.TemporaryDirectory(prefix="mlops-ci-push-") as scratch:
        key_path = Path(scratch) / "maintainer-key.json"
        with os.fdopen(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            json.dump(maintainer_key(cloud, gcp_project), out)
        env = storage_env(cloud, Path(scratch)) | {"GOOGLE_APPLICATION_CREDENTIALS": str(key_path)}
        sample.git(work, env, "pull", "--quiet", "--ff-only")
        sample.dvc(work, env, "remote", "add", "--default", "--force", REMOTE_NAME, remote_url)
        sample.dvc(work, env, "push", "--quiet")
        if sample.git(work, env, "status", "--porcelain", ".dvc/config").strip():
            sample.git(work, env, "add", ".dvc/config")
            sample.git(work, env, "commit", "--quiet", "-m", f"DVC remote: {remote_url}")
        sample.git(work, env, "push", "--quiet", "origin", stack.branch)
        return sample.git(work, env, "log", "--oneline", "-3")


@dataclasses.dataclass(frozen=True)
class CiRun:
    returncode: int
    log: str
    """As the platform shows it: the credential's value masked."""
    commit: str
    ci_file_present: bool


def run_ci(
    cloud: LocalCloud,
    stack: Stack,
    credential: str | None = None,
    impostor: keyless.Impostor | None = None,
    kept: dict[str, str] | None = None,
) -> CiRun:
    """The CI file as committed on the branch of the local remote (or, once `pulumi destroy`
    removed it, its last committed version), run with the credential the platform's variable
    store holds for the repository (`credential` overrides it: a copy a runner kept; `kept`
    overrides the whole store: every variable a runner kept, keyless its provider's name; keyless,
    `impostor` the ID token's claims)."""
    entry = platform.find_repository(cloud, stack.platform, stack.repository)
    if entry is None:
        raise RuntimeError(f"no {stack.platform} repository {stack.repository} in {cloud.root}")
    stored = platform.ci_environment(cloud, stack.platform, stack.repository) if kept is None else kept
    value = credential if credential is not None else stored.get(stack.secret_name, "")
    # Every other variable the platform gives the job (keyless: the provider, the service account).
    variables = {name: text for name, text in stored.items() if name != stack.secret_name}
    if stack.platform == "github" and kept is None:  # secrets and variables are apart there: `vars.*` only
        plain = cast(dict[str, Any], platform.ci_variables(cloud, stack.platform, stack.repository).get("variables", {}))
        variables = {name: text for name, text in variables.items() if name in plain}
    scratch = Path(tempfile.mkdtemp(prefix="mlops-ci-ci-"))
    try:
        env = storage_env(cloud, scratch / "runner") | install_env(wheelhouse((stack.python_version,)))
        workspace = scratch / "workspace"
        subprocess.run(
            ["git", "clone", "--quiet", "--branch", stack.branch, Path(entry["gitDir"]).as_uri(), str(workspace)],
            check=True,
            env=env,
            capture_output=True,
        )
        commit = sample.git(workspace, env, "rev-parse", "HEAD").strip()
        present = restore_ci_file(workspace, stack, env)
        ci_file = workspace / stack.ci_file
        identity = keyless.job_identity(cloud, stack.platform, stack.repository, stack.branch, ci_file, stored, impostor)
        env |= identity.env if identity else {}
        if stack.platform == "github":
            secrets = {stack.secret_name: value} if value else {}
            run = run_workflow(
                workspace,
                Path(stack.ci_file),
                stack.repository,
                env,
                directory=scratch / "act",
                secrets_=secrets,
                variables=variables,
                id_token_request=identity.github_request if identity else None,
            )
            return CiRun(run.returncode, run.log, commit, present)
        returncode, log = run_gitlab(workspace, stack, value, env, variables, identity.gitlab_variables if identity else {})
        return CiRun(returncode, log, commit, present)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def restore_ci_file(workspace: Path, stack: Stack, env: dict[str, str]) -> bool:
    """Whether the branch has the CI file; if `pulumi destroy` removed it and the job script, their
    last committed versions put back by a commit of this clone only, never pushed (the same
    pipeline, on the branch as it is; GitHub's checkout takes the commit, not the working tree)."""
    present = (workspace / stack.ci_file).exists()
    restored = False
    for path in (stack.ci_file, job_script_path(stack.name)):
        if (workspace / path).exists():
            continue
        last = sample.git(workspace, env, "log", "-1", "--format=%H", "--", path).strip()
        if not last:
            raise RuntimeError(f"{path} was never committed to {stack.repository}")
        (workspace / path).parent.mkdir(parents=True, exist_ok=True)
        (workspace / path).write_text(sample.git(workspace, env, "show", f"{last}^:{path}"))
        restored = True
    if restored:
        sample.commit_all(workspace, env, "The CI file and job script as last committed (this clone only)")
    return present


def run_gitlab(
    workspace: Path, stack: Stack, value: str, env: dict[str, str], variables: dict[str, str], id_tokens: dict[str, str]
) -> tuple[int, str]:
    """The pipeline by gitlab-ci-local (localcloud/kit/ci_runners.py), with the key's `value`, the other
    CI/CD `variables` the project gives it and the job's `id_tokens` (keyless): exit status and masked log."""
    deployment = Deployment(
        repository=stack.repository,
        access=stack.access,
        gcp_project="",
        branch=stack.branch,
        bucket="",
        remote_url="",
        account_email="",
        public_key=rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(),  # unused by the runner
        private_key_pem="",
        secret_name=stack.secret_name,
        secret_value=value,
        secret_marked=True,
        ci_file=stack.ci_file,
        ci_content=(workspace / stack.ci_file).read_text(),
        job_script_path=job_script_path(stack.name),
        job_script=(workspace / job_script_path(stack.name)).read_text(),
        variables=tuple(variables.items()),
    )
    result = ci_runners.run_gitlab_job(deployment, workspace, env, more_variables=id_tokens)
    # ci_runners.masked("") puts [MASKED] between every character: undo it when nothing was secret.
    return result.returncode, result.log.replace("[MASKED]", "") if not value else result.log
