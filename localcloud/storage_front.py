"""Cloud Storage as clients see it (CI jobs, the team's `dvc push`, the program's credential
check): every request forwarded to the storage emulator once Google's IAM would let it through.

The emulator accepts anything; this front asks what Google asks: a bearer token the token
endpoint issued (401 otherwise), and the permission the request needs held by the token's
account on the bucket — through the bucket's IAM policy (each grant once the propagation delay
has passed, localcloud/iam.py) or a role on the bucket's project (403 otherwise). It also
answers `GET /storage/v1/b/<bucket>/iam/testPermissions` (cloud.google.com/storage/docs/json_api/
v1/buckets/testIamPermissions: no permission needed, the held subset of those asked). That it
answers a grant only after the same propagation delay as the requests: not verified (the
program's check lists the bucket too, cloud.google.com/iam/docs/access-change-propagation).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from localcloud import iam
from localcloud.state import LocalCloud

_BUCKET = re.compile(r"^/(?:upload/|download/)?storage/v1/b/(?P<bucket>[^/?]+)(?P<rest>/[^?]*)?")
_SKIPPED_HEADERS = {"host", "connection", "keep-alive", "transfer-encoding", "content-length"}


def needed_permission(method: str, path: str) -> tuple[str, str] | None:
    """(bucket, permission) a JSON API request needs; None for requests on no bucket."""
    match = _BUCKET.match(urllib.parse.unquote(path.split("?", 1)[0]))
    if match is None:
        return None
    bucket, rest = match["bucket"], match["rest"] or ""
    if rest == "/o" or rest == "/o/":
        permission = "storage.objects.create" if method == "POST" else "storage.objects.list"
    elif rest.startswith("/o/"):
        permission = {
            "GET": "storage.objects.get",
            "HEAD": "storage.objects.get",
            "DELETE": "storage.objects.delete",
            "POST": "storage.objects.create",  # rewrite/compose into a new object
        }.get(method, "storage.objects.update")
    elif rest.startswith("/iam"):
        permission = "storage.buckets.getIamPolicy" if method == "GET" else "storage.buckets.setIamPolicy"
    else:
        permission = "storage.buckets.get"
    return bucket, permission


def _error(status: int, message: str, reason: str) -> dict[str, Any]:
    """Google's JSON error body (`errors[0].reason`: `required` for 401, `forbidden` for 403)."""
    return {"error": {"code": status, "message": message, "errors": [{"message": message, "domain": "global", "reason": reason}]}}


class StorageFront:
    """The front on a free port of 127.0.0.1 (or `port`), forwarding to the emulator at `upstream`;
    `account_of` maps an access token to its account (the token endpoint's), or None."""

    def __init__(
        self,
        cloud: LocalCloud,
        upstream: str,
        account_of: Callable[[str], str | None],
        port: int = 0,
        members_of: Callable[[str], tuple[str, ...] | None] = lambda token: None,
    ) -> None:
        self.cloud = cloud
        self.members_of = members_of
        """Access token → the IAM members it stands for: the local STS's federated and impersonated tokens."""
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", int(parsed.port or 80))
        self.account_of = account_of
        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        except OSError:  # the remembered port is taken: a new one
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _policy(self, bucket: str) -> list[dict[str, Any]]:
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            connection.request("GET", f"/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/iam")
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        return list(json.loads(body).get("bindings", [])) if response.status == 200 and body.strip() else []

    def held(self, bucket: str, account: str, wanted: list[str], members: tuple[str, ...] = ()) -> set[str]:
        """What `account` (an email) holds, or a federated token's `members` (its principal and principal
        sets: direct Workload Identity Federation, Cloud Storage accepts them in bucket IAM)."""
        gcp, policy = self.cloud.gcp.read(), self._policy(bucket)
        judged = members or (f"serviceAccount:{account}",)
        return {p for member in judged for p in iam.held_permissions(gcp, bucket, member, policy, wanted)}

    def caller(self, token: str) -> tuple[str, tuple[str, ...]] | None:
        """Whom an access token stands for: the account it was issued to (the token endpoint's, or one
        the STS impersonated), or the federated principal with the members of this very token (each
        federated token carries the attributes mapped from its own assertion, cloud.google.com/iam/docs/
        principal-identifiers; nothing is kept between requests, so no token is judged by another's);
        None for a token none issued."""
        account = self.account_of(token)
        if account is not None:
            return account, ()
        members = self.members_of(token)
        if not members:
            return None
        if members[0].startswith("serviceAccount:"):
            return members[0].removeprefix("serviceAccount:"), ()
        return members[0], members

    def refusal(self, method: str, path: str, authorization: str) -> tuple[int, dict[str, Any]] | None:
        """Google's answer to a caller the request is not for; None: forward it."""
        needed = needed_permission(method, path)
        if needed is None:
            return None
        bucket, permission = needed
        token = authorization.removeprefix("Bearer ").strip() if authorization.startswith("Bearer ") else ""
        found = self.caller(token) if token else None
        where = "bucket" if permission.startswith("storage.buckets") or permission == "storage.objects.list" else "object"
        if not token:
            message = (
                f"Anonymous caller does not have {permission} access to the Google Cloud Storage {where}. "
                f"Permission '{permission}' denied on resource (or it may not exist)."
            )
            return 401, _error(401, message, "required")
        if found is None:
            return 401, _error(401, "Invalid Credentials", "authError")
        account, members = found
        if path.split("?", 1)[0].endswith("/iam/testPermissions"):
            return None  # answered by `test_permissions`
        if permission not in self.held(bucket, account, [permission], members):
            message = (
                f"{account} does not have {permission} access to the Google Cloud Storage {where}. "
                f"Permission '{permission}' denied on resource (or it may not exist)."
            )
            return 403, _error(403, message, "forbidden")
        return None

    def test_permissions(self, path: str, authorization: str) -> dict[str, Any]:
        bucket_path, _, query = path.partition("?")
        bucket = urllib.parse.unquote(bucket_path.split("/b/", 1)[1].split("/", 1)[0])
        wanted = [value for key, value in urllib.parse.parse_qsl(query) if key == "permissions"]
        account, members = self.caller(authorization.removeprefix("Bearer ").strip()) or ("", ())
        held = sorted(self.held(bucket, account, wanted, members))
        return {"kind": "storage#testIamPermissionsResponse", **({"permissions": held} if held else {})}

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """(status, headers, body) for one request: Google's refusal, the held permissions, or the
        emulator's own answer."""
        self.cloud.touch()
        authorization = next((value for key, value in headers.items() if key.lower() == "authorization"), "")
        json_type = [("Content-Type", "application/json")]
        refused = self.refusal(method, path, authorization)
        if refused is not None:
            return refused[0], json_type, json.dumps(refused[1]).encode()
        if method == "GET" and path.split("?", 1)[0].endswith("/iam/testPermissions"):
            return 200, json_type, json.dumps(self.test_permissions(path, authorization)).encode()
        connection = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            forwarded = {k: v for k, v in headers.items() if k.lower() not in _SKIPPED_HEADERS}
            connection.request(method, path, body=body or None, headers=forwarded)
            response = connection.getresponse()
            data = response.read()
            return response.status, [(k, v) for k, v in response.getheaders() if k.lower() not in _SKIPPED_HEADERS], data
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers, data = front.answer(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    try:
                        self.wfile.write(data)
                    except (BrokenPipeError, ConnectionResetError):
                        self.close_connection = True

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the emulator's log has every forwarded request

        return Handler
