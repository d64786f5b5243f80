"""Google's OAuth 2.0 token endpoint for service-account keys, on 127.0.0.1: the one stand-in the local
cloud (localcloud/services.py: keys registered by the gcp plugin in `gcp.json`) and the local kit
(localcloud/kit/servers.py: keys a test trusts) both serve.

Upstream: developers.google.com/identity/protocols/oauth2/service-account ("Preparing to make an
authorized API call", HTTP/REST): a form POST with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
(RFC 7523) and the RS256 `assertion` whose claims are `iss` (the account), `scope`, `aud`
(`https://oauth2.googleapis.com/token`), `iat` and `exp`; an access token answered as
`{access_token, expires_in, token_type}`; `invalid_grant` for an assertion Google does not honour.
google-auth signs it that way whatever the key file's `token_uri` (google/oauth2/service_account.py
`_make_authorization_grant_assertion`: "The audience must be the auth token endpoint's URI").
The `error_description` texts are the ones reported publicly ("Invalid JWT Signature."), not verified
against Google for each case."""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from localcloud import serving

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
TOKEN_LIFETIME = 3599

KeyLookup = Callable[[str, str], "RSAPublicKey | str"]
"""(issuer, key id of the assertion) -> the public key that signs for the issuer, or why none is honoured."""


@dataclasses.dataclass(frozen=True)
class Exchange:
    """One token request: the account whose key claims to have signed it, and the answer."""

    issuer: str
    scope: str
    granted: bool
    reason: str = ""
    key_id: str = ""


class TokenEndpoint:
    """Exchanges a key's signed assertion for an access token when `key_of` names the key that
    signed it, checking audience, issuer and expiry. Every exchange goes to `on_exchange` (by default
    kept in `exchanges`); `on_grant` runs while the requester waits for its token."""

    def __init__(self, key_of: KeyLookup, port: int = 0) -> None:
        self.key_of = key_of
        self.exchanges: list[Exchange] = []
        self.on_exchange: Callable[[Exchange], None] = self.exchanges.append
        self.on_grant: Callable[[], None] = lambda: None
        self.issued: dict[str, str] = {}
        """Access tokens granted, and the account each was granted to."""
        self._expiries: dict[str, float] = {}
        self._lock = threading.Lock()
        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        except OSError:  # the remembered port is taken: a new one (key files naming the old one stop working)
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/token"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def exchange(self, form: dict[str, str]) -> tuple[HTTPStatus, dict[str, Any]]:
        """The token response to a form-encoded token request."""
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return HTTPStatus.BAD_REQUEST, {"error": "unsupported_grant_type"}
        assertion = form.get("assertion", "")
        try:
            key_id = str(jwt.get_unverified_header(assertion).get("kid", ""))
            claimed = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            self.on_exchange(Exchange("", "", granted=False, reason="malformed assertion"))
            return HTTPStatus.BAD_REQUEST, {"error": "invalid_grant", "error_description": "Invalid JWT."}
        issuer, scope = str(claimed.get("iss", "")), str(claimed.get("scope", ""))
        reason = self._refusal(assertion, issuer, key_id)
        if reason:
            self.on_exchange(Exchange(issuer, scope, granted=False, reason=reason, key_id=key_id))
            return HTTPStatus.BAD_REQUEST, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        self.on_grant()
        self.on_exchange(Exchange(issuer, scope, granted=True, key_id=key_id))
        token = "ya29.local-" + secrets.token_urlsafe(24)
        with self._lock:
            self.issued[token] = issuer
            self._expiries[token] = time.time() + TOKEN_LIFETIME
        return HTTPStatus.OK, {"access_token": token, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"}

    def account_of(self, token: str) -> str | None:
        """The account an unexpired access token was issued to, or None."""
        with self._lock:
            account, expiry = self.issued.get(token, ""), self._expiries.get(token, 0.0)
        return account if account and expiry > time.time() else None

    def _refusal(self, assertion: str, issuer: str, key_id: str) -> str:
        """Why the assertion is refused, or "" if it is good."""
        public_key = self.key_of(issuer, key_id)
        if isinstance(public_key, str):
            return public_key
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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                self._answer(*endpoint.exchange(dict(urllib.parse.parse_qsl(body))))

            def do_GET(self) -> None:
                self._answer(HTTPStatus.OK, {"service": "localcloud token endpoint"})

            def _answer(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
                serving.send_json(self, status, payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # `on_exchange` is the log (without assertions)

        return Handler
