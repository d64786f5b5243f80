"""The two Google services a CI job talks to, served on 127.0.0.1 for one test: Cloud Storage (the
gcp-storage-emulator in memory, localcloud/storage_emulator.py, behind a recording proxy) and the
OAuth 2.0 token endpoint (localcloud/token_endpoint.py, in-process) honouring the keys the test trusts."""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import subprocess
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from localcloud import token_endpoint
from localcloud.storage_emulator import start_emulator
from localcloud.token_endpoint import Exchange

from .commands import stop_process

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# The audience Google requires in an access-token request; google-auth sends it whatever the
# key file's `token_uri` says.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


def request_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The body of the request a local stand-in is handling."""
    return handler.rfile.read(int(handler.headers.get("Content-Length", 0)))


class TokenEndpoint(token_endpoint.TokenEndpoint):
    """Google's token endpoint (localcloud/token_endpoint.py) honouring the keys a test trusts,
    one per account; each exchange kept in `exchanges`."""

    def __init__(self) -> None:
        self.trusted: dict[str, RSAPublicKey] = {}
        super().__init__(lambda issuer, key_id: self.trusted.get(issuer) or f"no trusted key of {issuer!r}")

    def trust(self, email: str, public_key: RSAPublicKey) -> None:
        self.trusted[email] = public_key

    def granted_to(self, email: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.issuer == email and e.granted]

    def rejected_for(self, email: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.issuer == email and not e.granted]


class StorageEmulator:
    """gcp-storage-emulator in memory on a free port (localcloud/storage_emulator.py)."""

    def __init__(self, log_file: Path) -> None:
        self.port = 0
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._process, self.port = start_emulator(self.log_file, None)

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
