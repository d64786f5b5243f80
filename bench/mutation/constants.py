"""Mutants of a module's constants: the rules built at import time, which mutmut 3 leaves alone (it
mutates inside functions only: `mutmut/mutation/file_mutation.py` `combine_mutations_to_source`
keeps every other top-level statement unmodified).

Each mutant changes one literal of one module-level assignment (a string gets `XX` around it, as
mutmut does, a number grows by one, a boolean flips) or drops one element of a tuple, list, set
or dict display there (one reserved name, one table row). Each runs the fast test tier, stopping at
the first failure, in a fresh interpreter on a copy of the project: an in-process runner would
see the rules built from the unmutated module.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the fast tier reads: the package, the tests, and the files mutmut copies too (`[tool.mutmut] also_copy`).
COPIED = (
    "mlops_ci",
    "tests",
    "pyproject.toml",
    *tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["also_copy"],
)
SLOW_TIERS = ("--ignore=tests/e2e", "--ignore=tests/engine", "--ignore=tests/localcloud")
# `-rfE`: the short summary names the tests that failed and the ones that errored (a fixture, a collection).
# The plugins of the runs: bench/mutation/no_shrink.py's profile (a failing property test's example is not shrunk),
# bench/mutation/first_files.py (the test files most likely to kill a mutant first: its `--first` options).
PLUGINS = ("-p", "bench.mutation.no_shrink", "--hypothesis-profile=mutation", "-p", "bench.mutation.first_files")
FAST_TIER = ("-p", "no:cacheprovider", "-q", "-x", "-rfE", *PLUGINS, *SLOW_TIERS)
# A line of pytest's short summary: `FAILED <node id> - <message>` (or ERROR); a node id holds spaces and " - " only
# inside its parameters' brackets.
SUMMARY_LINE = re.compile(r"(?:FAILED|ERROR) ([^\s\[]+(?:\[.*?\])?)(?: - |$)")


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    """`<module>.<constant>__const_<n>`: stable while the module's constants keep their order."""
    line: int
    description: str
    source: str


def _is_constant(node: ast.stmt) -> bool:
    """A module-level assignment of a value (not a type alias, not `__all__`, not `TYPE_CHECKING`)."""
    if isinstance(node, ast.Assign):
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
    elif isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name):
        names = [node.target.id]
    else:
        return False
    # Type aliases (`Rule = Callable[...]`, `T = TypeVar(...)`) and other names are not rules.
    if isinstance(node.value, ast.Subscript | ast.Name | ast.Attribute) or _calls(node.value, "TypeVar"):
        return False
    return bool(names) and not any(n.startswith("__") for n in names)


def _calls(value: ast.expr | None, function: str) -> bool:
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == function


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes under `node`, f-strings not entered (their parts are no expressions of their own)."""
    yield node
    if not isinstance(node, ast.JoinedStr):
        for child in ast.iter_child_nodes(node):
            yield from _walk(child)


def _edits(value: ast.expr) -> Iterator[tuple[ast.AST, str, str]]:
    """(node, replacement source, description) for each mutation inside an assigned value."""
    for node in _walk(value):
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            yield node, repr(not node.value), f"{node.value} -> {not node.value}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            yield node, repr(node.value + 1), f"{node.value} -> {node.value + 1}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node, repr(f"XX{node.value}XX"), f"{node.value!r} -> 'XX…XX'"
        elif isinstance(node, ast.Tuple | ast.List | ast.Set) and len(node.elts) > 1:
            for index, element in enumerate(node.elts):
                rest = [ast.unparse(e) for i, e in enumerate(node.elts) if i != index]
                shown = ", ".join(rest) + ("," if isinstance(node, ast.Tuple) and len(rest) == 1 else "")
                brackets = {ast.Tuple: "()", ast.List: "[]", ast.Set: "{}"}[type(node)]
                yield node, f"{brackets[0]}{shown}{brackets[1]}", f"without {ast.unparse(element)}"
        elif isinstance(node, ast.Dict) and len(node.keys) > 1:
            for index, key in enumerate(node.keys):
                pairs = zip(node.keys, node.values, strict=True)
                rest = [f"{ast.unparse(k)}: {ast.unparse(v)}" for i, (k, v) in enumerate(pairs) if i != index and k is not None]
                yield node, "{" + ", ".join(rest) + "}", f"without the entry {ast.unparse(key) if key else '**'}"


def _replace(source: str, node: ast.AST, text: str) -> str:
    """The source with `node`'s exact span replaced by `text` (parenthesised: a safe expression)."""
    lines = source.splitlines(keepends=True)
    start = sum(len(line) for line in lines[: node.lineno - 1]) + node.col_offset  # type: ignore[attr-defined]
    end = sum(len(line) for line in lines[: node.end_lineno - 1]) + node.end_col_offset  # type: ignore[attr-defined]
    return f"{source[:start]}({text}){source[end:]}"


def dotted(relative: Path) -> str:
    """The module's dotted name (mlops_ci/settings/rules.py: mlops_ci.settings.rules), as mutants are named."""
    return str(relative.with_suffix("")).replace("/", ".")


def mutants(path: Path) -> list[Mutant]:
    """Every mutant of the module's constants, in source order."""
    source = path.read_text()
    module = dotted(path.relative_to(ROOT))
    found: list[Mutant] = []
    for statement in ast.parse(source).body:
        if not _is_constant(statement):
            continue
        assert isinstance(statement, ast.Assign | ast.AnnAssign)
        assert statement.value is not None
        target = statement.targets[0] if isinstance(statement, ast.Assign) else statement.target
        name = ast.unparse(target)
        for node, text, description in _edits(statement.value):
            mutated = _replace(source, node, text)
            try:
                ast.parse(mutated)
            except SyntaxError:
                continue
            count = sum(1 for m in found if m.name.startswith(f"{module}.{name}__const_"))
            found.append(Mutant(f"{module}.{name}__const_{count + 1}", node.lineno, description, mutated))  # type: ignore[attr-defined]
    return found


def copy_project(where: Path) -> None:
    """The project's files the fast tier reads, copied once (the worktree itself is never mutated)."""
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    for name in COPIED:
        origin = ROOT / name.rstrip("/")
        if origin.is_dir():
            shutil.copytree(origin, where / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, where / name.rstrip("/"))
    link_installed(where)


def link_installed(where: Path) -> None:
    """The checkout's virtualenv and node_modules, linked into a copy of the project: the tests run
    the CI files' linters and make targets, whose stamps then say that nothing needs installing."""
    where.mkdir(exist_ok=True)
    for name in (".venv", "node_modules"):
        if not (where / name).exists():
            (where / name).symlink_to(ROOT / name)


def failing_tests(where: Path) -> list[str]:
    """Node ids of the fast tests that fail on the unmutated copy (none expected): deselected after,
    so that no mutant counts as killed by a test that fails anyway."""
    args = [a for a in FAST_TIER if a != "-x"]  # the mutants' command otherwise: a plugin that fails to load fails here
    run = subprocess.run([sys.executable, "-m", "pytest", *args, "tests"], cwd=where, capture_output=True, text=True, check=False)
    if run.returncode not in (0, 1):  # 2: collection errors, interrupted; 3-5: pytest itself
        raise RuntimeError(f"the fast tests do not run on the copy in {where}:\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
    return summarised(run.stdout)


def summarised(output: str) -> list[str]:
    """The node ids pytest's short summary names, in its order; never a line of a test's output (shown above it)."""
    _, header, summary = output.rpartition(" short test summary info ")
    return [found[1] for line in summary.splitlines() if header and (found := SUMMARY_LINE.match(line))]


def relevant_tests(relative: Path) -> list[str]:
    """The test files that import the module by name: run first, so a killed mutant dies in seconds
    (the rest of the fast tier follows)."""
    name = dotted(relative)
    package, _, stem = name.rpartition(".")
    names = (name, f"from {package} import {stem}")
    return sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").glob("test_*.py")
        if any(name in path.read_text() for name in names)
    )


def killer(where: Path, relative: Path, mutant: Mutant, deselected: list[str], timeout: float, first: list[str]) -> str | None:
    """The fast test that fails first with the mutant in place (a fresh interpreter), or None: it survived. The test
    files `first` run first, in that order, then the rest. The copy is restored after; an interrupted run (Ctrl-C)
    has no verdict: KeyboardInterrupt."""
    target = where / relative
    original = target.read_text()
    target.write_text(mutant.source)
    files = (f"--first={file}" for file in first)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", *FAST_TIER, *files, *(f"--deselect={t}" for t in deselected), "tests"],
            cwd=where,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return "(timeout)"  # as mutmut counts a timeout: killed
    finally:
        target.write_text(original)
    failed = summarised(run.stdout)
    if run.returncode in (2, -signal.SIGINT) and not failed:  # interrupted (Ctrl-C): no verdict, the run stops
        raise KeyboardInterrupt(f"the fast tests of {mutant.name} were interrupted")
    return None if run.returncode == 0 else next(iter(failed), f"(pytest exit {run.returncode})")
