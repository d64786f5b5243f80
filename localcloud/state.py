"""The local cloud's state directory: JSON stores shared by the plugins and the services, and
the journal of provider calls.

Layout of `$MLOPS_CI_LOCAL` (e.g. `build/local/<team>`):

    cloud.json        URLs of the running services (written by `python -m localcloud start`)
    gcp.json          projects, services, service accounts, key *public* halves, IAM members, pools
    ci-store.json     GitHub secrets/variables and GitLab CI/CD variables, as a CI runner reads them (0600)
    platform.json     repositories and projects known to the GitHub/GitLab plugins (ids, paths)
    gitlab.json       the GitLab API stand-in's project access tokens (digests only), merge requests, notes (0600)
    gitlab-requests.jsonl  one line per request to the GitLab API stand-in (never a token or a body)
    github.json       the GitHub API stand-in's tokens (digests), the repositories' secret keys, rulesets (0600)
    github-requests.jsonl  one line per request to the GitHub API stand-in (never a token or a body)
    clock.json        the local cloud's clock offset in days (absent: the real clock)
    git/              bare repositories playing the remotes
    gcs/              the storage emulator's data
    journal.jsonl     one line per provider call
    token-exchanges.jsonl  one line per token request (granted or not)
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

from localcloud import wire

ENV_STATE_DIR = "MLOPS_CI_LOCAL"
_thread_lock = threading.RLock()


def state_dir(explicit: str | Path | None = None, create: bool = True) -> Path:
    """The state directory: `explicit`, or `$MLOPS_CI_LOCAL`; created unless `create` is false (a
    command that only looks, such as `status`, leaves no directory behind)."""
    raw = explicit if explicit is not None else os.environ.get(ENV_STATE_DIR)
    if not raw:
        raise RuntimeError(f"{ENV_STATE_DIR} is not set: the local cloud needs a state directory (e.g. build/local/<team>)")
    path = Path(raw).resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso(moment: datetime.datetime) -> str:
    """GitLab's timestamp format (RFC 3339, milliseconds, Z)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Store:
    """A JSON document in the state directory, changed under an exclusive lock (shared by the
    plugin processes of one `pulumi up` and the services)."""

    def __init__(self, path: Path, private: bool = False) -> None:
        self.path = path
        self.private = private
        self._lock_path = path.with_name(path.name + ".lock")

    def read(self) -> dict[str, Any]:
        with self._locked():
            return self._load()

    @contextlib.contextmanager
    def edit(self) -> Generator[dict[str, Any]]:
        """The document, written back when the block ends without an exception."""
        with self._locked():
            document = self._load()
            yield document
            temporary = self.path.with_name(self.path.name + ".tmp")
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            fd = os.open(temporary, flags, 0o600 if self.private else 0o644)
            with os.fdopen(fd, "w") as out:
                json.dump(document, out, indent=2, sort_keys=True)
            os.replace(temporary, self.path)

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        text = self.path.read_text()
        return dict(json.loads(text)) if text.strip() else {}

    @contextlib.contextmanager
    def _locked(self) -> Generator[None]:
        with _thread_lock, self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class Journal:
    """`journal.jsonl`: one JSON object per provider call, secrets redacted."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(
        self,
        op: str,
        type_: str,
        urn: str,
        inputs: wire.Props,
        always_secret: frozenset[str] = frozenset(),
        **extra: Any,
    ) -> None:
        entry: dict[str, Any] = {
            "time": now(),
            "op": op,
            "type": type_,
            "name": urn.rsplit("::", 1)[-1] if "::" in urn else "",
            "urn": urn,
            "inputs": wire.redact(inputs, always_secret),
        }
        entry.update({k: wire.redact(v, always_secret, k) for k, v in extra.items()})
        line = json.dumps(entry, sort_keys=True) + "\n"
        with _thread_lock, self.path.open("a") as out:
            fcntl.flock(out, fcntl.LOCK_EX)
            out.write(line)
            fcntl.flock(out, fcntl.LOCK_UN)

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


class LocalCloud:
    """Handles on one state directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.gcp = Store(root / "gcp.json")
        self.platform = Store(root / "platform.json")
        self.ci_store = Store(root / "ci-store.json", private=True)
        self.gitlab = Store(root / "gitlab.json", private=True)
        self.github = Store(root / "github.json", private=True)
        self.journal = Journal(root / "journal.jsonl")
        self.git_root = root / "git"
        self.urls_file = root / "cloud.json"

    def urls(self) -> dict[str, str]:
        """Service URLs written by `python -m localcloud start` (empty if not started)."""
        if not self.urls_file.exists():
            return {}
        return {k: str(v) for k, v in json.loads(self.urls_file.read_text()).items()}

    @contextlib.contextmanager
    def lock(self, name: str) -> Generator[None]:
        """An exclusive lock named `name`, across the plugins' threads and processes (flock on an
        open file of its own)."""
        with (self.root / f"{name}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @property
    def clock_file(self) -> Path:
        return self.root / "clock.json"

    def clock(self) -> datetime.datetime:
        """The local cloud's time (UTC): the real clock moved by `advance_clock`. What expires
        (GitLab's access tokens) expires by it, for the plugins and the services alike."""
        offset = json.loads(self.clock_file.read_text()).get("offsetDays", 0) if self.clock_file.exists() else 0
        return datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=float(offset))

    def advance_clock(self, days: float) -> None:
        """Move the local cloud's clock `days` ahead (cumulative), as time passing would."""
        offset = json.loads(self.clock_file.read_text()).get("offsetDays", 0) if self.clock_file.exists() else 0
        self.clock_file.write_text(json.dumps({"offsetDays": float(offset) + days}))

    def touch(self) -> None:
        """Mark activity: the services stop by themselves after an idle period."""
        (self.root / "activity").touch()


def open_cloud(explicit: str | Path | None = None) -> LocalCloud:
    return LocalCloud(state_dir(explicit))
