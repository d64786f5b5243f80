"""`make mutation`'s own parts that run without mutmut: the choice of module, the mutants of module
constants (mutmut 3 mutates inside functions only), the list of equivalent mutants."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.mutation import constants, run

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("module", ["mlops_ci/offline/plan.py", "../x.py", "$(shell touch x)", "mlops_ci/settings"])
def test_a_module_that_is_not_mutated_is_refused_before_anything_runs(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.mutation.run"],
        cwd=ROOT,
        env={**os.environ, "MODULE": module},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    named = ", ".join(map(repr, module.split()))
    assert result.stderr.startswith(f"error: MODULE: {named} is not one of the mutated modules: mlops_ci/")
    assert not (ROOT / "mutants" / "x").exists()


def test_several_modules_are_chosen_and_every_unknown_one_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    known = run.modules()
    monkeypatch.setenv("MODULE", "mlops_ci/platforms/gitlab.py  mlops_ci/settings/rules.py")
    assert run.chosen_modules(known) == [Path("mlops_ci/platforms/gitlab.py"), Path("mlops_ci/settings/rules.py")]
    monkeypatch.setenv("MODULE", "mlops_ci/settings/rules.py x.py mlops_ci/offline/plan.py")
    error = run.chosen_modules(known)
    assert isinstance(error, str)
    assert error.startswith("error: MODULE: 'x.py', 'mlops_ci/offline/plan.py' is not one")
    monkeypatch.setenv("MODULE", "./mlops_ci/preflight.py mlops_ci//platforms/gitlab.py mlops_ci/preflight.py")
    assert run.chosen_modules(known) == [Path("mlops_ci/preflight.py"), Path("mlops_ci/platforms/gitlab.py")]
    monkeypatch.setenv("MODULE", "")
    assert run.chosen_modules(known) == known


def test_the_mutated_modules_are_the_validation_preflight_and_delivery_code() -> None:
    modules = {str(path) for path in run.modules()}
    assert {
        "mlops_ci/settings/rules.py",
        "mlops_ci/settings/validate.py",
        "mlops_ci/preflight.py",
        "mlops_ci/components/storage.py",
        "mlops_ci/platforms/github.py",
        "mlops_ci/platforms/gitlab.py",
    } <= modules
    assert not [m for m in modules if m.endswith("__init__.py") or m.startswith("mlops_ci/offline/")]


def test_each_module_constant_is_mutated_one_change_at_a_time() -> None:
    path = ROOT / "mlops_ci" / "settings" / "rules.py"
    mutants = constants.mutants(path)
    reserved = [m for m in mutants if m.name.startswith("mlops_ci.settings.rules._RESERVED_VARIABLES__const_")]
    assert "without 'PYTHONPATH'" in {m.description for m in reserved}
    assert {m.description for m in mutants if "_RESERVED_PREFIXES" in m.name} >= {"without 'LD_'", "without 'GIT_'"}
    original = ast.dump(ast.parse(path.read_text()))
    for mutant in mutants:
        assert ast.dump(ast.parse(mutant.source)) != original, mutant.name
    assert len({m.name for m in mutants}) == len(mutants)
    # Type aliases are no rules: `Rule = Callable[[str], "str | None"]` is left alone.
    assert not [m for m in mutants if ".Rule__" in m.name]


def test_every_equivalent_mutant_says_why() -> None:
    lines = [line for line in run.EQUIVALENT.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert all(len(line.split(None, 1)) == 2 for line in lines), lines
    assert len(run.equivalents()) == len(lines)


def test_collecting_the_fast_tests_starts_no_thread() -> None:
    # mutmut's fork server collects the tests once and forks each mutant's run from that process: a thread started
    # at collection (grpc's poller, once a program runs) is missing in the fork, and the run hangs on it.
    collect = (
        "import sys, threading, pytest;"
        "code = pytest.main(['--collect-only', '-qqq', '-p', 'no:cacheprovider', *sys.argv[1:]]);"
        "print([t.name for t in threading.enumerate()]); sys.exit(code)"
    )
    arguments = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["pytest_add_cli_args"]
    result = subprocess.run([sys.executable, "-c", collect, *arguments], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-2000:]
    assert result.stdout.splitlines()[-1] == "['MainThread']"


def test_a_killed_mutant_listed_as_equivalent_counts_as_killed_and_is_named_for_judging_again() -> None:
    results = {"m.x_f__mutmut_1": True, "m.x_f__mutmut_2": False, "m.x_f__mutmut_3": False, "m.x_f__mutmut_4": True}
    judged = {"m.x_f__mutmut_1": "renumbered since", "m.x_f__mutmut_2": "changes nothing", "m.x_f__mutmut_9": "gone"}
    judged["mm.x_g__mutmut_1"] = "another module's"
    found = run.tally(run.Score("m.py", results=results, known=set(results)), judged)
    assert (found.mutants, found.killed, found.equivalent) == (4, 2, 1)
    assert found.survivors == ["m.x_f__mutmut_3"]
    assert found.stale == ["m.x_f__mutmut_9", "m.x_f__mutmut_1"]
    assert found.score == 100.0 * 2 / 3


def test_the_mutants_copy_holds_every_tracked_top_level_entry() -> None:
    # A new top-level directory the tests read (templates/, package/ came with issue 20) left out of
    # `also_copy` stops `make mutation` before its first mutant: the fast tier fails on the copy.
    tracked = subprocess.run(["git", "ls-tree", "--name-only", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    mutmut = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    copied = {name.rstrip("/") for name in mutmut["also_copy"]} | set(mutmut["source_paths"]) | {"tests", "pyproject.toml"}
    assert set(tracked.stdout.split()) - copied == set()


@pytest.mark.parametrize(("functions", "fails"), [({}, False), ({"m.x_f__mutmut_1": None}, True)])
def test_mutmut_finding_no_mutant_in_a_module_of_constants_only_is_no_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, functions: dict[str, None], fails: bool
) -> None:
    # mutmut exits 1 for a name that matches no mutant (mlops_ci/settings/locations.py has no function): that stopped
    # the whole run. A failure of a module that has mutants still stops it.
    module = Path("mlops_ci/settings/locations.py")
    monkeypatch.setattr(run, "ROOT", tmp_path)
    run.meta_path(module).parent.mkdir(parents=True)
    run.meta_path(module).write_text(f'{{"exit_code_by_key": {json.dumps(functions)}}}')

    def mutmut_fails(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1)

    monkeypatch.setattr(run.subprocess, "run", mutmut_fails)
    monkeypatch.setattr(run.constants, "mutants", constants_of([]))
    if fails:
        with pytest.raises(subprocess.CalledProcessError):
            run.score_functions(module, {})
    else:
        assert run.score_constants(run.score_functions(module, {}), {}, [tmp_path], []).mutants == 0


def test_the_report_names_each_survivor_and_each_equivalent_line_to_judge_again() -> None:
    found = run.Score("m.py", mutants=4, killed=2, equivalent=1, survivors=["m.x_f__mutmut_3"], stale=["m.x_f__mutmut_9"])
    assert run.report([found]).splitlines()[2:] == [
        "| m.py | 4 | 2 | 1 | 1 | 66.7 % | 0.0 min |",
        "survived: m.x_f__mutmut_3",
        "listed as equivalent, but killed or gone (renumbered? judge again): m.x_f__mutmut_9",
    ]


@pytest.mark.parametrize("sample", ["0", "-3", "ten", "1e3", "10000", "$(shell touch x)", " 5"])
def test_a_sample_that_is_no_count_is_refused_with_a_bad_module_before_anything_runs(sample: str) -> None:
    environment = {**os.environ, "SAMPLE": sample, "MODULE": "x.py"}
    refused = subprocess.run(
        [sys.executable, "-m", "bench.mutation.run"], cwd=ROOT, env=environment, capture_output=True, text=True, check=False
    )
    assert refused.returncode == 2
    assert refused.stderr.splitlines()[0].startswith("error: MODULE: 'x.py' is not one of the mutated modules")
    assert refused.stderr.splitlines()[1:] == [
        f"error: SAMPLE: {sample!r} is not a number of mutants a module: a whole number from 1 to 9999"
    ]


def test_a_sample_runs_that_many_of_each_module_the_same_each_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = Path("mlops_ci/settings/loader.py")
    generated = {f"mlops_ci.settings.loader.x_f__mutmut_{n}": None for n in range(1, 21)}
    monkeypatch.setattr(run, "ROOT", tmp_path)
    run.meta_path(module).parent.mkdir(parents=True)
    run.meta_path(module).write_text(json.dumps({"exit_code_by_key": generated}))
    asked: list[list[str]] = []

    def mutmut_kills_all_but_the_first(names: list[str], module: Path) -> None:
        asked.append(names)
        exit_codes = generated | {name: 0 if name == names[0] else 1 for name in names}
        run.meta_path(module).write_text(json.dumps({"exit_code_by_key": exit_codes}))

    monkeypatch.setattr(run, "run_mutmut", mutmut_kills_all_but_the_first)
    monkeypatch.setattr(run.constants, "mutants", constants_of([]))
    judged = {
        "mlops_ci.settings.loader.x_f__mutmut_20": "listed, and not in the sample: no stale line",
        "mlops_ci.settings.loader.x_f__mutmut_99": "gone",
    }
    found = run.score_constants(run.score_functions(module, judged, size=5), judged, [tmp_path], [], size=5)
    assert len(asked[0]) == len(set(asked[0])) == 5
    assert set(asked[0]) < set(generated)
    assert asked[0] != list(generated)[:5]  # at random, not the first ones
    assert (found.mutants, found.killed, found.survivors, len(found.known)) == (5, 4, [asked[0][0]], 20)
    assert "mlops_ci.settings.loader.x_f__mutmut_20" not in asked[0]
    assert found.stale == ["mlops_ci.settings.loader.x_f__mutmut_99"]
    assert found.row().startswith("| mlops_ci/settings/loader.py | 5 of 20 | 4 |")
    assert run.sampled(list(generated), 5, module) == asked[0]
    assert run.sampled(list(generated), 20, module) == list(generated)


def constants_of(mutants: list[constants.Mutant]) -> Callable[[Path], list[constants.Mutant]]:
    """A stand-in for constants.mutants: these mutants, whatever the module."""

    def listed(path: Path) -> list[constants.Mutant]:
        return mutants

    return listed


def test_a_constant_listed_as_equivalent_is_not_called_gone_in_the_functions_only_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The functions' row is printed before the constants run: a constant listed as equivalent is not gone then.
    module = Path("mlops_ci/settings/rules.py")
    generated = {"mlops_ci.settings.rules.x_f__mutmut_1": 1}
    monkeypatch.setattr(run, "ROOT", tmp_path)
    run.meta_path(module).parent.mkdir(parents=True)
    run.meta_path(module).write_text(json.dumps({"exit_code_by_key": generated}))
    constant = constants.Mutant("mlops_ci.settings.rules.RULE__const_1", 1, "a change", "RULE = 2")

    monkeypatch.setattr(run, "run_mutmut", no_run)
    monkeypatch.setattr(run.constants, "mutants", constants_of([constant]))
    monkeypatch.setattr(run.constants, "killer", survives)
    judged = {constant.name: "changes nothing", "mlops_ci.settings.rules.GONE__const_1": "gone"}
    functions = run.score_functions(module, judged)
    assert functions.stale == []
    found = run.score_constants(functions, judged, [tmp_path], [])
    assert (found.mutants, found.killed, found.equivalent, found.stale) == (2, 1, 1, ["mlops_ci.settings.rules.GONE__const_1"])


def test_the_sample_is_the_same_in_every_process_and_differs_between_modules() -> None:
    # Seeded by the module's path, not by hash() (another in each interpreter): the next run samples the same mutants.
    script = "from pathlib import Path; from bench.mutation import run; print(run.sampled(list(range(100)), 5, Path('m.py')))"
    picks = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(picks) == 1
    assert run.sampled(list(range(100)), 5, Path("m.py")) != run.sampled(list(range(100)), 5, Path("n.py"))


def no_run(names: list[str], module: Path) -> None:
    """mutmut's run, left out: the .meta file written by the test stands for it."""


def test_make_hands_sample_and_module_to_the_runner_as_text_never_as_code(tmp_path: Path) -> None:
    # `make mutation SAMPLE=… MODULE=…`: the runner refuses what is no count or no module; make must not run it first.
    marker = tmp_path / "ran"
    sample = f"$(shell touch {marker}) 5 `touch {marker}`"
    module = f"mlops_ci/preflight.py  $$(touch {marker})\nmlops_ci/preflight.py"
    part = f"constants $(shell touch {marker})"
    shown = 'shown: ; @printf "%s|%s|%s" "$$SAMPLE" "$$MODULE" "$$PART"'
    printed = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", shown, "shown", f"SAMPLE={sample}", f"MODULE={module}", f"PART={part}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert printed.stdout == f"{sample}|{module}|{part}"
    assert not marker.exists()


def test_each_constants_verdict_is_printed_as_soon_as_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A constant costs a whole fast tier: a run stopped midway keeps the verdicts it printed.
    module = Path("mlops_ci/settings/rules.py")
    dotted = constants.dotted(module)
    names = [f"{dotted}.LIMIT__const_1", f"{dotted}.LIMIT__const_2"]
    mutants = [constants.Mutant(name, 1, f"LIMIT = {n}", "") for n, name in enumerate(names)]

    def only_the_first_killed(
        where: Path, relative: Path, mutant: constants.Mutant, deselected: list[str], timeout: float, first: list[str]
    ) -> str | None:
        return "tests/test_rules.py::test_limit" if mutant.name == names[0] else None

    monkeypatch.setattr(run.constants, "mutants", constants_of(mutants))
    monkeypatch.setattr(run.constants, "killer", only_the_first_killed)
    found = run.score_constants(run.Score(str(module)), {}, [tmp_path], [])
    assert capsys.readouterr().out.splitlines() == [
        f"killed: {names[0]} (LIMIT = 0) by tests/test_rules.py::test_limit",
        f"survived: {names[1]} (LIMIT = 1)",
    ]
    assert (found.killed, found.survivors) == (1, [names[1]])


@pytest.mark.parametrize("part", ["constant", "functions constants", "all", "$(shell touch x)"])
def test_a_part_that_is_neither_is_refused_with_a_bad_sample_before_anything_runs(part: str) -> None:
    environment = {**os.environ, "PART": part, "SAMPLE": "0", "MODULE": ""}
    refused = subprocess.run(
        [sys.executable, "-m", "bench.mutation.run"], cwd=ROOT, env=environment, capture_output=True, text=True, check=False
    )
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "error: SAMPLE: '0' is not a number of mutants a module: a whole number from 1 to 9999",
        f"error: PART: {part!r} is neither 'functions' nor 'constants' (empty: both)",
    ]


def test_only_the_constants_run_mutmut_never_and_leave_the_functions_equivalent_lines_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = Path("mlops_ci/settings/rules.py")
    constant = constants.Mutant("mlops_ci.settings.rules.RULE__const_1", 1, "a change", "RULE = 2")
    monkeypatch.setattr(run, "ROOT", tmp_path)

    def one_copy() -> tuple[list[Path], list[str]]:
        return [tmp_path], []

    monkeypatch.setattr(run, "modules", [module].copy)
    monkeypatch.setattr(run, "constants_copies", one_copy)
    monkeypatch.setattr(run, "subprocess", None)  # mutmut is never called
    monkeypatch.setattr(run, "equivalents", {"mlops_ci.settings.rules.x_f__mutmut_1": "a function's"}.copy)
    monkeypatch.setattr(run.constants, "mutants", constants_of([constant]))
    monkeypatch.setattr(run.constants, "killer", survives)
    monkeypatch.setenv("PART", "constants")
    monkeypatch.setenv("SAMPLE", "")
    monkeypatch.setenv("MODULE", "")
    kept = tmp_path / "mutants" / "mlops_ci" / "settings" / "rules.py.meta"  # an earlier run's, for `mutmut show`
    kept.parent.mkdir(parents=True)
    kept.write_text("{}")
    assert run.main() == 1
    assert kept.read_text() == "{}"
    printed = capsys.readouterr().out
    assert "functions only" not in printed
    assert printed.startswith(f"survived: {constant.name} (a change)\nconstants:\n| module |")
    assert "| mlops_ci/settings/rules.py | 1 | 0 | 0 | 1 | 0.0 % |" in printed
    assert "judge again" not in printed


def test_the_constants_mutants_run_at_once_each_on_a_copy_no_other_is_using(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = Path("mlops_ci/settings/rules.py")
    mutants = [constants.Mutant(f"mlops_ci.settings.rules.LIMIT__const_{n}", 1, "a change", "") for n in range(1, 7)]
    copies = [tmp_path / "one", tmp_path / "two"]
    both_busy = threading.Barrier(2, timeout=30)  # broken unless two mutants run at the same time
    busy: list[Path] = []
    used: list[Path] = []

    def killed_on_a_free_copy(
        where: Path, relative: Path, mutant: constants.Mutant, deselected: list[str], timeout: float, first: list[str]
    ) -> str | None:
        assert where not in busy
        busy.append(where)
        used.append(where)
        both_busy.wait()
        busy.remove(where)
        return "tests/test_rules.py::test_limit"

    monkeypatch.setattr(run.constants, "mutants", constants_of(mutants))
    monkeypatch.setattr(run.constants, "killer", killed_on_a_free_copy)
    found = run.score_constants(run.Score(str(module)), {}, copies, [])
    assert (found.mutants, found.killed) == (6, 6)
    assert sorted(used) == sorted(copies * 3)


def survives(
    where: Path, relative: Path, mutant: constants.Mutant, deselected: list[str], timeout: float, first: list[str]
) -> str | None:
    return None


def test_a_constants_mutant_is_killed_by_the_first_failing_test_and_the_module_is_restored(tmp_path: Path) -> None:
    test = "from mlops_ci import limits\n\n\ndef test_limit() -> None:\n    assert limits.LIMIT == 1\n"
    module = a_project(tmp_path, test)
    (tmp_path / "tests" / "test_first.py").write_text(test)
    grown, same = (constants.Mutant(f"mlops_ci.limits.LIMIT__const_{n}", 1, "", f"LIMIT = {n}\n") for n in (2, 1))
    assert constants.killer(tmp_path, module, grown, [], 60, []) == "tests/test_first.py::test_limit"
    assert constants.killer(tmp_path, module, grown, [], 60, ["tests/test_limits.py"]) == "tests/test_limits.py::test_limit"
    assert constants.killer(tmp_path, module, grown, ["tests/test_first.py"], 60, []) == "tests/test_limits.py::test_limit"
    assert constants.killer(tmp_path, module, same, [], 60, []) is None
    assert (tmp_path / module).read_text() == "LIMIT = 1\n"


def test_the_test_file_that_killed_a_constant_runs_first_for_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = Path("mlops_ci/settings/rules.py")
    mutants = [constants.Mutant(f"mlops_ci.settings.rules.LIMIT__const_{n}", 1, "a change", "") for n in range(1, 4)]
    killers = iter(["tests/test_b.py::test_one", "tests/test_a.py::test_two", None])
    firsts: list[list[str]] = []

    def records_the_first_files(
        where: Path, relative: Path, mutant: constants.Mutant, deselected: list[str], timeout: float, first: list[str]
    ) -> str | None:
        firsts.append(first)
        return next(killers)

    monkeypatch.setattr(run.constants, "mutants", constants_of(mutants))
    monkeypatch.setattr(run.constants, "killer", records_the_first_files)
    found = run.score_constants(run.Score(str(module)), {}, [tmp_path], [])
    importing = constants.relevant_tests(module)  # found once for the module, after the killers
    assert importing
    assert firsts == [importing, ["tests/test_b.py", *importing], ["tests/test_a.py", "tests/test_b.py", *importing]]
    assert (found.killed, found.survivors) == (2, [mutants[2].name])


def a_project(where: Path, tests: str) -> Path:
    """A project of one module, mlops_ci/limits.py (`LIMIT = 1`), and one test file, tests/test_limits.py: `tests`; with
    the ordering plugin (bench/, copied into the real runs' copies). The module's path."""
    module = Path("mlops_ci", "limits.py")
    (where / "mlops_ci").mkdir()
    (where / module).write_text("LIMIT = 1\n")
    (where / "tests").mkdir()
    (where / "tests" / "test_limits.py").write_text(tests)
    (where / "bench").symlink_to(ROOT / "bench")
    return module


def killed_by(where: Path, tests: str) -> str | None:
    """The killer of a mutant of `a_project(where, tests)`'s module (`LIMIT = 2`)."""
    module = a_project(where, tests)
    return constants.killer(where, module, constants.Mutant("mlops_ci.limits.LIMIT__const_1", 1, "", "LIMIT = 2\n"), [], 60, [])


def test_a_fast_test_erroring_unmutated_is_left_out_of_the_constants_runs_as_a_failing_one(tmp_path: Path) -> None:
    a_project(
        tmp_path,
        "import pytest\n\n\n@pytest.fixture\ndef port() -> int:\n    raise OSError('in use')\n\n\n"
        "def test_serves(port: int) -> None:\n    pass\n\n\ndef test_fails() -> None:\n    assert False\n\n\n"
        "def test_passes() -> None:\n    pass\n",
    )
    assert sorted(constants.failing_tests(tmp_path)) == ["tests/test_limits.py::test_fails", "tests/test_limits.py::test_serves"]


def test_the_killer_is_read_from_pytests_summary_never_from_a_tests_output(tmp_path: Path) -> None:
    tests = (
        "import logging\n\nimport pytest\n\nfrom mlops_ci import limits\n\n\n"
        "@pytest.mark.parametrize('case', ['one - two [x]'])\n"
        "def test_limit(case: str) -> None:\n"
        "    print('FAILED ')\n"
        "    print('ERROR tests/elsewhere.py - printed')\n"
        "    logging.getLogger('mlops_ci').error('ERROR tests/elsewhere.py')\n"
        "    assert [limits.LIMIT] == [1]  # a message with brackets: 'assert [2] == [1]'\n"
    )
    assert killed_by(tmp_path, tests) == "tests/test_limits.py::test_limit[one - two [x]]"


def test_a_sample_of_the_constants_alone_says_of_how_many(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = Path("mlops_ci/settings/rules.py")
    mutants = [constants.Mutant(f"mlops_ci.settings.rules.LIMIT__const_{n}", 1, "a change", "") for n in (1, 2)]

    monkeypatch.setattr(run.constants, "mutants", constants_of(mutants))
    monkeypatch.setattr(run.constants, "killer", survives)
    found = run.score_constants(run.Score(str(module)), {}, [tmp_path], [], size=1)  # PART=constants: no functions' run
    assert found.row().startswith(f"| {module} | 1 of 2 | 0 | 0 | 1 |")


def test_a_constants_run_interrupted_is_no_verdict(tmp_path: Path) -> None:
    tests = (
        "import os\nimport signal\n\nfrom mlops_ci import limits\n\n\n"
        "def test_limit() -> None:\n"
        "    if limits.LIMIT != 1:\n"
        "        signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job inherits SIGINT ignored\n"
        "        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during the run: pytest stops, exit 2\n"
    )
    with pytest.raises(KeyboardInterrupt):
        killed_by(tmp_path, tests)
    assert (tmp_path / "mlops_ci" / "limits.py").read_text() == "LIMIT = 1\n"


def test_the_constants_copies_are_one_per_core_this_run_may_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copied: list[Path] = []

    def passes(where: Path) -> list[str]:
        return []

    def two_of_them(pid: int) -> set[int]:
        return {0, 1}

    monkeypatch.setattr(run, "ROOT", tmp_path)
    monkeypatch.setattr(run.constants, "copy_project", copied.append)
    monkeypatch.setattr(run.constants, "failing_tests", passes)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)  # the machine's (a container's host): `taskset -c 0,1` lets it use 2
    monkeypatch.setattr(os, "sched_getaffinity", two_of_them, raising=False)
    assert run.constants_copies() == (copied, [])
    assert copied == [tmp_path / "build" / "mutation" / f"constants-{n}" for n in (0, 1)]


def test_only_the_exit_codes_that_prove_a_kill_count_as_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Not checked (a run stopped before it), interrupted, skipped, suspicious, and 255 (mutmut's "timeout" when its
    # worker raised: pytest found no test by an id it was given): no kill proven, so alive, named to judge.
    module = Path("mlops_ci/settings/loader.py")
    codes = {
        "killed": 1,
        "timeout": -24,
        "survived": 0,
        "not_checked": None,
        "interrupted": 2,
        "skipped": 34,
        "odd": 35,
        "not_run": 255,
    }
    monkeypatch.setattr(run, "ROOT", tmp_path)
    run.meta_path(module).parent.mkdir(parents=True)
    exit_codes = {f"mlops_ci.settings.loader.x_{name}__mutmut_1": code for name, code in codes.items()}
    run.meta_path(module).write_text(json.dumps({"exit_code_by_key": exit_codes}))
    monkeypatch.setattr(run, "run_mutmut", no_run)
    found = run.score_functions(module, {})
    assert (found.mutants, found.killed) == (8, 2)
    assert [name.split(".")[-1] for name in found.survivors] == [
        f"x_{name}__mutmut_1" for name in ("interrupted", "not_checked", "not_run", "odd", "skipped", "survived")
    ]


def test_a_constants_failing_property_test_is_not_shrunk(tmp_path: Path) -> None:
    # Hypothesis shrinks a failing example for up to five minutes: a kill needs only the failure.
    tests = (
        "from pathlib import Path\n\nfrom hypothesis import given, settings, strategies as st\n\n"
        "from mlops_ci import limits\n\n\n"
        "@settings(database=None)\n@given(st.lists(st.integers(), min_size=30))\n"
        "def test_limit(values: list[int]) -> None:\n"
        "    with Path('examples.txt').open('a') as examples:\n"
        "        examples.write('one\\n')\n"
        "    assert limits.LIMIT == 1\n"
    )
    assert killed_by(tmp_path, tests) == "tests/test_limits.py::test_limit"
    # The first example fails; Hypothesis runs it once more to report it. Shrinking 30 integers would run dozens.
    assert len((tmp_path / "examples.txt").read_text().splitlines()) <= 2
