"""Every hostile stack file of `cases.py`, through the offline plan and the batch check (the code
`make plan` and `make check` run, in this process): refused with exit status 2 (plan) or 1 (check),
the key or file and the rule named, every problem listed, no traceback, nothing written, and
nothing but printable ASCII in anything printed (no terminal control, no look-alike or blank letter)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_ci.offline import check, plan
from mlops_ci.settings import validate
from mlops_ci.settings.loader import ConfigError
from mlops_ci.settings.rules import escaped
from tests.helpers import CountingMocks, run
from tests.hostile.cases import CASES, Case

# Anything a terminal acts on: C0/C1 controls but the line break, and invisible format characters.
UNPRINTABLE = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) != "\n"] + [
    "\u200b", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
]  # fmt: skip


def stacks_with(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "stacks"
    folder.mkdir()
    (folder / f"Pulumi.{case.stack}.yaml").write_text(case.text)
    for variable, value in case.environment:
        monkeypatch.setenv(variable, value)
    return folder


def assert_printable(*outputs: str) -> None:
    for output in outputs:
        raw = sorted({f"U+{ord(char):04X}" for char in output if char in UNPRINTABLE or not char.isascii()})
        assert raw == [], f"printed raw: {raw}"
        assert "Traceback" not in output


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.test_id)
def test_make_plan_refuses_it(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stacks = stacks_with(case, tmp_path, monkeypatch)
    out = tmp_path / "plan"
    code = plan.main(["--stacks", str(stacks), "--out", str(out), "--", case.stack])
    printed = capsys.readouterr()
    assert code == 2, printed.out + printed.err
    assert printed.out == ""
    assert printed.err.startswith("error: ")
    for word in case.words:
        assert word in printed.err, f"{word!r} not in {printed.err}"
    assert_printable(printed.out, printed.err)
    assert not out.exists()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.test_id)
def test_make_check_refuses_it(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stacks = stacks_with(case, tmp_path, monkeypatch)
    code = check.main(["--jobs", "1", "--stacks", str(stacks)])
    printed = capsys.readouterr()
    assert code == 1, printed.out + printed.err
    *findings, total = printed.out.splitlines()
    assert total == "1 stacks checked: 0 OK, 1 failed"
    assert findings
    assert all(line.startswith(f"FAIL  {escaped(case.stack)}  [") for line in findings), findings
    for word in case.words:
        assert word in printed.out, f"{word!r} not in {printed.out}"
    assert_printable(printed.out, printed.err)


def test_several_problems_of_one_file_are_all_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = next(c for c in CASES if c.name == "gcp-credentials").text + "  mlops-ci:bucketName: g00gle-data\n  aws:region: x\n"
    (tmp_path / "Pulumi.many.yaml").write_text(text)
    assert plan.main(["--stacks", str(tmp_path), "--out", str(tmp_path / "out"), "many"]) == 2
    error = capsys.readouterr().err
    assert "has 3 configuration problems" in error
    for key in ("gcp:credentials", "mlops-ci:bucketName", "aws:region"):
        assert f"  - {key}" in error


@pytest.mark.parametrize("target", ["Pulumi.nlp-team.yaml", "../Pulumi.yaml", "/etc/hostname", "missing.yaml"])
def test_a_stack_file_that_is_a_symbolic_link_is_refused(target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.nlp-team.yaml").write_text(CASES[0].text.replace("gcp:projet: acme-ml-other\n", ""))
    (tmp_path / "Pulumi.yaml").write_text("name: mlops-ci\n")
    (stacks / "Pulumi.linked.yaml").symlink_to(target)
    assert plan.main(["--stacks", str(stacks), "--out", str(tmp_path / "out"), "linked"]) == 2
    refused = "Pulumi.linked.yaml: a symbolic link: a stack file is a file of its own"
    assert refused in capsys.readouterr().err
    assert check.main(["--jobs", "1", "--stacks", str(stacks)]) == 1
    assert f"FAIL  linked  [stack-file]  Pulumi.linked.yaml: {stacks}/{refused}" in capsys.readouterr().out


def test_under_the_cli_a_stack_file_that_is_a_symbolic_link_is_refused_before_any_resource(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The program finds its stack file where the CLI reads it (stackConfigDir): here, a link.
    (tmp_path / "elsewhere.yaml").write_text(CASES[0].text)
    linked = tmp_path / "Pulumi.team-a.yaml"
    linked.symlink_to(tmp_path / "elsewhere.yaml")

    def stack_file(stack: str) -> Path:
        return tmp_path / f"Pulumi.{stack}.yaml"

    monkeypatch.setattr(validate, "stack_file", stack_file)
    mocks = CountingMocks()
    with pytest.raises(ConfigError) as raised:
        run("github", mocks=mocks)
    assert raised.value.problems == [
        "Pulumi.team-a.yaml: a symbolic link: a stack file is a file of its own, in the stacks folder"
    ]
    assert mocks.created == []
