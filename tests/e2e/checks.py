"""Evidence read from the file system after (or during) a CI job."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

# A key file is ~2.4 KB; job logs stay far below this. Larger files (wheels, shared libraries)
# are skipped to keep a scan of a workspace with a virtualenv well under a second.
SCAN_LIMIT = 4 * 1024 * 1024


def files_containing(root: Path, needles: Iterable[str]) -> list[Path]:
    """Every regular file under `root` holding one of `needles`."""
    patterns = [needle.encode() for needle in needles]
    found: list[Path] = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            try:
                status = path.lstat()
                if not stat.S_ISREG(status.st_mode) or status.st_size > SCAN_LIMIT:
                    continue
                content = path.read_bytes()
            except FileNotFoundError:  # removed by the running job meanwhile
                continue
            if any(pattern in content for pattern in patterns):
                found.append(path)
    return sorted(found)


def sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
