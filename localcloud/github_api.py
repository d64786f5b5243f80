"""The GitHub API stand-in (api.github.com): what integrations/terraform-provider-github v6.13.0
(the code of pulumi-github 6.15.0, built by tools/github-provider) asks of GitHub for this program,
and what the program's pre-flight reads itself. Served over HTTPS by `GithubServer`
(localcloud/github_server.py); its state is the local cloud's: repositories and branches in the bare
repositories and `platform.json`, secrets, variables and environments in `ci-store.json`, tokens
(digests), secret keys and rulesets in `github.json`.

Each route names the upstream call that uses it (go-github v88, the client upstream uses) and the
documentation it follows (docs.github.com/rest). Answers carry every field GitHub's OpenAPI
description requires (localcloud/github_shapes.py); `localcloud/github_openapi.py` checks each request
and answer against that description when it is installed (npm `@octokit/openapi`).
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import hashlib
import json
import re
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, cast

import nacl.exceptions
import nacl.public

from localcloud import github_graphql, platform
from localcloud import github_shapes as shapes
from localcloud.state import LocalCloud, now

DOCS = "https://docs.github.com/rest"
DEFAULT_LOGIN = "localcloud"
DEFAULT_SCOPES = ("repo", "workflow")
"""A token the local cloud does not know: a classic token of its one user with these scopes."""
WORKFLOWS = ".github/workflows/"
MAX_SECRET_BYTES = 48 * 1024
_SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WRITING_RULES = frozenset({"pull_request", "update", "required_status_checks", "required_signatures", "required_deployments"})
"""Ruleset rules a commit through the contents API cannot satisfy (docs: "Available rules for
rulesets"); `creation`, `deletion`, `non_fast_forward` concern the branch itself."""

Answer = tuple[int, Any, dict[str, str]]


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def payload(self) -> dict[str, Any]:
        """GitHub's error body (`basic-error`)."""
        return {"message": self.message, "documentation_url": DOCS, "status": str(self.status)}


def _not_found() -> ApiError:
    return ApiError(404, "Not Found")


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who a token is: its kind (`classic`, `fine-grained`), its login, and what it may do."""

    kind: str
    login: str
    scopes: tuple[str, ...] = ()
    """Classic tokens: the OAuth scopes GitHub answers in `X-OAuth-Scopes`."""
    workflows: bool = True
    """Whether it may change files under .github/workflows/ (classic: the `workflow` scope;
    fine-grained: the Workflows permission, which GitHub does not tell)."""

    @property
    def headers(self) -> dict[str, str]:
        return {"X-OAuth-Scopes": ", ".join(self.scopes)} if self.kind == "classic" else {}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def register_token(cloud: LocalCloud, token: str, kind: str = "classic", scopes: tuple[str, ...] = DEFAULT_SCOPES) -> None:
    """A token as GitHub knows it: classic with `scopes` (it may write workflows with `workflow`),
    or `fine-grained` (`scopes` then lists its permissions, `workflows` among them or not)."""
    with cloud.github.edit() as document:
        workflows = "workflow" in scopes if kind == "classic" else "workflows" in scopes
        document.setdefault("tokens", {})[digest(token)] = {"kind": kind, "scopes": list(scopes), "workflows": workflows}


def add_ruleset(
    cloud: LocalCloud, repository: str, name: str, branches: list[str], rules: list[str], bypass: bool = False
) -> int:
    """An active repository ruleset on `branches` (fnmatch patterns of branch names) with `rules`
    (types such as `pull_request`, `deletion`); `bypass`: the token's user is among its bypass
    actors (always). Its id."""
    with cloud.github.edit() as document:
        ruleset_id = _next_id(document)
        document.setdefault("rulesets", {}).setdefault(repository, []).append(
            {"id": ruleset_id, "name": name, "branches": branches, "rules": rules, "bypass": bypass}
        )
    return ruleset_id


def _next_id(document: dict[str, Any]) -> int:
    value = int(document.get("nextId", 1000))
    document["nextId"] = value + 1
    return value


class Checker(Protocol):
    def problems(self, exchange: dict[str, Any]) -> list[str]: ...


class Api:
    """The API's behaviour over the local cloud's stores (`GithubServer` serves it)."""

    def __init__(self, cloud: LocalCloud, checker: Checker | None = None) -> None:
        self.cloud = cloud
        self.checker = checker
        self._lock = threading.Lock()
        self._graphql = github_graphql.GraphQL(self)

    # --- plumbing ---

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        """One request: (status, body, headers). An answer the OpenAPI description does not allow
        becomes a 500 naming why (and a line of `github-violations.jsonl`)."""
        self.cloud.touch()
        path, _, query_text = raw_path.partition("?")
        query = dict(urllib.parse.parse_qsl(query_text))
        payload = _json(body)
        who = "anonymous"
        try:
            principal = self._authenticate(headers)
            who = principal.kind
            status, answer, extra = self._route(method, path, principal, query, payload)
            extra = {**principal.headers, **extra}
        except ApiError as error:
            status, answer, extra = error.status, error.payload(), error.headers
        exchange = {"method": method, "path": path, "query": query, "request": payload, "status": status, "answer": answer}
        problems = self.checker.problems(exchange) if self.checker else []
        if problems:
            self._record("github-violations.jsonl", {"method": method, "path": path, "status": status, "problems": problems})
            status, answer = 500, {"message": "localcloud GitHub: answer outside the OpenAPI description: " + "; ".join(problems)}
        self._record("github-requests.jsonl", {"method": method, "path": path, "status": status, "principal": who})
        data = b"" if answer is None else json.dumps(answer).encode()
        return status, data, extra

    def _record(self, name: str, entry: dict[str, Any]) -> None:
        with self._lock, (self.cloud.root / name).open("a") as out:
            out.write(json.dumps({"time": now(), **entry}, sort_keys=True) + "\n")

    def _route(self, method: str, path: str, principal: Principal, query: dict[str, str], payload: Any) -> Answer:
        for verb, pattern, name in _ROUTES:
            matched = pattern.fullmatch(path)
            if matched and verb == method:
                params = {k: urllib.parse.unquote(v) for k, v in matched.groupdict().items()}
                handler = cast(Callable[..., Answer], getattr(self, name))
                return handler(principal, query=query, payload=payload, method=method, **params)
        self._record("github-unmodelled.jsonl", {"method": method, "path": path})
        raise _not_found()

    def _authenticate(self, headers: dict[str, str]) -> Principal:
        authorization = headers.get("authorization", "")
        token = authorization.split(" ", 1)[1].strip() if " " in authorization else ""
        if not token:
            raise ApiError(401, "Requires authentication")
        known = self.cloud.github.read().get("tokens", {}).get(digest(token))
        if known is None:
            return Principal("classic", DEFAULT_LOGIN, DEFAULT_SCOPES, True)
        return Principal(known["kind"], DEFAULT_LOGIN, tuple(known["scopes"]), bool(known["workflows"]))

    def _repository(self, owner: str, repo: str) -> dict[str, Any]:
        entry = platform.find_repository(self.cloud, "github", f"{owner}/{repo}")
        if entry is None:
            raise _not_found()
        return entry

    def _owner_id(self, owner: str) -> int:
        return int(self.cloud.platform.read().get("github", {}).get("users", {}).get(owner, {}).get("id", 1))

    # --- users and organizations ---

    def current_user(self, principal: Principal, **_: Any) -> Answer:
        """go-github `Users.Get(ctx, "")` (upstream `configureProviderMeta` without an owner; the
        pre-flight reads the token's scopes from its headers); docs: users#get-the-authenticated-user."""
        return 200, shapes.private_user(principal.login, 1), {}

    def get_user(self, principal: Principal, username: str, **_: Any) -> Answer:
        """go-github `Users.Get` (upstream `dataSourceGithubUserRead`)."""
        users = self.cloud.platform.read().get("github", {}).get("users", {})
        if username not in users:
            raise _not_found()
        return 200, shapes.public_user(username, int(users[username]["id"])), {}

    def user_keys(self, principal: Principal, username: str, **_: Any) -> Answer:
        """go-github `Users.ListGPGKeys`/`ListKeys` (upstream `dataSourceGithubUserRead`): none here."""
        if username not in self.cloud.platform.read().get("github", {}).get("users", {}):
            raise _not_found()
        return 200, [], {}

    def get_org(self, principal: Principal, org: str, **_: Any) -> Answer:
        """go-github `Organizations.Get` (upstream `configureProviderMeta`: a 404 means the owner is a
        user). Every owner here is a user account."""
        raise _not_found()

    # --- repositories, branches, commits ---

    def get_repo(self, principal: Principal, owner: str, repo: str, **_: Any) -> Answer:
        """go-github `Repositories.Get` (every upstream resource here, `dataSourceGithubRepositoryRead`)."""
        entry = self._repository(owner, repo)
        full_name = str(entry["path"])
        return 200, shapes.repository(full_name, int(entry["id"]), self._owner_id(owner), str(entry["defaultBranch"])), {}

    def _commit(self, full_name: str, repo: Path, revision: str, with_files: bool = False) -> dict[str, Any]:
        details = platform.commit_of(repo, revision)
        files = _changed_files(full_name, repo, details) if with_files else None
        return shapes.commit(full_name, details, files)

    def get_branch(self, principal: Principal, owner: str, repo: str, branch: str, **_: Any) -> Answer:
        """go-github `Repositories.GetBranch` (upstream `checkRepositoryBranchExists`)."""
        entry = self._repository(owner, repo)
        head = platform.branch_head(Path(entry["gitDir"]), branch)
        if head is None:
            raise ApiError(404, "Branch not found")
        protected = platform.protection(entry, branch) is not None
        head_commit = self._commit(str(entry["path"]), Path(entry["gitDir"]), head)
        return 200, shapes.branch(str(entry["path"]), branch, head_commit, protected), {}

    def get_ref(self, principal: Principal, owner: str, repo: str, branch: str, **_: Any) -> Answer:
        """go-github `Git.GetRef` (upstream `dataSourceGithubBranchRead`; its `etag` is the header)."""
        entry = self._repository(owner, repo)
        head = platform.branch_head(Path(entry["gitDir"]), branch)
        if head is None:
            raise _not_found()
        return 200, shapes.git_ref(str(entry["path"]), branch, head), {"ETag": f'W/"{head}"'}

    def get_commit(self, principal: Principal, owner: str, repo: str, ref: str, **_: Any) -> Answer:
        """go-github `Repositories.GetCommit` (upstream `resourceGithubRepositoryFileRead`, `getFileCommit`)."""
        entry = self._repository(owner, repo)
        try:
            return 200, self._commit(str(entry["path"]), Path(entry["gitDir"]), ref, with_files=True), {}
        except platform.GitError:
            raise ApiError(422, f"No commit found for SHA: {ref}") from None

    def list_commits(self, principal: Principal, owner: str, repo: str, query: dict[str, str], **_: Any) -> Answer:
        """go-github `Repositories.ListCommits` with `sha` and `path` (upstream `getFileCommit`, for imports)."""
        entry = self._repository(owner, repo)
        git_dir = Path(entry["gitDir"])
        branch = query.get("sha") or str(entry["defaultBranch"])
        found = platform.commits_touching(git_dir, branch, query.get("path", "")) if platform.branch_head(git_dir, branch) else []
        return 200, [self._commit(str(entry["path"]), git_dir, sha) for sha in found], {}

    # --- contents ---

    def get_contents(self, principal: Principal, owner: str, repo: str, path: str, query: dict[str, str], **_: Any) -> Answer:
        """go-github `Repositories.GetContents` (upstream file resource and data source); docs:
        repos/contents#get-repository-content. A missing file, branch or repository is a 404."""
        entry = self._repository(owner, repo)
        ref = query.get("ref") or str(entry["defaultBranch"])
        git_dir = Path(entry["gitDir"])
        blob = platform.file_blob(git_dir, ref, path)
        data = platform.file_content(git_dir, ref, path)
        if blob is None or data is None:
            raise _not_found()
        return 200, shapes.content_file(str(entry["path"]), path, ref, blob, data), {}

    def _writable(self, principal: Principal, entry: dict[str, Any], branch: str, path: str) -> Path:
        """The repository's git directory if `principal` may commit `path` on `branch`."""
        git_dir = Path(entry["gitDir"])
        if platform.branch_head(git_dir, branch) is None:
            raise ApiError(404, f"Branch {branch} not found")
        if path.startswith(WORKFLOWS) and not principal.workflows:
            # A token without the workflow scope (or Workflows permission) gets a 404 here, not a 403:
            # github/docs#4770 (GitHub's docs team: "we're not looking to make this change").
            raise _not_found()
        self._refuse_rules(str(entry["path"]), branch, entry)
        return git_dir

    def _refuse_rules(self, full_name: str, branch: str, entry: dict[str, Any]) -> None:
        """Rulesets (GH013) and classic protection refuse a direct commit (text not verified)."""
        bypassed = {r["id"] for r in self.cloud.github.read().get("rulesets", {}).get(full_name, []) if r["bypass"]}
        blocking = [
            r for r in self.rules_for(full_name, branch) if r["type"] in _WRITING_RULES and r["ruleset_id"] not in bypassed
        ]
        if blocking:
            raise ApiError(409, "Repository rule violations found\n\nChanges must be made through a pull request.\n\n")
        rule = platform.protection(entry, branch)
        if rule is not None and not rule.get("canPush"):
            raise ApiError(409, "Changes must be made through a pull request.")

    def put_contents(self, principal: Principal, owner: str, repo: str, path: str, payload: Any, **_: Any) -> Answer:
        """go-github `Repositories.CreateFile`/`UpdateFile` (upstream `resourceGithubRepositoryFileCreate`/
        `Update`, which send the `sha` they read); docs: repos/contents#create-or-update-file-contents:
        an existing file needs its current `sha` (422 without, 409 when it is not the file's)."""
        entry = self._repository(owner, repo)
        body = cast(dict[str, Any], payload or {})
        if not body.get("message") or "content" not in body:
            raise ApiError(422, 'Invalid request.\n\n"message" and "content" are required.')
        branch = str(body.get("branch") or entry["defaultBranch"])
        git_dir = self._writable(principal, entry, branch, path)
        current = platform.file_blob(git_dir, branch, path)
        _check_sha(path, current, body.get("sha"), required=current is not None)
        data = base64.b64decode(str(body["content"]))
        details = self._commit_file(principal, git_dir, branch, path, data, body)
        blob = platform.file_blob(git_dir, branch, path) or ""
        content = shapes.content_entry(str(entry["path"]), path, branch, blob, len(data))
        return (200 if current else 201), shapes.file_commit(str(entry["path"]), details, content), {}

    def delete_contents(self, principal: Principal, owner: str, repo: str, path: str, payload: Any, **_: Any) -> Answer:
        """go-github `Repositories.DeleteFile` (upstream `resourceGithubRepositoryFileDelete`, with the
        `sha` of its state); docs: repos/contents#delete-a-file: 404 for a missing file, 409 for a
        `sha` that is not the file's."""
        entry = self._repository(owner, repo)
        body = cast(dict[str, Any], payload or {})
        branch = str(body.get("branch") or entry["defaultBranch"])
        git_dir = self._writable(principal, entry, branch, path)
        current = platform.file_blob(git_dir, branch, path)
        if current is None:
            raise _not_found()
        _check_sha(path, current, body.get("sha"), required=True)
        details = self._commit_file(principal, git_dir, branch, path, None, body)
        return 200, shapes.file_commit(str(entry["path"]), details, None), {}

    def _commit_file(
        self, principal: Principal, git_dir: Path, branch: str, path: str, data: bytes | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        person = cast(dict[str, str], body.get("committer") or body.get("author") or {})
        author = {
            "name": person.get("name") or principal.login,
            "email": person.get("email") or f"{principal.login}@users.noreply.github.com",
        }
        try:
            commit = platform.commit_file(git_dir, branch, path, data, str(body.get("message") or ""), author)
        except platform.GitError as error:
            raise ApiError(409, str(error)) from error
        return platform.commit_of(git_dir, commit)

    # --- rulesets ---

    def rules_for(self, full_name: str, branch: str) -> list[dict[str, Any]]:
        """The rules of active rulesets that apply to `branch` (`repository-rule-detailed`)."""
        rulesets = self.cloud.github.read().get("rulesets", {}).get(full_name, [])
        return [
            {"type": rule, "ruleset_source_type": "Repository", "ruleset_source": full_name, "ruleset_id": ruleset["id"]}
            for ruleset in rulesets
            if any(fnmatch.fnmatchcase(branch, pattern) for pattern in ruleset["branches"])
            for rule in ruleset["rules"]
        ]

    def branch_rules(self, principal: Principal, owner: str, repo: str, branch: str, **_: Any) -> Answer:
        """`GET /repos/{owner}/{repo}/rules/branches/{branch}` (the program's pre-flight, not upstream);
        docs: repos/rules#get-rules-for-a-branch: every active rule that applies, whatever its source."""
        entry = self._repository(owner, repo)
        return 200, self.rules_for(str(entry["path"]), branch), {}

    def get_ruleset(self, principal: Principal, owner: str, repo: str, ruleset: str, **_: Any) -> Answer:
        """`GET /repos/{owner}/{repo}/rulesets/{ruleset_id}` (the pre-flight); docs:
        repos/rules#get-a-repository-ruleset: `current_user_can_bypass` is the token's user's."""
        full_name = str(self._repository(owner, repo)["path"])
        found = next(
            (r for r in self.cloud.github.read().get("rulesets", {}).get(full_name, []) if str(r["id"]) == ruleset), None
        )
        if found is None:
            raise _not_found()
        shown = {
            "id": found["id"],
            "name": found["name"],
            "target": "branch",
            "source_type": "Repository",
            "source": full_name,
            "enforcement": "active",
            "current_user_can_bypass": "always" if found["bypass"] else "never",
            "conditions": {"ref_name": {"include": [f"refs/heads/{b}" for b in found["branches"]], "exclude": []}},
            "rules": [{"type": rule} for rule in found["rules"]],
        }
        return 200, shown, {}

    # --- Actions secrets and variables ---

    def _box(self, scope: str) -> tuple[str, nacl.public.PrivateKey]:
        """The key pair secrets of `scope` (a repository, or a repository's environment) are sealed
        to: created once, its private half in `github.json` (0600)."""
        with self.cloud.github.edit() as document:
            keys = document.setdefault("keys", {})
            if scope not in keys:
                private = nacl.public.PrivateKey.generate()
                keys[scope] = {"keyId": str(_next_id(document) * 7919), "private": base64.b64encode(bytes(private)).decode()}
            entry = keys[scope]
        return str(entry["keyId"]), nacl.public.PrivateKey(base64.b64decode(entry["private"]))

    def public_key(self, principal: Principal, owner: str, repo: str, **_: Any) -> Answer:
        """go-github `Actions.GetRepoPublicKey` (upstream `getPublicKeyDetails`)."""
        entry = self._repository(owner, repo)
        key_id, private = self._box(str(entry["path"]))
        return 200, {"key_id": key_id, "key": base64.b64encode(bytes(private.public_key)).decode()}, {}

    def _secrets(self, document: dict[str, Any], full_name: str, environment: str | None) -> dict[str, Any]:
        stored = document.setdefault("github", {}).setdefault(full_name, {})
        if environment is None:
            return cast(dict[str, Any], stored.setdefault("secrets", {}))
        environments = stored.setdefault("environments", {})
        if environment not in environments:
            raise _not_found()
        return cast(dict[str, Any], environments[environment].setdefault("secrets", {}))

    def _put_secret(self, scope: str, full_name: str, environment: str | None, name: str, body: dict[str, Any]) -> Answer:
        """docs: actions/secrets#create-or-update-a-repository-secret: 201 created, 204 updated; the
        value sealed (libsodium sealed box) to the current key, at most 48 KB."""
        if not _SECRET_NAME.fullmatch(name) or name.upper().startswith("GITHUB_"):
            raise ApiError(
                422, "Secret names can only contain alphanumeric characters or underscores, and must not start with GITHUB_"
            )
        key_id, private = self._box(scope)
        if body.get("key_id") != key_id:
            raise ApiError(422, "Bad request - key_id is not the current key")
        try:
            value = nacl.public.SealedBox(private).decrypt(base64.b64decode(str(body.get("encrypted_value", ""))))
        except (nacl.exceptions.CryptoError, ValueError):
            raise ApiError(
                422, "Bad request - validation failed due to an improperly encrypted secret"
            ) from None  # upstream #2315
        if len(value) > MAX_SECRET_BYTES:
            raise ApiError(422, "Secret value exceeds 48 KB")
        with self.cloud.ci_store.edit() as document:
            secrets = self._secrets(document, full_name, environment)
            stamp = _stamp()
            existed = name in secrets
            created = secrets.get(name, {}).get("created_at", stamp)
            secrets[name] = {"encrypted_value": body["encrypted_value"], "key_id": key_id, "created_at": created}
            secrets[name]["updated_at"] = stamp
        return (204, None, {}) if existed else (201, {}, {})

    def _get_secret(self, full_name: str, environment: str | None, name: str) -> Answer:
        with self.cloud.ci_store.edit() as document:
            found = self._secrets(document, full_name, environment).get(name)
        if found is None:
            raise _not_found()
        return 200, {"name": name, "created_at": found["created_at"], "updated_at": found["updated_at"]}, {}

    def _delete_secret(self, full_name: str, environment: str | None, name: str) -> Answer:
        with self.cloud.ci_store.edit() as document:
            if self._secrets(document, full_name, environment).pop(name, None) is None:
                raise _not_found()
        return 204, None, {}

    def put_secret(self, principal: Principal, owner: str, repo: str, name: str, payload: Any, **_: Any) -> Answer:
        """go-github `Actions.CreateOrUpdateRepoSecret` (upstream `resourceGithubActionsSecretCreate`/`Update`)."""
        full_name = str(self._repository(owner, repo)["path"])
        return self._put_secret(full_name, full_name, None, name, cast(dict[str, Any], payload or {}))

    def get_secret(self, principal: Principal, owner: str, repo: str, name: str, **_: Any) -> Answer:
        """go-github `Actions.GetRepoSecret` (upstream Read: a 404 drops the secret from the state)."""
        return self._get_secret(str(self._repository(owner, repo)["path"]), None, name)

    def delete_secret(self, principal: Principal, owner: str, repo: str, name: str, **_: Any) -> Answer:
        """go-github `Actions.DeleteRepoSecret`."""
        return self._delete_secret(str(self._repository(owner, repo)["path"]), None, name)

    def _variables(self, document: dict[str, Any], full_name: str) -> dict[str, Any]:
        return cast(dict[str, Any], document.setdefault("github", {}).setdefault(full_name, {}).setdefault("variables", {}))

    def create_variable(self, principal: Principal, owner: str, repo: str, payload: Any, **_: Any) -> Answer:
        """go-github `Actions.CreateRepoVariable` (upstream `resourceGithubActionsVariableCreate`);
        docs: actions/variables#create-a-repository-variable: 201, 409 when it exists."""
        full_name = str(self._repository(owner, repo)["path"])
        body = cast(dict[str, Any], payload or {})
        name = str(body.get("name") or "")
        if not _SECRET_NAME.fullmatch(name) or name.upper().startswith("GITHUB_"):
            raise ApiError(
                422, "Variable names can only contain alphanumeric characters or underscores, and must not start with GITHUB_"
            )
        with self.cloud.ci_store.edit() as document:
            variables = self._variables(document, full_name)
            if name in variables:
                raise ApiError(409, "Already exists - Variable already exists")
            stamp = _stamp()
            variables[name] = {"value": str(body.get("value", "")), "created_at": stamp, "updated_at": stamp}
        return 201, {}, {}

    def get_variable(self, principal: Principal, owner: str, repo: str, name: str, **_: Any) -> Answer:
        """go-github `Actions.GetRepoVariable`."""
        found = self._variables(self.cloud.ci_store.read(), str(self._repository(owner, repo)["path"])).get(name)
        if found is None:
            raise _not_found()
        return 200, {"name": name, **found}, {}

    def update_variable(self, principal: Principal, owner: str, repo: str, name: str, payload: Any, **_: Any) -> Answer:
        """go-github `Actions.UpdateRepoVariable`: 204."""
        full_name = str(self._repository(owner, repo)["path"])
        with self.cloud.ci_store.edit() as document:
            found = self._variables(document, full_name).get(name)
            if found is None:
                raise _not_found()
            found.update(value=str(cast(dict[str, Any], payload or {}).get("value", "")), updated_at=_stamp())
        return 204, None, {}

    def delete_variable(self, principal: Principal, owner: str, repo: str, name: str, **_: Any) -> Answer:
        """go-github `Actions.DeleteRepoVariable`: 204."""
        full_name = str(self._repository(owner, repo)["path"])
        with self.cloud.ci_store.edit() as document:
            if self._variables(document, full_name).pop(name, None) is None:
                raise _not_found()
        return 204, None, {}

    # --- environments ---

    def _environment_repository(self, owner: str, repo: str, repository_id: str) -> str:
        """`owner/name`, from the path or (go-github's environment secret routes) the repository id."""
        entry = platform.find_repository(self.cloud, "github", repository_id) if repository_id else self._repository(owner, repo)
        if entry is None:
            raise _not_found()
        return str(entry["path"])

    def put_environment(self, principal: Principal, owner: str, repo: str, environment: str, payload: Any, **_: Any) -> Answer:
        """go-github `Repositories.CreateUpdateEnvironment` (upstream `resourceGithubRepositoryEnvironmentCreate`);
        docs: deployments/environments#create-or-update-an-environment."""
        full_name = str(self._repository(owner, repo)["path"])
        body = cast(dict[str, Any], payload or {})
        policy = body.get("deployment_branch_policy")
        if policy and policy.get("protected_branches") == policy.get("custom_branch_policies"):
            raise ApiError(422, "Only one of protected_branches and custom_branch_policies can be true")
        with self.cloud.ci_store.edit() as document:
            environments = document.setdefault("github", {}).setdefault(full_name, {}).setdefault("environments", {})
            stamp = _stamp()
            entry = environments.setdefault(environment, {"id": _next_id(document), "created_at": stamp, "secrets": {}})
            entry.update(updated_at=stamp, deployment_branch_policy=policy, can_admins_bypass=body.get("can_admins_bypass", True))
            entry.setdefault("branchPolicies", {})
        return 200, shapes.environment(full_name, environment, entry), {}

    def _environment(self, full_name: str, environment: str) -> dict[str, Any]:
        return self._stored_environment(self.cloud.ci_store.read(), full_name, environment)

    def get_environment(self, principal: Principal, owner: str, repo: str, environment: str, **_: Any) -> Answer:
        """go-github `Repositories.GetEnvironment` (upstream Read: a 404 drops it)."""
        full_name = str(self._repository(owner, repo)["path"])
        return 200, shapes.environment(full_name, environment, self._environment(full_name, environment)), {}

    def delete_environment(self, principal: Principal, owner: str, repo: str, environment: str, **_: Any) -> Answer:
        """go-github `Repositories.DeleteEnvironment`: its secrets and branch policies go with it."""
        full_name = str(self._repository(owner, repo)["path"])
        with self.cloud.ci_store.edit() as document:
            if document.get("github", {}).get(full_name, {}).get("environments", {}).pop(environment, None) is None:
                raise _not_found()
        return 204, None, {}

    def _stored_environment(self, document: dict[str, Any], full_name: str, environment: str) -> dict[str, Any]:
        found = document.get("github", {}).get(full_name, {}).get("environments", {}).get(environment)
        if found is None:
            raise _not_found()
        return cast(dict[str, Any], found)

    def _policies(self, document: dict[str, Any], full_name: str, environment: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._stored_environment(document, full_name, environment).setdefault("branchPolicies", {}))

    def create_policy(self, principal: Principal, owner: str, repo: str, environment: str, payload: Any, **_: Any) -> Answer:
        """go-github `Repositories.CreateDeploymentBranchPolicy` (upstream
        `resourceGithubRepositoryEnvironmentDeploymentPolicyCreate`); docs:
        deployments/branch-policies#create-a-deployment-branch-policy and @octokit/openapi: 404 when the
        environment's `custom_branch_policies` is false, 303 "if the same branch name pattern already
        exists" (its `Location`, the existing policy's URL: not verified)."""
        full_name = str(self._repository(owner, repo)["path"])
        body = cast(dict[str, Any], payload or {})
        name, kind = str(body.get("name", "")), body.get("type", "branch")
        with self.cloud.ci_store.edit() as document:
            entry = self._stored_environment(document, full_name, environment)
            rules = cast(dict[str, Any], entry.get("deployment_branch_policy") or {})
            if not rules.get("custom_branch_policies"):
                raise _not_found()
            policies = self._policies(document, full_name, environment)
            same = next((p for p in policies.values() if p["name"] == name and p["type"] == kind), None)
            if same is not None:
                where = f"{shapes.API}/repos/{full_name}/environments/{environment}/deployment-branch-policies/{same['id']}"
                return 303, None, {"Location": where}
            policy_id = _next_id(document)
            policy = {"id": policy_id, "node_id": f"DBP_local{policy_id}", "name": name, "type": kind}
            policies[str(policy_id)] = policy
        return 200, policy, {}

    def get_policy(self, principal: Principal, owner: str, repo: str, environment: str, policy: str, **_: Any) -> Answer:
        """go-github `Repositories.GetDeploymentBranchPolicy`."""
        full_name = str(self._repository(owner, repo)["path"])
        found = self._policies(self.cloud.ci_store.read(), full_name, environment).get(policy)
        if found is None:
            raise _not_found()
        return 200, found, {}

    def update_policy(
        self, principal: Principal, owner: str, repo: str, environment: str, policy: str, payload: Any, **_: Any
    ) -> Answer:
        """go-github `Repositories.UpdateDeploymentBranchPolicy`."""
        full_name = str(self._repository(owner, repo)["path"])
        with self.cloud.ci_store.edit() as document:
            found = self._policies(document, full_name, environment).get(policy)
            if found is None:
                raise _not_found()
            found["name"] = str(cast(dict[str, Any], payload or {}).get("name", found["name"]))
        return 200, found, {}

    def delete_policy(self, principal: Principal, owner: str, repo: str, environment: str, policy: str, **_: Any) -> Answer:
        """go-github `Repositories.DeleteDeploymentBranchPolicy`: 204."""
        full_name = str(self._repository(owner, repo)["path"])
        with self.cloud.ci_store.edit() as document:
            if self._policies(document, full_name, environment).pop(policy, None) is None:
                raise _not_found()
        return 204, None, {}

    def environment_public_key(
        self, principal: Principal, environment: str, owner: str = "", repo: str = "", repository_id: str = "", **_: Any
    ) -> Answer:
        """go-github `Actions.GetEnvPublicKey` (upstream `getEnvironmentPublicKeyDetails`), at
        `/repositories/{id}/...` (go-github's route; the description has `/repos/{owner}/{repo}/...`)."""
        full_name = self._environment_repository(owner, repo, repository_id)
        self._environment(full_name, environment)
        key_id, private = self._box(f"{full_name}:{environment}")
        return 200, {"key_id": key_id, "key": base64.b64encode(bytes(private.public_key)).decode()}, {}

    def environment_secret(
        self,
        principal: Principal,
        environment: str,
        name: str,
        owner: str = "",
        repo: str = "",
        repository_id: str = "",
        **rest: Any,
    ) -> Answer:
        """go-github `Actions.CreateOrUpdateEnvSecret`/`GetEnvSecret`/`DeleteEnvSecret` (upstream
        `resourceGithubActionsEnvironmentSecret*`)."""
        full_name = self._environment_repository(owner, repo, repository_id)
        method = rest["method"]
        if method == "PUT":
            return self._put_secret(
                f"{full_name}:{environment}", full_name, environment, name, cast(dict[str, Any], rest["payload"] or {})
            )
        if method == "GET":
            return self._get_secret(full_name, environment, name)
        return self._delete_secret(full_name, environment, name)

    # --- GraphQL ---

    def graphql(self, principal: Principal, payload: Any, **_: Any) -> Answer:
        """`POST /graphql` (githubv4, upstream `dataSourceGithubBranchProtectionRulesRead`)."""
        return 200, self._graphql.execute(cast(dict[str, Any], payload or {})), {}


def _stamp() -> str:
    """GitHub's timestamps: seconds, UTC."""
    return now()[:19] + "Z"


def _json(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return {"__invalid__": body[:200].decode(errors="replace")}


def _check_sha(path: str, current: str | None, given: Any, required: bool) -> None:
    if required and not given:
        raise ApiError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
    if given and given != current:
        raise ApiError(409, f"{path} does not match {given}")


def _changed_files(full_name: str, repo: Path, details: dict[str, Any]) -> list[dict[str, Any]]:
    """The files a commit changed (`diff-entry`), for go-github's `RepositoryCommit.Files`."""
    parent = details["parents"][0] if details["parents"] else "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # the empty tree
    listed = platform.git(repo, "diff-tree", "-r", "--no-commit-id", parent, str(details["id"]))
    files: list[dict[str, Any]] = []
    for line in listed.splitlines():
        meta, path = line.split("\t", 1)
        _, _, _, blob, status = meta.split()
        kind = {"A": "added", "D": "removed"}.get(status, "modified")
        raw = f"{shapes.WEB}/{full_name}/raw/{details['id']}/{path}"
        files.append(
            {
                "sha": None if kind == "removed" else blob,
                "filename": path,
                "status": kind,
                "additions": 0,
                "deletions": 0,
                "changes": 0,
                "blob_url": raw.replace("/raw/", "/blob/"),
                "raw_url": raw,
                "contents_url": f"{shapes.API}/repos/{full_name}/contents/{path}?ref={details['id']}",
            }
        )
    return files


def secret_values(cloud: LocalCloud, full_name: str) -> dict[str, dict[str, str]]:
    """What a job of the repository gets, opened with the keys they were sealed to: `secrets` (the
    repository's) and each environment's, by name."""
    stored = cloud.ci_store.read().get("github", {}).get(full_name, {})
    keys = cloud.github.read().get("keys", {})

    def opened(secrets: dict[str, Any], scope: str) -> dict[str, str]:
        if not secrets:
            return {}
        private = nacl.public.PrivateKey(base64.b64decode(keys[scope]["private"]))
        box = nacl.public.SealedBox(private)
        return {name: box.decrypt(base64.b64decode(entry["encrypted_value"])).decode() for name, entry in secrets.items()}

    values = {"secrets": opened(stored.get("secrets", {}), full_name)}
    for environment, entry in stored.get("environments", {}).items():
        values[f"environment:{environment}"] = opened(entry.get("secrets", {}), f"{full_name}:{environment}")
    return values


def requests_log(cloud: LocalCloud, name: str = "github-requests.jsonl") -> list[dict[str, Any]]:
    path = cloud.root / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


_REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
_ENV = r"/environments/(?P<environment>[^/]+)"
_ENV_SECRETS = [rf"/repositories/(?P<repository_id>\d+){_ENV}/secrets", rf"{_REPO}{_ENV}/secrets"]
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile(pattern), handler)
    for method, pattern, handler in [
        ("GET", "/user", "current_user"),
        ("GET", "/users/(?P<username>[^/]+)", "get_user"),
        ("GET", "/users/(?P<username>[^/]+)/(?:gpg_keys|keys)", "user_keys"),
        ("GET", "/orgs/(?P<org>[^/]+)", "get_org"),
        ("POST", "/graphql", "graphql"),
        ("GET", _REPO, "get_repo"),
        ("GET", f"{_REPO}/branches/(?P<branch>.+)", "get_branch"),
        ("GET", f"{_REPO}/git/ref/heads/(?P<branch>.+)", "get_ref"),
        ("GET", f"{_REPO}/commits", "list_commits"),
        ("GET", f"{_REPO}/commits/(?P<ref>[^/]+)", "get_commit"),
        ("GET", f"{_REPO}/contents/(?P<path>.+)", "get_contents"),
        ("PUT", f"{_REPO}/contents/(?P<path>.+)", "put_contents"),
        ("DELETE", f"{_REPO}/contents/(?P<path>.+)", "delete_contents"),
        ("GET", f"{_REPO}/rules/branches/(?P<branch>.+)", "branch_rules"),
        ("GET", f"{_REPO}/rulesets/(?P<ruleset>\\d+)", "get_ruleset"),
        ("GET", f"{_REPO}/actions/secrets/public-key", "public_key"),
        ("PUT", f"{_REPO}/actions/secrets/(?P<name>[^/]+)", "put_secret"),
        ("GET", f"{_REPO}/actions/secrets/(?P<name>[^/]+)", "get_secret"),
        ("DELETE", f"{_REPO}/actions/secrets/(?P<name>[^/]+)", "delete_secret"),
        ("POST", f"{_REPO}/actions/variables", "create_variable"),
        ("GET", f"{_REPO}/actions/variables/(?P<name>[^/]+)", "get_variable"),
        ("PATCH", f"{_REPO}/actions/variables/(?P<name>[^/]+)", "update_variable"),
        ("DELETE", f"{_REPO}/actions/variables/(?P<name>[^/]+)", "delete_variable"),
        ("PUT", f"{_REPO}{_ENV}", "put_environment"),
        ("GET", f"{_REPO}{_ENV}", "get_environment"),
        ("DELETE", f"{_REPO}{_ENV}", "delete_environment"),
        ("POST", f"{_REPO}{_ENV}/deployment-branch-policies", "create_policy"),
        ("GET", f"{_REPO}{_ENV}/deployment-branch-policies/(?P<policy>\\d+)", "get_policy"),
        ("PUT", f"{_REPO}{_ENV}/deployment-branch-policies/(?P<policy>\\d+)", "update_policy"),
        ("DELETE", f"{_REPO}{_ENV}/deployment-branch-policies/(?P<policy>\\d+)", "delete_policy"),
        *[("GET", f"{prefix}/public-key", "environment_public_key") for prefix in _ENV_SECRETS],
        *[
            (verb, f"{prefix}/(?P<name>[^/]+)", "environment_secret")
            for prefix in _ENV_SECRETS
            for verb in ("GET", "PUT", "DELETE")
        ],
    ]
]
