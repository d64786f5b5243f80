"""The GitLab REST API stand-in (`/api/v4`), served by the local cloud's background process next to
the token endpoint: project access tokens as GitLab's API has them, and the merge-request notes
such a token may write.

- `POST/GET /projects/:id/access_tokens`, `GET/DELETE /projects/:id/access_tokens/:token_id`,
  `POST /projects/:id/access_tokens/:token_id/rotate`: the token's value (`glpat-` and 20
  characters) is in the answer of its creation or rotation only; the stand-in keeps its SHA-256
  digest, never the value (GitLab keeps a digest too). Revoking keeps the token listed, `revoked`
  and inactive; rotating revokes it and answers a new token (new id, same bot user, name, scopes,
  role), one week by default. Expiry dates are days (`YYYY-MM-DD`, at most 365 days ahead), and
  a token is refused from that day on, by the local cloud's clock (`LocalCloud.clock`).
- `GET /projects/:id`, `GET /projects/:id/merge_requests/:iid`, `GET/POST .../notes`,
  `GET/PUT .../notes/:note_id`: merge requests opened with `open_merge_request`. A project access
  token acts as its bot user, a member of its own project only (any other project is 404, as a
  private project is): reading needs `read_api` or `api` and the Reporter role (a Guest cannot see
  the merge requests of a private project), writing a note `api`; a note is edited by its author
  or a Maintainer. Any other token is the local cloud's one user, who owns every project (the
  plugins' provider token).
- `GET /projects/:id/repository/files/:file_path/raw?ref=`: a file of the project's bare
  repository at a branch, raw (docs.gitlab.com/api/repository_files, "Get raw file from
  repository"), for the Reporter role and `read_api` or `api`, as the notes; 404 `{"message": "404
  File Not Found"}` when the branch lacks it. Not verified: GitLab's default `ref` (HEAD); the
  stand-in requires `ref`.
- Errors as GitLab answers them: 401 `invalid_token` for a revoked or expired token, 403
  `insufficient_scope`, 404 `{"message": "404 Project Not Found"}`; the texts of validation errors
  are the stand-in's own, in GitLab's shape.

Every request is one line of `gitlab-requests.jsonl`: time, method, path, status and who made it
(`user`, `token:<id>`, `anonymous`, `refused`), never a header, a token or a body.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
import secrets
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

from localcloud import platform, serving
from localcloud.state import LocalCloud, iso, now

ACCESS_LEVELS = {
    "no one": 0,
    "minimal": 5,
    "guest": 10,
    "planner": 15,
    "reporter": 20,
    "developer": 30,
    "maintainer": 40,
    "owner": 50,
}
"""GitLab's role names and the numbers its API speaks."""
ACCESS_LEVEL_NAMES = {value: name for name, value in ACCESS_LEVELS.items()}
TOKEN_SCOPES = frozenset(
    {
        "api",
        "read_api",
        "read_registry",
        "write_registry",
        "read_repository",
        "write_repository",
        "create_runner",
        "manage_runner",
        "ai_features",
        "k8s_proxy",
        "read_observability",
        "write_observability",
        "self_rotate",
    }
)
"""The scopes a project access token may have (the upstream provider's list)."""
TOKEN_PREFIX = "glpat-"
MAX_LIFETIME_DAYS = 365
ROTATED_DEFAULT_DAYS = 7
LOCAL_USER_ID = 1
LOCAL_USERNAME = "localcloud"
READ_SCOPES = frozenset({"api", "read_api"})

_PROJECT = r"/projects/(?P<project>[^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile(f"^{pattern}$"), handler)
    for method, pattern, handler in [
        ("GET", "/user", "current_user"),
        ("GET", "/namespaces/(?P<namespace>[^/]+)", "get_namespace"),
        ("GET", _PROJECT, "get_project"),
        ("GET", f"{_PROJECT}/access_tokens", "list_tokens"),
        ("POST", f"{_PROJECT}/access_tokens", "create_token"),
        ("GET", rf"{_PROJECT}/access_tokens/(?P<token>\d+)", "get_token"),
        ("DELETE", rf"{_PROJECT}/access_tokens/(?P<token>\d+)", "revoke_token"),
        ("POST", rf"{_PROJECT}/access_tokens/(?P<token>\d+)/rotate", "rotate_token"),
        ("GET", rf"{_PROJECT}/merge_requests/(?P<iid>\d+)", "get_merge_request"),
        ("GET", rf"{_PROJECT}/merge_requests/(?P<iid>\d+)/notes", "list_notes"),
        ("POST", rf"{_PROJECT}/merge_requests/(?P<iid>\d+)/notes", "create_note"),
        ("GET", rf"{_PROJECT}/merge_requests/(?P<iid>\d+)/notes/(?P<note>\d+)", "get_note"),
        ("PUT", rf"{_PROJECT}/merge_requests/(?P<iid>\d+)/notes/(?P<note>\d+)", "update_note"),
        ("GET", rf"{_PROJECT}/repository/files/(?P<file>[^/]+)/raw", "get_raw_file"),
    ]
]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token_value() -> str:
    """`glpat-` and 20 characters of `[A-Za-z0-9_-]` (maskable by GitLab's rule)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(15)


FREE_PLAN = "free"
"""gitlab.com's Free tier, where project access tokens cannot be created (docs.gitlab.com
user/project/settings/project_access_tokens: "On GitLab.com, project access tokens require a
Premium or Ultimate subscription"). Self-managed instances answer `default`."""


def _group(entry: dict[str, Any]) -> str:
    return str(entry["path"]).rsplit("/", 1)[0]


def plan_of(cloud: LocalCloud, group: str) -> str:
    """The plan of `group`: its top-level group's (GitLab EE `Namespace#actual_plan`: a namespace
    with a parent answers `root_ancestor.actual_plan`; `Plan.default` unless gitlab.com)."""
    root = group.split("/", 1)[0]
    return str(cloud.gitlab.read().get("namespaces", {}).get(root, {}).get("plan", "default"))


def set_plan(cloud: LocalCloud, group: str, plan: str) -> None:
    """The plan gitlab.com bills the top-level group `group` (e.g. `acme-ml`) and so its subgroups."""
    if "/" in group:
        raise ValueError(f"{group}: gitlab.com bills top-level groups; a subgroup has its root's plan")
    with cloud.gitlab.edit() as document:
        document.setdefault("namespaces", {}).setdefault(group, {})["plan"] = plan


class ApiError(Exception):
    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(json.dumps(payload))
        self.status = status
        self.payload = payload


def _not_found(what: str = "404 Not Found") -> ApiError:
    return ApiError(404, {"message": what})


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who a request acts as: the local cloud's user, or a project access token's bot user."""

    user_id: int
    username: str
    access_level: int
    scopes: frozenset[str]
    project: str | None = None
    """A bot's project (path): it is a member of that project only."""
    token_id: int | None = None

    @property
    def label(self) -> str:
        return "user" if self.token_id is None else f"token:{self.token_id}"

    def level_in(self, project: str) -> int | None:
        """Its role in `project`, or None when the project is invisible to it."""
        if self.project is None:
            return ACCESS_LEVELS["owner"]
        return self.access_level if self.project == project else None


LOCAL_USER = Principal(LOCAL_USER_ID, LOCAL_USERNAME, ACCESS_LEVELS["owner"], TOKEN_SCOPES | {"sudo"})


def _date(text: Any, field: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(str(text))
    except ValueError:
        raise ApiError(400, {"error": f"{field} is invalid"}) from None


def token_view(entry: dict[str, Any], today: datetime.date, value: str | None = None) -> dict[str, Any]:
    """A token as the API shows it; its value only when just created or rotated."""
    expires = datetime.date.fromisoformat(entry["expires_at"])
    shown = {
        "id": entry["id"],
        "name": entry["name"],
        "revoked": entry["revoked"],
        "created_at": entry["created_at"],
        "description": entry["description"],
        "scopes": list(entry["scopes"]),
        "user_id": entry["user_id"],
        "last_used_at": entry.get("last_used_at"),
        "active": not entry["revoked"] and today < expires,
        "expires_at": entry["expires_at"],
        "access_level": entry["access_level"],
    }
    if value is not None:
        shown["token"] = value
    return shown


class Api:
    """The API's behaviour over the local cloud's stores (no HTTP: `GitlabServer` serves it)."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self._log_lock = threading.Lock()

    # --- plumbing ---

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any] | list[Any] | bytes | None]:
        self.cloud.touch()
        path, _, query_text = raw_path.partition("?")
        query = dict(urllib.parse.parse_qsl(query_text))
        route = path.removeprefix("/api/v4")
        who = "anonymous"
        try:
            principal = self._authenticate(headers)
            who = principal.label
            for verb, pattern, name in _ROUTES:
                matched = pattern.match(route)
                if matched and verb == method:
                    params = {k: urllib.parse.unquote(v) for k, v in matched.groupdict().items()}
                    payload = self._json(body) if method in ("POST", "PUT") else {}
                    handler = cast(Callable[..., tuple[int, Any]], getattr(self, name))
                    status, answer = handler(principal, query=query, payload=payload, **params)
                    break
            else:
                raise _not_found("404 Not Found")
        except ApiError as error:
            if who == "anonymous" and (headers.get("private-token") or headers.get("authorization")):
                who = "refused"  # a token was sent, and refused
            status, answer = error.status, error.payload
        self._log(method, path, status, who)
        return status, answer

    @staticmethod
    def _json(body: bytes) -> dict[str, Any]:
        if not body.strip():
            return {}
        try:
            decoded = json.loads(body)
        except json.JSONDecodeError:
            raise ApiError(400, {"error": "400 Bad request - the body is not JSON"}) from None
        if not isinstance(decoded, dict):
            raise ApiError(400, {"error": "400 Bad request - the body is not a JSON object"})
        return cast(dict[str, Any], decoded)

    def _log(self, method: str, path: str, status: int, who: str) -> None:
        line = json.dumps({"time": now(), "method": method, "path": path, "status": status, "principal": who}, sort_keys=True)
        with self._log_lock, (self.cloud.root / "gitlab-requests.jsonl").open("a") as out:
            out.write(line + "\n")

    def today(self) -> datetime.date:
        return self.cloud.clock().date()

    def _authenticate(self, headers: dict[str, str]) -> Principal:
        token = headers.get("private-token", "")
        bearer = headers.get("authorization", "")
        if not token and bearer.lower().startswith("bearer "):
            token = bearer[len("bearer ") :].strip()
        if not token:
            raise ApiError(401, {"message": "401 Unauthorized"})
        if not token.startswith(TOKEN_PREFIX):
            return LOCAL_USER
        wanted = digest(token)
        with self.cloud.gitlab.edit() as document:
            for path, project in document.get("projects", {}).items():
                for entry in project.get("accessTokens", {}).values():
                    if entry["digest"] != wanted:
                        continue
                    if entry["revoked"]:
                        revoked = "Token was revoked. You have to re-authorize from the user."
                        raise ApiError(401, {"error": "invalid_token", "error_description": revoked})
                    if self.today() >= datetime.date.fromisoformat(entry["expires_at"]):
                        raise ApiError(401, {"error": "invalid_token", "error_description": "Token has expired."})
                    entry["last_used_at"] = iso(self.cloud.clock())
                    return Principal(
                        entry["user_id"], entry["username"], entry["access_level"], frozenset(entry["scopes"]), path, entry["id"]
                    )
        return LOCAL_USER  # any other token: the local cloud's one user (the plugins' provider token)

    def _project(self, principal: Principal, key: str, level: int, scopes: frozenset[str]) -> dict[str, Any]:
        """The project `key` (path or numeric id) if `principal` may do this to it."""
        entry = platform.find_repository(self.cloud, "gitlab", key)
        role = principal.level_in(str(entry["path"])) if entry else None
        if entry is None or role is None:
            raise _not_found("404 Project Not Found")
        if not principal.scopes & scopes:
            raise ApiError(
                403,
                {
                    "error": "insufficient_scope",
                    "error_description": "The request requires higher privileges than provided by the access token.",
                    "scope": " ".join(sorted(scopes)),
                },
            )
        if role < level:
            raise ApiError(403, {"message": "403 Forbidden"})
        return entry

    # --- users and projects ---

    def current_user(self, principal: Principal, **_: Any) -> tuple[int, dict[str, Any]]:
        if not principal.scopes & (READ_SCOPES | {"read_user"}):
            raise ApiError(403, {"error": "insufficient_scope", "scope": "read_user"})
        return 200, {"id": principal.user_id, "username": principal.username, "bot": principal.token_id is not None}

    def get_project(self, principal: Principal, project: str, **_: Any) -> tuple[int, dict[str, Any]]:
        entry = self._project(principal, project, ACCESS_LEVELS["guest"], READ_SCOPES)
        return 200, {"id": entry["id"], "path_with_namespace": entry["path"], "default_branch": entry["defaultBranch"]}

    def get_namespace(self, principal: Principal, namespace: str, **_: Any) -> tuple[int, dict[str, Any]]:
        """A group by id or full path (`GET /namespaces/:id`). Its `plan` (EE `API::Entities::Namespace`,
        exposed `if: can_admin_namespace`) only to the one user, who owns every group here."""
        groups = self.cloud.platform.read().get("gitlab", {}).get("namespaces", {})
        group = next((path for path, entry in groups.items() if namespace in (path, str(entry["id"]))), None)
        if group is None or (principal.project is not None and _group({"path": principal.project}) != group):
            raise _not_found("404 Namespace Not Found")
        name = group.rsplit("/", 1)[-1]
        shown: dict[str, Any] = {"id": groups[group]["id"], "name": name, "path": name, "kind": "group", "full_path": group}
        if principal.project is None:
            shown["plan"] = plan_of(self.cloud, group)
        return 200, shown

    # --- project access tokens ---

    def _tokens(self, document: dict[str, Any], path: str) -> dict[str, Any]:
        return cast(dict[str, Any], document.setdefault("projects", {}).setdefault(path, {}).setdefault("accessTokens", {}))

    def _expiry(self, payload: dict[str, Any], default_days: int) -> str:
        today = self.today()
        if payload.get("expires_at") in (None, ""):
            return (today + datetime.timedelta(days=default_days)).isoformat()
        expires = _date(payload["expires_at"], "expires_at")
        if expires <= today:
            raise ApiError(400, {"message": {"expires_at": ["must be in the future"]}})
        latest = today + datetime.timedelta(days=MAX_LIFETIME_DAYS)
        if expires > latest:
            raise ApiError(400, {"message": {"expires_at": [f"must be before {latest}"]}})
        return expires.isoformat()

    def list_tokens(self, principal: Principal, project: str, query: dict[str, str], **_: Any) -> tuple[int, list[Any]]:
        entry = self._project(principal, project, ACCESS_LEVELS["maintainer"], READ_SCOPES)
        tokens = self._tokens(self.cloud.gitlab.read(), entry["path"])
        shown = [token_view(t, self.today()) for t in sorted(tokens.values(), key=lambda t: int(t["id"]))]
        state = query.get("state")
        if state in ("active", "inactive"):
            shown = [t for t in shown if t["active"] == (state == "active")]
        return 200, shown

    def get_token(self, principal: Principal, project: str, token: str, **_: Any) -> tuple[int, dict[str, Any]]:
        entry = self._project(principal, project, ACCESS_LEVELS["maintainer"], READ_SCOPES)
        found = self._tokens(self.cloud.gitlab.read(), entry["path"]).get(token)
        if found is None:
            raise _not_found()
        return 200, token_view(found, self.today())

    def create_token(self, principal: Principal, project: str, payload: dict[str, Any], **_: Any) -> tuple[int, dict[str, Any]]:
        entry = self._project(principal, project, ACCESS_LEVELS["maintainer"], frozenset({"api"}))
        if plan_of(self.cloud, _group(entry)) == FREE_PLAN:
            # gitlab.com, Free: `ResourceAccessTokens::CreateService` refuses, the API answers `bad_request!`
            raise ApiError(400, {"message": "400 Bad request - User does not have permission to create project access token"})
        name, scopes = payload.get("name"), payload.get("scopes")
        if not name:
            raise ApiError(400, {"error": "name is missing"})
        if not scopes:
            raise ApiError(400, {"error": "scopes is missing"})
        if not isinstance(scopes, list) or not set(cast(list[str], scopes)) <= TOKEN_SCOPES:
            raise ApiError(400, {"error": "scopes does not have a valid value"})
        level = payload.get("access_level", ACCESS_LEVELS["maintainer"])
        if level not in ACCESS_LEVEL_NAMES:
            raise ApiError(400, {"error": "access_level does not have a valid value"})
        if int(level) > (principal.level_in(str(entry["path"])) or 0):
            raise ApiError(400, {"message": "Access level of the token can't be greater than the access level of its creator"})
        expires_at = self._expiry(payload, MAX_LIFETIME_DAYS)
        value = new_token_value()
        with self.cloud.gitlab.edit() as document:
            token_id = int(document.get("nextTokenId", 1))
            user_id = int(document.get("nextUserId", 100))
            document["nextTokenId"], document["nextUserId"] = token_id + 1, user_id + 1
            created = {
                "id": token_id,
                "name": str(name),
                "description": str(payload.get("description") or ""),
                "scopes": sorted(set(cast(list[str], scopes))),
                "access_level": int(level),
                "expires_at": expires_at,
                "created_at": iso(self.cloud.clock()),
                "revoked": False,
                "user_id": user_id,
                "username": f"project_{entry['id']}_bot_{secrets.token_hex(16)}",
                "last_used_at": None,
                "digest": digest(value),
            }
            self._tokens(document, entry["path"])[str(token_id)] = created
        return 201, token_view(created, self.today(), value)

    def rotate_token(
        self, principal: Principal, project: str, token: str, payload: dict[str, Any], **_: Any
    ) -> tuple[int, dict[str, Any]]:
        entry = self._project(principal, project, ACCESS_LEVELS["maintainer"], frozenset({"api"}))
        expires_at = self._expiry(payload, ROTATED_DEFAULT_DAYS)
        value = new_token_value()
        with self.cloud.gitlab.edit() as document:
            tokens = self._tokens(document, entry["path"])
            old = tokens.get(token)
            if old is None:
                raise _not_found()
            if old["revoked"]:
                raise ApiError(400, {"message": "400 Bad request - Token already revoked"})
            token_id = int(document.get("nextTokenId", 1))
            document["nextTokenId"] = token_id + 1
            old["revoked"] = True
            rotated = {
                **old,
                "id": token_id,
                "expires_at": expires_at,
                "created_at": iso(self.cloud.clock()),
                "revoked": False,
                "last_used_at": None,
                "digest": digest(value),
            }
            tokens[str(token_id)] = rotated
        return 200, token_view(rotated, self.today(), value)

    def revoke_token(self, principal: Principal, project: str, token: str, **_: Any) -> tuple[int, None]:
        entry = self._project(principal, project, ACCESS_LEVELS["maintainer"], frozenset({"api"}))
        with self.cloud.gitlab.edit() as document:
            found = self._tokens(document, entry["path"]).get(token)
            if found is None:
                raise _not_found()
            if found["revoked"]:
                raise ApiError(400, {"message": "400 Bad request - Token already revoked"})
            found["revoked"] = True
        return 204, None

    # --- merge requests and their notes ---

    def _merge_request(self, document: dict[str, Any], path: str, iid: str) -> dict[str, Any]:
        found = document.get("projects", {}).get(path, {}).get("mergeRequests", {}).get(iid)
        if found is None:
            raise _not_found()
        return cast(dict[str, Any], found)

    def get_merge_request(self, principal: Principal, project: str, iid: str, **_: Any) -> tuple[int, dict[str, Any]]:
        entry = self._project(principal, project, ACCESS_LEVELS["reporter"], READ_SCOPES)
        found = self._merge_request(self.cloud.gitlab.read(), entry["path"], iid)
        return 200, {k: v for k, v in found.items() if k != "notes"}

    def list_notes(self, principal: Principal, project: str, iid: str, query: dict[str, str], **_: Any) -> tuple[int, list[Any]]:
        entry = self._project(principal, project, ACCESS_LEVELS["reporter"], READ_SCOPES)
        notes = list(self._merge_request(self.cloud.gitlab.read(), entry["path"], iid)["notes"].values())
        notes.sort(key=lambda n: int(n["id"]), reverse=query.get("sort", "desc") == "desc")
        per_page = max(1, min(100, int(query.get("per_page", "20"))))
        page = max(1, int(query.get("page", "1")))
        return 200, notes[(page - 1) * per_page : page * per_page]

    def get_note(self, principal: Principal, project: str, iid: str, note: str, **_: Any) -> tuple[int, dict[str, Any]]:
        entry = self._project(principal, project, ACCESS_LEVELS["reporter"], READ_SCOPES)
        found = self._merge_request(self.cloud.gitlab.read(), entry["path"], iid)["notes"].get(note)
        if found is None:
            raise _not_found()
        return 200, cast(dict[str, Any], found)

    def create_note(
        self, principal: Principal, project: str, iid: str, payload: dict[str, Any], **_: Any
    ) -> tuple[int, dict[str, Any]]:
        entry = self._project(principal, project, ACCESS_LEVELS["reporter"], frozenset({"api"}))
        if not payload.get("body"):
            raise ApiError(400, {"error": "body is missing"})
        with self.cloud.gitlab.edit() as document:
            merge_request = self._merge_request(document, entry["path"], iid)
            note_id = int(document.get("nextNoteId", 1))
            document["nextNoteId"] = note_id + 1
            stamp = iso(self.cloud.clock())
            created = {
                "id": note_id,
                "body": str(payload["body"]),
                "author": {"id": principal.user_id, "username": principal.username},
                "created_at": stamp,
                "updated_at": stamp,
                "system": False,
                "noteable_id": merge_request["id"],
                "noteable_iid": merge_request["iid"],
                "noteable_type": "MergeRequest",
            }
            merge_request["notes"][str(note_id)] = created
        return 201, created

    def update_note(
        self, principal: Principal, project: str, iid: str, note: str, payload: dict[str, Any], **_: Any
    ) -> tuple[int, dict[str, Any]]:
        entry = self._project(principal, project, ACCESS_LEVELS["reporter"], frozenset({"api"}))
        if not payload.get("body"):
            raise ApiError(400, {"error": "body is missing"})
        with self.cloud.gitlab.edit() as document:
            found = self._merge_request(document, entry["path"], iid)["notes"].get(note)
            if found is None:
                raise _not_found()
            is_author = found["author"]["id"] == principal.user_id
            if not is_author and (principal.level_in(str(entry["path"])) or 0) < ACCESS_LEVELS["maintainer"]:
                raise ApiError(403, {"message": "403 Forbidden"})
            found["body"] = str(payload["body"])
            found["updated_at"] = iso(self.cloud.clock())
        return 200, cast(dict[str, Any], found)

    # --- repository files ---

    def get_raw_file(self, principal: Principal, project: str, file: str, query: dict[str, str], **_: Any) -> tuple[int, bytes]:
        entry = self._project(principal, project, ACCESS_LEVELS["reporter"], READ_SCOPES)
        if not query.get("ref"):
            raise ApiError(400, {"error": "ref is missing"})
        content = platform.file_content(Path(entry["gitDir"]), query["ref"], file)
        if content is None:
            raise _not_found("404 File Not Found")
        return 200, content


def tls_certificate(root: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made once per state directory): the API over
    HTTPS, so a program can be given it as an `https://` `gitlab:baseUrl`; clients trust it
    through `SSL_CERT_FILE`. (certificate, private key) files."""
    return serving.certificate(root / "gitlab-tls", "localcloud GitLab", ["127.0.0.1"])


class GitlabServer:
    """`Api` over HTTP on 127.0.0.1 (the remembered port if it is free), and over HTTPS on a
    second port with the state directory's certificate."""

    def __init__(self, cloud: LocalCloud, port: int = 0, tls_port: int = 0) -> None:
        self.api = Api(cloud)
        self.servers = [self._server(port), self._server(tls_port)]
        certificate, key_file = tls_certificate(cloud.root)
        self.certificate = certificate
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key_file)
        self.servers[1].socket = context.wrap_socket(self.servers[1].socket, server_side=True)
        self.threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in self.servers]

    def _server(self, port: int) -> ThreadingHTTPServer:
        try:
            return ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        except OSError:
            return ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def server(self) -> ThreadingHTTPServer:
        return self.servers[0]

    @property
    def port(self) -> int:
        return int(self.servers[0].server_address[1])

    @property
    def tls_port(self) -> int:
        return int(self.servers[1].server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v4"

    @property
    def tls_url(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}/api/v4"

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self.api

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload = api.handle(self.command, self.path, headers, body)
                raw = isinstance(payload, bytes)
                data = payload if isinstance(payload, bytes) else b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8" if raw else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 — http.server's method names

            def log_message(self, format: str, *args: Any) -> None:
                pass  # gitlab-requests.jsonl is the log (without tokens)

        return Handler


# --- clients: the plugin, the tests ---


def call(base_url: str, method: str, path: str, token: str | None, body: Any = None) -> tuple[int, Any]:
    """One request to the API at `base_url` (…/api/v4); (status, decoded JSON or None)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **({"PRIVATE-TOKEN": token} if token else {})}
    request = urllib.request.Request(f"{base_url}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def open_merge_request(cloud: LocalCloud, project: str, source_branch: str, target_branch: str, title: str) -> int:
    """A merge request of `project` (path or id) from `source_branch` into `target_branch`; its iid."""
    entry = platform.find_repository(cloud, "gitlab", project)
    if entry is None:
        raise KeyError(f"no gitlab project {project}")
    with cloud.gitlab.edit() as document:
        requests = document.setdefault("projects", {}).setdefault(entry["path"], {}).setdefault("mergeRequests", {})
        iid = len(requests) + 1
        merge_request_id = int(document.get("nextMergeRequestId", 1))
        document["nextMergeRequestId"] = merge_request_id + 1
        requests[str(iid)] = {
            "id": merge_request_id,
            "iid": iid,
            "project_id": entry["id"],
            "title": title,
            "source_branch": source_branch,
            "target_branch": target_branch,
            "state": "opened",
            "notes": {},
        }
    return iid


def access_tokens(cloud: LocalCloud, project: str) -> list[dict[str, Any]]:
    """The project's access tokens as stored (digests, not values), oldest first."""
    entry = platform.find_repository(cloud, "gitlab", project)
    if entry is None:
        return []
    tokens = cloud.gitlab.read().get("projects", {}).get(entry["path"], {}).get("accessTokens", {})
    return sorted((dict(t) for t in tokens.values()), key=lambda t: int(t["id"]))


def notes(cloud: LocalCloud, project: str, iid: int) -> list[dict[str, Any]]:
    entry = platform.find_repository(cloud, "gitlab", project)
    if entry is None:
        return []
    stored = cloud.gitlab.read().get("projects", {}).get(entry["path"], {}).get("mergeRequests", {}).get(str(iid), {})
    return sorted((dict(n) for n in stored.get("notes", {}).values()), key=lambda n: int(n["id"]))


def requests_log(cloud: LocalCloud) -> list[dict[str, Any]]:
    path = cloud.root / "gitlab-requests.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
