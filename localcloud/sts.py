"""Google's Security Token Service and IAM Service Account Credentials on this machine, for keyless
CI jobs: `POST https://sts.googleapis.com/v1/token` (RFC 8693 token exchange) and
`POST https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/<email>:generateAccessToken`.

Clients keep Google's URLs (the credential file google-github-actions/auth writes and the job script's
both name them) and reach them with `HTTPS_PROXY` set to this server and `REQUESTS_CA_BUNDLE` to the
state directory's test certificate, as api.github.com is reached (localcloud/github_server.py): the
`CONNECT` tunnel's TLS ends here; any other host is refused (403).

The exchange, as cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token and
cloud.google.com/iam/docs/workload-identity-federation describe it:
- `subject_token_type` (an OIDC token's) and `requested_token_type` are required (400 invalid_request);
- the `audience` names, as `projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<id>`,
  an ACTIVE provider of an ACTIVE pool, as the stack created it (the gcp plugin's `poolProviders` in
  gcp.json: issuer, allowed audiences, attribute mapping and condition);
- the subject token is an RS256 JWT of the provider's issuer: its discovery document, then the JWKS it
  names, fetched over HTTP from the local issuer (localcloud/oidc_issuer.py; PyJWT's PyJWKClient);
  signature, `iss`, `exp` (with no leeway: not verified how much Google allows) and `aud` — one of the
  provider's `allowedAudiences`, or, when empty, its resource name as `//iam.googleapis.com/<name>` or
  `https://iam.googleapis.com/<name>` (the REST reference of `Oidc.allowedAudiences`);
- the attribute mapping and the condition are CEL, evaluated by cel-python over `assertion` (the
  claims) and, for the condition, `google` and `attribute` (the mapped values): a condition not true (or
  no boolean) refuses the token ("The given credential is rejected by the attribute condition.",
  unauthorized_client, as quoted in public reports); `google.subject` is required, at most 127 bytes; a
  mapping whose claim the token lacks leaves its attribute unset (what Google does then: not verified);
- the federated token carries the principal `principal://iam.googleapis.com/<pool>/subject/<subject>`
  and the principal sets `principalSet://iam.googleapis.com/<pool>/attribute.<name>/<value>` and
  `<pool>/*` (cloud.google.com/iam/docs/principal-identifiers); the storage front admits it where one of
  these members is granted on the bucket (direct federation);
- `generateAccessToken` with a federated token: 403 PERMISSION_DENIED "Permission
  'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)." unless one of its
  members holds `roles/iam.workloadIdentityUser` (or `roles/iam.serviceAccountTokenCreator`) on the
  account (the gcp plugin's `serviceAccounts[<email>].iam`); the access token is then the account's.
The texts of the other refusals (issuer, signature, expiry, audience) are not verified.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import secrets
import ssl
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler
from typing import Any, cast

import celpy
import jwt
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from localcloud import serving
from localcloud.oidc_issuer import discovery_url
from localcloud.state import LocalCloud, now

HOSTS = ("sts.googleapis.com", "iamcredentials.googleapis.com", "cloudresourcemanager.googleapis.com")
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
RESOURCE_PREFIXES = ("//iam.googleapis.com/", "https://iam.googleapis.com/")
IMPERSONATION_ROLES = ("roles/iam.workloadIdentityUser", "roles/iam.serviceAccountTokenCreator")
FEDERATED_LIFETIME = 3600
# GoogleIdentityStsV1ExchangeTokenRequest (cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token):
# `subjectTokenType` and `requestedTokenType` are Required; an OIDC provider's subject token is `...:jwt` or
# `...:id_token` (saml2 and aws4_request are the SAML and AWS providers'), the requested one `...:access_token`.
SUBJECT_TOKEN_TYPES = ("urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token")
REQUESTED_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
# WorkloadIdentityPoolProvider.attributeMapping (iam v1 REST reference): google.subject "Cannot exceed 127
# bytes"; Google's refusal as users of GitLab's long `sub` quote it (code invalid_request: not verified).
SUBJECT_LIMIT = 127


class ExchangeError(Exception):
    """The exchange is refused: (OAuth error code, description)."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code, self.description = code, description


@dataclasses.dataclass(frozen=True)
class Identity:
    """Whom an access token stands for: IAM members, and its expiry (epoch)."""

    members: tuple[str, ...]
    expiry: float


def provider_of(gcp: dict[str, Any], audience: str) -> tuple[str, dict[str, Any]]:
    """The provider's resource name (with the project number) and its entry, or ExchangeError."""
    name = next((audience.removeprefix(p) for p in RESOURCE_PREFIXES if audience.startswith(p)), "")
    parts = name.split("/")
    # `//iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>`
    # (the `audience` of the sts v1 REST reference): pools live in `global` only (iam v1 REST reference of
    # projects.locations.workloadIdentityPools); any other segment there names no provider.
    shape = ("projects", None, "locations", "global", "workloadIdentityPools", None, "providers", None)
    if len(parts) != len(shape) or any(want is not None and part != want for part, want in zip(parts, shape, strict=True)):
        raise ExchangeError("invalid_request", f'Invalid value for "audience". {audience!r} is not a provider\'s resource name.')
    number, pool, provider = parts[1], parts[5], parts[7]
    project = next((p for p, entry in gcp.get("projects", {}).items() if str(entry.get("number")) == number), None)
    pool_entry = gcp.get("pools", {}).get(f"{project}/{pool}", {})
    entry = gcp.get("poolProviders", {}).get(f"{project}/{pool}/{provider}", {})
    if pool_entry.get("state") != "ACTIVE" or pool_entry.get("disabled") or entry.get("state") != "ACTIVE":
        raise ExchangeError("invalid_target", f'The target service indicated by the "audience" parameters is invalid. {name}')
    return name, entry


def check_token_types(form: dict[str, str]) -> None:
    """The grant and token types of a token request (see SUBJECT_TOKEN_TYPES); ExchangeError otherwise.
    Google's texts for these refusals: not verified."""
    if form.get("grant_type") != TOKEN_EXCHANGE:
        raise ExchangeError("unsupported_grant_type", f"Unsupported grant type {form.get('grant_type')!r}.")
    if form.get("subject_token_type") not in SUBJECT_TOKEN_TYPES:
        raise ExchangeError("invalid_request", f'Invalid value for "subject_token_type": {form.get("subject_token_type")!r}.')
    if form.get("requested_token_type") != REQUESTED_TOKEN_TYPE:
        raise ExchangeError("invalid_request", f'Invalid value for "requested_token_type": {form.get("requested_token_type")!r}.')


def _cel(expression: str, activation: dict[str, Any]) -> Any:
    environment: Any = celpy.Environment()
    return environment.program(environment.compile(expression)).evaluate(activation)


def mapped_attributes(entry: dict[str, Any], claims: dict[str, Any]) -> dict[str, str]:
    """`attributeMapping` evaluated over the claims; a claim the token lacks leaves its attribute unset."""
    assertion = json_to_cel(claims)
    attributes: dict[str, str] = {}
    for target, expression in dict(entry.get("attributeMapping") or {}).items():
        try:
            attributes[str(target)] = str(_cel(str(expression), {"assertion": assertion}))
        except CELEvalError:
            continue
    subject = attributes.get("google.subject", "")
    if not subject:
        raise ExchangeError("invalid_grant", "The mapped attribute google.subject must not be empty.")
    if len(subject.encode()) > SUBJECT_LIMIT:
        raise ExchangeError(
            "invalid_request",
            f"The size of mapped attribute google.subject exceeds the {SUBJECT_LIMIT} bytes limit. Either modify your "
            f"attribute mapping or the incoming assertion to produce a mapped attribute that is less than {SUBJECT_LIMIT} bytes.",
        )
    return attributes


def condition_holds(entry: dict[str, Any], claims: dict[str, Any], attributes: dict[str, str]) -> bool:
    condition = str(entry.get("attributeCondition") or "")
    if not condition:
        return True
    google = {k.removeprefix("google."): v for k, v in attributes.items() if k.startswith("google.")}
    attribute = {k.removeprefix("attribute."): v for k, v in attributes.items() if k.startswith("attribute.")}
    activation = {k: json_to_cel(v) for k, v in (("assertion", claims), ("google", google), ("attribute", attribute))}
    try:
        result = _cel(condition, activation)
    except CELEvalError:
        return False
    # attributeCondition (iam v1 REST reference of WorkloadIdentityPoolProvider): "The expression must output
    # a boolean"; one that yields anything else (a non-empty string, a number) admits no one here. Whether
    # Google refuses it already when the provider is written: not verified.
    return isinstance(result, celtypes.BoolType) and bool(result)


def members(provider_name: str, attributes: dict[str, str]) -> tuple[str, ...]:
    pool = "iam.googleapis.com/" + provider_name.rsplit("/providers/", 1)[0]
    found = [f"principal://{pool}/subject/{attributes['google.subject']}", f"principalSet://{pool}/*"]
    found += [
        f"principalSet://{pool}/attribute.{k.removeprefix('attribute.')}/{v}"
        for k, v in sorted(attributes.items())
        if k.startswith("attribute.")
    ]
    return tuple(found)


class Federation:
    """The STS and IAM Credentials of one local cloud; `discovery(issuer)` is where an issuer's
    discovery document is served."""

    def __init__(self, cloud: LocalCloud, issuer_url: str) -> None:
        self.cloud = cloud
        self.issuer_url = issuer_url
        self.issued: dict[str, Identity] = {}
        self._lock = threading.Lock()

    def verified_claims(self, entry: dict[str, Any], provider_name: str, token: str) -> dict[str, Any]:
        issuer = str(entry.get("issuerUri", ""))
        allowed = [str(a) for a in cast(list[Any], entry.get("allowedAudiences") or [])] or [
            p + provider_name for p in RESOURCE_PREFIXES
        ]
        try:
            with urllib.request.urlopen(discovery_url(self.issuer_url, issuer), timeout=10) as response:
                jwks_uri = str(json.loads(response.read())["jwks_uri"])
            key = jwt.PyJWKClient(jwks_uri, cache_keys=False).get_signing_key_from_jwt(token)
            return dict(
                jwt.decode(
                    token,
                    key.key,
                    algorithms=["RS256"],
                    audience=allowed,
                    issuer=issuer,
                    options={"require": ["iss", "aud", "exp", "sub"]},
                )
            )
        except jwt.ExpiredSignatureError:
            raise ExchangeError("invalid_grant", "The ID Token has expired.") from None
        except jwt.InvalidAudienceError:
            raise ExchangeError(
                "invalid_grant", f"The audience in ID Token does not match the expected audience {' or '.join(allowed)}."
            ) from None
        except jwt.InvalidIssuerError:
            raise ExchangeError("invalid_grant", f"The issuer in ID Token does not match the expected issuer {issuer}.") from None
        except (jwt.PyJWTError, OSError, KeyError, ValueError) as error:
            raise ExchangeError("invalid_grant", f"Invalid ID Token: {error}") from None

    def exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """`/v1/token`: (status, body)."""
        self.cloud.touch()
        try:
            check_token_types(form)
            name, entry = provider_of(self.cloud.gcp.read(), form.get("audience", ""))
            claims = self.verified_claims(entry, name, form.get("subject_token", ""))
            attributes = mapped_attributes(entry, claims)
            if not condition_holds(entry, claims, attributes):
                raise ExchangeError("unauthorized_client", "The given credential is rejected by the attribute condition.")
        except ExchangeError as refused:
            self._record(form.get("audience", ""), "", refused.description)
            return 400, {"error": refused.code, "error_description": refused.description}
        token = self._issue(members(name, attributes), FEDERATED_LIFETIME)
        self._record(name, attributes["google.subject"], "")
        return 200, {
            "access_token": token,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": FEDERATED_LIFETIME,
        }

    def generate_access_token(self, email: str, authorization: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
        """`generateAccessToken` for `email` by the bearer of a federated token; the JSON body's `scope` is
        Required (GenerateAccessTokenRequest, iamcredentials v1 REST reference): 400 without one (Google's text
        for it, and whether it is checked before the permission: not verified)."""
        self.cloud.touch()
        caller = self.identity_of(authorization.removeprefix("Bearer ").strip())
        if caller is None:
            return 401, _google_error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
        if not requested_scopes(body):
            return 400, _google_error(400, "Request contains an invalid argument: scope is required.", "INVALID_ARGUMENT")
        account: dict[str, Any] = self.cloud.gcp.read().get("serviceAccounts", {}).get(email) or {}
        grants = [(str(role), str(member)) for role, member in cast(list[list[str]], account.get("iam", []))]
        if not any((role, member) in grants for role in IMPERSONATION_ROLES for member in caller.members):
            message = "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."
            self._record(f"serviceAccounts/{email}", caller.members[0], message)
            return 403, _google_error(403, message, "PERMISSION_DENIED")
        token = self._issue((f"serviceAccount:{email}",), 3600)
        expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=3600)
        self._record(f"serviceAccounts/{email}", caller.members[0], "")
        return 200, {"accessToken": token, "expireTime": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def identity_of(self, token: str) -> Identity | None:
        with self._lock:
            identity = self.issued.get(token)
        return identity if identity and identity.expiry > time.time() else None

    def members_of(self, token: str) -> tuple[str, ...] | None:
        """The IAM members an unexpired token of this service stands for (the storage front asks)."""
        identity = self.identity_of(token)
        return identity.members if identity else None

    def _issue(self, granted: tuple[str, ...], lifetime: int) -> str:
        token = "ya29.local-federated-" + secrets.token_urlsafe(24)
        with self._lock:
            self.issued[token] = Identity(granted, time.time() + lifetime)
        return token

    def _record(self, target: str, subject: str, refused: str) -> None:
        entry = {"time": now(), "target": target, "subject": subject, "granted": not refused, "reason": refused}
        with (self.cloud.root / "federation-exchanges.jsonl").open("a") as out:
            out.write(json.dumps(entry, sort_keys=True) + "\n")

    def answer(self, host: str, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        route = path.split("?", 1)[0]
        if method == "POST" and host == "sts.googleapis.com" and route == "/v1/token":
            form = token_request(headers.get("content-type", ""), body)
            if form is None:
                return 400, {"error": "invalid_request", "error_description": "The request body is not a token request."}
            return self.exchange(form)
        prefix, suffix = "/v1/projects/-/serviceAccounts/", ":generateAccessToken"
        if method == "POST" and host == "iamcredentials.googleapis.com" and route.startswith(prefix) and route.endswith(suffix):
            email = urllib.parse.unquote(route.removeprefix(prefix).removesuffix(suffix))
            return self.generate_access_token(email, headers.get("authorization", ""), body)
        if method == "GET" and host == "cloudresourcemanager.googleapis.com" and route.startswith("/v1/projects/"):
            return self.project(headers.get("authorization", ""))
        return 404, _google_error(404, f"{method} {route} is not served here", "NOT_FOUND")

    def project(self, authorization: str) -> tuple[int, dict[str, Any]]:
        """`projects.get`, which google-auth's `default()` asks of external-account credentials
        (`external_account.Credentials.get_project_id`) and answers None on a refusal: a CI identity,
        granted on its bucket only, lacks `resourcemanager.projects.get` (Google's text for it: not verified)."""
        if self.identity_of(authorization.removeprefix("Bearer ").strip()) is None:
            return 401, _google_error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
        return 403, _google_error(403, "The caller does not have permission", "PERMISSION_DENIED")


def token_request(content_type: str, body: bytes) -> dict[str, str] | None:
    """The token request's fields: a form (google-auth), or JSON with camelCase keys (the auth
    action's `postJson`); None for a body that is neither."""
    try:
        if not content_type.startswith("application/json"):
            return dict(urllib.parse.parse_qsl(body.decode(), strict_parsing=bool(body)))
        fields = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(fields, dict):
        return None
    return {re.sub(r"([A-Z])", r"_\1", str(k)).lower(): str(v) for k, v in cast(dict[str, Any], fields).items()}


def requested_scopes(body: bytes) -> list[str]:
    """The `scope` list of a generateAccessToken body (JSON); empty for a body without one."""
    try:
        fields = json.loads(body or b"{}")
    except (UnicodeDecodeError, ValueError):
        return []
    scopes = cast(dict[str, Any], fields).get("scope") if isinstance(fields, dict) else None
    return [str(s) for s in cast(list[Any], scopes) if s] if isinstance(scopes, list) else []


def _google_error(code: int, message: str, status: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


class GoogleFront(serving.Service):
    """The HTTPS proxy for HOSTS (see the module's docstring)."""

    def __init__(self, cloud: LocalCloud, federation: Federation, port: int = 0) -> None:
        self.federation = federation
        self.certificate, key_file = serving.certificate(
            cloud.root / "google-tls", "localcloud Google APIs", [*HOSTS, "127.0.0.1"]
        )
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(self.certificate, key_file)
        self.served = serving.Served(self._handler(), port)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            tunnel_host = ""

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                host = self.tunnel_host or headers.get("host", "").split(":")[0]
                serving.send_json(self, *front.federation.answer(host, self.command, self.path, headers, body))

            def do_CONNECT(self) -> None:
                tunnel = serving.open_tunnel(self, HOSTS, front.context)
                if tunnel is None:
                    return
                inner = type("Tunnelled", (Handler,), {"tunnel_host": self.path.partition(":")[0]})
                inner(tunnel, self.client_address, self.server)
                self.close_connection = True

            do_GET = do_POST  # noqa: N815 — http.server's method names

            def log_message(self, format: str, *args: Any) -> None:
                pass  # federation-exchanges.jsonl is the log (without tokens)

        return Handler


def client_environment(urls: dict[str, Any]) -> dict[str, str]:
    """The variables that send a job's requests for Google's STS and IAM Credentials here (Python's
    requests, which google-auth uses, reads REQUESTS_CA_BUNDLE; urllib and OpenSSL SSL_CERT_FILE)."""
    return {
        "HTTPS_PROXY": str(urls["googleProxy"]),
        "https_proxy": str(urls["googleProxy"]),
        "REQUESTS_CA_BUNDLE": str(urls["googleCertificate"]),
        "SSL_CERT_FILE": str(urls["googleCertificate"]),  # urllib's (the auth action's stand-in)
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
