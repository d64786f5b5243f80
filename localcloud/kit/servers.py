"""The two Google services a CI job talks to, served on 127.0.0.1: Cloud Storage (the
gcp-storage-emulator, as a subprocess of .venv-e2e) and the OAuth 2.0 token endpoint that
exchanges a service-account key's signed assertion for an access token (in-process)."""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import secrets
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from .commands import E2E_VENV, stop_process

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# The audience Google requires in an access-token request; google-auth sends it whatever the
# key file's `token_uri` says.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
STARTUP_TIMEOUT = 15.0


def request_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The body of the request a local stand-in is handling."""
    return handler.rfile.read(int(handler.headers.get("Content-Length", 0)))


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
    """A local stand-in's answer: `payload` as JSON."""
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@dataclasses.dataclass(frozen=True)
class Exchange:
    """One token request: the account whose key claims to have signed it, and the answer."""

    issuer: str
    scope: str
    granted: bool
    reason: str = ""


class TokenEndpoint:
    """Google's token endpoint for service-account keys (RFC 7523 JWT-bearer grant): verifies
    the RS256 signature against the public key of the issuing account's trusted key, and checks
    audience, issuer and expiry. Anything it cannot verify gets 400 `invalid_grant`, as Google
    answers. Every request is recorded."""

    def __init__(self) -> None:
        self.trusted: dict[str, RSAPublicKey] = {}
        self.exchanges: list[Exchange] = []
        self.issued: dict[str, str] = {}
        """Access tokens granted, and the account each was granted to."""
        self.on_grant = lambda: None
        """Called while the requester waits for its token (a CI job holds its key file then)."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/token"

    def trust(self, email: str, public_key: RSAPublicKey) -> None:
        self.trusted[email] = public_key

    def granted_to(self, email: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.issuer == email and e.granted]

    def rejected_for(self, email: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.issuer == email and not e.granted]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def exchange(self, form: dict[str, str]) -> tuple[HTTPStatus, dict[str, Any]]:
        """The token response to a form-encoded token request."""
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return HTTPStatus.BAD_REQUEST, {"error": "unsupported_grant_type"}
        assertion = form.get("assertion", "")
        try:
            claimed = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            self.exchanges.append(Exchange("", "", granted=False, reason=str(error)))
            return HTTPStatus.BAD_REQUEST, {"error": "invalid_grant", "error_description": "Invalid JWT."}
        issuer, scope = str(claimed.get("iss", "")), str(claimed.get("scope", ""))
        try:
            jwt.decode(
                assertion,
                self.trusted[issuer],
                algorithms=["RS256"],
                audience=GOOGLE_TOKEN_AUDIENCE,
                issuer=issuer,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except (jwt.PyJWTError, KeyError) as error:
            self.exchanges.append(Exchange(issuer, scope, granted=False, reason=f"{type(error).__name__}: {error}"))
            return HTTPStatus.BAD_REQUEST, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        self.on_grant()
        self.exchanges.append(Exchange(issuer, scope, granted=True))
        token = secrets.token_urlsafe(32)
        self.issued[token] = issuer
        return HTTPStatus.OK, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                status, payload = endpoint.exchange(dict(urllib.parse.parse_qsl(request_body(self).decode())))
                send_json(self, status, payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # `exchanges` is the log

        return Handler


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class StorageEmulator:
    """gcp-storage-emulator in memory on a free port; its log goes to a file (a pipe nobody
    reads would block it once full)."""

    def __init__(self, log_file: Path) -> None:
        self.port = free_port()
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_file.open("wb") as log:
            self._process = subprocess.Popen(
                [E2E_VENV / "bin/gcp-storage-emulator", "start", "--host", "127.0.0.1", f"--port={self.port}", "--in-memory"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the storage emulator did not start:\n{self.log_file.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)

    def create_bucket(self, name: str, project: str) -> None:
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b?project={project}",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def object_names(self, bucket: str) -> set[str]:
        names: set[str] = set()
        page = ""
        while True:
            query = urllib.parse.urlencode({"maxResults": 1000} | ({"pageToken": page} if page else {}))
            with urllib.request.urlopen(f"{self.url}/storage/v1/b/{bucket}/o?{query}", timeout=10) as response:
                listing = json.load(response)
            names |= {item["name"] for item in listing.get("items", [])}
            if not (page := listing.get("nextPageToken", "")):
                return names

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/storage/v1/b?project=probe", timeout=1):
                return True
        except OSError:  # refused, reset or timed out: not listening yet
            return False


@dataclasses.dataclass(frozen=True)
class Request:
    """One request a client sent to Cloud Storage, as the proxy forwarded (or refused) it."""

    method: str
    path: str
    bucket: str
    status: int
    sent: int
    """Request body bytes (uploads)."""
    received: int
    """Response body bytes (downloads, listings, metadata)."""


_BUCKET_IN_PATH = re.compile(r"/b/(?P<bucket>[^/?]+)")


class StorageProxy:
    """Cloud Storage as the clients see it: forwards every request to the emulator and records
    it with its body sizes, so a test or benchmark counts what a job downloaded and uploaded.
    Buckets in `denied` answer 403, as Google does to an account without a grant on them. Buckets
    in `members` check the caller: its bearer token must be one `tokens` maps to an account
    granted on the bucket (any role: reads and writes are not told apart), or 401 (no token or
    one Google never issued) and 403 (another account) answer, as Google does."""

    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host, self.upstream_port = parsed.hostname or "127.0.0.1", parsed.port
        self.denied: set[str] = set()
        self.members: dict[str, set[str]] = {}
        self.tokens: dict[str, str] = {}
        """Access token -> account (a TokenEndpoint's `issued`)."""
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def to(self, bucket: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.bucket == bucket]

    def received(self) -> int:
        with self._lock:
            return sum(r.received for r in self.requests)

    def uploads(self, bucket: str) -> list[Request]:
        return [r for r in self.to(bucket) if r.method in ("POST", "PUT") and r.path.startswith("/upload/")]

    def refusal(self, bucket: str, authorization: str) -> tuple[int, str] | None:
        """Google's answer to a caller without access to `bucket`; None: access."""
        if bucket in self.denied:
            return 403, f"no storage.objects access to bucket {bucket}"
        if bucket not in self.members:
            return None
        account = self.tokens.get(authorization.removeprefix("Bearer "))
        if account is None:
            return 401, "Anonymous caller does not have storage.objects access to the Google Cloud Storage bucket."
        if account not in self.members[bucket]:
            return 403, f"{account} does not have storage.objects access to the Google Cloud Storage bucket {bucket}."
        return None

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = request_body(self)
                match = _BUCKET_IN_PATH.search(urllib.parse.unquote(self.path.split("?")[0]))
                bucket = match["bucket"] if match else ""
                if refusal := proxy.refusal(bucket, self.headers.get("Authorization", "")):
                    status, message = refusal
                    headers = [("Content-Type", "application/json")]
                    data = json.dumps({"error": {"code": status, "message": message}}).encode()
                else:
                    connection = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
                    skipped = {"host", "connection", "keep-alive", "transfer-encoding", "content-length"}
                    forwarded = {k: v for k, v in self.headers.items() if k.lower() not in skipped}
                    connection.request(self.command, self.path, body=body or None, headers=forwarded)
                    response = connection.getresponse()
                    data = response.read()
                    status = response.status
                    headers = [(k, v) for k, v in response.getheaders() if k.lower() not in skipped]
                    connection.close()
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                delivered = 0
                try:
                    if self.command != "HEAD":
                        self.wfile.write(data)
                        delivered = len(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up on this request: nothing received
                proxy._record(Request(self.command, self.path, bucket, status, len(body), delivered))

            def do_GET(self) -> None:
                self._forward()

            def do_HEAD(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def do_PUT(self) -> None:
                self._forward()

            def do_PATCH(self) -> None:
                self._forward()

            def do_DELETE(self) -> None:
                self._forward()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # `requests` is the log

        return Handler
