"""Stand-in for actions/download-artifact v8.0.1 (3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c), read
from `src/download-artifact.ts` at that commit: the artifact `name` of this run (artifact_service.py),
unzipped into `path` (the workspace when empty, `~` expanded). Other runs or repositories
(`github-token`), ids, patterns and skipping the unzip are not implemented."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from localcloud.actions import artifact_service, stand_in
from localcloud.actions.stand_in import ActionError, Inputs, StandIn


def download(inputs: Inputs) -> None:
    name = inputs.get("name")
    if not name:
        raise ActionError("the stand-in downloads one artifact, by `name`")
    target = Path(inputs.get("path") or os.environ.get("GITHUB_WORKSPACE") or os.getcwd()).expanduser().resolve()
    print("Downloading single artifact", flush=True)
    artifact = artifact_service.find(name)
    if artifact is None:
        raise ActionError(f"Artifact not found for name: {name}")
    print(f"Preparing to download the following artifacts:\n- {artifact.name} (ID: {artifact.id}, Size: {artifact.size})")
    with zipfile.ZipFile(io.BytesIO(artifact_service.download(artifact))) as archive:
        archive.extractall(target)
    print("Total of 1 artifact(s) downloaded", flush=True)
    stand_in.set_output("download-path", str(target))
    print("Download artifact has finished successfully", flush=True)


def main(inputs: Inputs) -> None:
    try:
        download(inputs)
    except ActionError as error:
        raise ActionError(f"Unable to download artifact(s): {error}") from None


STAND_IN = StandIn(
    action="actions/download-artifact",
    commit="3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c",
    release="v8.0.1",
    # `repository` and `run-id` only count with a `github-token`, which must stay empty.
    implemented=frozenset({"name", "path", "repository", "run-id"}),
    main=main,
)

if __name__ == "__main__":
    STAND_IN.run()
