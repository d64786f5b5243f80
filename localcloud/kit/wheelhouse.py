"""Wheels for what a CI job installs (uv, then the sample project's requirements), so a job's
install reads local files (seconds) instead of PyPI (network, minutes). Built once and kept in
build/, under a digest of everything that decides its content. The e2e proof and the local cloud's
`make local-ci` share it.

Two kinds of job Python need wheels: GitLab's jobs run in a shell with this machine's python3
(the e2e virtualenv's), GitHub's with the runner's tool-cache Python that setup-python asks for
(localcloud/actions/tool_cache.py), by default the version the stacks' `pythonVersion` defaults to."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from localcloud.actions import tool_cache
from mlops_ci.ci.files import UV_VERSION
from mlops_ci.settings.schema import SCHEMA

from . import sample_project as sample
from .commands import E2E_VENV, ROOT, run

CONSTRAINTS = ROOT / "constraints-e2e.txt"
# What a job installs: uv (the committed file pins it), then the sample project's requirements.
JOB_REQUIREMENTS = f"uv=={UV_VERSION}\n{sample.REQUIREMENTS}"
WHEELHOUSES = ROOT / "build" / "e2e-wheelhouse"
WHEEL_TIMEOUT = 900
DEFAULT_PYTHON_VERSION = str(SCHEMA.key("pythonVersion").default_text)


def job_pythons(python_versions: Iterable[str]) -> list[tuple[Path, str]]:
    """Each interpreter whose jobs install from the wheelhouse, and its version."""
    e2e = E2E_VENV / "bin" / "python"
    pythons = {str(e2e): (e2e, (E2E_VENV / "pyvenv.cfg").read_text())}
    for version in sorted(set(python_versions)):
        executable, full = tool_cache.machine_python(version, os.environ["PATH"])
        pythons[str(executable)] = (executable, full)
    return sorted(pythons.values())


def wheelhouse(python_versions: Iterable[str] = (DEFAULT_PYTHON_VERSION,)) -> Path:
    """The wheelhouse for the e2e virtualenv's Python and for the tool cache's `python_versions`."""
    return built(JOB_REQUIREMENTS, CONSTRAINTS, job_pythons(python_versions))


def program_wheelhouse(python: Path) -> Path:
    """Wheels of what the program needs (requirements.txt, with constraints.txt) and of what Pulumi's pip
    toolchain upgrades first in a new virtualenv (pip, setuptools, wheel), for `python`: a project made
    by `pulumi new` installs mlops-ci's wheel with these, without an index."""
    requirements = (ROOT / "requirements.txt").read_text() + "pip\nsetuptools\nwheel\n"
    version = subprocess.run([python, "-VV"], capture_output=True, text=True, check=True).stdout
    return built(requirements, ROOT / "constraints.txt", [(python, version)])


def built(requirements_text: str, constraints: Path, pythons: list[tuple[Path, str]]) -> Path:
    """`pip wheel` of `requirements_text` for each of `pythons` (interpreter, its version), kept in
    build/e2e-wheelhouse under a digest of everything that decides its content (built once; this step downloads)."""
    digest = hashlib.sha256(
        "\0".join((requirements_text, constraints.read_text(), *(f"{e}={v}" for e, v in pythons))).encode()
    ).hexdigest()[:16]
    target = WHEELHOUSES / digest
    if not target.is_dir():
        staging = WHEELHOUSES / f"{digest}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        requirements = staging / "requirements.txt"
        requirements.write_text(requirements_text)
        for executable, _ in pythons:
            # This machine's pip configuration (index, certificates) applies: this step downloads.
            pip_wheel = [executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--wheel-dir", staging]
            run([*pip_wheel, "-r", requirements, "--constraint", constraints], cwd=ROOT, env=os.environ, timeout=WHEEL_TIMEOUT)
        requirements.unlink()
        staging.rename(target)
    return target


def install_env(house: Path) -> dict[str, str]:
    """What makes a job's pip and uv install from `house` only, with the e2e constraints."""
    return {
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(house),
        "PIP_CONSTRAINT": str(CONSTRAINTS),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "UV_NO_INDEX": "1",
        # uv 0.13.8 still asks https://pypi.org/simple/ with UV_NO_INDEX (seen with -v): offline, it does not
        "UV_OFFLINE": "1",
        "UV_FIND_LINKS": str(house),
        "UV_CONSTRAINT": str(CONSTRAINTS),
        "UV_PYTHON_DOWNLOADS": "never",
    }
