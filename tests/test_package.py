"""mlops-ci as a wheel: what `pip install mlops-ci` gets, and that it works outside this repository."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import mlops_ci
from tests.helpers import build_wheel

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


def test_the_wheel_holds_the_package_and_its_data_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    sources = {path.relative_to(ROOT).as_posix() for path in (ROOT / "mlops_ci").rglob("*") if path.is_file()}
    packaged = {name for name in names if not name.startswith("mlops_ci-")}
    assert packaged == {name for name in sources if "__pycache__" not in name}
    assert "mlops_ci/settings/config.yaml" in packaged
    assert {"mlops_ci/ci/templates/github-workflow.yaml.j2", "mlops_ci/ci/templates/gitlab-ci.yml.j2"} <= packaged


def test_its_version_and_dependencies_are_the_repositorys(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        metadata = Parser().parsestr(archive.read(f"mlops_ci-{mlops_ci.__version__}.dist-info/METADATA").decode())
    assert metadata["Name"] == "mlops-ci"
    assert metadata["Version"] == mlops_ci.__version__
    pins = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert metadata.get_all("Requires-Dist") == pins
    assert f"## {mlops_ci.__version__}" in (ROOT / "CHANGELOG.md").read_text()


def test_installed_it_validates_a_stack_outside_this_repository(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)]
    subprocess.run(install, check=True, timeout=300)
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: team\nruntime: python\nplatform:\n  existingBuckets: [team-*]\n")
    probe = (
        "import mlops_ci.settings.schema as s, mlops_ci.ci.files, mlops_ci.settings.loader;"
        "print(s.__file__); print(s.SCHEMA.key('branch').default, s.SCHEMA.existing_buckets)"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    shown = subprocess.run([sys.executable, "-c", probe], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [str(site / "mlops_ci/settings/schema.py"), "main ('team-*',)"]
