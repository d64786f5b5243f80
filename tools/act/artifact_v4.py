#!/usr/bin/env python3
"""Stand-in for actions/upload-artifact@v4 / download-artifact@v4 (whose code is on no registry here):
speaks the same Artifact v4 protocol as their client, @actions/artifact v2, to the server at
ACTIONS_RESULTS_URL: twirp JSON calls to github.actions.results.api.v1.ArtifactService
(CreateArtifact, FinalizeArtifact, ListArtifacts, GetSignedArtifactURL) and blob-style PUT/GET on the
signed URLs. The run and job backend ids come from the `scp` claim of ACTIONS_RUNTIME_TOKEN
("Actions.Results:<run>:<job>"), as in @actions/artifact.

  artifact_v4.py upload NAME FILE     # stores FILE as NAME.zip's content
  artifact_v4.py download NAME FILE   # writes it back
"""

import base64
import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

SERVICE = "twirp/github.actions.results.api.v1.ArtifactService/"


def backend_ids() -> tuple[str, str]:
    payload = os.environ["ACTIONS_RUNTIME_TOKEN"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    for scope in claims["scp"].split(" "):
        parts = scope.split(":")
        if parts[0] == "Actions.Results":
            return parts[1], parts[2]
    raise SystemExit("no Actions.Results scope in ACTIONS_RUNTIME_TOKEN")


def twirp(method: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        os.environ["ACTIONS_RESULTS_URL"].rstrip("/") + "/" + SERVICE + method,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["ACTIONS_RUNTIME_TOKEN"]},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        answer: dict[str, Any] = json.load(resp)
        return answer


def main() -> None:
    verb, name, path = sys.argv[1:4]
    run, job = backend_ids()
    ids: dict[str, Any] = {"workflowRunBackendId": run, "workflowJobRunBackendId": job}
    if verb == "upload":
        data = Path(path).read_bytes()
        url = str(twirp("CreateArtifact", {**ids, "name": name, "version": 4})["signedUploadUrl"])
        for comp, body in (("&comp=block&blockid=MDAwMQ==", data), ("&comp=blocklist", b"<BlockList/>")):
            urllib.request.urlopen(urllib.request.Request(url + comp, data=body, method="PUT"), timeout=10).close()
        done = twirp("FinalizeArtifact", {**ids, "name": name, "size": str(len(data))})
        print(f"uploaded {name}: {len(data)} bytes, artifact id {done['artifactId']}")
    else:
        listed = [str(a["name"]) for a in twirp("ListArtifacts", {**ids, "nameFilter": name})["artifacts"]]
        url = str(twirp("GetSignedArtifactURL", {**ids, "name": name})["signedUrl"])
        with urllib.request.urlopen(url, timeout=10) as resp:
            data = resp.read()
        Path(path).write_bytes(data)
        print(f"downloaded {name}: {len(data)} bytes (listed: {listed})")


if __name__ == "__main__":
    main()
