"""`make help` lists every documented target; `make clean` removes only what make built in the checkout."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make(*args: str) -> str:
    return subprocess.run(
        ["make", "-s", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_help_lists_every_documented_target() -> None:
    documented = re.findall(r"^([a-z][^:=\n]*):[^\n]*## ", (ROOT / "Makefile").read_text(), re.MULTILINE)
    listed = [re.split(r"\s{2,}", line.strip())[0] for line in make("help").splitlines() if line.strip()]
    assert listed == documented
    assert {"plan", "test", "check", "demo", "clean"} <= set(listed)


def test_clean_removes_only_build_products_of_the_checkout() -> None:
    (command,) = make("-n", "clean").splitlines()
    words = shlex.split(command)
    assert words[:2] == ["rm", "-rf"]
    assert set(words[2:]) == {
        ".venv",
        ".venv-e2e",
        "node_modules",
        "build",
        "mlops_ci.egg-info",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        "mutants",
    }
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    assert not [path for path in tracked if path.split("/")[0] in words[2:]]
