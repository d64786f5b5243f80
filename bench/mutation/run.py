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

import dataclasses
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from bench.mutation import constants

ROOT = constants.ROOT
EQUIVALENT = Path(__file__).with_name("equivalent.txt")
MUTMUT = Path(sys.executable).with_name("mutmut")
# mutmut's exit codes (mutmut/stats.py status_by_exit_code) that leave a mutant alive: survived, no tests.
ALIVE = {0, 5, 33}
THRESHOLD = 95.0


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

    @property
    def score(self) -> float:
        judged = self.mutants - self.equivalent
        return 100.0 * self.killed / judged if judged else 100.0

    def row(self) -> str:
        return (
            f"| {self.module} | {self.mutants} | {self.killed} | {self.equivalent} | {len(self.survivors)}"
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


def score_module(module: Path, judged: dict[str, str], workdir: Path, failing: list[str]) -> Score:
    """mutmut's mutants of the module's functions, then its constants' mutants on the copy in `workdir`."""
    started = time.monotonic()
    ran = subprocess.run([str(MUTMUT), "run", "--max-children", "1", f"{constants.dotted(module)}.*"], cwd=ROOT)
    # mutmut fails on a name that matches no mutant: a module of constants only has none (its .meta, written, is empty).
    if ran.returncode and (mutmut_results(module) or not meta_path(module).is_file()):
        ran.check_returncode()
    results: dict[str, bool] = {name: code not in ALIVE for name, code in mutmut_results(module).items()}
    for mutant in constants.mutants(ROOT / module):
        results[mutant.name] = constants.killed(workdir, module, mutant, failing, timeout=900)
    return tally(Score(str(module), seconds=time.monotonic() - started), results, judged)


def tally(found: Score, results: dict[str, bool], judged: dict[str, str]) -> Score:
    """`found` with each mutant (name -> killed) counted: killed, equivalent (listed and alive), or survived;
    a listed name of the module that names no mutant now is stale too."""
    found.mutants = len(results)
    prefix = f"{constants.dotted(Path(found.module))}."
    found.stale += [name for name in judged if name.startswith(prefix) and name not in results]
    for name, dead in sorted(results.items()):
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
    """The modules MODULE names (paths separated by spaces; empty: all), or the error naming the unknown ones."""
    named = os.environ.get("MODULE", "").split()
    unknown = [name for name in named if Path(name) not in known]
    if unknown:
        listed = ", ".join(map(repr, unknown))
        return f"error: MODULE: {listed} is not one of the mutated modules: {', '.join(map(str, known))}"
    wanted = {Path(name) for name in named}  # ./mlops_ci/x.py and mlops_ci//x.py name mlops_ci/x.py
    return [module for module in known if not named or module in wanted]


def main() -> int:
    chosen = chosen_modules(modules())
    if isinstance(chosen, str):
        print(chosen, file=sys.stderr)
        return 2
    judged = equivalents()
    # mutmut copies a file into mutants/ only when absent there: a copy left from an earlier run would be stale.
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    constants.link_installed(ROOT / "mutants")
    # One copy for the constants' mutants, and one run of the fast tier on it to know what fails anyway.
    workdir = ROOT / "build" / "mutation" / "constants"
    constants.copy_project(workdir)
    failing = constants.failing_tests(workdir)
    scores: list[Score] = []
    for module in chosen:  # each module's result as soon as it is known: a run of all of them takes hours
        scores.append(score_module(module, judged, workdir, failing))
        print(report(scores[-1:]), flush=True)
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
