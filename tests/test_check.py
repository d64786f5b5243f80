"""The batch check: every stack file through configuration rules and policies, one report, one
failing stack never stopping the others."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_ci.offline import check
from mlops_ci.offline.analyzer import analyze
from mlops_ci.offline.runtime import Evaluation, Registration, evaluate
from mlops_ci.offline.stacks import STACKS_DIR, stack_files
from tests.helpers import BUCKET, GITLAB_FILE

ROOT = Path(__file__).resolve().parent.parent
# In-process runs stay sequential: this process already runs the SDK's threads, and forking a
# threaded process is unsafe. The command's parallel path is tested in a fresh process below.
SEQUENTIAL = ["--jobs", "1"]
BROKEN_CONFIG = (
    "config:\n  gcp:project: acme-ml\n  mlops-ci:platform: github\n  mlops-ci:repository: nope\n  mlops-ci:access: all\n"
)


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    """A stacks folder: the vision team's real file, a copy of it as the leaky team, a bad config, a bad file."""
    shutil.copy(STACKS_DIR / "Pulumi.vision-team.yaml", tmp_path)
    vision = (STACKS_DIR / "Pulumi.vision-team.yaml").read_text()
    (tmp_path / "Pulumi.leaky-team.yaml").write_text(vision.replace("acme-ml/vision-experiments", "acme-ml/leaky-experiments"))
    (tmp_path / "Pulumi.broken-team.yaml").write_text(BROKEN_CONFIG)
    (tmp_path / "Pulumi.garbled-team.yaml").write_text("config: [not, a, mapping]\n")
    return tmp_path


def public_bucket_for_leaky_team(stack: str, *args: Any, **kwargs: Any) -> Evaluation:
    """The real evaluation, except that the leaky team's program (as if regressed) makes its bucket public."""
    evaluation = evaluate(stack, *args, **kwargs)
    if stack != "leaky-team":
        return evaluation
    registrations = [
        dataclasses.replace(r, inputs=r.inputs | {"publicAccessPrevention": "inherited"}) if r.type == BUCKET else r
        for r in evaluation.registrations
    ]
    return dataclasses.replace(evaluation, registrations=registrations)


def test_every_stack_of_the_repository_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(SEQUENTIAL) == 0
    output = capsys.readouterr().out
    for stack_file in stack_files():
        assert f"OK    {stack_file.name.removeprefix('Pulumi.').removesuffix('.yaml')}\n" in output
    assert f"{len(stack_files())} stacks checked: {len(stack_files())} OK, 0 failed" in output


def test_each_failing_stack_is_reported_by_stack_and_rule_and_the_others_still_run(
    stacks: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(check, "evaluate", public_bucket_for_leaky_team)
    assert check.main([*SEQUENTIAL, "--stacks", str(stacks)]) == 1
    lines = capsys.readouterr().out.splitlines()
    # The settings' own wording of a rule is theirs to change; which stack, rule and key is this report's.
    assert lines[0] == "FAIL  broken-team  [config]  Pulumi.broken-team.yaml: mlops-ci:access = 'all': one of pull, push, admin"
    assert lines[1].startswith("FAIL  broken-team  [config]  Pulumi.broken-team.yaml: mlops-ci:repository = 'nope': ")
    assert lines[2:] == [
        f"FAIL  garbled-team  [stack-file]  Pulumi.garbled-team.yaml: {stacks / 'Pulumi.garbled-team.yaml'}:"
        " expected a mapping with a 'config:' mapping",
        "FAIL  leaky-team  [gcs-bucket-private]  dvc-remote-bucket (gcp:storage/bucket:Bucket):"
        " publicAccessPrevention is 'inherited', must be 'enforced' (the bucket could be made public)",
        "OK    vision-team",
        "4 stacks checked: 1 OK, 3 failed",
    ]


def test_an_unexpected_failure_of_one_program_is_that_stacks_finding(
    stacks: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def crash_for_leaky_team(stack: str, *args: Any, **kwargs: Any) -> Evaluation:
        if stack == "leaky-team":
            raise KeyError("privateKey")
        return evaluate(stack, *args, **kwargs)

    monkeypatch.setattr(check, "evaluate", crash_for_leaky_team)
    assert check.main([*SEQUENTIAL, "--stacks", str(stacks)]) == 1
    output = capsys.readouterr().out
    assert "FAIL  leaky-team  [program]  Pulumi.leaky-team.yaml: KeyError: 'privateKey'\n" in output
    assert "OK    vision-team\n" in output


def test_a_rule_that_raises_is_one_stacks_finding(
    stacks: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def analyze_crashing_for_leaky_team(registrations: list[Registration], policies: Any) -> list[Any]:
        if any(r.name == "dvc-remote-bucket" and "leaky" in r.plain("name") for r in registrations):
            raise AttributeError("rule broke")
        return analyze(registrations, policies)

    monkeypatch.setattr(check, "analyze", analyze_crashing_for_leaky_team)
    assert check.main([*SEQUENTIAL, "--stacks", str(stacks)]) == 1
    output = capsys.readouterr().out
    assert "FAIL  leaky-team  [program]  Pulumi.leaky-team.yaml: AttributeError: rule broke\n" in output
    assert "OK    vision-team\n" in output


def test_stacks_claiming_the_same_bucket_repository_file_or_account_fail_naming_each_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vision = (STACKS_DIR / "Pulumi.vision-team.yaml").read_text()
    (tmp_path / "Pulumi.team-a.yaml").write_text(
        vision + "  mlops-ci:bucketName: shared-dvc\n  mlops-ci:serviceAccountId: shared-ci\n"
    )
    (tmp_path / "Pulumi.team-b.yaml").write_text(
        vision + "  mlops-ci:bucketName: shared-dvc\n  mlops-ci:serviceAccountId: shared-ci\n"
    )
    (tmp_path / "Pulumi.team-c.yaml").write_text(vision.replace("vision-experiments", "other"))
    assert check.main([*SEQUENTIAL, "--stacks", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    for stack, other in (("team-a", "team-b"), ("team-b", "team-a")):
        assert f"FAIL  {stack}  [clash]  bucket gs://shared-dvc: also claimed by {other}" in lines
        assert (
            f"FAIL  {stack}  [clash]  service account shared-ci@acme-ml-vision.iam.gserviceaccount.com: also claimed by {other}"
            in lines
        )
        assert (
            f"FAIL  {stack}  [clash]  CI file https://api.github.com/ acme-ml vision-experiments main"
            f" .github/workflows/mlops.yaml: also claimed by {other}"
        ) in lines
    assert "OK    team-c" in lines


def test_a_ci_file_the_platform_schema_refuses_fails_its_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(STACKS_DIR / "Pulumi.nlp-team.yaml", tmp_path)

    def cache_key_as_boolean(stack: str, *args: Any, **kwargs: Any) -> Evaluation:
        # As `requirementsFile: "true"` rendered unquoted once did: a boolean where GitLab wants a file.
        evaluation = evaluate(stack, *args, **kwargs)
        registrations = [
            dataclasses.replace(
                r, inputs=r.inputs | {"content": r.plain("content").replace('- "requirements-freeze.txt"', "- true")}
            )
            if r.type == GITLAB_FILE
            else r
            for r in evaluation.registrations
        ]
        return dataclasses.replace(evaluation, registrations=registrations)

    monkeypatch.setattr(check, "evaluate", cache_key_as_boolean)
    assert check.main([*SEQUENTIAL, "--stacks", str(tmp_path)]) == 1
    output = capsys.readouterr().out
    assert "FAIL  nlp-team  [ci-schema]  .gitlab-ci.yml: reproduce/cache/key/files/0: True is not of type 'string'" in output


def test_an_advisory_finding_is_a_warning_and_the_stack_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nlp = (STACKS_DIR / "Pulumi.nlp-team.yaml").read_text()
    (tmp_path / "Pulumi.nlp-team.yaml").write_text(nlp + "  mlops-ci:hiddenVariable: false\n")
    assert check.main([*SEQUENTIAL, "--stacks", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "OK    nlp-team"
    # The key's variable and the report token's (nlp-team reports on merge requests).
    warned = ("gitlab-report-token-variable", "gitlab-variable")
    for line, variable in zip(lines[1:3], warned, strict=True):
        assert line.startswith(f"WARN  nlp-team  [gitlab-credential-variables-hidden]  {variable} ("), line
    assert lines[3] == "1 stacks checked: 1 OK, 0 failed"


def test_a_folder_without_stack_files_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main([*SEQUENTIAL, "--stacks", str(tmp_path)]) == 2
    assert f"error: no Pulumi.<stack>.yaml in {tmp_path}" in capsys.readouterr().err


def test_check_command_in_parallel_reports_what_a_sequential_check_reports(
    stacks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check.main([*SEQUENTIAL, "--stacks", str(stacks)]) == 1
    sequential = capsys.readouterr().out
    result = subprocess.run(
        [sys.executable, "-m", "mlops_ci.offline.check", "--stacks", str(stacks), "--jobs", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout == sequential
    assert "FAIL  broken-team  [config]  Pulumi.broken-team.yaml: mlops-ci:access = 'all'" in result.stdout
    assert "OK    leaky-team\n" in result.stdout  # without the monkeypatch, the copy is as good as the original
    assert "4 stacks checked: 2 OK, 2 failed" in result.stdout


def test_workers_only_for_batches_large_enough_to_repay_their_warm_up() -> None:
    cpus = len(os.sched_getaffinity(0))
    assert check.default_jobs(4) == 1
    assert check.default_jobs(2 * check.MIN_STACKS_PER_WORKER - 1) == 1
    assert check.default_jobs(100 * check.MIN_STACKS_PER_WORKER) == cpus


# --- the example CI workflow that runs the check on pull requests ---

WORKFLOW = ROOT / ".github/workflows/check-stacks.yaml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def validate_workflow(content: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "check-stacks.yaml"
    path.write_text(content)
    command = [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_workflow_passes_the_github_workflow_schema(tmp_path: Path) -> None:
    result = validate_workflow(WORKFLOW.read_text(), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_schema_check_can_fail(tmp_path: Path) -> None:
    broken = WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs-on: 7").replace("contents: read", "contents: all")
    assert validate_workflow(broken, tmp_path).returncode != 0


def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def test_workflow_runs_make_check_on_pull_requests_with_read_only_access() -> None:
    document = workflow()
    assert set(document[True]) == {"pull_request"}  # YAML 1.1 reads the key `on` as true
    assert document["permissions"] == {}
    assert document["jobs"]["check"]["permissions"] == {"contents": "read"}
    steps = document["jobs"]["check"]["steps"]
    assert [step.get("uses", "").split("@")[0] for step in steps] == ["actions/checkout", "actions/setup-python", ""]
    assert steps[-1]["run"] == "make check"


def covered(path: str, patterns: list[str]) -> bool:
    """GitHub's `paths` filter for the two pattern forms used: `folder/**` and an exact file."""
    return any(path.startswith(p.removesuffix("**")) if p.endswith("/**") else path == p for p in patterns)


# `make check` in a fresh interpreter, printing the files of the modules it imported: this test
# process has also imported every test module's imports (the local cloud's, for one).
CHECK_IMPORTS = f"""
import json, sys
from mlops_ci.offline import check
check.main({SEQUENTIAL!r})
print(json.dumps([file for m in list(sys.modules.values()) if (file := getattr(m, "__file__", None))]), file=sys.stderr)
"""


def test_workflow_triggers_on_every_repository_file_the_check_reads() -> None:
    patterns = workflow()[True]["pull_request"]["paths"]
    result = subprocess.run(
        [sys.executable, "-c", CHECK_IMPORTS], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    imported = [ROOT / file for file in json.loads(result.stderr.splitlines()[-1])]
    # What `make check` reads besides Python modules: program, project file, pins (the check's
    # schema libraries are in requirements-dev.txt), the recipe, this workflow.
    pins = ("requirements.txt", "requirements-dev.txt", "constraints.txt")
    program = [ROOT / name for name in ("__main__.py", "Pulumi.yaml", *pins, "Makefile")]
    program += [ROOT / "policy/requirements.txt", WORKFLOW, *(ROOT / "mlops_ci/ci/templates").iterdir()]
    read = {p.relative_to(ROOT).as_posix() for p in [*program, *imported, *stack_files()] if p.is_relative_to(ROOT)}
    read = {p for p in read if not p.startswith((".venv", "tests/"))}
    assert {
        "stacks/Pulumi.vision-team.yaml",
        "mlops_ci/offline/check.py",
        "mlops_ci/policy/rules.py",
        "mlops_ci/settings/loader.py",
    } <= read
    assert sorted(p for p in read if not covered(p, patterns)) == []
    assert [pattern for pattern in patterns if not any(covered(p, [pattern]) for p in read)] == [], "stale patterns"
