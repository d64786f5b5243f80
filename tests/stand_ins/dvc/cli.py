"""dvc/cli/__init__.py `main`, as the job script uses it (see the package's docstring)."""

from __future__ import annotations

import os

from dvc import record


def main(argv: list[str]) -> int:
    record(argv)
    return int(os.environ.get("DVC_EXIT", "0"))
