"""`make demo`: a demo that fails says which step failed and why, and destroys what it created."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

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


def test_a_keyless_demo_runs_the_red_step_with_what_the_runner_had(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Red team (rkl): "CI red: access revoked" runs the pipeline after destroy "with the credential
    CI had (a copy a runner kept)". A keyless stack stores no secret, so the kept copy is None and the
    red run is a plain local-ci after destroy: red because the provider variable is gone, which
    proves nothing about the principal set's grants being removed (README: "which the token endpoint
    now refuses"). The red run must get what the runner had."""
    from localcloud import chapter

    operations(monkeypatch)
    provider = "projects/123/locations/global/workloadIdentityPools/ci-pool/providers/ci-pool"
    stored = {"GCP_WORKLOAD_IDENTITY_PROVIDER": provider}  # direct keyless: no secret, one variable
    plan = SimpleNamespace(platform="github", repository="acme-ml/recsys", secret_name="GOOGLE_SERVICE_ACCOUNT_KEY")

    answers: dict[str, Any] = {"push": 0, "workspace": SimpleNamespace(config={}), "plan": plan, "stored": stored}

    def stand_in(what: str) -> Any:
        def answer(*_: object) -> Any:
            return answers.get(what)

        return answer

    monkeypatch.setattr(localcloud_main, "run_push", stand_in("push"))
    monkeypatch.setattr(localcloud_main, "_workspace", stand_in("workspace"))
    monkeypatch.setattr(localcloud_main, "open_cloud", stand_in("cloud"))
    monkeypatch.setattr(chapter.Stack, "from_config", staticmethod(stand_in("plan")))
    monkeypatch.setattr(chapter.platform, "ci_environment", stand_in("stored"))
    given: list[str | None] = []

    def ci(root: Path, stack: str, credential: str | None = None) -> int:
        given.append(credential)
        return 0 if len(given) == 1 else 1

    monkeypatch.setattr(localcloud_main, "_ci", ci)
    localcloud_main.run_demo(tmp_path, "recsys-team")
    assert len(given) == 2, "CI green, then CI red after destroy"
    assert given[1] is not None, "the red run after destroy got nothing the runner had: it is a plain local-ci"
