"""Item 8: no value of STACK (or LOCAL) is ever shell code in any target, and a STACK that is not a
stack name (an option, a path, '..') is refused by every target before it does anything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGETS = [
    "plan",
    "check",
    "test",
    "lint",
    "local-up",
    "local-destroy",
    "localcloud-start",
    "localcloud-status",
    "local-ci",
    "demo",
]
REFUSED = "error: STACK: a stack name is 1-100 letters, digits, '_', '.', '-', not starting with '-', without '..' or '/'"


def hostile_stacks(marker: Path) -> list[str]:
    """STACK values that ran code or reached outside before: each would create `marker`."""
    return [
        f'x"; touch {marker}; "',
        f"x; touch {marker}",
        f"$(shell touch {marker})",
        f"$$(touch {marker})",
        f"`touch {marker}`",
        f"x' && touch {marker} && '",
        "--out=/tmp",
        "-lead",
        "../outside",
        "a/b",
        "..",
        "team..x",
        "with space",
        "a" * 101,
        "",
    ]


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env or os.environ.copy(),
    )


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_refuses_a_stack_that_is_not_a_stack_name(target: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for stack in hostile_stacks(marker):
        result = make(target, f"STACK={stack}")
        assert result.returncode == 2, (stack, result.stdout, result.stderr)
        assert REFUSED in result.stderr, (stack, result.stderr)
        assert not marker.exists(), f"STACK={stack!r} ran code in make {target}"


def test_a_stack_from_the_environment_is_refused_too(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    result = make("plan", env={**os.environ, "STACK": f"x;touch {marker}"})
    assert result.returncode == 2
    assert REFUSED in result.stderr
    assert not marker.exists()


LOCAL_REFUSED = "error: LOCAL: a directory path of letters, digits, '_', '.', '-', '/', not starting with '-'"


def checkout_entries() -> set[Path]:
    """What is in the checkout's top directory and in build/local (where LOCAL's default lives)."""
    return {*ROOT.iterdir(), *(ROOT / "build" / "local").glob("*")}


@pytest.mark.parametrize("target", ["localcloud-status", "localcloud-start", "local-up", "demo"])
def test_local_is_never_shell_code_and_creates_nothing(target: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    before = checkout_entries()
    for local in (f"$(shell touch {marker})", f"x; touch {marker}", f'x"; touch {marker}; "', "-x", "with space"):
        result = make(target, f"LOCAL={local}")
        assert (result.returncode, result.stderr.splitlines()[0]) == (2, LOCAL_REFUSED), (local, result.stderr)
        assert not marker.exists(), f"LOCAL={local!r} ran code"
    assert checkout_entries() == before, "a refused LOCAL left a directory in the checkout"


def test_the_status_of_a_local_cloud_never_started_creates_nothing(tmp_path: Path) -> None:
    local = tmp_path / "never" / "started"
    result = make("localcloud-status", f"LOCAL={local}")
    assert (result.returncode, result.stdout.strip().splitlines()[-1]) == (2, "not running"), result.stderr
    assert not local.parent.exists()


def test_a_good_stack_still_plans(tmp_path: Path) -> None:
    result = make("plan", "STACK=nlp-team")
    assert result.returncode == 0, result.stderr
    assert "mlops-ci offline plan for stack nlp-team" in result.stdout


@pytest.mark.parametrize("kind", ["a file", "a name too long"])
def test_a_local_that_cannot_be_the_state_directory_is_one_error_not_a_traceback(kind: str, tmp_path: Path) -> None:
    # Red team (tpl): LOCAL passes local-dir when it names an existing file (README.md) or a name longer
    # than the file system allows; `make localcloud-start` then ends in FileExistsError / OSError
    # [Errno 36] tracebacks instead of one error naming LOCAL and the rule.
    local = "README.md" if kind == "a file" else str(tmp_path / ("a" * 300))
    result = make("localcloud-start", f"LOCAL={local}")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: LOCAL:"), result.stderr


@pytest.mark.parametrize("local", [".", "./", "..", "/", "/usr/lib/mlops", "/etc", "/tmp", "stacks/.."])
def test_a_local_at_or_above_the_checkout_or_a_system_directory_is_refused(local: str) -> None:
    # The local cloud deletes and rebuilds team-clone/ (and its state) inside LOCAL: never the checkout,
    # a directory holding it, or a directory of the system's.
    result = make("local-dir", f"LOCAL={local}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: LOCAL:"), result.stderr
    assert "Traceback" not in result.stderr
