"""Stand-in for actions/upload-artifact v7.0.0 (bbbca2ddaa5d8feaa63e36b76fdaad77386f024f), read
from `src/upload/upload-artifact.ts`, `src/shared/search.ts` and `src/shared/upload-artifact.ts`
at that commit: the files under `path` (one file, or a directory: its files, hidden ones left
out, named relative to it), zipped at `compression-level`, uploaded under `name` to the run's
artifact service (artifact_service.py); `if-no-files-found` when there are none. Glob patterns
and several paths are not implemented."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

from localcloud.actions import artifact_service, stand_in
from localcloud.actions.stand_in import ActionError, Inputs, StandIn


def files_to_upload(search_path: str) -> tuple[list[Path], Path]:
    """`findFilesToUpload` for a plain path: the files, and the directory their names start from."""
    if any(char in search_path for char in "*?[]{}!\n"):
        raise ActionError(f"path {search_path!r}: the stand-in uploads one file or one directory, no patterns")
    path = Path(search_path).expanduser().resolve()
    if path.is_file():
        return [path], path.parent
    found: list[Path] = []
    for directory, subdirectories, names in os.walk(path, followlinks=True):  # nothing when path is missing
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        found += [Path(directory, name) for name in sorted(names) if not name.startswith(".")]
    return found, path


def archive(files: list[Path], root: Path, level: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zip_file:
        for file in files:
            zip_file.write(file, file.relative_to(root).as_posix())
    return buffer.getvalue()


def no_files(behaviour: str, search_path: str) -> None:
    message = f"No files were found with the provided path: {search_path}. No artifacts will be uploaded."
    if behaviour == "error":
        raise ActionError(message)
    if behaviour == "warn":
        stand_in.warning(message)
    else:
        print(message, flush=True)


def main(inputs: Inputs) -> None:
    name, search_path = inputs.get("name"), inputs.get("path")
    files, root = files_to_upload(search_path)
    if not files:
        no_files(inputs.get("if-no-files-found"), search_path)
        return
    print(f"With the provided path, there will be {len(files)} file{'' if len(files) == 1 else 's'} uploaded", flush=True)
    zipped = archive(files, root, int(inputs.get("compression-level")))
    digest = hashlib.sha256(zipped).hexdigest()
    artifact_id = artifact_service.upload(name, zipped, digest)
    print(f"Artifact {name} has been successfully uploaded! Final size is {len(zipped)} bytes. Artifact ID is {artifact_id}")
    run = f"{os.environ['GITHUB_SERVER_URL']}/{os.environ['GITHUB_REPOSITORY']}/actions/runs/{os.environ['GITHUB_RUN_ID']}"
    url = f"{run}/artifacts/{artifact_id}"
    print(f"Artifact download URL: {url}", flush=True)
    stand_in.set_output("artifact-id", str(artifact_id))
    stand_in.set_output("artifact-digest", digest)
    stand_in.set_output("artifact-url", url)


STAND_IN = StandIn(
    action="actions/upload-artifact",
    commit="bbbca2ddaa5d8feaa63e36b76fdaad77386f024f",
    release="v7.0.0",
    implemented=frozenset({"name", "path", "if-no-files-found", "compression-level"}),
    main=main,
)

if __name__ == "__main__":
    STAND_IN.run()
