"""Wheels for what a CI job installs (uv, then the sample project's requirements), so a job's
install reads local files (seconds) instead of PyPI (network, minutes). Built once and kept in
build/, under a digest of everything that decides its content. The e2e proof and the local cloud's
`make local-ci` share it."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from mlops_ci.ci.files import UV_VERSION

from . import sample_project as sample
from .commands import E2E_VENV, ROOT, run

CONSTRAINTS = ROOT / "constraints-e2e.txt"
# What a job installs: uv (the committed file pins it), then the sample project's requirements.
JOB_REQUIREMENTS = f"uv=={UV_VERSION}\n{sample.REQUIREMENTS}"
WHEELHOUSES = ROOT / "build" / "e2e-wheelhouse"
WHEEL_TIMEOUT = 900


def wheelhouse() -> Path:
    digest = hashlib.sha256(
        "\0".join((JOB_REQUIREMENTS, CONSTRAINTS.read_text(), (E2E_VENV / "pyvenv.cfg").read_text())).encode()
    ).hexdigest()[:16]
    target = WHEELHOUSES / digest
    if not target.is_dir():
        staging = WHEELHOUSES / f"{digest}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        requirements = staging / "requirements.txt"
        requirements.write_text(JOB_REQUIREMENTS)
        # This machine's pip configuration (index, certificates) applies: this step downloads.
        pip_wheel = [E2E_VENV / "bin/pip", "wheel", "--quiet", "--wheel-dir", staging, "-r", requirements]
        run([*pip_wheel, "--constraint", CONSTRAINTS], cwd=ROOT, env=os.environ, timeout=WHEEL_TIMEOUT)
        requirements.unlink()
        staging.rename(target)
    return target
