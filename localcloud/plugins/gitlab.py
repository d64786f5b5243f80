"""The `gitlab` plugin (10.4.0): project CI/CD variables in `ci-store.json` with GitLab's masking
rules, files committed into the project's bare git repository, project access tokens through the
local GitLab API (localcloud/gitlab_api.py, over HTTP, as the upstream provider calls GitLab's),
and the project look-up.

Projects exist only once created (`python -m localcloud repo gitlab group/.../project`); they are
named by path or numeric id, as in GitLab's API.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, cast

from localcloud import gitlab_api, platform, services, wire
from localcloud.server import CloudError, Context, Provider, ResourceType, serve

VERSION = "10.4.0"
_KEY = re.compile(r"[A-Za-z0-9_]{1,255}")
_MASKABLE = re.compile(r"[A-Za-z0-9_+=/@:.~-]{8,}")
_MASKABLE_RAW = re.compile(r"\S{8,}")


def _api(ctx: Context) -> str:
    return str(ctx.config.get("baseUrl") or platform.GITLAB_API).rstrip("/")


def _require_token(ctx: Context, method: str, path: str) -> None:
    if not ctx.config.get("token"):
        raise CloudError(401, f"{method} {_api(ctx)}{path}: 401 {{message: 401 Unauthorized}}")


def _project(ctx: Context, project: str, method: str, suffix: str = "") -> dict[str, Any]:
    entry = platform.find_repository(ctx.cloud, "gitlab", project)
    if entry is None:
        quoted = urllib.parse.quote(project, safe="")
        raise CloudError(404, f"{method} {_api(ctx)}/projects/{quoted}{suffix}: 404 {{message: 404 Project Not Found}}")
    return entry


def maskable(value: str, raw: bool) -> bool:
    """GitLab masks one line of at least 8 characters of its alphabet (any non-space when raw)."""
    return bool((_MASKABLE_RAW if raw else _MASKABLE).fullmatch(value)) and "\n" not in value


class ProjectVariable(ResourceType):
    token = "gitlab:index/projectVariable:ProjectVariable"
    required = ("project", "key", "value")
    defaults: ClassVar[Mapping[str, Any]] = {
        "masked": False,
        "protected": False,
        "raw": False,
        "variableType": "env_var",
        "environmentScope": "*",
    }
    force_new = frozenset({"project", "key", "environmentScope", "hidden"})

    def validate(self, inputs: wire.Props) -> list[tuple[str, str]]:
        key = inputs.get("key")
        if key and not _KEY.fullmatch(str(key)):
            return [("key", f"{key!r}: up to 255 letters, digits and _")]
        return []

    def journal_inputs(self, inputs: wire.Props) -> wire.Props:
        # Masked values are credentials even when the program forgot to mark them secret.
        if wire.reveal(inputs.get("masked")) and "value" in inputs:
            return {**inputs, "value": wire.REDACTED}
        return inputs

    def _write(self, ctx: Context, inputs: wire.Props, create: bool) -> tuple[str, wire.Props]:
        project, key, scope = str(inputs["project"]), str(inputs["key"]), str(inputs.get("environmentScope") or "*")
        suffix = "/variables" if create else f"/variables/{key}"
        method = "POST" if create else "PUT"
        _require_token(ctx, method, f"/projects/{urllib.parse.quote(project, safe='')}{suffix}")
        entry = _project(ctx, project, method, suffix)
        value = str(inputs["value"])
        where = f"{method} {_api(ctx)}/projects/{entry['id']}{suffix}"
        if inputs.get("masked") and not maskable(value, bool(inputs.get("raw"))):
            raise CloudError(400, f"{where}: 400 {{message: {{value: [is invalid]}}}}")
        if inputs.get("hidden") and not inputs.get("masked"):
            raise CloudError(400, f"{where}: 400 {{message: {{masked: [must be true when hidden]}}}}")
        with ctx.cloud.ci_store.edit() as store:
            variables = store.setdefault("gitlab", {}).setdefault(entry["path"], {}).setdefault("variables", {})
            slot = f"{key}:{scope}"
            if create and slot in variables:
                raise CloudError(400, f"{where}: 400 {{message: {{key: [({key}) has already been taken]}}}}")
            if not create and slot not in variables:
                raise CloudError(404, f"{where}: 404 {{message: 404 Variable Not Found}}")
            variables[slot] = {
                "key": key,
                "value": value,
                "masked": bool(inputs.get("masked")),
                "protected": bool(inputs.get("protected")),
                "raw": bool(inputs.get("raw")),
                "hidden": bool(inputs.get("hidden")),
                "variableType": inputs.get("variableType") or "env_var",
                "environmentScope": scope,
                "description": inputs.get("description") or "",
            }
        return f"{project}:{key}:{scope}", dict(inputs)

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        return self._write(ctx, inputs, create=True)

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        return self._write(ctx, news, create=False)[1]

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        entry = platform.find_repository(ctx.cloud, "gitlab", str(props["project"]))
        if entry is None:
            return
        with ctx.cloud.ci_store.edit() as store:
            variables = store.get("gitlab", {}).get(entry["path"], {}).get("variables", {})
            variables.pop(f"{props['key']}:{props.get('environmentScope') or '*'}", None)

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        entry = platform.find_repository(ctx.cloud, "gitlab", str(props["project"]))
        if entry is None:
            return None
        variables = platform.ci_variables(ctx.cloud, "gitlab", entry["path"]).get("variables", {})
        found = variables.get(f"{props['key']}:{props.get('environmentScope') or '*'}")
        if found is None:
            return None
        return {**props, "value": found["value"], "masked": found["masked"], "protected": found["protected"]}


def _local_api(ctx: Context) -> str:
    """The local GitLab API's URL (the services start on demand)."""
    url = services.start(ctx.cloud.root).get("gitlab")
    if not url:
        raise CloudError(503, "the local cloud's services predate its GitLab API: `make localcloud-stop`, then retry")
    return str(url)


def _call(ctx: Context, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request to the local GitLab API with the provider's token."""
    _require_token(ctx, method, path)
    return gitlab_api.call(_local_api(ctx), method, path, str(ctx.config["token"]), body)


def _failed(ctx: Context, method: str, path: str, status: int, answer: Any) -> CloudError:
    return CloudError(status, f"{method} {_api(ctx)}{path}: {status} {json.dumps(answer, sort_keys=True)}")


class ProjectAccessToken(ResourceType):
    """`gitlab_project_access_token` (the upstream resource on the plugin framework): `project`,
    `name`, `description`, `scopes` and `accessLevel` force a new token (RequiresReplace); an
    update is a rotation (`POST .../rotate`), planned when `expiresAt` changes or, with
    `rotationConfiguration`, when `pulumi up` runs less than `rotateBeforeDays` before the recorded
    expiry (upstream's ModifyPlan; the new expiry is `expirationDays` from then); a token revoked
    outside Pulumi is replaced. `token` is returned at creation and rotation only, always as a
    secret; a Read keeps the recorded one. Delete revokes.

    The engine keeps a resource's ID through an update (pulumi/pulumi#3729), so after a rotation
    the ID (`<project>:<token id>`, upstream's import form) still names the first token: the
    current token's id is kept in the state as `tokenId`, which Read, rotation and Delete use."""

    token = "gitlab:index/projectAccessToken:ProjectAccessToken"
    required = ("project", "name", "scopes")
    defaults: ClassVar[Mapping[str, Any]] = {"accessLevel": "maintainer"}
    force_new = frozenset({"project", "name", "description", "scopes", "accessLevel"})
    computed = ("token", "tokenId", "active", "createdAt", "revoked", "userId", "expiresAt")
    secret_outputs = frozenset({"token"})
    plans_changes = True

    def validate(self, inputs: wire.Props) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        scopes = inputs.get("scopes")
        if isinstance(scopes, list):
            unknown = sorted(set(map(str, cast(list[Any], scopes))) - gitlab_api.TOKEN_SCOPES)
            if unknown or not scopes:
                problems.append(("scopes", f"{unknown or scopes}: valid scopes are {', '.join(sorted(gitlab_api.TOKEN_SCOPES))}"))
        level = inputs.get("accessLevel")
        if level is not None and level not in gitlab_api.ACCESS_LEVELS:
            problems.append(("accessLevel", f"{level!r}: one of {', '.join(gitlab_api.ACCESS_LEVELS)}"))
        if inputs.get("expiresAt") and inputs.get("rotationConfiguration"):
            conflict = 'Attribute "expires_at" cannot be specified when "rotation_configuration" is specified'
            problems.append(("expiresAt", conflict))
        if inputs.get("expiresAt"):
            try:
                datetime.date.fromisoformat(str(inputs["expiresAt"]))
            except ValueError:
                problems.append(("expiresAt", f"{inputs['expiresAt']!r}: YYYY-MM-DD"))
        rotation = inputs.get("rotationConfiguration")
        if isinstance(rotation, dict):
            for field in ("expirationDays", "rotateBeforeDays"):
                value = cast(dict[str, Any], rotation).get(field)
                if not isinstance(value, int | float) or value < 1:
                    problems.append((f"rotationConfiguration.{field}", f"{value!r}: a number of days, at least 1"))
        return problems

    @staticmethod
    def _rotation(inputs: wire.Props) -> dict[str, int] | None:
        rotation = inputs.get("rotationConfiguration")
        if not isinstance(rotation, dict) or wire.is_unknown(rotation):
            return None
        known = cast(dict[str, Any], rotation)
        return {"expirationDays": int(known["expirationDays"]), "rotateBeforeDays": int(known["rotateBeforeDays"])}

    def _expiry(self, ctx: Context, inputs: wire.Props) -> str | None:
        """The expiry to ask for: `expiresAt`, or `expirationDays` from today (the cloud's clock)."""
        rotation = self._rotation(inputs)
        if rotation is not None:
            return (ctx.cloud.clock().date() + datetime.timedelta(days=rotation["expirationDays"])).isoformat()
        explicit = inputs.get("expiresAt")
        return str(explicit) if explicit else None

    def _due(self, ctx: Context, olds: wire.Props, news: wire.Props) -> bool:
        """Upstream's rotation window: the recorded expiry, less `rotateBeforeDays`, is past."""
        rotation, expires = self._rotation(news), olds.get("expiresAt")
        if rotation is None or not expires or wire.is_unknown(expires):
            return False
        expiry = datetime.datetime.combine(datetime.date.fromisoformat(str(expires)), datetime.time(), datetime.UTC)
        return expiry - datetime.timedelta(days=rotation["rotateBeforeDays"]) < ctx.cloud.clock()

    @staticmethod
    def _outputs(inputs: wire.Props, answer: dict[str, Any], value: str | None) -> wire.Props:
        outputs = {
            **inputs,
            "name": answer["name"],
            "description": answer.get("description", ""),
            "scopes": sorted(answer["scopes"]),
            "accessLevel": gitlab_api.ACCESS_LEVEL_NAMES[int(answer["access_level"])],
            "expiresAt": answer["expires_at"],
            "createdAt": answer["created_at"],
            "active": answer["active"],
            "revoked": answer["revoked"],
            "userId": answer["user_id"],
            "tokenId": answer["id"],
        }
        if value is not None:
            outputs["token"] = value
        if not inputs.get("description"):
            outputs.pop("description")
        if isinstance(inputs.get("scopes"), list):
            outputs["scopes"] = inputs["scopes"]  # a set upstream: the program's order, not the API's
        return outputs

    @staticmethod
    def _where(props: wire.Props, id_: str) -> tuple[str, str]:
        """The project and the current token's id (a number on the wire is a float)."""
        project, _, first = id_.rpartition(":")
        current = props.get("tokenId")
        return str(props.get("project") or project), str(int(current)) if current not in (None, "") else first

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        project = str(inputs["project"])
        path = f"/projects/{urllib.parse.quote(project, safe='')}/access_tokens"
        body: dict[str, Any] = {
            "name": inputs["name"],
            "scopes": list(inputs["scopes"]),
            "access_level": gitlab_api.ACCESS_LEVELS[str(inputs.get("accessLevel") or "maintainer")],
        }
        if inputs.get("description"):
            body["description"] = inputs["description"]
        expires = self._expiry(ctx, inputs)
        if expires:
            body["expires_at"] = expires
        status, answer = _call(ctx, "POST", path, body)
        if status != 201:
            raise _failed(ctx, "POST", path, status, answer)
        return f"{project}:{answer['id']}", self._outputs(inputs, answer, str(answer["token"]))

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        project, token_id = self._where(props, id_)
        path = f"/projects/{urllib.parse.quote(project, safe='')}/access_tokens/{token_id}"
        status, answer = _call(ctx, "GET", path)
        if status == 404:
            return None
        if status != 200:
            raise _failed(ctx, "GET", path, status, answer)
        return self._outputs({**props, "project": project}, answer, None)

    def planned_changes(self, ctx: Context, olds: wire.Props, news: wire.Props) -> dict[str, bool]:
        if olds.get("revoked"):
            # Revoked outside Pulumi: a new token, unless it had a fixed expiry that has passed anyway.
            expires = olds.get("expiresAt")
            if self._rotation(news) is not None or not expires or str(expires) > ctx.cloud.clock().date().isoformat():
                return {"revoked": True}
            return {}
        return {"expiresAt": False} if self._due(ctx, olds, news) else {}

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        # Upstream: every update of a project access token is its rotation (the rest replaces).
        project, token_id = self._where(olds, id_)
        path = f"/projects/{urllib.parse.quote(project, safe='')}/access_tokens/{token_id}/rotate"
        if self._rotation(news) is not None:
            expires = self._expiry(ctx, news) if self._due(ctx, olds, news) else olds.get("expiresAt")
        else:
            expires = news.get("expiresAt") or olds.get("expiresAt")
        status, answer = _call(ctx, "POST", path, {"expires_at": expires} if expires else {})
        if status != 200:
            raise _failed(ctx, "POST", path, status, answer)
        return self._outputs(news, answer, str(answer["token"]))

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        project, token_id = self._where(props, id_)
        path = f"/projects/{urllib.parse.quote(project, safe='')}/access_tokens/{token_id}"
        status, answer = _call(ctx, "GET", path)
        if status == 404 or (status == 200 and answer["revoked"]):
            return  # gone or revoked already: nothing to revoke
        status, answer = _call(ctx, "DELETE", path)
        if status != 204:
            raise _failed(ctx, "DELETE", path, status, answer)
        status, answer = _call(ctx, "GET", path)  # upstream waits until the token reads as revoked
        if status != 404 and not (status == 200 and answer["revoked"]):
            raise _failed(ctx, "GET", path, status, answer)


class RepositoryFile(ResourceType):
    token = "gitlab:index/repositoryFile:RepositoryFile"
    required = ("project", "filePath", "branch", "content")
    defaults: ClassVar[Mapping[str, Any]] = {"encoding": "text", "overwriteOnCreate": False}
    force_new = frozenset({"project", "filePath", "branch"})
    computed = ("blobId", "commitId", "contentSha256", "fileName", "lastCommitId", "ref", "size")
    # The bridge diffs the program against the state, which a refresh rewrites with the file's
    # content on the branch (upstream Read): a hand edit, once refreshed, is an update.
    plans_changes = True

    def planned_changes(self, ctx: Context, olds: wire.Props, news: wire.Props) -> dict[str, bool]:
        return {"content": False} if "content" in olds and olds.get("content") != news.get("content") else {}

    def validate(self, inputs: wire.Props) -> list[tuple[str, str]]:
        encoding = inputs.get("encoding")
        if encoding and encoding not in ("text", "base64"):
            return [("encoding", f"{encoding!r}: text or base64")]
        return []

    def _where(self, ctx: Context, inputs: wire.Props, method: str) -> tuple[dict[str, Any], Path, str, str]:
        path = urllib.parse.quote(str(inputs["filePath"]), safe="")
        suffix = f"/repository/files/{path}"
        entry = _project(ctx, str(inputs["project"]), method, suffix)
        repo, branch = Path(entry["gitDir"]), str(inputs["branch"])
        where = f"{method} {_api(ctx)}/projects/{entry['id']}{suffix}"
        if platform.branch_head(repo, branch) is None:
            start = inputs.get("startBranch")
            head = platform.branch_head(repo, str(start)) if start and method != "DELETE" else None
            if head is None:
                raise CloudError(400, f"{where}: 400 {{message: You can only create or edit files when you are on a branch}}")
            platform.create_branch(repo, branch, head)
        return entry, repo, branch, where

    def _content(self, inputs: wire.Props) -> bytes:
        content = str(inputs["content"])
        if inputs.get("encoding") == "base64":
            return base64.b64decode(content)
        return content.encode()

    def _author(self, inputs: wire.Props) -> dict[str, str]:
        return {
            "name": str(inputs.get("authorName") or "localcloud"),
            "email": str(inputs.get("authorEmail") or "localcloud@localhost"),
        }

    def _commit(self, ctx: Context, inputs: wire.Props, message: str, create: bool) -> tuple[str, wire.Props]:
        method = "POST" if create else "PUT"
        _require_token(ctx, method, f"/projects/{urllib.parse.quote(str(inputs['project']), safe='')}/repository/files")
        entry, repo, branch, where = self._where(ctx, inputs, method)
        path = str(inputs["filePath"])
        rule = platform.protection(entry, branch)
        if rule is not None and not rule.get("canPush"):
            raise CloudError(403, f"{where}: 403 {{message: You are not allowed to push into this branch}}")
        if create and platform.file_blob(repo, branch, path) and not inputs.get("overwriteOnCreate"):
            raise CloudError(400, f"{where}: 400 {{message: A file with this name already exists}}")
        content = self._content(inputs)
        commit = platform.commit_file(repo, branch, path, content, message, self._author(inputs))
        return f"{inputs['project']}:{branch}:{path}", {
            **inputs,
            "blobId": platform.file_blob(repo, branch, path) or "",
            "commitId": commit,
            "lastCommitId": commit,
            "contentSha256": hashlib.sha256(content).hexdigest(),
            "fileName": path.rsplit("/", 1)[-1],
            "ref": branch,
            "size": len(content),
        }

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        message = str(inputs.get("createCommitMessage") or inputs.get("commitMessage") or f"Create {inputs['filePath']}")
        return self._commit(ctx, inputs, message, create=True)

    def _read_first(self, ctx: Context, props: wire.Props, repo: Path, branch: str) -> None:
        """Upstream's Update and Delete read the file first (for its `last_commit_id`: a hand
        edit never conflicts) and fail, without retry, when the read answers 404: a file deleted
        by hand stops them until a refresh drops it from the state."""
        path = str(props["filePath"])
        if platform.file_blob(repo, branch, path) is None:
            entry = _project(ctx, str(props["project"]), "GET")
            quoted = urllib.parse.quote(path, safe="")
            where = f"GET {_api(ctx)}/projects/{entry['id']}/repository/files/{quoted}?ref={urllib.parse.quote(branch)}"
            raise CloudError(404, f"{where}: 404 {{message: 404 File Not Found}}")

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        message = str(news.get("updateCommitMessage") or news.get("commitMessage") or f"Update {news['filePath']}")
        _, repo, branch, _ = self._where(ctx, news, "PUT")
        self._read_first(ctx, news, repo, branch)
        return self._commit(ctx, news, message, create=False)[1]

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        _require_token(ctx, "DELETE", f"/projects/{urllib.parse.quote(str(props['project']), safe='')}/repository/files")
        _, repo, branch, _ = self._where(ctx, props, "DELETE")
        self._read_first(ctx, props, repo, branch)
        path = str(props["filePath"])
        message = str(props.get("deleteCommitMessage") or f"[DELETE]: {props.get('commitMessage') or path}")
        platform.commit_file(repo, branch, path, None, message, self._author(props))

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        try:
            _, repo, branch, _ = self._where(ctx, props, "GET")
        except CloudError:
            return None
        content = platform.file_content(repo, branch, str(props["filePath"]))
        if content is None:
            return None
        shown = content.decode(errors="replace") if props.get("encoding") != "base64" else props["content"]
        return {**props, "content": shown, "blobId": platform.file_blob(repo, branch, str(props["filePath"]))}


def get_project(ctx: Context, args: wire.Props) -> wire.Props:
    wanted = str(args.get("pathWithNamespace") or args.get("id") or "")
    entry = _project(ctx, wanted, "GET")
    path = str(entry["path"])
    group = path.rsplit("/", 1)[0]
    git_url = Path(entry["gitDir"]).as_uri()
    namespace = {
        "id": entry["namespaceId"],
        "name": group.rsplit("/", 1)[-1],
        "path": group.rsplit("/", 1)[-1],
        "fullPath": group,
        "kind": "group",
    }
    return {
        "id": str(entry["id"]),
        "name": path.rsplit("/", 1)[-1],
        "path": path.rsplit("/", 1)[-1],
        "pathWithNamespace": path,
        "namespaceId": entry["namespaceId"],
        "namespaces": [namespace],
        "defaultBranch": entry["defaultBranch"],
        "httpUrlToRepo": git_url,
        "sshUrlToRepo": git_url,
        "webUrl": f"{platform.gitlab_instance(_api(ctx))}/{path}",
        "archived": False,
        "visibilityLevel": "private",
    }


def get_branch(ctx: Context, args: wire.Props) -> wire.Props:
    """As `data.gitlab_branch`: the branch, whether the token's user may push to it (`canPush`:
    false on a protected branch the user's role may not push to); 404 when it does not exist."""
    project, name = str(args["project"]), str(args["name"])
    entry = _project(ctx, project, "GET", f"/repository/branches/{urllib.parse.quote(name, safe='')}")
    repo = Path(entry["gitDir"])
    head = platform.branch_head(repo, name)
    if head is None:
        quoted = urllib.parse.quote(name, safe="")
        raise CloudError(
            404, f"GET {_api(ctx)}/projects/{entry['id']}/repository/branches/{quoted}: 404 {{message: 404 Branch Not Found}}"
        )
    rule = platform.protection(entry, name)
    can_push = rule is None or bool(rule.get("canPush"))
    commit = platform.commit_of(repo, head)
    return {
        "project": project,
        "name": name,
        "canPush": can_push,
        "protected": rule is not None,
        "developersCanPush": rule is None,
        "developersCanMerge": rule is None,
        "default": name == entry["defaultBranch"],
        "merged": False,
        "webUrl": f"{platform.gitlab_instance(_api(ctx))}/{entry['path']}/-/tree/{name}",
        "commits": [
            {
                "id": commit["id"],
                "shortId": commit["id"][:8],
                "title": commit["message"],
                "message": commit["message"],
                "authorName": commit["author"],
                "authorEmail": commit["email"],
                "committerName": commit["author"],
                "committerEmail": commit["email"],
                "authoredDate": commit["date"],
                "committedDate": commit["date"],
                "parentIds": [],
            }
        ],
    }


def get_repository_file(ctx: Context, args: wire.Props) -> wire.Props:
    """As `data.gitlab_repository_file`: the file at `ref`, base64; 404 when missing."""
    project, path, ref = str(args["project"]), str(args["filePath"]), str(args["ref"])
    suffix = f"/repository/files/{urllib.parse.quote(path, safe='')}"
    entry = _project(ctx, project, "GET", suffix)
    repo = Path(entry["gitDir"])
    content = platform.file_content(repo, ref, path)
    if content is None:
        raise CloudError(404, f"GET {_api(ctx)}/projects/{entry['id']}{suffix}: 404 {{message: 404 File Not Found}}")
    head = platform.branch_head(repo, ref) or ""
    return {
        "project": project,
        "filePath": path,
        "ref": ref,
        "fileName": path.rsplit("/", 1)[-1],
        "size": len(content),
        "encoding": "base64",
        "content": base64.b64encode(content).decode(),
        "contentSha256": hashlib.sha256(content).hexdigest(),
        "blobId": platform.file_blob(repo, ref, path) or "",
        "commitId": head,
        "lastCommitId": platform.last_commit_of_file(repo, ref, path),
        "executeFilemode": False,
    }


def get_project_variable(ctx: Context, args: wire.Props) -> wire.Props:
    """As `data.gitlab_project_variable` (`GET /projects/:id/variables/:key`, `filter[environment_scope]`):
    the variable, its value as GitLab answers it (none when hidden); an error when absent (not verified
    at 19.x: the older source returns the client's 404)."""
    project, key = str(args["project"]), str(args["key"])
    scope = str(args.get("environmentScope") or "*")
    entry = _project(ctx, project, "GET", f"/variables/{key}")
    found = platform.ci_variables(ctx.cloud, "gitlab", entry["path"]).get("variables", {}).get(f"{key}:{scope}")
    if found is None:
        raise CloudError(404, f"GET {_api(ctx)}/projects/{entry['id']}/variables/{key}: 404 {{message: 404 Variable Not Found}}")
    fields = ("key", "masked", "protected", "raw", "hidden", "variableType", "environmentScope", "description")
    shown = {k: found[k] for k in fields}
    return {"project": project, **shown, "value": None if found.get("hidden") else found["value"]}


def get_project_access_tokens(ctx: Context, args: wire.Props) -> wire.Props:
    """As `data.gitlab_project_access_tokens`: the project's tokens (never their values), `state`
    active or inactive; GitLab answers only a Maintainer (403 otherwise) and 404 for a missing
    project, and the data source fails on both."""
    project = str(args["project"])
    path = f"/projects/{urllib.parse.quote(project, safe='')}/access_tokens"
    state = args.get("state")
    status, answer = _call(ctx, "GET", path + (f"?state={urllib.parse.quote(str(state))}" if state else ""))
    if status != 200:
        raise _failed(ctx, "GET", path, status, answer)
    tokens = [
        {
            "id": str(token["id"]),
            "project": project,
            "name": token["name"],
            "description": token.get("description") or "",
            "scopes": token["scopes"],
            "accessLevel": gitlab_api.ACCESS_LEVEL_NAMES[int(token["access_level"])],
            "active": token["active"],
            "revoked": token["revoked"],
            "createdAt": token["created_at"],
            "expiresAt": token["expires_at"],
            "lastUsedAt": token.get("last_used_at") or "",
            "userId": token["user_id"],
        }
        for token in cast(list[dict[str, Any]], answer)
    ]
    return {"id": project, "project": project, **({"state": state} if state else {}), "accessTokens": tokens}


PROVIDER = Provider(
    "gitlab",
    VERSION,
    [ProjectVariable(), RepositoryFile(), ProjectAccessToken()],
    invokes={
        "gitlab:index/getProject:getProject": get_project,
        "gitlab:index/getBranch:getBranch": get_branch,
        "gitlab:index/getRepositoryFile:getRepositoryFile": get_repository_file,
        "gitlab:index/getProjectAccessTokens:getProjectAccessTokens": get_project_access_tokens,
        "gitlab:index/getProjectVariable:getProjectVariable": get_project_variable,
    },
    env_config={"token": "GITLAB_TOKEN", "baseUrl": "GITLAB_BASE_URL"},
)


def main() -> None:
    serve(PROVIDER)


if __name__ == "__main__":
    main()
