"""Every function of the package `mlops_ci/` stays small: none over 40 lines or a cyclomatic
complexity of 15, as radon counts it. The settings were one function of 91 lines and 49
(`load_settings`); the GitLab delivery's `__init__` was 96 lines, GitHub's 76, the offline `evaluate` 49.
The CI and job templates are not Python the package runs, but the job script a team reads in its
repository (mlops_ci/ci/templates/job.py) is held to the same rule."""

# radon is untyped:
# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false
from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Function

import mlops_ci
from mlops_ci.ci.files import TEMPLATES

PACKAGE = Path(mlops_ci.__file__).parent
JOB_SCRIPT = TEMPLATES / "job.py"
MAX_LINES = 40
MAX_COMPLEXITY = 15


def package_modules() -> list[Path]:
    """Every module of the package, templates excluded but the job script."""
    return [m for m in sorted(PACKAGE.rglob("*.py")) if not m.is_relative_to(TEMPLATES) or m == JOB_SCRIPT]


def functions(modules: list[Path]) -> list[tuple[str, int, int]]:
    """(module:function, lines, cyclomatic complexity) of every function and method in `modules`."""
    found: list[tuple[str, int, int]] = []
    for module in modules:
        for block in cc_visit(module.read_text()):
            if isinstance(block, Function):
                where = f"{module.relative_to(PACKAGE.parent)}:{block.fullname}"
                found.append((where, int(block.endline - block.lineno + 1), int(block.complexity)))
    return found


def too_big(found: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    return [f for f in found if f[1] > MAX_LINES or f[2] > MAX_COMPLEXITY]


def test_every_function_of_the_package_is_small_and_simple() -> None:
    modules = package_modules()
    found = functions(modules)
    assert len(found) > 300
    # The walk reaches every subpackage, and the job script among the templates.
    assert {m.parent.name for m in modules} >= {
        "mlops_ci",
        "settings",
        "platforms",
        "offline",
        "components",
        "policy",
        "templates",
    }
    assert too_big(found) == []


def test_the_job_scripts_functions_are_counted() -> None:
    """The job script a team reads in its repository, and no other template, is in the count."""
    found = functions([JOB_SCRIPT])
    assert len(found) > 15
    assert [m for m in package_modules() if m.is_relative_to(TEMPLATES)] == [JOB_SCRIPT]
