"""Subprocesses of the proof: every one has a timeout and runs in its own process group, so a
timeout or a failing test never leaves a CI job's grandchildren (dvc, pip) running."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
E2E_VENV = ROOT / ".venv-e2e"
NODE_BIN = ROOT / "node_modules" / ".bin"
# Host variables that would let a job succeed for the wrong reason (credentials, a DVC or pip
# setup of this machine, a virtualenv) or change what git does.
LEAKY_PREFIXES = (
    *("GOOGLE_", "CLOUDSDK_", "GCE_", "STORAGE_EMULATOR_", "GCSFS_"),
    *("DVC_", "PIP_", "UV_", "VIRTUAL_ENV", "PYTHONPATH", "GIT_"),
    # Set on this machine, never on a hosted runner nor in the python image: with it, every Python
    # start of a job compiles all it imports again (uv writes no bytecode; pip does, whatever it says).
    "PYTHONDONTWRITEBYTECODE",
)


class CommandError(AssertionError):
    """A command that failed or timed out, with its output."""


def run(
    args: Sequence[str | Path],
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`args` with stdout and stderr merged; raises CommandError on timeout, and on a non-zero
    exit if `check`."""
    process = subprocess.Popen(
        [str(arg) for arg in args],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process(process)
        output, _ = process.communicate()
        raise CommandError(f"timed out after {timeout} s: {describe(args)}\n{output}") from None
    if check and process.returncode != 0:
        raise CommandError(f"exit {process.returncode}: {describe(args)}\n{output}")
    return subprocess.CompletedProcess(process.args, process.returncode, output)


def stop_process(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """Terminate the process group of `process` (started with start_new_session), then kill it."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def describe(args: Sequence[str | Path]) -> str:
    # Command lines can carry a CI variable's value: show the program and its first arguments.
    return " ".join(str(arg) for arg in args[:3]) + (" ..." if len(args) > 3 else "")


def without_virtualenvs(path: str) -> str:
    """PATH without this repository's tools (.venv, .venv-e2e, node_modules) or an activated
    virtualenv."""
    excluded = [ROOT.resolve(), Path(os.environ.get("VIRTUAL_ENV", ROOT)).resolve()]
    entries = [entry for entry in path.split(os.pathsep) if entry]
    return os.pathsep.join(e for e in entries if not any(Path(e).resolve().is_relative_to(x) for x in excluded))


def host_env(root: Path) -> dict[str, str]:
    """This machine's environment as a CI runner's: no credentials, no virtualenv on PATH (a job
    must install its own tools); HOME, TMPDIR and DVC's site cache under `root`, so that a scan
    of `root` sees every file a job writes outside its workspace."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(LEAKY_PREFIXES)}
    env["PATH"] = without_virtualenvs(env["PATH"])
    for directory in ("home", "tmp"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    # The runner's git identity: commits need one, and gitlab-ci-local reads it.
    (root / "home" / ".gitconfig").write_text("[user]\n\tname = mlops-ci e2e\n\temail = e2e@example.com\n")
    return env | {
        "HOME": str(root / "home"),
        "TMPDIR": str(root / "tmp"),
        "DVC_SITE_CACHE_DIR": str(root / "home" / ".dvc-site-cache"),
        "DVC_NO_ANALYTICS": "1",
    }
