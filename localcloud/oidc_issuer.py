"""The OIDC issuer of CI jobs' ID tokens on this machine: GitHub Actions'
(`https://token.actions.githubusercontent.com`) and a GitLab instance's (its root URL), signed RS256
with one key of the state directory (PyJWT + cryptography), its public half served as a JWKS.

What is served (127.0.0.1, plain HTTP; every issuer name shares the key):

    GET /issuers/<issuer, URL-quoted>/.well-known/openid-configuration
        the discovery document (OpenID Connect Discovery 1.0 §4: `issuer` is the real issuer name,
        `jwks_uri` this server's), as Google's STS reads it before it verifies a token
    GET /jwks   the public key (RFC 7517), `kid` = its RFC 7638 thumbprint
    GET /github/id-token?api-version=2.0&audience=<aud>   with `Authorization: Bearer <request token>`
        GitHub's runtime token service as `@actions/core` `getIDToken` calls it (ACTIONS_ID_TOKEN_REQUEST_URL
        with `&audience=` appended, the request token as bearer; answer `{"value": <jwt>}`; actions/toolkit
        `packages/core/src/oidc-utils.ts`). The request token here is itself a JWT signed with the key, carrying
        the claims of the job's run (GitHub's is opaque: not verified how it binds the run); 401 without a good one.

Claims follow the platforms' documentation: GitHub, docs.github.com "OpenID Connect reference"
(`sub` repo:<owner>/<repo>:ref:<ref>, string ids `repository_id`, `repository_owner_id`, ...); GitLab,
docs.gitlab.com "OpenID Connect (OIDC) Authentication Using ID Tokens" (`sub`
project_path:<path>:ref_type:<type>:ref:<ref>, string ids `project_id`, `namespace_id`, ...). A token lives
5 minutes on both (GitHub's documented lifetime; GitLab's follows the job's timeout: not modelled).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import secrets
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, cast

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from localcloud import serving

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
TOKEN_LIFETIME = 300
_REQUEST_TOKEN_AUDIENCE = "localcloud:github-id-token-request"


@dataclasses.dataclass(frozen=True)
class Forgery:
    """An impostor's ID token: another audience than the one asked for, or issued long ago."""

    audience: str | None = None
    issued: float | None = None


@dataclasses.dataclass(frozen=True)
class GithubRun:
    """What a GitHub Actions run's ID token says of it."""

    repository: str
    repository_id: str
    repository_owner_id: str
    ref: str = "refs/heads/main"
    event_name: str = "push"

    def claims(self) -> dict[str, Any]:
        owner = self.repository.split("/")[0]
        return {
            "sub": f"repo:{self.repository}:ref:{self.ref}",
            "repository": self.repository,
            "repository_id": self.repository_id,
            "repository_owner": owner,
            "repository_owner_id": self.repository_owner_id,
            "ref": self.ref,
            "ref_type": "branch" if self.ref.startswith("refs/heads/") else "tag",
            "event_name": self.event_name,
            "sha": secrets.token_hex(20),
            "run_id": str(secrets.randbelow(10**10)),
            "run_attempt": "1",
            "workflow_ref": f"{self.repository}/.github/workflows/mlops.yaml@{self.ref}",
            "runner_environment": "github-hosted",
        }


@dataclasses.dataclass(frozen=True)
class GitlabJob:
    """What a GitLab CI job's ID token says of it."""

    project_path: str
    project_id: str
    namespace_id: str
    ref: str = "main"
    ref_type: str = "branch"
    pipeline_source: str = "push"

    def claims(self) -> dict[str, Any]:
        return {
            "sub": f"project_path:{self.project_path}:ref_type:{self.ref_type}:ref:{self.ref}",
            "project_path": self.project_path,
            "project_id": self.project_id,
            "namespace_path": self.project_path.rsplit("/", 1)[0],
            "namespace_id": self.namespace_id,
            "ref": self.ref,
            "ref_type": self.ref_type,
            "ref_path": f"refs/heads/{self.ref}" if self.ref_type == "branch" else f"refs/tags/{self.ref}",
            "ref_protected": "false",
            "pipeline_source": self.pipeline_source,
            "pipeline_id": str(secrets.randbelow(10**9)),
            "job_id": str(secrets.randbelow(10**10)),
            "runner_environment": "self-hosted",
        }


class SigningKey:
    """The issuer's RSA key, made once in `directory` (mode 0600): the server process and the tests
    that mint tokens share it."""

    def __init__(self, directory: Path) -> None:
        path = directory / "oidc-issuer-key.pem"
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                out.write(pem)
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        self.key = loaded
        numbers = loaded.public_key().public_numbers()
        self.jwk = {"kty": "RSA", "e": _b64(numbers.e), "n": _b64(numbers.n)}
        thumbprint = json.dumps(self.jwk, separators=(",", ":"), sort_keys=True).encode()  # RFC 7638 §3
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(thumbprint).digest()).rstrip(b"=").decode()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def mint(
        self,
        issuer: str,
        claims: dict[str, Any],
        audience: str | list[str],
        lifetime: int = TOKEN_LIFETIME,
        issued: float | None = None,
    ) -> str:
        """An ID token of `issuer` for `audience`; `issued` (epoch) back-dates it (an expired token)."""
        start = int(issued if issued is not None else time.time())
        payload = {**claims, "iss": issuer, "aud": audience, "iat": start, "nbf": start, "exp": start + lifetime}
        payload["jti"] = secrets.token_hex(16)
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": self.kid})

    def request_token(self, claims: dict[str, Any], forged: Forgery | None = None) -> str:
        """ACTIONS_ID_TOKEN_REQUEST_TOKEN for a run whose ID tokens carry `claims` (valid one hour);
        `forged`: the tokens it gets are an impostor's (the tests' refusals)."""
        payload: dict[str, Any] = {"claims": claims, "aud": _REQUEST_TOKEN_AUDIENCE, "exp": int(time.time()) + 3600}
        payload["forged"] = dataclasses.asdict(forged) if forged else None
        return jwt.encode(payload, self.key, algorithm="RS256")

    def of_request(self, token: str) -> tuple[dict[str, Any], Forgery] | None:
        """The claims and forgery a request token carries; None for a token this key did not sign."""
        try:
            decoded = jwt.decode(token, self.key.public_key(), algorithms=["RS256"], audience=_REQUEST_TOKEN_AUDIENCE)
        except jwt.PyJWTError:
            return None
        forged = cast(dict[str, Any], decoded.get("forged") or {})
        return dict(decoded["claims"]), Forgery(audience=forged.get("audience"), issued=forged.get("issued"))


def _b64(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes((number.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


class OidcIssuer(serving.Service):
    """The issuer's HTTP server (see the module's docstring)."""

    def __init__(self, directory: Path, port: int = 0) -> None:
        self.key = SigningKey(directory)
        self.served = serving.Served(self._handler(), port)

    def answer(self, path: str, authorization: str) -> tuple[int, dict[str, Any]]:
        route, _, query = path.partition("?")
        if route == "/jwks":
            return 200, self.key.jwks()
        if route.startswith("/issuers/") and route.endswith("/.well-known/openid-configuration"):
            issuer = urllib.parse.unquote(route.removeprefix("/issuers/").removesuffix("/.well-known/openid-configuration"))
            return 200, discovery(issuer, f"{self.url}/jwks")
        if route == "/github/id-token":
            request = self.key.of_request(authorization.removeprefix("Bearer ").removeprefix("bearer ").strip())
            audience = dict(urllib.parse.parse_qsl(query)).get("audience", "")
            if request is None:
                return 401, {"message": "Bad credentials"}
            claims, forged = request
            default = f"https://github.com/{claims.get('repository_owner', '')!s}"  # GitHub's default audience
            audience = forged.audience or audience or default
            return 200, {"value": self.key.mint(GITHUB_ISSUER, claims, audience, issued=forged.issued)}
        return 404, {"message": "Not Found"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                serving.send_json(self, *issuer.answer(self.path, self.headers.get("Authorization", "")))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def discovery(issuer: str, jwks_uri: str) -> dict[str, Any]:
    """The discovery document, with the fields GitHub's and GitLab's carry that Google reads."""
    return {
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "repository_id", "project_id"],
    }


def discovery_url(issuer_url: str, issuer: str) -> str:
    """Where the local issuer at `issuer_url` serves the discovery document of `issuer`."""
    return f"{issuer_url}/issuers/{urllib.parse.quote(issuer, safe='')}/.well-known/openid-configuration"


def github_request_variables(issuer_url: str, key: SigningKey, run: GithubRun, forged: Forgery | None = None) -> dict[str, str]:
    """ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN, as GitHub's runner gives a job with `id-token: write`."""
    return {
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"{issuer_url}/github/id-token?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": key.request_token(run.claims(), forged),
    }
