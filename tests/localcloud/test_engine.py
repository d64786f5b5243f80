"""The real Pulumi engine runs the real program against the local cloud: `pulumi up`, a preview
that finds nothing to change, then `pulumi destroy` — and what landed in the local components."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from google.auth.exceptions import RefreshError

from localcloud import platform, services
from localcloud.engine import Workspace, find_cli
from localcloud.state import open_cloud

from .conftest import REPOSITORY, sign_in, storage_get

pytestmark = pytest.mark.localcloud

CLI = find_cli()
if CLI is None:
    pytest.skip("no Pulumi CLI (set PULUMI_CLI or build ~/.cache/mlops-ci/pulumi-3.272.0)", allow_module_level=True)


def workspace(tmp_path: Path, stack: str, config: dict[str, str] | None = None, discovery: str = "path") -> Workspace:
    assert CLI is not None
    space = Workspace(tmp_path, stack, CLI, config, discovery)
    cloud = open_cloud(space.cloud_dir)
    kind = space.config["mlops-ci:platform"]
    # The files the CI file's pre-flight asks for on the branch (not a whole DVC project: fast).
    seed = {"dvc.yaml": b"stages: {}\n", "requirements-freeze.txt": b"dvc[gs]\n"}
    branch = [space.config.get("mlops-ci:branch", "main")]
    platform.create_repository(cloud, kind, space.config["mlops-ci:repository"], branch, seed)
    space.init()
    return space


def ops(space: Workspace) -> list[tuple[str, str]]:
    return [(e["op"], e["type"].rsplit(":", 1)[-1]) for e in open_cloud(space.cloud_dir).journal.entries()]


@pytest.fixture
def stopped_services(tmp_path: Path) -> Any:
    yield
    services.stop(tmp_path / "cloud")


@pytest.mark.usefixtures("stopped_services")
def test_github_key_stack_up_then_destroy(tmp_path: Path) -> None:
    space = workspace(tmp_path, "vision-team")
    cloud = open_cloud(space.cloud_dir)
    repository = space.config["mlops-ci:repository"]
    repo = Path(platform.find_repository(cloud, "github", repository)["gitDir"])  # type: ignore[index]

    preview = space.pulumi("preview", "--stack", space.stack)  # Check and Create with unknowns, no side effect
    assert "+ 14 to create" in preview.stdout
    assert not [e for e in cloud.journal.entries() if e["op"] != "invoke"]
    up = space.up()
    outputs = space.outputs()

    assert "+ 14 created" in up.stdout
    assert outputs["dvcRemoteUrl"] == f"gs://{outputs['bucketName']}/dvcstore"
    assert storage_get(cloud, f"/storage/v1/b/{outputs['bucketName']}")[0] == 200
    workflow = platform.file_content(repo, "main", ".github/workflows/mlops.yaml")
    assert workflow is not None
    assert b"dvc repro --pull" in workflow
    # What CI receives: the secret, a key file the token endpoint honours for the stack's account.
    key_json = platform.ci_environment(cloud, "github", repository)["GOOGLE_SERVICE_ACCOUNT_KEY"]
    assert "\n" not in key_json
    assert json.loads(key_json)["client_email"] == outputs["serviceAccountEmail"]
    assert sign_in(json.loads(key_json))
    # The key travelled as a secret: not in the state, not in the journal.
    assert "PRIVATE KEY" not in space.state_text()
    assert base64.b64encode(key_json.encode()).decode()[:64] not in space.state_text()
    assert "PRIVATE KEY" not in cloud.journal.path.read_text()
    created = [kind for op, kind in ops(space) if op == "create"]
    assert created[-1] == "RepositoryFile"  # the CI file last: its first run has credential and access
    assert sorted(created) == [
        "Account",
        "ActionsSecret",
        "Bucket",
        "BucketIAMMember",
        "Key",
        "RepositoryFile",
        "Service",
        "Service",
    ]

    space.preview()  # --expect-no-changes: the plugins' diffs agree with their own outputs
    space.pulumi("refresh", "--yes", "--skip-preview", "--expect-no-changes", "--stack", space.stack)  # Read agrees too

    space.pulumi("config", "set", "mlops-ci:keyRotation", "2026-11", "--stack", space.stack)
    space.up()  # rotation: the new key first, the secret updated, then the old key deleted

    assert ops(space)[-3:] == [("create", "Key"), ("update", "ActionsSecret"), ("delete", "Key")]
    with pytest.raises(RefreshError, match="invalid_grant"):
        sign_in(json.loads(key_json))
    key_json = platform.ci_environment(cloud, "github", repository)["GOOGLE_SERVICE_ACCOUNT_KEY"]
    assert sign_in(json.loads(key_json))

    space.destroy()

    assert platform.file_content(repo, "main", ".github/workflows/mlops.yaml") is None
    assert platform.ci_environment(cloud, "github", repository) == {}
    with pytest.raises(RefreshError, match="invalid_grant"):
        sign_in(json.loads(key_json))
    assert storage_get(cloud, f"/storage/v1/b/{outputs['bucketName']}")[0] == 200  # protectBucket: retained
    deleted = {kind for op, kind in ops(space) if op == "delete"}
    assert {"Key", "ActionsSecret", "RepositoryFile", "BucketIAMMember", "Account"} <= deleted
    assert "Bucket" not in deleted


@pytest.mark.usefixtures("stopped_services")
def test_gitlab_key_stack_up_then_destroy_with_installed_plugins(tmp_path: Path) -> None:
    space = workspace(tmp_path, "nlp-team", discovery="installed")
    cloud = open_cloud(space.cloud_dir)
    project = space.config["mlops-ci:repository"]
    installed = json.loads(space.pulumi("plugin", "ls", "--json").stdout)
    assert {(p["name"], p["version"]) for p in installed} >= {("gcp", "10.2.0"), ("gitlab", "10.4.0")}

    up = space.up()

    assert "from $PATH" not in up.stdout + up.stderr  # the plugin cache, not ambient plugins

    variables = platform.ci_variables(cloud, "gitlab", project)["variables"]
    key = variables["GOOGLE_SERVICE_ACCOUNT_KEY:*"]
    assert (key["masked"], key["raw"], key["protected"]) == (True, True, False)
    assert json.loads(base64.b64decode(key["value"]))["type"] == "service_account"
    assert key["value"][:80] not in space.state_text()
    assert key["value"][:80] not in cloud.journal.path.read_text()

    space.destroy()

    assert platform.ci_variables(cloud, "gitlab", project)["variables"] == {}
    repo = Path(platform.find_repository(cloud, "gitlab", project)["gitDir"])  # type: ignore[index]
    assert platform.file_content(repo, "main", ".gitlab-ci.yml") is None


@pytest.mark.usefixtures("stopped_services")
def test_keyless_stack_destroy_then_up_again_gets_new_federation_ids(tmp_path: Path) -> None:
    space = workspace(tmp_path, "recsys-team", {"mlops-ci:protectBucket": "false"})
    cloud = open_cloud(space.cloud_dir)
    repository = space.config["mlops-ci:repository"]

    space.up()
    first = space.outputs()["workloadIdentityProvider"]
    found = platform.find_repository(cloud, "github", repository)
    assert found is not None
    condition = next(e for e in cloud.journal.entries() if e["type"].endswith("WorkloadIdentityPoolProvider"))["inputs"]
    assert f'assertion.repository_id == "{found["id"]}"' in condition["attributeCondition"]
    assert platform.ci_environment(cloud, "github", repository)["GCP_WORKLOAD_IDENTITY_PROVIDER"] == first

    space.destroy()
    space.up()  # soft-deleted pools keep their ids for 30 days: the program must pick new ones

    second = space.outputs()["workloadIdentityProvider"]
    assert second != first
    space.destroy()


@pytest.mark.usefixtures("stopped_services")
def test_the_policy_pack_runs_in_the_real_engine(tmp_path: Path) -> None:
    space = workspace(tmp_path, "vision-team")
    assert (space.project / "policy" / "PulumiPolicy.yaml").exists()  # the workspace copies the pack with the program

    preview = space.pulumi("preview", "--policy-pack", "policy", "--stack", space.stack)

    assert "mlops-ci@v0.1.0 (local: policy)" in preview.stdout
    assert "+ 14 to create" in preview.stdout


DVC = REPOSITORY / ".venv-e2e" / "bin" / "dvc"


@pytest.mark.skipif(not DVC.exists(), reason="needs .venv-e2e (dvc)")
@pytest.mark.usefixtures("stopped_services")
def test_up_then_ci_then_destroy_as_separate_commands(tmp_path: Path) -> None:
    """`pulumi up`; CI with what was delivered (`dvc push` through google-auth, the token endpoint
    and the emulator); `pulumi destroy`; the same CI credential is then refused."""
    space = workspace(tmp_path, "vision-team")
    cloud = open_cloud(space.cloud_dir)
    space.up()
    outputs = space.outputs()
    key_file = tmp_path / "gha-creds.json"  # what google-github-actions/auth writes from the secret
    key_file.write_text(
        platform.ci_environment(cloud, "github", space.config["mlops-ci:repository"])["GOOGLE_SERVICE_ACCOUNT_KEY"]
    )
    project = tmp_path / "dvc-project"
    project.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "STORAGE_EMULATOR_HOST": cloud.urls()["storage"],
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "DVC_NO_ANALYTICS": "1",
    }

    def dvc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(DVC), *args], cwd=project, env=env, capture_output=True, text=True, timeout=180, check=check)

    dvc("init", "--no-scm")
    (project / "data.csv").write_text("x,y\n" + "".join(f"{i},{i * i}\n" for i in range(200)))
    dvc("add", "data.csv")
    dvc("remote", "add", "-d", "storage", outputs["dvcRemoteUrl"])
    dvc("push")

    stored = storage_get(cloud, f"/storage/v1/b/{outputs['bucketName']}/o?prefix=dvcstore/")[1]
    assert len(stored.get("items", [])) == 1
    exchanges = [json.loads(line) for line in (space.cloud_dir / "token-exchanges.jsonl").read_text().splitlines()]
    assert {e["issuer"] for e in exchanges if e["granted"]} == {outputs["serviceAccountEmail"]}

    space.destroy()
    shutil.rmtree(project / ".dvc" / "cache")
    pulled = dvc("pull", check=False)

    assert pulled.returncode != 0
    assert "invalid_grant" in pulled.stdout + pulled.stderr
