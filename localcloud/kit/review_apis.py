"""Local stand-ins for the two APIs the report job calls, served on 127.0.0.1: GitHub's issue
comments of a pull request and GitLab's notes of a merge request, where it posts, and the file it
reads from the branch first, raw (GitHub "Get repository content" with the media type
`application/vnd.github.raw+json`, docs.github.com/en/rest/repos/contents; GitLab "Get raw file from
repository", `GET /projects/:id/repository/files/:file_path/raw?ref=`, docs.gitlab.com/api/repository_files).
Each checks the token as its platform does (GitHub: the job token's `pull-requests` permission
for writes; GitLab: the project access token, role and scope), answers with the platform's shapes
and pagination (GitLab also answers "Get the current user", `GET /user`, with the token's own user,
docs.gitlab.com/api/users), and records every request.

GitHub mints each job's GITHUB_TOKEN with that job's `permissions`; act gives every job of a run
the one token it was started with. So the GitHub stand-in accepts the run's token and grants a
request what the calling job may do: the job is the GITHUB_JOB of the process at the other end
of the connection (the step's curl), found through psutil."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import secrets
import threading
import urllib.parse
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psutil

from localcloud.serving import send_json

from .servers import request_body

MAX_PER_PAGE = 100


@dataclasses.dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    status: int
    body: Any


@dataclasses.dataclass
class Comment:
    id: int
    body: str
    author: str
    updated: int = 0
    """How many times it was edited."""


class ReviewApi:
    """One pull/merge request's comments behind the platform's REST routes. `others` comments by
    people come first (enough of them and the report sits on a later page)."""

    def __init__(self, platform: str, project: str, number: int, others: int = 0) -> None:
        self.platform = platform
        self.project = project
        self.number = number
        self.requests: list[ApiRequest] = []
        self._ids = itertools.count(1001)
        self.comments: dict[int, Comment] = {}
        self.files: dict[tuple[str, str], str] = {}
        """(path, branch) -> content of the repository's files the API serves raw."""
        for n in range(others):
            self._add(f"A reviewer's comment {n}", "reviewer")
        self._tokens: dict[str, tuple[str, bool]] = {}
        """token -> (who it authenticates, whether it may write comments)."""
        self._github_jobs: dict[str, dict[str, bool]] = {}
        """GitHub: the run's token -> whether each job may write to pull requests."""
        self._user_ids: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def api_url(self) -> str:
        """GITHUB_API_URL / CI_API_V4_URL of the runner."""
        return self.url if self.platform == "github" else f"{self.url}/api/v4"

    def issue_github_token(self, may_write: Mapping[str, bool]) -> str:
        """The GITHUB_TOKEN of one run; `may_write`: whether each job's `permissions` let it write
        to pull requests."""
        token = f"ghs_{secrets.token_urlsafe(27)}"
        self._tokens[token] = ("github-actions[bot]", False)
        self._github_jobs[token] = dict(may_write)
        return token

    def accept_gitlab_token(self, token: str, role: str, scopes: tuple[str, ...]) -> None:
        """A project access token of the project (a bot user), as `pulumi up` created it."""
        # Reporter and above may comment on a merge request; `api` is the only scope that writes.
        may_write = role in ("reporter", "developer", "maintainer", "owner") and "api" in scopes
        self._tokens[token] = (f"project_bot_{len(self._tokens)}", may_write)

    def reports(self, marker: str) -> list[Comment]:
        return [c for c in self.comments.values() if c.body.startswith(marker)]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _add(self, body: str, author: str) -> Comment:
        comment = Comment(next(self._ids), body, author)
        self.comments[comment.id] = comment
        return comment

    def _shape(self, comment: Comment) -> dict[str, Any]:
        if self.platform == "github":
            kind = "Bot" if comment.author.endswith("[bot]") else "User"
            return {"id": comment.id, "body": comment.body, "user": {"login": comment.author, "type": kind}}
        author = {"id": self.user_id(comment.author), "username": comment.author}
        return {"id": comment.id, "body": comment.body, "author": author, "system": False}

    def user_id(self, username: str) -> int:
        """GitLab: the numeric id of a user (a project access token's bot user too), stable per name."""
        return self._user_ids.setdefault(username, 100 + len(self._user_ids))

    def _routes(self) -> tuple[str, str]:
        """The list (and create) route of this request's comments, and one comment's prefix."""
        if self.platform == "github":
            return f"/repos/{self.project}/issues/{self.number}/comments", f"/repos/{self.project}/issues/comments/"
        project = urllib.parse.quote(self.project, safe="")
        listed = f"/api/v4/projects/{project}/merge_requests/{self.number}/notes"
        return listed, f"{listed}/"

    def _caller(self, headers: Mapping[str, str], job: str) -> tuple[str, bool] | None:
        if self.platform == "github":
            match = re.fullmatch(r"Bearer (\S+)", headers.get("authorization", ""))
            token = match[1] if match else ""
            who = self._tokens.get(token)
            return who and (who[0], self._github_jobs[token].get(job, False))
        return self._tokens.get(headers.get("private-token", ""))

    def raw_file(self, path: str, query: str, headers: Mapping[str, str]) -> tuple[int, Any] | None:
        """A file of the repository, raw, if `path` asks for one; None otherwise."""
        params = dict(urllib.parse.parse_qsl(query))
        if self.platform == "github":
            prefix = f"/repos/{self.project}/contents/"
            if not path.startswith(prefix) or headers.get("accept") != "application/vnd.github.raw+json":
                return None
            wanted = path.removeprefix(prefix)
        else:
            route = re.fullmatch(rf"/api/v4/projects/{re.escape(self.project)}/repository/files/(?P<path>[^/]+)/raw", path)
            if route is None:
                return None
            wanted = urllib.parse.unquote(route["path"])
        content = self.files.get((wanted, params.get("ref", "")))
        return (HTTPStatus.OK, content.encode()) if content is not None else (HTTPStatus.NOT_FOUND, {"message": "Not Found"})

    def answer(self, method: str, target: str, headers: Mapping[str, str], body: bytes, job: str = "") -> tuple[int, Any]:
        """The platform's answer to one request (`headers` by lowercase name) from the CI job `job`:
        JSON, or bytes for a raw file."""
        path, _, query = target.partition("?")
        listed, one = self._routes()
        caller = self._caller(headers, job)
        if caller is None:
            return HTTPStatus.UNAUTHORIZED, {"message": "Bad credentials" if self.platform == "github" else "401 Unauthorized"}
        who, may_write = caller
        if method == "GET" and (raw := self.raw_file(path, query, headers)) is not None:
            return raw
        if method == "GET" and self.platform == "gitlab" and path == "/api/v4/user":
            # GitLab's "Get the current user" (docs.gitlab.com/api/users): the token's own user, bot users included.
            return HTTPStatus.OK, {"id": self.user_id(who), "username": who, "bot": who.startswith("project_bot")}
        if method == "GET" and path == listed:
            params = dict(urllib.parse.parse_qsl(query))
            per_page = min(int(params.get("per_page", 30 if self.platform == "github" else 20)), MAX_PER_PAGE)
            page = int(params.get("page", 1))
            ordered = sorted(self.comments.values(), key=lambda c: c.id)
            return HTTPStatus.OK, [self._shape(c) for c in ordered[(page - 1) * per_page : page * per_page]]
        if method in ("POST", "PATCH", "PUT") and not may_write:
            forbidden = "Resource not accessible by integration" if self.platform == "github" else "403 Forbidden"
            return HTTPStatus.FORBIDDEN, {"message": forbidden}
        if not headers.get("content-type", "").startswith("application/json"):
            return HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"message": "expected application/json"}
        text = json.loads(body).get("body")
        if not isinstance(text, str) or not text:
            return HTTPStatus.UNPROCESSABLE_ENTITY, {"message": "body is missing"}
        if method == "POST" and path == listed:
            return HTTPStatus.CREATED, self._shape(self._add(text, who))
        update = "PATCH" if self.platform == "github" else "PUT"
        if method == update and path.startswith(one) and path[len(one) :].isdigit():
            comment = self.comments.get(int(path[len(one) :]))
            if comment is None:
                return HTTPStatus.NOT_FOUND, {"message": "Not Found"}
            if comment.author != who:
                return HTTPStatus.FORBIDDEN, {"message": "only the author may edit a comment"}
            comment.body, comment.updated = text, comment.updated + 1
            return HTTPStatus.OK, self._shape(comment)
        return HTTPStatus.NOT_FOUND, {"message": "Not Found"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def serve(self) -> None:
                body = request_body(self)
                job = calling_job(self.client_address[1], api.port) if api.platform == "github" else ""
                with api._lock:
                    try:
                        status, payload = api.answer(
                            self.command, self.path, {name.lower(): value for name, value in self.headers.items()}, body, job
                        )
                    except (ValueError, json.JSONDecodeError) as error:
                        status, payload = HTTPStatus.BAD_REQUEST, {"message": str(error)}
                    sent = json.loads(body) if body.startswith(b"{") else None
                    api.requests.append(ApiRequest(self.command, self.path, int(status), sent))
                if isinstance(payload, bytes):
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                else:
                    send_json(self, status, payload)

            def do_GET(self) -> None:
                self.serve()

            def do_POST(self) -> None:
                self.serve()

            def do_PUT(self) -> None:
                self.serve()

            def do_PATCH(self) -> None:
                self.serve()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # `requests` is the log

        return Handler


def calling_job(client_port: int, server_port: int) -> str:
    """The GITHUB_JOB of the process on this machine whose connection to `server_port` comes from
    `client_port`; empty when there is none (a caller outside any job)."""
    for connection in psutil.net_connections(kind="tcp"):
        local, remote = connection.laddr, connection.raddr
        if local and remote and local.port == client_port and remote.port == server_port and connection.pid:
            try:
                return psutil.Process(connection.pid).environ().get("GITHUB_JOB", "")
            except psutil.Error:
                return ""
    return ""
