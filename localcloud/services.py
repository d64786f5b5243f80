"""The local cloud's long-lived services for one state directory, in one background process:

- Cloud Storage: gcp-storage-emulator (from .venv-e2e), data on disk under `gcs/`;
- the OAuth 2.0 token endpoint for service-account keys (RFC 7523 JWT bearer): it verifies the
  RS256 assertion against the public half of an ACTIVE key registered by the gcp plugin in
  `gcp.json`; a deleted key, a deleted account or a bad signature gets 400 `invalid_grant`;
- Cloud Storage as clients see it (localcloud/storage_front.py): IAM in front of the emulator,
  honouring the tokens the token endpoint issued and the propagation delay of new grants;
- the GitLab REST API stand-in (localcloud/gitlab_api.py): project access tokens, merge-request notes;
- api.github.com (localcloud/github_server.py): the GitHub API stand-in behind an HTTPS proxy, for the
  real GitHub provider and the program's own GitHub look-ups.

All bind 127.0.0.1 only. The process outlives one `pulumi up` (up, CI and destroy are separate
commands) and stops by itself after `idle_timeout` seconds without activity (plugin calls, token
requests, storage requests), or on `python -m localcloud stop`.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from localcloud import github_openapi, iam
from localcloud.github_server import GithubServer
from localcloud.gitlab_api import GitlabServer
from localcloud.oidc_issuer import OidcIssuer
from localcloud.state import LocalCloud, now, open_cloud
from localcloud.storage_emulator import STARTUP_TIMEOUT, answers, start_emulator
from localcloud.storage_front import StorageFront
from localcloud.sts import Federation, GoogleFront
from localcloud.token_endpoint import Exchange, TokenEndpoint

REPOSITORY = Path(__file__).resolve().parent.parent
ENV_IDLE_TIMEOUT = "MLOPS_CI_LOCAL_IDLE_TIMEOUT"
DEFAULT_IDLE_TIMEOUT = 1800.0


def alive(pid: int) -> bool:
    """True if `pid` runs (a zombie, exited but not yet reaped by its parent, does not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z"


def token_endpoint(cloud: LocalCloud, port: int = 0) -> TokenEndpoint:
    """The token endpoint honouring the ACTIVE keys the gcp plugin registered in `gcp.json`; each
    exchange logged to `token-exchanges.jsonl` (without assertions)."""
    endpoint = TokenEndpoint(lambda issuer, key_id: _registered_key(cloud, issuer, key_id), port)
    endpoint.on_exchange = lambda exchange: _record_exchange(cloud, exchange)
    return endpoint


def _registered_key(cloud: LocalCloud, issuer: str, key_id: str) -> RSAPublicKey | str:
    """The public half of the key `key_id` of `issuer`, or why it is refused."""
    gcp = cloud.gcp.read()
    key = gcp.get("keys", {}).get(key_id)
    if key is None:
        return f"unknown key {key_id!r}"
    if key.get("state") != "ACTIVE":
        return f"key {key_id} is {key.get('state')}"
    if key.get("email") != issuer:
        return f"key {key_id} belongs to another account"
    if issuer not in gcp.get("serviceAccounts", {}):
        return f"service account {issuer} does not exist"
    # Google: a new key may be refused for "60 seconds or more" (the answer to such a key,
    # invalid_grant as for an unknown key, is not verified)
    wait = iam.young(gcp, key.get("createTime"), "propagationDelaySeconds")
    if wait:
        return f"key {key_id} not yet propagated ({wait:.0f} s to go)"
    public_key = serialization.load_pem_public_key(key["publicKeyPem"].encode())
    return public_key if isinstance(public_key, RSAPublicKey) else "not an RSA key"


def _record_exchange(cloud: LocalCloud, exchange: Exchange) -> None:
    cloud.touch()
    entry = {
        "time": now(),
        "issuer": exchange.issuer,
        "keyId": exchange.key_id,
        "granted": exchange.granted,
        "reason": exchange.reason,
        "scope": exchange.scope,
    }
    with (cloud.root / "token-exchanges.jsonl").open("a") as out:
        out.write(json.dumps(entry, sort_keys=True) + "\n")


# --- the background process ---


@dataclasses.dataclass
class Servers:
    """The services in front of the emulator, started on the ports they had (when free)."""

    token: TokenEndpoint
    front: StorageFront
    gitlab: GitlabServer
    github: GithubServer
    issuer: OidcIssuer
    """CI jobs' ID tokens (GitHub's and GitLab's issuers) and their JWKS."""
    google: GoogleFront
    """sts.googleapis.com and iamcredentials.googleapis.com, for keyless jobs."""

    @classmethod
    def start(cls, cloud: LocalCloud, storage_url: str, remembered: dict[str, int]) -> Servers:
        token = token_endpoint(cloud, int(remembered.get("token", 0)))
        issuer = OidcIssuer(cloud.root / "oidc", int(remembered.get("oidcIssuer", 0)))
        federation = Federation(cloud, issuer.url)
        google = GoogleFront(cloud, federation, int(remembered.get("googleProxy", 0)))
        port = int(remembered.get("storageProxy", 0))
        front = StorageFront(cloud, storage_url, token.account_of, port, federation.members_of)
        gitlab = GitlabServer(cloud, int(remembered.get("gitlab", 0)), int(remembered.get("gitlabTls", 0)))
        github = GithubServer(cloud, int(remembered.get("githubProxy", 0)), github_openapi.checker())
        for server in (token, front, gitlab, github, issuer, google):
            server.start()
        return cls(token, front, gitlab, github, issuer, google)

    def ports(self) -> dict[str, int]:
        return {
            "storageProxy": int(self.front.server.server_address[1]),
            "token": int(self.token.server.server_address[1]),
            "gitlab": self.gitlab.port,
            "gitlabTls": self.gitlab.tls_port,
            "githubProxy": self.github.port,
            "oidcIssuer": self.issuer.port,
            "googleProxy": self.google.port,
        }

    def urls(self) -> dict[str, str]:
        return {
            "storageProxy": self.front.url,
            "token": self.token.url,
            "gitlab": self.gitlab.url,
            "gitlabTls": self.gitlab.tls_url,
            "gitlabCertificate": str(self.gitlab.certificate),
            "githubProxy": self.github.url,
            "githubCertificate": str(self.github.certificate),
            "certificates": str(self.certificates()),
            "oidcIssuer": self.issuer.url,
            "googleProxy": self.google.url,
            "googleCertificate": str(self.google.certificate),
        }

    def certificates(self) -> Path:
        """The HTTPS services' certificates in one file: a client's `SSL_CERT_FILE` trusts them all."""
        bundle = self.github.certificate.parent.parent / "certificates.pem"
        bundle.write_bytes(self.github.certificate.read_bytes() + self.gitlab.certificate.read_bytes())
        return bundle

    def stop(self) -> None:
        for server in (self.token, self.front, self.gitlab, self.github, self.issuer, self.google):
            server.stop()


def run(root: Path, idle_timeout: float) -> None:
    """The services, in this process, until idle or told to stop."""
    cloud = open_cloud(root)
    cloud.touch()
    storage_dir = root / "gcs"
    storage_dir.mkdir(exist_ok=True)
    emulator_log = root / "storage-emulator.log"
    # The same ports across restarts: key files carry the token endpoint's URL, CI the storage URL.
    ports_file = root / "ports.json"
    remembered = cast(dict[str, int], json.loads(ports_file.read_text()) if ports_file.exists() else {})
    storage, port = start_emulator(emulator_log, storage_dir, int(remembered.get("storage", 0)))
    storage_url = f"http://127.0.0.1:{port}"
    servers = Servers.start(cloud, storage_url, remembered)
    ports_file.write_text(json.dumps({"storage": port, **servers.ports()}))
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        urls = {"storage": storage_url, **servers.urls(), "pid": os.getpid(), "idleTimeout": idle_timeout}
        temporary = cloud.urls_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(urls, indent=2))
        os.replace(temporary, cloud.urls_file)
        activity = [root / "activity", emulator_log]
        while not stop.wait(1.0):
            last = max(path.stat().st_mtime for path in activity if path.exists())
            if time.time() - last > idle_timeout or storage.poll() is not None:
                break
    finally:
        cloud.urls_file.unlink(missing_ok=True)
        servers.stop()
        storage.terminate()
        try:
            storage.wait(timeout=5)
        except subprocess.TimeoutExpired:
            storage.kill()


def status(root: Path) -> dict[str, Any] | None:
    """The running services' URLs, or None."""
    cloud = open_cloud(root)
    urls = cloud.urls()
    if not urls:
        return None
    pid = int(urls.get("pid", 0))
    if not pid or not alive(pid) or not answers(f"{urls['storage']}/storage/v1/b?project=probe"):
        return None
    return dict(json.loads(cloud.urls_file.read_text()))


def start(root: Path, idle_timeout: float | None = None) -> dict[str, Any]:
    """Start the services in the background for `root` unless they run; their URLs. Safe to call
    from several processes at once (the plugins of one `pulumi up` do)."""
    with (root / "services.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _start(root, idle_timeout)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _start(root: Path, idle_timeout: float | None) -> dict[str, Any]:
    running = status(root)
    if running:
        open_cloud(root).touch()
        return running
    timeout = idle_timeout if idle_timeout is not None else float(os.environ.get(ENV_IDLE_TIMEOUT, DEFAULT_IDLE_TIMEOUT))
    cloud = open_cloud(root)
    cloud.urls_file.unlink(missing_ok=True)
    with (root / "services.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "localcloud", "--state-dir", str(root), "serve", "--idle-timeout", str(timeout)],
            cwd=REPOSITORY,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        running = status(root)
        if running:
            return running
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the local cloud did not start; see {root / 'services.log'}")
        time.sleep(0.1)


def stop(root: Path) -> bool:
    """Stop the services of `root`; False if none were running."""
    cloud = open_cloud(root)
    urls = cloud.urls()
    pid = int(urls.get("pid", 0)) if urls else 0
    if not pid or not alive(pid):
        cloud.urls_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return True
