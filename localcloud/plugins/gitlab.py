"""The `gitlab` plugin (10.4.0): project CI/CD variables in `ci-store.json` with GitLab's masking
rules, files committed into the project's bare git repository, and the project look-up.

Projects exist only once created (`python -m localcloud repo gitlab group/.../project`); they are
named by path or numeric id, as in GitLab's API.
"""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from localcloud import platform, wire
from localcloud.server import CloudError, Context, Provider, ResourceType, serve

VERSION = "10.4.0"
API = "https://gitlab.com/api/v4"
_KEY = re.compile(r"[A-Za-z0-9_]{1,255}")
_MASKABLE = re.compile(r"[A-Za-z0-9_+=/@:.~-]{8,}")
_MASKABLE_RAW = re.compile(r"\S{8,}")


def _api(ctx: Context) -> str:
    return str(ctx.config.get("baseUrl") or API).rstrip("/")


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


class RepositoryFile(ResourceType):
    token = "gitlab:index/repositoryFile:RepositoryFile"
    required = ("project", "filePath", "branch", "content")
    defaults: ClassVar[Mapping[str, Any]] = {"encoding": "text", "overwriteOnCreate": False}
    force_new = frozenset({"project", "filePath", "branch"})
    computed = ("blobId", "commitId", "contentSha256", "fileName", "lastCommitId", "ref", "size")

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

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        message = str(news.get("updateCommitMessage") or news.get("commitMessage") or f"Update {news['filePath']}")
        return self._commit(ctx, news, message, create=False)[1]

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        _require_token(ctx, "DELETE", f"/projects/{urllib.parse.quote(str(props['project']), safe='')}/repository/files")
        _, repo, branch, _ = self._where(ctx, props, "DELETE")
        path = str(props["filePath"])
        if platform.file_blob(repo, branch, path) is None:
            return
        message = str(props.get("deleteCommitMessage") or props.get("commitMessage") or f"Delete {path}")
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
        "webUrl": f"{re.sub(r'/api/v4/?$', '', _api(ctx))}/{path}",
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
        "webUrl": f"{re.sub(r'/api/v4/?$', '', _api(ctx))}/{entry['path']}/-/tree/{name}",
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


PROVIDER = Provider(
    "gitlab",
    VERSION,
    [ProjectVariable(), RepositoryFile()],
    invokes={
        "gitlab:index/getProject:getProject": get_project,
        "gitlab:index/getBranch:getBranch": get_branch,
        "gitlab:index/getRepositoryFile:getRepositoryFile": get_repository_file,
    },
    env_config={"token": "GITLAB_TOKEN", "baseUrl": "GITLAB_BASE_URL"},
)


def main() -> None:
    serve(PROVIDER)


if __name__ == "__main__":
    main()
