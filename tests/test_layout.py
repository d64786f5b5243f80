"""The direction of dependencies: tests use the package, the local cloud and the benchmarks, never
the other way round (what the chapter, bench/ and tests/e2e share lives in localcloud/kit)."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(source: str) -> set[str]:
    """Every module a Python file imports, absolute names only."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_nothing_outside_tests_imports_tests() -> None:
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    outside = [path for path in tracked.stdout.split() if not path.startswith("tests/")]
    assert len(outside) > 50  # the package, the local cloud, bench/, tools/: all read
    offenders = {
        path: sorted(name for name in imported_modules((ROOT / path).read_text()) if name.split(".")[0] == "tests")
        for path in outside
    }
    assert {path: names for path, names in offenders.items() if names} == {}
