"""The `pulumi new` template (templates/python) under the real engine: a scratch project made from it
non-interactively, mlops-ci installed into its virtualenv from the wheel this checkout builds (no index:
the wheel and build/e2e-wheelhouse only), then `pulumi up` against the local cloud and `destroy`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from localcloud import platform
from localcloud.engine import Workspace, find_cli
from localcloud.kit.wheelhouse import program_wheelhouse
from tools.wheel import build_wheel

from .conftest import REPOSITORY, github_answers_within_description, local_cloud, operations, storage_get

pytestmark = pytest.mark.localcloud

TEMPLATE = REPOSITORY / "templates" / "python"
CLI = find_cli()
if CLI is None:
    pytest.skip("no Pulumi CLI (set PULUMI_CLI or build ~/.cache/mlops-ci/pulumi-3.274.1)", allow_module_level=True)
TOKEN = "ghp_template0token0for0the0local0cloud"  # what the stack's secret github:token holds


def test_a_project_made_by_pulumi_new_installs_the_wheel_and_brings_a_team_up_then_down(tmp_path: Path) -> None:
    assert CLI is not None
    wheel = build_wheel(tmp_path / "dist")
    python = Path(shutil.which("python3") or sys.executable)
    config = {"mlops-ci:platform": "github", "mlops-ci:repository": "acme-ml/vision", "gcp:project": "acme-ml-template"}
    space = Workspace(tmp_path, "dev", CLI, config, program=False)
    # pip in the project's new virtualenv: the built wheel and the pinned dependencies, no index.
    # requirements.txt names the wheel by MLOPS_CI_WHEEL, as `make wheel` prints it.
    house = program_wheelhouse(python)
    space.extra_env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(house), "MLOPS_CI_WHEEL": str(wheel)}
    with local_cloud(space.cloud_dir) as cloud:
        seed = {"dvc.yaml": b"stages: {}\n", "requirements-freeze.txt": b"dvc[gs]\n"}  # what the pre-flight asks for
        repo = Path(platform.create_repository(cloud, "github", config["mlops-ci:repository"], ["main"], seed)["gitDir"])
        flags = [f"--config={key}={value}" for key, value in {**config, "github:token": TOKEN}.items()]
        space.pulumi("new", str(TEMPLATE), "--yes", "--stack", "dev", "--name", "vision-ml", *flags)
        # `pulumi new` keeps a --config value in plain text even for a secret question (the template
        # README says so), and a key set without namespace lands in the project's: both refused at once.
        assert f"github:token: {TOKEN}" in (space.project / "Pulumi.dev.yaml").read_text()
        space.pulumi("config", "set", "platform", "gitlab", "--stack", "dev")
        refused = space.pulumi("preview", "--stack", "dev", check=False)
        assert refused.returncode != 0
        assert "github:token: must be encrypted" in refused.stdout
        assert "vision-ml:platform: in this project's own namespace (vision-ml:)" in refused.stdout
        assert TOKEN not in refused.stdout + refused.stderr
        assert operations(cloud) == []
        space.pulumi("config", "rm", "platform", "--stack", "dev")
        space.pulumi("config", "set", "--secret", "github:token", TOKEN, "--stack", "dev")

        made = sorted(p.name for p in space.project.iterdir())
        assert made == [".gitignore", ".venv", "Pulumi.dev.yaml", "Pulumi.yaml", "README.md", "__main__.py", "requirements.txt"]
        installed = space.project / ".venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
        assert (installed / "mlops_ci" / "program.py").is_file()  # the wheel's package, not this checkout's
        stack_file = (space.project / "Pulumi.dev.yaml").read_text()
        assert "mlops-ci:auth: workload-identity" in stack_file  # the template's default credential: keyless
        assert TOKEN not in stack_file

        space.up()
        outputs = space.outputs()

        assert storage_get(cloud, f"/storage/v1/b/{outputs['bucketName']}")[0] == 200
        assert outputs["dvcRemoteUrl"] == f"gs://{outputs['bucketName']}/dvcstore"
        workflow = platform.file_content(repo, "main", ".github/workflows/mlops.yaml")
        assert workflow is not None
        assert b"run: python3 .mlops-ci/dev.py repro\n" in workflow
        assert b"workload_identity_provider: ${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}" in workflow
        delivered = platform.ci_environment(cloud, "github", config["mlops-ci:repository"])
        assert delivered["GCP_WORKLOAD_IDENTITY_PROVIDER"] == outputs["workloadIdentityProvider"]
        assert "secretName" not in outputs  # keyless: no key, no secret
        assert TOKEN not in space.state_text()

        space.destroy()

        assert platform.file_content(repo, "main", ".github/workflows/mlops.yaml") is None
        assert platform.file_content(repo, "main", ".mlops-ci/dev.py") is None
        assert platform.ci_environment(cloud, "github", config["mlops-ci:repository"]) == {}
        assert storage_get(cloud, f"/storage/v1/b/{outputs['bucketName']}")[0] == 200  # protectBucket: retained
        assert "Bucket" not in {kind for op, kind in operations(cloud) if op == "delete"}
    github_answers_within_description(space.cloud_dir)
