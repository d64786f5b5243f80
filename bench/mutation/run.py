"""`make mutation [MODULE=<path>]`: the mutation score of the validation, pre-flight and delivery code.

For each module of `[tool.mutmut] only_mutate` (pyproject.toml), or the one named by MODULE:
mutmut 3.8.1 mutates inside its functions and runs the fast tests that reach each mutant; then
bench/mutation/constants.py mutates its module constants, each in a fresh interpreter. Mutants
listed in bench/mutation/equivalent.txt (each with the reason it changes no behaviour) are left
out of the score. Prints, per module: mutants, killed, equivalent, survived, score, duration; and
the surviving mutants' names (`mutmut show <name>` shows a function's mutant). Exits 1 when a
module scores under 95 %.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import fnmatch
import json
import os
import queue
import random
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import TypeVar

from bench.mutation import constants

Item = TypeVar("Item")

ROOT = constants.ROOT
EQUIVALENT = Path(__file__).with_name("equivalent.txt")
MUTMUT = Path(sys.executable).with_name("mutmut")
# mutmut's exit codes that prove a kill (mutmut/stats.py status_by_exit_code): killed, timeout, segfault, caught by
# type check. No other does: survived, no tests, not checked (None: a run stopped), interrupted, skipped, suspicious,
# and 255, which mutmut files as a timeout: its worker's run raised (mutmut/workers/isolation.py), as it does when
# pytest answers 4 for a test id it cannot find (runners/harness.py execute_pytest): the tests never ran.
KILLING = {1, 3, 24, -24, 36, 152, -11, -9, 37}
THRESHOLD = 95.0
# A name that matches no mutant: mutmut generates the mutants and collects its statistics, then stops on it.
NO_MUTANT = "mlops_ci.__no_mutant__"
# PART: what of each module to mutate, in the order run.
PARTS = ("functions", "constants")


@dataclasses.dataclass
class Score:
    module: str
    mutants: int = 0
    killed: int = 0
    equivalent: int = 0
    survivors: list[str] = dataclasses.field(default_factory=list[str])
    stale: list[str] = dataclasses.field(default_factory=list[str])
    """Listed as equivalent, but killed or gone: the list names another mutant now (renumbered), to be judged again."""
    seconds: float = 0.0
    results: dict[str, bool] = dataclasses.field(default_factory=dict[str, bool])
    """Each mutant run: name -> killed."""
    known: set[str] = dataclasses.field(default_factory=set[str])
    """Every mutant the module has (with SAMPLE, more than ran)."""
    sampled: bool = False

    @property
    def score(self) -> float:
        judged = self.mutants - self.equivalent
        return 100.0 * self.killed / judged if judged else 100.0

    def row(self) -> str:
        ran = f"{self.mutants} of {len(self.known)}" if self.sampled else str(self.mutants)
        return (
            f"| {self.module} | {ran} | {self.killed} | {self.equivalent} | {len(self.survivors)}"
            f" | {self.score:.1f} % | {self.seconds / 60:.1f} min |"
        )


def modules() -> list[Path]:
    """The files `[tool.mutmut] only_mutate` names, in order, package markers left out."""
    patterns: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]
    files = sorted(p.relative_to(ROOT) for p in (ROOT / "mlops_ci").rglob("*.py"))
    return [f for f in files if f.name != "__init__.py" and any(fnmatch.fnmatch(str(f), p) for p in patterns)]


def equivalents() -> dict[str, str]:
    """Mutant name -> the reason it is equivalent (`<name>  <reason>` a line; `#` comments)."""
    judged: dict[str, str] = {}
    for line in EQUIVALENT.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            judged[name] = reason.strip()
    return judged


def meta_path(module: Path) -> Path:
    """Where mutmut keeps what it knows of the module's mutants."""
    return ROOT / "mutants" / f"{module}.meta"


def mutmut_results(module: Path) -> dict[str, int | None]:
    """Exit code by mutant name of mutmut's run of `module` (mutants/<path>.meta)."""
    meta = meta_path(module)
    return json.loads(meta.read_text())["exit_code_by_key"] if meta.is_file() else {}


def run_mutmut(names: list[str], module: Path) -> None:
    """mutmut's run of the mutants `names` (patterns) of `module`."""
    ran = subprocess.run([str(MUTMUT), "run", "--max-children", "1", *names], cwd=ROOT)
    # mutmut fails on a name that matches no mutant: a module of constants only has none (its .meta, written, is empty).
    if ran.returncode and (mutmut_results(module) or not meta_path(module).is_file()):
        ran.check_returncode()


def generate(known: list[Path]) -> None:
    """Every module's mutants and mutmut's test statistics, no mutant run: mutmut stops at NO_MUTANT, which matches none."""
    subprocess.run([str(MUTMUT), "run", "--max-children", "1", NO_MUTANT], cwd=ROOT)
    missing = [str(module) for module in known if not meta_path(module).is_file()]
    if missing:
        raise RuntimeError(f"mutmut generated no mutants of {', '.join(missing)}")


def sampled(items: list[Item], size: int | None, module: Path) -> list[Item]:
    """`size` of `items` at random, the same on every run of the same source (seeded by the module's path), or all."""
    if size is None or size >= len(items):
        return items
    return random.Random(str(module)).sample(items, size)


def score_functions(module: Path, judged: dict[str, str], size: int | None = None) -> Score:
    """mutmut's mutants of the module's functions; with `size`, that many at random (`generate` made them first)."""
    started = time.monotonic()
    if size is None:
        run_mutmut([f"{constants.dotted(module)}.*"], module)
    exit_codes = mutmut_results(module)  # every mutant of the module; with `size`, none run yet
    chosen = sampled(list(exit_codes), size, module)
    if size is not None and chosen:
        run_mutmut(chosen, module)
        exit_codes = mutmut_results(module)
    picked = set(chosen)
    results = {name: code in KILLING for name, code in exit_codes.items() if name in picked}
    found = Score(str(module), results=results, known=set(exit_codes), sampled=size is not None)
    # The constants' mutants are scored later: one listed as equivalent is not gone yet.
    functions = {name: why for name, why in judged.items() if "__const_" not in name}
    return tally(found, functions, time.monotonic() - started)


def score_constants(
    found: Score, judged: dict[str, str], workdirs: list[Path], failing: list[str], size: int | None = None
) -> Score:
    """`found` with its module's constants' mutants counted too, each a fresh fast tier on one of the copies in
    `workdirs` (as many at once as there are copies); with `size`, that many at random."""
    started, module = time.monotonic(), Path(found.module)
    every = constants.mutants(ROOT / module)
    free: queue.SimpleQueue[Path] = queue.SimpleQueue()
    for workdir in workdirs:
        free.put(workdir)

    killers: list[str] = []  # the test files that killed this module's constants, the latest first
    importing = constants.relevant_tests(module)  # then the test files that import the module

    def verdict(mutant: constants.Mutant) -> tuple[str, bool]:
        workdir = free.get()  # a copy no other mutant is using
        try:
            test = constants.killer(workdir, module, mutant, failing, timeout=900, first=[*killers, *importing])
        finally:
            free.put(workdir)
        if test is not None and test.startswith("tests/"):
            file = test.split("::")[0]
            killers[:] = [file, *(other for other in killers if other != file)]
        # Each a whole fast tier: its verdict printed as soon as known (a run stopped midway keeps it).
        shown = f"{mutant.name} ({mutant.description})"
        print(f"killed: {shown} by {test}" if test else f"survived: {shown}", flush=True)
        return mutant.name, test is not None

    with concurrent.futures.ThreadPoolExecutor(len(workdirs)) as pool:
        results = dict(found.results) | dict(pool.map(verdict, sampled(every, size, module)))
    more = Score(found.module, results=results, known=found.known | {m.name for m in every}, sampled=size is not None)
    return tally(more, judged, found.seconds + time.monotonic() - started)


def tally(found: Score, judged: dict[str, str], seconds: float = 0.0) -> Score:
    """`found` with each of its mutants (name -> killed) counted: killed, equivalent (listed and alive), or survived;
    a listed name of the module that names none of its mutants now is stale too."""
    found.seconds = seconds
    found.mutants = len(found.results)
    prefix = f"{constants.dotted(Path(found.module))}."
    found.stale += [name for name in judged if name.startswith(prefix) and name not in found.known]
    for name, dead in sorted(found.results.items()):
        if dead:
            found.killed += 1
            # mutmut numbers a function's mutants in order: an edit of the function renumbers them.
            found.stale += [name] if name in judged else []
        elif name in judged:
            found.equivalent += 1
        else:
            found.survivors.append(name)
    return found


def chosen_modules(known: list[Path]) -> list[Path] | str:
    """The modules MODULE names, in its order (paths separated by spaces; empty: all), or the error naming the unknown
    ones."""
    named = os.environ.get("MODULE", "").split()
    unknown = [name for name in named if Path(name) not in known]
    if unknown:
        listed = ", ".join(map(repr, unknown))
        return f"error: MODULE: {listed} is not one of the mutated modules: {', '.join(map(str, known))}"
    wanted = dict.fromkeys(Path(name) for name in named)  # ./mlops_ci/x.py and mlops_ci//x.py name mlops_ci/x.py
    return list(wanted) if named else known  # in the order named: the ones that matter most first


def sample_size() -> int | str | None:
    """SAMPLE: how many mutants of each module, and of its constants, to run (empty: all), or the error."""
    text = os.environ.get("SAMPLE", "")
    if not text:
        return None
    if re.fullmatch(r"[1-9][0-9]{0,3}", text) is None:
        return f"error: SAMPLE: {text!r} is not a number of mutants a module: a whole number from 1 to 9999"
    return int(text)


def chosen_parts() -> tuple[str, ...] | str:
    """PART: the mutants of each module to run, `functions` (mutmut's) or `constants` (empty: both), or the error."""
    text = os.environ.get("PART", "")
    if text in PARTS:
        return (text,)
    return PARTS if not text else f"error: PART: {text!r} is neither 'functions' nor 'constants' (empty: both)"


def constants_copies() -> tuple[list[Path], list[str]]:
    """A copy of the project for each core, to run that many constants' mutants at once, and the fast tests that fail
    on the copies anyway. The copies run the fast tier all at once: a test that fails only beside another fails here."""
    workdirs = [ROOT / "build" / "mutation" / f"constants-{n}" for n in range(cores())]
    for workdir in workdirs:
        constants.copy_project(workdir)
    with concurrent.futures.ThreadPoolExecutor(len(workdirs)) as pool:
        failing = sorted({test for tests in pool.map(constants.failing_tests, workdirs) for test in tests})
    for test in failing:
        print(f"fails unmutated, left out of the constants' runs: {test}", flush=True)
    return workdirs, failing


def cores() -> int:
    """The cores this run may use (`taskset`, a container's cpuset), not the machine's (`os.cpu_count`)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main() -> int:
    chosen, size, parts = chosen_modules(modules()), sample_size(), chosen_parts()
    if isinstance(chosen, str) or isinstance(size, str) or isinstance(parts, str):  # every problem at once
        print("\n".join(problem for problem in (chosen, size, parts) if isinstance(problem, str)), file=sys.stderr)
        return 2
    judged = equivalents()
    # Every module's functions first, then the constants (each a whole fast tier): the quick figures come first, and
    # each is printed as soon as it is known (a run of all modules takes hours).
    scores = [Score(str(module)) for module in chosen]
    if "functions" in parts:
        # mutmut copies a file into mutants/ only when absent there: a copy left from an earlier run would be stale.
        # (A run of the constants alone keeps it: `mutmut show` of the functions' survivors.)
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
        constants.link_installed(ROOT / "mutants")
        if size is not None:
            generate(chosen)  # to choose from
        for index, module in enumerate(chosen):
            scores[index] = score_functions(module, judged, size)
            print(f"functions only:\n{report(scores[index : index + 1])}", flush=True)
    if "constants" in parts:
        workdirs, failing = constants_copies()
        # The functions' equivalent lines are judged only by a run of the functions.
        judged = judged if "functions" in parts else {name: why for name, why in judged.items() if "__const_" in name}
        for index, found in enumerate(scores):
            scores[index] = score_constants(found, judged, workdirs, failing, size)
            print(f"{' and '.join(parts)}:\n{report(scores[index : index + 1])}", flush=True)
    print(report(scores))
    return 0 if all(score.score >= THRESHOLD for score in scores) else 1


def report(scores: list[Score]) -> str:
    """The table of `scores`, then each survivor and each equivalent line to judge again."""
    lines = ["| module | mutants | killed | equivalent | survived | score | duration |", "|---|---|---|---|---|---|---|"]
    lines += [score.row() for score in scores]
    for score in scores:
        lines += [f"survived: {name}" for name in score.survivors]
        lines += [f"listed as equivalent, but killed or gone (renumbered? judge again): {name}" for name in score.stale]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
