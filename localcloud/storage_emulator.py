"""Cloud Storage on 127.0.0.1: gcp-storage-emulator (PyPI, from .venv-e2e), started on a free port,
for the local cloud's services (data on disk) and the local kit's tests (in memory) alike."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_EMULATOR = REPOSITORY / ".venv-e2e/bin/gcp-storage-emulator"
ENV_EMULATOR = "MLOPS_CI_STORAGE_EMULATOR"
STARTUP_TIMEOUT = 20.0


def free_port(preferred: int = 0) -> int:
    """`preferred` if it is free on 127.0.0.1, else any free port."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket() as probe:
            # as the servers bind (http.server reuses addresses): a port in TIME_WAIT is free for them
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port: int = probe.getsockname()[1]
            return port
    raise OSError("no free port on 127.0.0.1")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:  # refused, reset or timed out: not listening yet
        return False


def start_emulator(log_file: Path, storage_dir: Path | None, preferred: int = 0) -> tuple[subprocess.Popen[bytes], int]:
    """The emulator, answering on its port, in its own process group; its data under `storage_dir`,
    or in memory when None. Its log goes to `log_file` (a pipe nobody reads would block it once
    full). A free port can be taken by another process before the emulator binds it (then a foreign
    server may even answer): retry on a new port."""
    emulator = Path(os.environ.get(ENV_EMULATOR, DEFAULT_EMULATOR))
    where = ["--in-memory"] if storage_dir is None else []
    env = os.environ if storage_dir is None else {**os.environ, "STORAGE_BASE": str(storage_dir), "STORAGE_DIR": "data"}
    for attempt in range(5):
        port = free_port(preferred if attempt == 0 else 0)
        with log_file.open("ab") as log:
            storage = subprocess.Popen(
                [str(emulator), "start", "--host", "127.0.0.1", f"--port={port}", *where],
                cwd=storage_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while storage.poll() is None and time.monotonic() < deadline:
            if answers(f"http://127.0.0.1:{port}/storage/v1/b?project=probe"):
                time.sleep(0.3)  # a bind failure ends the process at once: still alive means it is ours
                if storage.poll() is None:
                    return storage, port
            time.sleep(0.05)
        storage.kill()
        storage.wait()
    raise RuntimeError(f"the storage emulator did not start; see {log_file}:\n{log_file.read_text()[-2000:]}")
