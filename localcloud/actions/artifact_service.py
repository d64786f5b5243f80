"""What actions/upload-artifact and download-artifact ask of the run's artifact service, as their
client `@actions/artifact` (v2 and later: artifacts "v4") does: twirp JSON calls to
`github.actions.results.api.v1.ArtifactService` at ACTIONS_RESULTS_URL, the run's and job's
backend ids taken from the `scp` claim of ACTIONS_RUNTIME_TOKEN (`Actions.Results:<run>:<job>`),
the zip sent in blocks to the signed upload URL then committed (`comp=block`, `comp=blocklist`,
as Azure's BlockBlobClient does), and read back from the signed download URL. The service here is
act's own (`pkg/artifacts/artifacts_v4.go`, run by the runner as act-artifact-server)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from localcloud.actions.stand_in import ActionError

SERVICE = "twirp/github.actions.results.api.v1.ArtifactService/"
BLOCK_SIZE = 8 * 1024 * 1024  # @actions/artifact's upload buffer
TIMEOUT = 60


@dataclasses.dataclass(frozen=True)
class StoredArtifact:
    id: int
    name: str
    size: int


def backend_ids() -> dict[str, str]:
    """`getBackendIdsFromToken`: the ids in the runtime token's `Actions.Results` scope."""
    payload = os.environ["ACTIONS_RUNTIME_TOKEN"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    for scope in str(claims.get("scp", "")).split(" "):
        parts = scope.split(":")
        if parts[0] == "Actions.Results" and len(parts) == 3:
            return {"workflowRunBackendId": parts[1], "workflowJobRunBackendId": parts[2]}
    raise ActionError("Failed to get backend IDs: no Actions.Results scope in ACTIONS_RUNTIME_TOKEN")


def call(method: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        os.environ["ACTIONS_RESULTS_URL"].rstrip("/") + "/" + SERVICE + method,
        data=json.dumps(backend_ids() | body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {os.environ['ACTIONS_RUNTIME_TOKEN']}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            answer: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as error:
        answer_text = error.read().decode(errors="replace")
        raise ActionError(f"{method}: the artifact service answered {error.code} {answer_text}") from None
    except OSError as error:  # act's service drops the connection when the run has no artifact yet
        raise ActionError(f"{method}: the artifact service failed: {error}") from None
    return answer


def upload(name: str, archive: bytes, digest: str) -> int:
    """CreateArtifact, the blocks and the block list, FinalizeArtifact: the artifact's id."""
    url = str(call("CreateArtifact", {"name": name, "version": 4})["signedUploadUrl"])
    blocks = [archive[start : start + BLOCK_SIZE] for start in range(0, len(archive), BLOCK_SIZE)] or [b""]
    for number, block in enumerate(blocks):
        block_id = base64.b64encode(f"{number:06d}".encode()).decode()
        put(f"{url}&comp=block&blockid={urllib.parse.quote(block_id)}", block)
    put(f"{url}&comp=blocklist", b"<?xml version='1.0' encoding='utf-8'?><BlockList/>")
    finalized = call("FinalizeArtifact", {"name": name, "size": str(len(archive)), "hash": f"sha256:{digest}"})
    return int(finalized["artifactId"])


def put(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, method="PUT", headers={"x-ms-blob-type": "BlockBlob"})
    with urllib.request.urlopen(request, timeout=TIMEOUT):
        pass


def find(name: str) -> StoredArtifact | None:
    """`getArtifact`: the run's artifact of that name (ListArtifacts with a name filter), latest first."""
    found = call("ListArtifacts", {"nameFilter": name}).get("artifacts", [])
    ordered = sorted(found, key=lambda artifact: str(artifact.get("createdAt", "")), reverse=True)
    return next((StoredArtifact(int(a["databaseId"]), str(a["name"]), int(a.get("size", 0))) for a in ordered), None)


def download(artifact: StoredArtifact) -> bytes:
    url = str(call("GetSignedArtifactURL", {"name": artifact.name})["signedUrl"])
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return response.read()
