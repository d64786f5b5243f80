"""The runner's tool cache, laid out as on GitHub's hosted runner images: each Python in
`$RUNNER_TOOL_CACHE/Python/<version>/x64`, complete when `x64.complete` is beside it (what
actions/setup-python finds through `@actions/tool-cache`). The images carry several Pythons;
this runner offers the one a workflow asks for, taken from this machine (pyenv's versions, then
`python<major>.<minor>` on PATH) as a virtualenv of its own, so that what the job installs stays
in the run (a hosted runner starts each job from its image) and never reaches the machine's
Python. Seeded with pip by virtualenv from its own wheels, in well under a second."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import virtualenv

ARCHITECTURE = "x64"
VIRTUALENV_APP_DATA = Path(tempfile.gettempdir()) / f"mlops-ci-virtualenv-{os.getuid()}"
VERSION = re.compile(r"\d+(\.\d+){0,2}")


class NoSuchPythonError(LookupError):
    """This machine has no Python of the version a workflow asks for."""


def candidates(minor: str, path: str) -> Iterator[Path]:
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if pyenv.is_dir():
        for version in sorted(pyenv.iterdir(), reverse=True):
            if re.fullmatch(rf"{re.escape(minor)}\.\d+", version.name):
                yield version / "bin" / f"python{minor}"
    if found := shutil.which(f"python{minor}", path=path):
        yield Path(found)


def interpreter_version(executable: Path) -> str | None:
    probe = "import sys; print('.'.join(map(str, sys.version_info[:3])))"
    try:
        result = subprocess.run([executable, "-c", probe], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def machine_python(spec: str, path: str) -> tuple[Path, str]:
    """This machine's newest Python matching `spec` (3.13, or 3.13.1): its executable and version."""
    if not VERSION.fullmatch(spec) or spec.count(".") == 0:
        raise NoSuchPythonError(f"python-version {spec!r}: the runner's tool cache offers versions like 3.13 or 3.13.1")
    minor = ".".join(spec.split(".")[:2])
    found = [(version, executable) for executable in candidates(minor, path) if (version := interpreter_version(executable))]
    matching = sorted(((tuple(map(int, v.split("."))), v, e) for v, e in found if f"{v}.".startswith(f"{spec}.")), reverse=True)
    if not matching:
        raise NoSuchPythonError(
            f"no Python {spec} on this machine for the runner's tool cache (looked in pyenv's versions and for "
            f"python{minor} on PATH): install one, e.g. `pyenv install {minor}`"
        )
    _, version, executable = matching[0]
    return executable, version


def provide(tool_cache: Path, spec: str, path: str) -> Path:
    """The tool cache's Python for `spec`, created if the cache lacks it: its install directory."""
    executable, version = machine_python(spec, path)
    install_dir = tool_cache / "Python" / version / ARCHITECTURE
    if not install_dir.with_name(f"{ARCHITECTURE}.complete").is_file():
        virtualenv.cli_run(
            [
                "--quiet", "--no-download", "--no-periodic-update", "--no-vcs-ignore",
                f"--app-data={VIRTUALENV_APP_DATA}", f"--python={executable}", str(install_dir),
            ],
            setup_logging=False,
        )  # fmt: skip
        install_dir.with_name(f"{ARCHITECTURE}.complete").touch()
    return install_dir
