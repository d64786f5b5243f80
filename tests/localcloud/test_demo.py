"""`make demo`: a demo that fails says which step failed and why, and destroys what it created."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import localcloud.__main__ as localcloud_main

pytestmark = pytest.mark.localcloud


def operations(monkeypatch: pytest.MonkeyPatch, up: int = 0) -> list[str]:
    """The Pulumi operations the demo runs, recorded instead of run (`up` exits with `up`)."""
    done: list[str] = []

    def run_pulumi(root: Path, stack: str, operation: str) -> int:
        done.append(operation)
        return up if operation == "up" else 0

    monkeypatch.setattr(localcloud_main, "run_pulumi", run_pulumi)
    return done


def test_a_step_that_raises_is_a_failed_step_and_the_stack_is_destroyed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    done = operations(monkeypatch)

    def push(root: Path, stack: str) -> int:
        raise subprocess.CalledProcessError(1, ["dvc", "push"])

    monkeypatch.setattr(localcloud_main, "run_push", push)
    assert localcloud_main.run_demo(tmp_path, "recsys-team") == 1
    assert done == ["up", "destroy"]
    shown = capsys.readouterr()
    assert "dvc push (nextSteps): failed: CalledProcessError: Command '['dvc', 'push']'" in shown.err
    assert "Traceback" not in shown.out + shown.err
    assert shown.out.rstrip().splitlines()[-3:] == ["ok  pulumi up", "FAILED dvc push (nextSteps)", "ok  pulumi destroy"]


def test_a_failed_up_is_destroyed_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A failed `pulumi up` can leave what it created before the failure.
    done = operations(monkeypatch, up=255)
    assert localcloud_main.run_demo(tmp_path, "recsys-team") == 1
    assert done == ["up", "destroy"]
    assert capsys.readouterr().out.rstrip().splitlines()[-2:] == ["FAILED pulumi up", "ok  pulumi destroy"]
