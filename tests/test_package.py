"""mlops-ci as a wheel: what `pip install mlops-ci` gets, and that it works outside this repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest

import mlops_ci
import tools.wheel as wheel_tool
from tools.wheel import build_wheel

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


def test_a_file_left_in_setuptools_build_directory_is_not_shipped(tmp_path: Path) -> None:
    # setuptools copies the package into build/lib and never empties it: a module removed since an earlier build
    # stayed there, and an in-place build shipped it.
    left = ROOT / "build" / "lib" / "mlops_ci" / "removed_since.py"
    left.parent.mkdir(parents=True, exist_ok=True)
    left.write_text("REMOVED = True\n")
    try:
        built = build_wheel(tmp_path)
    finally:
        left.unlink()
    assert "mlops_ci/removed_since.py" not in zipfile.ZipFile(built).namelist()


def test_a_wheel_of_an_older_version_left_in_the_output_is_not_taken_for_the_new_one(tmp_path: Path) -> None:
    # build/dist keeps the wheels of earlier versions: `make wheel` failed there after a version bump.
    older = tmp_path / "mlops_ci-0.0.1-py3-none-any.whl"
    older.write_bytes(b"an earlier build")
    built = build_wheel(tmp_path)
    assert built == tmp_path / f"mlops_ci-{mlops_ci.__version__}-py3-none-any.whl"
    assert older.read_bytes() == b"an earlier build"


def test_the_printed_export_line_names_the_wheel_to_the_templates_requirements_whatever_the_checkouts_path(
    tmp_path: Path,
) -> None:
    # The line is pasted into a shell, and the template's requirements.txt reads `file://${MLOPS_CI_WHEEL}`: a space
    # broke that line ("Invalid requirement"), a '"', '$' or '`' the shell's.
    out = tmp_path / 'd\u00e9p\u00f4t "$HOME" `false` it\'s #1 100%'
    printed = subprocess.run(
        [sys.executable, "tools/wheel.py", str(out)], cwd=ROOT, capture_output=True, text=True, check=True, timeout=300
    ).stdout
    [line] = printed.splitlines()
    pip = f"{sys.executable} -m pip install --dry-run --no-deps --no-index --disable-pip-version-check"
    shell = subprocess.run(
        ["bash", "-c", f"{line}\n{pip} -r templates/python/requirements.txt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert f"Would install mlops-ci-{mlops_ci.__version__}" in shell.stdout, shell.stderr
    assert str(out) in shell.stdout  # pip's "Processing <path>": the path decoded


def test_every_file_pyproject_names_goes_into_the_copy_the_wheel_is_built_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # setuptools skips a file named in `dynamic` that is absent, without a word: a second requirements file added to
    # pyproject.toml but not copied would be a wheel without those dependencies.
    checkout = copy_of_the_sources(tmp_path / "checkout")
    pyproject = (ROOT / "pyproject.toml").read_text()
    named = 'dependencies = { file = ["requirements.txt"] }'
    assert named in pyproject
    (checkout / "pyproject.toml").write_text(pyproject.replace(named, named.replace('"]', '", "extra.txt"]')))
    (checkout / "extra.txt").write_text("extra-pin==1.0\n")
    monkeypatch.setattr(wheel_tool, "ROOT", checkout)
    built = build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(built) as archive:
        metadata = Parser().parsestr(archive.read(f"mlops_ci-{mlops_ci.__version__}.dist-info/METADATA").decode())
    assert "extra-pin==1.0" in (metadata.get_all("Requires-Dist") or [])
    assert metadata["Description-Content-Type"] == "text/markdown"  # the readme too


def test_a_symbolic_link_in_the_package_stops_the_build_before_its_target_is_shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A link committed as a template (`*.j2` is package data) shipped whatever it points to on the builder's machine.
    checkout = copy_of_the_sources(tmp_path / "checkout")
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY\n")
    (checkout / "mlops_ci" / "ci" / "templates" / "leak.j2").symlink_to(secret)
    monkeypatch.setattr(wheel_tool, "ROOT", checkout)
    with pytest.raises(SystemExit) as stopped:
        build_wheel(tmp_path / "dist")
    assert str(stopped.value) == (
        "make wheel: mlops_ci/ci/templates/leak.j2 is a symbolic link: the wheel would hold what it points to;"
        " replace it by the file"
    )
    assert not (tmp_path / "dist").exists()


def copy_of_the_sources(checkout: Path) -> Path:
    """A checkout of the wheel's sources only (the package, pyproject.toml and the files it names), to alter."""
    shutil.copytree(ROOT / "mlops_ci", checkout / "mlops_ci", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy2(ROOT / name, checkout / name)
    return checkout


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


def impostor_index(root: Path) -> Path:
    """A package index (PEP 503 pages on disk) offering someone else's `mlops-ci` 0.1.0: the name is not
    claimed on PyPI, so anyone may publish it there."""
    project = root / "simple" / "mlops-ci"
    project.mkdir(parents=True)
    name = f"mlops_ci-{mlops_ci.__version__}-py3-none-any.whl"
    info = f"mlops_ci-{mlops_ci.__version__}.dist-info"
    with zipfile.ZipFile(project / name, "w") as archive:
        archive.writestr("mlops_ci/__init__.py", "raise SystemExit('not mlops-ci')\n")
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: mlops-ci\nVersion: {mlops_ci.__version__}\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    (project / "index.html").write_text(f'<html><body><a href="{name}">{name}</a></body></html>\n')
    return root / "simple"


def test_the_templates_requirements_never_take_mlops_ci_from_a_package_index(wheel: Path, tmp_path: Path) -> None:
    # Red team (tpl): templates/python/requirements.txt says `mlops-ci==0.1.0`, a bare name pip also looks
    # up on the index, with PIP_FIND_LINKS set as the template README says (pip 23.2 then took the index's
    # 0.1.0) or forgotten (a new terminal): whoever publishes mlops-ci 0.1.0 on PyPI runs code with the
    # team's cloud credentials. Expected: only this checkout's wheel satisfies it (a hash, a direct reference).
    index = impostor_index(tmp_path)
    requirements = ROOT / "templates" / "python" / "requirements.txt"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed", "-q"]
    command += ["--index-url", index.as_uri(), "-r", str(requirements)]
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    for links in ({"PIP_FIND_LINKS": str(wheel.parent)}, {}):
        report = tmp_path / f"report-{len(links)}.json"
        resolved = subprocess.run([*command, "--report", str(report)], env={**clean, **links}, capture_output=True, timeout=300)
        chosen: list[dict[str, Any]] = json.loads(report.read_text())["install"] if resolved.returncode == 0 else []
        urls = [str(entry["download_info"]["url"]) for entry in chosen]
        assert not [url for url in urls if url.startswith(index.as_uri())], (links, urls)


@pytest.mark.parametrize("arguments", [[], ["a", "b"]])
def test_the_wheel_builder_without_one_directory_says_how_it_is_called(arguments: list[str]) -> None:
    command = [sys.executable, "tools/wheel.py", *arguments]
    called = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    usage = "usage: python tools/wheel.py <directory for the wheel> (make wheel: build/dist)\n"
    assert (called.returncode, called.stderr) == (1, usage)
