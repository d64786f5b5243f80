"""The GitHub emulation's actions stand for what a hosted runner gives a job. setup-python: the
tool cache's Python, first on PATH, with the pip and setuptools of `python3 -m venv` (what the
emulation created before, and what both the committed job and the guide's install with), each
job's its own."""

from __future__ import annotations

import ensurepip
import json
from pathlib import Path

import pytest

from .ci_runners import GithubJob, setup_python
from .commands import host_env, run

pytestmark = pytest.mark.e2e


def job_on_runner(tmp_path: Path, name: str) -> GithubJob:
    workspace, runner_temp = tmp_path / name / "workspace", tmp_path / name / "runner-temp"
    workspace.mkdir(parents=True)
    runner_temp.mkdir()
    return GithubJob(
        name=name,
        workspace=workspace,
        runner_temp=runner_temp,
        artifacts=tmp_path / "artifacts",
        env=host_env(tmp_path / name / "home"),
        contexts={},
        first=True,
    )


def job_python(job: GithubJob) -> dict[str, str]:
    """What the job's `python` and `pip` are, as a `run:` step after setup-python finds them."""
    where = "import json, shutil, sys; print(json.dumps({'prefix': sys.prefix, 'pip_path': shutil.which('pip')}))"
    script = f'python -c "{where}" && pip list --format=json --disable-pip-version-check'
    output = run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], job.workspace, job.env, timeout=60).stdout
    paths, packages = output.splitlines()[:2]
    return json.loads(paths) | {package["name"]: package["version"] for package in json.loads(packages)}


def test_setup_python_gives_each_job_its_own_python_with_the_bundled_pip(tmp_path: Path) -> None:
    first, second = job_on_runner(tmp_path, "first"), job_on_runner(tmp_path, "second")
    for job in (first, second):
        setup_python(job, {"python-version": "3.11"})
    python = job_python(first)
    assert python["prefix"] == str(first.runner_temp / "python")
    assert python["pip_path"] == str(first.runner_temp / "python" / "bin" / "pip")
    assert python["pip"] == ensurepip.version()
    assert "setuptools" in python
    # What one job installs or removes stays on its runner.
    run(["pip", "uninstall", "--yes", "--quiet", "setuptools"], first.workspace, first.env, timeout=60)
    assert "setuptools" not in job_python(first)
    assert "setuptools" in job_python(second)
