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
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from localcloud import github_openapi, iam, serving
from localcloud.github_server import GithubServer
from localcloud.gitlab_api import GitlabServer
from localcloud.oidc_issuer import OidcIssuer
from localcloud.state import LocalCloud, now, open_cloud
from localcloud.storage_front import StorageFront
from localcloud.sts import Federation, GoogleFront

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_EMULATOR = REPOSITORY / ".venv-e2e/bin/gcp-storage-emulator"
ENV_EMULATOR = "MLOPS_CI_STORAGE_EMULATOR"
ENV_IDLE_TIMEOUT = "MLOPS_CI_LOCAL_IDLE_TIMEOUT"
DEFAULT_IDLE_TIMEOUT = 1800.0
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
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


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


def alive(pid: int) -> bool:
    """True if `pid` runs (a zombie, exited but not yet reaped by its parent, does not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z"


# --- token endpoint ---


class TokenEndpoint:
    """Exchanges a key's signed assertion for an access token, checking it against `gcp.json`."""

    def __init__(self, cloud: LocalCloud, port: int = 0) -> None:
        self.cloud = cloud
        self.issued: dict[str, tuple[str, float]] = {}
        """Access token → (account, expiry): what the storage front honours."""
        self._issued_lock = threading.Lock()
        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        except OSError:  # the remembered port is taken: a new one (key files naming the old one stop working)
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/token"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def exchange(self, form: dict[str, str]) -> tuple[HTTPStatus, dict[str, Any]]:
        self.cloud.touch()
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return HTTPStatus.BAD_REQUEST, {"error": "unsupported_grant_type"}
        assertion = form.get("assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            claimed = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            self._record("", "", granted=False, reason="malformed assertion")
            return HTTPStatus.BAD_REQUEST, {"error": "invalid_grant", "error_description": "Invalid JWT."}
        issuer, key_id = str(claimed.get("iss", "")), str(header.get("kid", ""))
        reason = self._verify(assertion, issuer, key_id)
        if reason:
            self._record(issuer, key_id, granted=False, reason=reason)
            return HTTPStatus.BAD_REQUEST, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        self._record(issuer, key_id, granted=True, scope=str(claimed.get("scope", "")))
        token = "ya29.local-" + secrets.token_urlsafe(24)
        with self._issued_lock:
            self.issued[token] = (issuer, time.time() + 3599)
        return HTTPStatus.OK, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def account_of(self, token: str) -> str | None:
        """The account an unexpired access token was issued to, or None."""
        with self._issued_lock:
            account, expiry = self.issued.get(token, ("", 0.0))
        return account if account and expiry > time.time() else None

    def _verify(self, assertion: str, issuer: str, key_id: str) -> str:
        """Why the assertion is refused, or "" if it is good."""
        gcp = self.cloud.gcp.read()
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
        if not isinstance(public_key, RSAPublicKey):
            return "not an RSA key"
        try:
            jwt.decode(
                assertion,
                public_key,
                algorithms=["RS256"],
                audience=[GOOGLE_TOKEN_AUDIENCE, self.url],
                issuer=issuer,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.PyJWTError as error:
            return f"{type(error).__name__}: {error}"
        return ""

    def _record(self, issuer: str, key_id: str, granted: bool, reason: str = "", scope: str = "") -> None:
        entry = {"time": now(), "issuer": issuer, "keyId": key_id, "granted": granted, "reason": reason, "scope": scope}
        with (self.cloud.root / "token-exchanges.jsonl").open("a") as out:
            out.write(json.dumps(entry, sort_keys=True) + "\n")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                status, payload = endpoint.exchange(dict(urllib.parse.parse_qsl(body)))
                self._answer(status, payload)

            def do_GET(self) -> None:
                self._answer(HTTPStatus.OK, {"service": "localcloud token endpoint"})

            def _answer(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
                serving.send_json(self, status, payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # token-exchanges.jsonl is the log (without assertions)

        return Handler


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
        token = TokenEndpoint(cloud, int(remembered.get("token", 0)))
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
    storage, port = _start_emulator(storage_dir, emulator_log, int(remembered.get("storage", 0)))
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


def _start_emulator(storage_dir: Path, log_file: Path, preferred: int) -> tuple[subprocess.Popen[bytes], int]:
    """The emulator, answering on its port. A free port can be taken by another process before the
    emulator binds it (then a foreign server may even answer): retry on a new port."""
    emulator = Path(os.environ.get(ENV_EMULATOR, DEFAULT_EMULATOR))
    for attempt in range(5):
        port = free_port(preferred if attempt == 0 else 0)
        with log_file.open("ab") as log:
            storage = subprocess.Popen(
                [str(emulator), "start", "--host", "127.0.0.1", f"--port={port}"],
                cwd=storage_dir,
                env={**os.environ, "STORAGE_BASE": str(storage_dir), "STORAGE_DIR": "data"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while storage.poll() is None and time.monotonic() < deadline:
            if _answers(f"http://127.0.0.1:{port}/storage/v1/b?project=probe"):
                time.sleep(0.3)  # a bind failure ends the process at once: still alive means it is ours
                if storage.poll() is None:
                    return storage, port
            time.sleep(0.05)
        storage.kill()
        storage.wait()
    raise RuntimeError(f"the storage emulator did not start; see {log_file}")


def status(root: Path) -> dict[str, Any] | None:
    """The running services' URLs, or None."""
    cloud = open_cloud(root)
    urls = cloud.urls()
    if not urls:
        return None
    pid = int(urls.get("pid", 0))
    if not pid or not alive(pid) or not _answers(f"{urls['storage']}/storage/v1/b?project=probe"):
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
