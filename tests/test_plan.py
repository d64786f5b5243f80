"""The offline plan: the README's main command prints what the program would do and writes the CI file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops_ci.offline import plan
from mlops_ci.offline.runtime import evaluate
from mlops_ci.offline.stacks import ENCRYPTED_PLACEHOLDER, load_stack_file, stack_files
from tests.helpers import key_material

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("stack_file", stack_files(), ids=lambda p: p.name)
def test_plan_lists_every_resource_and_writes_the_committed_ci_file(stack_file: Path, tmp_path: Path) -> None:
    stack = load_stack_file(stack_file)
    output = plan.plan(stack.stack, tmp_path)
    evaluation = evaluate(stack.stack, stack.config, stack.secret_keys)
    for registration in evaluation.registrations:
        if registration.custom:
            assert f"  + {registration.type}  {registration.name}\n" in output
    for path, content in plan.ci_files(evaluation).items():
        assert (tmp_path / stack.stack / path).read_text() == content
        assert f"{path} -> {tmp_path / stack.stack / path}" in output
    # The key, or a secret of the stack file (readme-team's github:token reaches its provider).
    assert ("[secret]" in output) == bool(key_material(evaluation) or stack.secret_keys)
    assert not any(m in output for m in key_material(evaluation))
    for name, value in evaluation.exports.items():
        lines = str(value).splitlines()
        shown = f"  {name} =\n" + "".join(f"      {line}\n" for line in lines) if len(lines) > 1 else f"  {name} = {value}\n"
        assert shown in output


def test_plan_shows_what_each_resource_waits_for(tmp_path: Path) -> None:
    output = plan.plan(plan.DEFAULT_STACK, tmp_path)
    ci_file_block = output.split("github:index/repositoryFile:RepositoryFile  github-ci-file")[1]
    assert "waits for: ci-identity-objectviewer, github-job-script, github-provider, github-secret" in ci_file_block
    job_script_block = output.split("github:index/repositoryFile:RepositoryFile  github-job-script")[1]
    assert "waits for: ci-identity-objectviewer, github-provider, github-secret\n" in job_script_block
    assert ".mlops-ci/vision-team.py -> " in output, "the plan writes the job script beside the CI file"
    assert "options: retain_on_delete" in output.split("dvc-remote-bucket")[1].split("  + ")[0]


@pytest.mark.parametrize(("stack", "mode"), [("vision-team", "auth key"), ("recsys-team", "auth workload-identity")])
def test_plan_shows_the_credential_mode(stack: str, mode: str, tmp_path: Path) -> None:
    assert f"Credential: {mode} (" in plan.plan(stack, tmp_path)


def test_bad_stack_file_gets_the_same_error_as_pulumi_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.broken.yaml").write_text(
        "config:\n  gcp:project: acme-ml\n  mlops-ci:platform: github\n  mlops-ci:repository: nope\n  mlops-ci:access: all\n"
    )
    with pytest.raises(Exception, match="2 configuration problems") as raised:
        plan.plan("broken", tmp_path / "out", stacks_dir=stacks)
    assert "mlops-ci:repository = 'nope'" in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_encrypted_values_stay_marked_secret(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.t.yaml"
    stack_file.write_text(
        "config:\n  gcp:project: acme-ml\n  mlops-ci:platform: github\n  mlops-ci:repository: a/b\n"
        "  github:token:\n    secure: v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n  mlops-ci:protectBucket: false\n"
    )
    stack = load_stack_file(stack_file)
    assert stack.config.items() >= {"github:token": ENCRYPTED_PLACEHOLDER, "mlops-ci:protectBucket": "false"}.items()
    assert stack.secret_keys == ("github:token",)


@pytest.mark.parametrize(
    ("argv", "code", "stream", "text"),
    [
        (["nlp-team"], 0, "stdout", "gitlab:index/projectVariable:ProjectVariable  gitlab-variable"),
        (["no-such-team"], 2, "stderr", "error: no stack file"),
    ],
)
def test_plan_command(argv: list[str], code: int, stream: str, text: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mlops_ci.offline.plan", *argv, "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == code, result.stderr
    assert text in getattr(result, stream)
