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


def test_local_is_never_shell_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for local in (f"$(shell touch {marker})", f"x; touch {marker}", f'x"; touch {marker}; "'):
        make("localcloud-status", f"LOCAL={local}")
        assert not marker.exists(), f"LOCAL={local!r} ran code"


def test_a_good_stack_still_plans(tmp_path: Path) -> None:
    result = make("plan", "STACK=nlp-team")
    assert result.returncode == 0, result.stderr
    assert "mlops-ci offline plan for stack nlp-team" in result.stdout
