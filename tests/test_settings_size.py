"""The settings stay parse -> validate -> derive in small functions: none over 40 lines or a
cyclomatic complexity of 15, as radon counts it (`load_settings` was one function of 91 lines and 49)."""

# radon is untyped:
# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false
from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Function

from mlops_ci.ci.files import TEMPLATES
from mlops_ci.settings import loader

SETTINGS_PACKAGE = Path(loader.__file__).parent


def settings_functions(modules: list[Path] | None = None) -> list[tuple[str, int, int]]:
    """(function, lines, cyclomatic complexity) of every function in `modules`, by default mlops_ci/settings."""
    found: list[tuple[str, int, int]] = []
    for module in modules or sorted(SETTINGS_PACKAGE.glob("*.py")):
        for block in cc_visit(module.read_text()):
            if isinstance(block, Function):
                found.append((f"{module.name}:{block.fullname}", int(block.endline - block.lineno + 1), int(block.complexity)))
    return found


def test_settings_functions_are_small_and_simple() -> None:
    functions = settings_functions()
    assert len(functions) > 40
    assert [f for f in functions if f[1] > 40 or f[2] > 15] == []


def test_the_job_scripts_functions_are_small_and_simple_too() -> None:
    """The job script a team reads in its repository (mlops_ci/ci/templates/job.py)."""
    functions = settings_functions([TEMPLATES / "job.py"])
    assert len(functions) > 15
    assert [f for f in functions if f[1] > 40 or f[2] > 15] == []
