"""mlops-ci from another language under the real engine: a Pulumi YAML program adds the component
package (`pulumi package add <checkout>/package`), creates one team's stack with
`mlops-ci:index:TeamCi` against the local cloud, then destroys it. The YAML language host is
pulumi-yaml built from Go modules (tools/pulumi-yaml); the package runs in our Python language host."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcloud import platform, services
from localcloud.engine import Workspace, find_cli
from localcloud.state import open_cloud

from .conftest import REPOSITORY, operations, sign_in

pytestmark = pytest.mark.localcloud

CLI = find_cli()
if CLI is None:
    pytest.skip("no Pulumi CLI (set PULUMI_CLI or build ~/.cache/mlops-ci/pulumi-3.272.0)", allow_module_level=True)
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlops-ci"
YAML_HOSTS = sorted(CACHE.glob("pulumi-yaml-*/bin/pulumi-language-yaml"))
# The key mode, as the Python program's vision-team: its key travels through the package as a secret.
TEAM = {"gcpProject": "acme-ml-vision", "platform": "github", "repository": "acme-ml/vision-experiments", "auth": "key"}


class YamlProgram:
    """A Pulumi YAML program in `root/yaml-program`, run with the local cloud of `space`."""

    def __init__(self, space: Workspace, properties: dict[str, Any]) -> None:
        if not YAML_HOSTS:
            pytest.fail(f"no pulumi-language-yaml in {CACHE}: `make pulumi-yaml` builds it (make test does)")
        self.space = space
        self.directory = space.root / "yaml-program"
        self.directory.mkdir()
        program = {
            "name": "platform-yaml",
            "runtime": "yaml",
            "resources": {"vision-team": {"type": "mlops-ci:index:TeamCi", "properties": properties}},
            "outputs": {key: f"${{vision-team.{key}}}" for key in ("bucketName", "serviceAccountEmail", "ciFile")},
        }
        (self.directory / "Pulumi.yaml").write_text(yaml.safe_dump(program, sort_keys=False))

    def pulumi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = self.space.env
        env["PATH"] = f"{YAML_HOSTS[-1].parent}:{env['PATH']}"
        assert CLI is not None
        result = subprocess.run(
            [str(CLI), *args, "--non-interactive"], cwd=self.directory, env=env, capture_output=True, text=True, timeout=600
        )
        if check and result.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def add_package(self) -> None:
        """`pulumi package add` of the checkout's package: the `packages:` entry it writes is all the
        program needs."""
        self.pulumi("package", "add", str(REPOSITORY / "package"))
        project = yaml.safe_load((self.directory / "Pulumi.yaml").read_text())
        assert project["packages"] == {"mlops-ci": str(REPOSITORY / "package")}
        self.pulumi("stack", "init", "dev")


@pytest.fixture
def space(tmp_path: Path) -> Any:
    assert CLI is not None
    workspace = Workspace(tmp_path, "vision-team", CLI)
    seed = {"dvc.yaml": b"stages: {}\n", "requirements-freeze.txt": b"dvc[gs]\n"}
    platform.create_repository(open_cloud(workspace.cloud_dir), "github", TEAM["repository"], ["main"], seed)
    yield workspace
    services.stop(workspace.cloud_dir)


def test_a_yaml_program_creates_one_teams_stack_with_the_component_then_destroys_it(space: Workspace) -> None:
    cloud = open_cloud(space.cloud_dir)
    program = YamlProgram(space, TEAM)
    program.add_package()

    up = program.pulumi("up", "--yes", "--skip-preview", "--stack", "dev")
    outputs = json.loads(program.pulumi("stack", "output", "--json", "--stack", "dev").stdout)

    # As many as the Python program creates (tests/localcloud/test_engine.py): providers, component, children.
    assert "+ 17 created" in up.stdout
    assert outputs["bucketName"] == "acme-ml-vision-vision-team-dvc"  # derived from the component's name, as from a stack's
    assert outputs["ciFile"] == ".github/workflows/mlops.yaml"
    repo = Path(platform.find_repository(cloud, "github", TEAM["repository"])["gitDir"])  # type: ignore[index]
    workflow = platform.file_content(repo, "main", ".github/workflows/mlops.yaml")
    assert workflow is not None
    assert b"run: python3 .mlops-ci/vision-team.py repro\n" in workflow
    key_json = platform.ci_environment(cloud, "github", TEAM["repository"])["GOOGLE_SERVICE_ACCOUNT_KEY"]
    assert json.loads(key_json)["client_email"] == outputs["serviceAccountEmail"]
    assert sign_in(json.loads(key_json))
    state = "".join(path.read_text() for path in space.backend.rglob("dev.json"))
    assert "PRIVATE KEY" not in state  # the key travelled as a secret through the package too
    created = sorted(kind for op, kind in operations(cloud) if op == "create")
    assert created == [
        "Account",
        "ActionsSecret",
        "Bucket",
        "BucketIAMMember",
        "Key",
        "RepositoryFile",
        "RepositoryFile",
        "Service",
        "Service",
    ]

    program.pulumi("destroy", "--yes", "--skip-preview", "--stack", "dev")

    assert platform.file_content(repo, "main", ".github/workflows/mlops.yaml") is None
    assert platform.ci_environment(cloud, "github", TEAM["repository"]) == {}


def test_bad_inputs_are_one_error_listing_every_problem_before_any_resource(space: Workspace) -> None:
    program = YamlProgram(space, {**TEAM, "access": "all", "bucketName": "Bad_Name"})
    program.add_package()

    up = program.pulumi("up", "--yes", "--skip-preview", "--stack", "dev", check=False)

    assert up.returncode != 0
    assert "stack 'vision-team' has 2 configuration problems; nothing was created:" in up.stdout
    assert "- mlops-ci:access = 'all': one of pull, push, admin" in up.stdout
    assert "- mlops-ci:bucketName = 'Bad_Name'" in up.stdout
    assert "Traceback" not in up.stdout + up.stderr
    assert 'File "' not in up.stdout
    assert operations(open_cloud(space.cloud_dir)) == []


def test_the_allow_lists_are_the_programs_own_project_file(space: Workspace) -> None:
    """README 'Other languages': `platform:` of the program's Pulumi.yaml, as this repository's for a stack file."""
    program = YamlProgram(space, TEAM)
    project = yaml.safe_load((program.directory / "Pulumi.yaml").read_text())
    project["platform"] = {"repositories": ["acme-ml/churn-*"]}
    (program.directory / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    program.add_package()

    up = program.pulumi("up", "--yes", "--skip-preview", "--stack", "dev", check=False)

    assert up.returncode != 0
    assert "- mlops-ci:repository = 'acme-ml/vision-experiments'" in up.stdout, up.stdout
    assert operations(open_cloud(space.cloud_dir)) == []
