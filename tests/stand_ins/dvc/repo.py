"""dvc/repo/__init__.py `Repo`, as the job script uses it (see the package's docstring)."""

from __future__ import annotations

import json
import os
from typing import Any

from dvc import DvcException, record


class Repo:
    def __enter__(self) -> Repo:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def data_status(self, *, granular: bool = False, not_in_remote: bool = False, remote_refresh: bool = False) -> dict[str, Any]:
        # `remote_refresh`: False reads the remote's listing cached on this machine (empty on a fresh runner).
        flags = {"--granular": granular, "--not-in-remote": not_in_remote, "--remote-refresh": remote_refresh}
        record(["data_status", *(flag for flag, on in flags.items() if on)])
        answer = os.environ.get("DVC_NOT_IN_REMOTE", "[]")
        if answer.startswith("error:"):
            raise DvcException(answer.removeprefix("error:"))
        return {
            "not_in_cache": [],
            "not_in_remote": json.loads(answer) if not_in_remote else [],
            "committed": {},
            "uncommitted": {},
            "untracked": [],
            "unchanged": [],
            "git": {},
        }
