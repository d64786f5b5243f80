"""Fixtures of the end-to-end proof. Servers bind 127.0.0.1 on free ports and stop when their
test ends, pass or fail; the project, keys and job workspaces live in pytest's tmp dirs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.kit import sample_project as sample
from localcloud.kit.ci_runners import ci_runner_env, push_as_maintainer
from localcloud.kit.commands import E2E_VENV, NODE_BIN, host_env
from localcloud.kit.servers import StorageEmulator, StorageProxy, TokenEndpoint
from localcloud.kit.stack import STACKS, Deployment, deploy
from localcloud.kit.wheelhouse import wheelhouse as build_wheelhouse

# The bucket the repository's committed .dvc/config names, as the guide commits it
# (`dvc remote add -d data gs://<their bucket>/dvcstore`): the stack's account has no grant on it.
GUIDE_BUCKET = "their-own-guide-bucket"
GUIDE_REMOTE_URL = f"gs://{GUIDE_BUCKET}/dvcstore"


@pytest.fixture(scope="session")
def e2e_tools() -> None:
    """A proof that cannot run must not pass: missing tools fail, with the way to get them."""
    tools = (E2E_VENV / "bin/dvc", E2E_VENV / "bin/gcp-storage-emulator", NODE_BIN / "gitlab-ci-local")
    missing = [str(tool) for tool in tools if not tool.exists()]
    missing += [tool for tool in ("rsync", "git", "python3", "curl", "node") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: `make test` installs them (.venv-e2e, npm ci, rsync)")


@pytest.fixture(scope="session")
def wheelhouse(e2e_tools: None) -> Path:
    return build_wheelhouse()


@pytest.fixture(scope="session")
def sample_project(e2e_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The team's project, every stage run once, committed; built once per session."""
    project = tmp_path_factory.mktemp("sample-project")
    sample.build(project, host_env(tmp_path_factory.mktemp("sample-env")))
    return project


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[StorageEmulator]:
    emulator = StorageEmulator(tmp_path / "storage-emulator.log")
    try:
        emulator.start()
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def storage_proxy(storage: StorageEmulator) -> Iterator[StorageProxy]:
    """Cloud Storage as jobs reach it: every request recorded; the guide's bucket refused."""
    proxy = StorageProxy(storage.url)
    proxy.denied.add(GUIDE_BUCKET)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def runner_env(tmp_path: Path, storage_proxy: StorageProxy, wheelhouse: Path) -> dict[str, str]:
    """The CI runner's environment, Cloud Storage reached through the recording proxy."""
    return ci_runner_env(tmp_path, storage_proxy.url, wheelhouse)


@pytest.fixture(params=sorted(STACKS))
def platform(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def deployment(platform: str, token_endpoint: TokenEndpoint) -> Deployment:
    """`pulumi up` of the platform's example stack; Google knows (trusts) the key it created."""
    deployment = deploy(platform, token_endpoint.url)
    token_endpoint.trust(deployment.account_email, deployment.public_key)
    return deployment


def team_repository(
    deployment: Deployment,
    sample_project: Path,
    storage: StorageEmulator,
    token_endpoint: TokenEndpoint,
    env: dict[str, str],
    tmp_path: Path,
    pushed: bool = True,
) -> Path:
    """The team's repository after `pulumi up`: its committed .dvc/config names the guide's
    bucket, the CI file is committed as the program commits it, and the stack's bucket exists,
    holding the data a maintainer pushed (`pushed`) or nothing (a first run)."""
    project = tmp_path / "project"
    shutil.copytree(sample_project, project, symlinks=True)
    sample.git(project, env, "branch", "--move", "--force", deployment.branch)
    sample.dvc(project, env, "remote", "add", "--default", "data", GUIDE_REMOTE_URL)
    sample.commit_all(project, env, "DVC remote: the guide's bucket")
    commit_ci_file(project, deployment, env)
    storage.create_bucket(deployment.bucket, deployment.gcp_project)
    if pushed:
        push_as_maintainer(project, deployment, token_endpoint, env, tmp_path / "maintainer")
    return project


def commit_ci_file(repository: Path, deployment: Deployment, env: dict[str, str]) -> None:
    """The stack's job script and CI file committed to `repository`, as `pulumi up` commits them on
    the platform."""
    for path, content in ((deployment.job_script_path, deployment.job_script), (deployment.ci_file, deployment.ci_content)):
        (repository / path).parent.mkdir(parents=True, exist_ok=True)
        (repository / path).write_text(content)
    sample.commit_all(repository, env, f"mlops-ci: reproduce the experiment in CI ({deployment.ci_file})")


def clone(project: Path, env: dict[str, str], tmp_path: Path) -> Path:
    """A fresh clone of the team's repository: neither the data nor any output."""
    workspace = tmp_path / "workspace"
    sample.git(tmp_path, env, "clone", "--quiet", project, workspace)
    return workspace


@pytest.fixture
def workspace(
    deployment: Deployment,
    sample_project: Path,
    storage: StorageEmulator,
    storage_proxy: StorageProxy,
    token_endpoint: TokenEndpoint,
    runner_env: dict[str, str],
    tmp_path: Path,
) -> Path:
    """A fresh clone of the team's repository, the stack's bucket holding its data; the proxy's
    record starts with the job."""
    project = team_repository(deployment, sample_project, storage, token_endpoint, runner_env, tmp_path)
    storage_proxy.reset()
    return clone(project, runner_env, tmp_path)
