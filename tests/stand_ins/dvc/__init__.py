"""Stand-in for DVC 3.67.1 (iterative/dvc), only as the committed job script uses it:
`dvc.repo.Repo().data_status(...)` (dvc/repo/__init__.py `Repo.data_status` -> dvc/repo/data.py
`status`, whose `Status` has `not_in_remote: list[str]`), `dvc.cli.main(argv) -> int`
(dvc/cli/__init__.py `main`), and `python -m dvc ...` (dvc/__main__.py) for the report's diffs.

Every call is appended to the file DVC_CALLS as one JSON line. What it answers comes from the
environment: DVC_NOT_IN_REMOTE (a JSON list of paths, or `error:<message>` for a DvcException),
DVC_EXIT (main's exit code), DVC_PARAMS and DVC_METRICS (what `params diff` and `metrics diff`
print), DVC_PLOTS (non-empty: `plots diff --out DIR` writes DIR/index.html)."""

from __future__ import annotations

import json
import os


class DvcException(Exception):  # noqa: N818 - DVC's own name
    """dvc/exceptions.py `DvcException`: what DVC raises for a failure it can name."""


def record(call: list[str]) -> None:
    with open(os.environ["DVC_CALLS"], "a") as calls:
        calls.write(json.dumps(call) + "\n")
