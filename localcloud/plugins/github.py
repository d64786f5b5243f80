"""The `github` plugin (6.15.0): Actions secrets and variables in `ci-store.json`, files committed
into the repository's bare git repository, and the repository/user look-ups.

Repositories exist only once created (`python -m localcloud repo github owner/name`); resources
name them bare (`name`), the owner comes from the provider's `owner`, as on GitHub.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from localcloud import platform, wire
from localcloud.server import CloudError, Context, Provider, ResourceType, serve

VERSION = "6.15.0"
API = "https://api.github.com"
_SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_SECRET_BYTES = 48 * 1024


def _api(ctx: Context) -> str:
    return str(ctx.config.get("baseUrl") or API).rstrip("/")


def _owner(ctx: Context) -> str:
    owner = ctx.config.get("owner")
    if not owner:
        raise CloudError(404, f"GET {_api(ctx)}/repos//: 404 Not Found [] (no owner: set github:owner or the provider's owner)")
    return str(owner)


def _require_token(ctx: Context, method: str, path: str) -> None:
    if not ctx.config.get("token"):
        raise CloudError(401, f"{method} {_api(ctx)}{path}: 401 Requires authentication []")


def _repository(ctx: Context, name: str, method: str, path: str) -> tuple[str, dict[str, Any]]:
    """`owner/name` and its entry; 404 as GitHub answers if it does not exist."""
    full_name = name if "/" in name else f"{_owner(ctx)}/{name}"
    entry = platform.find_repository(ctx.cloud, "github", full_name)
    if entry is None:
        raise CloudError(404, f"{method} {_api(ctx)}{path.format(repo=full_name)}: 404 Not Found []")
    return full_name, entry


def _name_problem(kind: str, name: Any) -> list[tuple[str, str]]:
    if name and (not _SECRET_NAME.fullmatch(str(name)) or str(name).upper().startswith("GITHUB_")):
        return [(kind, f"{name!r}: letters, digits and _, not starting with a digit or GITHUB_")]
    return []


def _refuse_protected(ctx: Context, full_name: str, branch: str, where: str) -> None:
    entry = platform.find_repository(ctx.cloud, "github", full_name) or {}
    rule = platform.protection(entry, branch)
    if rule is not None and not rule.get("canPush"):
        raise CloudError(409, f"{where}: 409 Repository rule violations found - Changes must be made through a pull request. []")


class ActionsSecret(ResourceType):
    token = "github:index/actionsSecret:ActionsSecret"
    required = ("repository", "secretName")
    force_new = frozenset({"repository", "secretName", "encryptedValue", "plaintextValue"})
    computed = ("createdAt", "updatedAt")
    secret_inputs = frozenset({"value", "plaintextValue", "encryptedValue", "valueEncrypted"})
    secret_outputs = frozenset({"value", "plaintextValue", "encryptedValue", "valueEncrypted"})

    def validate(self, inputs: wire.Props) -> list[tuple[str, str]]:
        return _name_problem("secretName", inputs.get("secretName"))

    @staticmethod
    def value_of(inputs: wire.Props) -> str:
        for key in ("value", "plaintextValue", "encryptedValue", "valueEncrypted"):
            if inputs.get(key) is not None:
                return str(inputs[key])
        raise CloudError(422, "one of value, value_encrypted, plaintext_value or encrypted_value must be set")

    def _put(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        path = f"/repos/{{repo}}/actions/secrets/{inputs['secretName']}"
        _require_token(ctx, "PUT", path)
        full_name, _ = _repository(ctx, str(inputs["repository"]), "PUT", path)
        value = self.value_of(inputs)
        if len(value.encode()) > MAX_SECRET_BYTES:
            raise CloudError(422, f"PUT {_api(ctx)}{path.format(repo=full_name)}: 422 secret value exceeds 48 KB []")
        with ctx.cloud.ci_store.edit() as store:
            secrets = store.setdefault("github", {}).setdefault(full_name, {}).setdefault("secrets", {})
            created = secrets.get(str(inputs["secretName"]), {}).get("createdAt", platform.stamp())
            stamp = platform.stamp()
            secrets[str(inputs["secretName"])] = {"value": value, "createdAt": created, "updatedAt": stamp}
        return f"{inputs['repository']}:{inputs['secretName']}", {**inputs, "createdAt": created, "updatedAt": stamp}

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        return self._put(ctx, inputs)

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        return self._put(ctx, news)[1]

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        full_name = str(props["repository"]) if "/" in str(props["repository"]) else f"{_owner(ctx)}/{props['repository']}"
        with ctx.cloud.ci_store.edit() as store:
            store.get("github", {}).get(full_name, {}).get("secrets", {}).pop(str(props["secretName"]), None)

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        full_name = str(props["repository"]) if "/" in str(props["repository"]) else f"{_owner(ctx)}/{props['repository']}"
        found = platform.ci_variables(ctx.cloud, "github", full_name).get("secrets", {}).get(str(props["secretName"]))
        return props if found else None


class ActionsVariable(ResourceType):
    token = "github:index/actionsVariable:ActionsVariable"
    required = ("repository", "variableName", "value")
    force_new = frozenset({"repository", "variableName"})
    computed = ("createdAt", "updatedAt")

    def validate(self, inputs: wire.Props) -> list[tuple[str, str]]:
        return _name_problem("variableName", inputs.get("variableName"))

    def _write(self, ctx: Context, inputs: wire.Props, create: bool) -> tuple[str, wire.Props]:
        name = str(inputs["variableName"])
        method, path = (
            ("POST", "/repos/{repo}/actions/variables") if create else ("PATCH", f"/repos/{{repo}}/actions/variables/{name}")
        )
        _require_token(ctx, method, path)
        full_name, _ = _repository(ctx, str(inputs["repository"]), method, path)
        with ctx.cloud.ci_store.edit() as store:
            variables = store.setdefault("github", {}).setdefault(full_name, {}).setdefault("variables", {})
            if create and name in variables:
                raise CloudError(
                    409, f"{method} {_api(ctx)}{path.format(repo=full_name)}: 409 Already exists - Variable already exists []"
                )
            if not create and name not in variables:
                raise CloudError(404, f"{method} {_api(ctx)}{path.format(repo=full_name)}: 404 Not Found []")
            stamp = platform.stamp()
            created = variables.get(name, {}).get("createdAt", stamp)
            variables[name] = {"value": str(inputs["value"]), "createdAt": created, "updatedAt": stamp}
        return f"{inputs['repository']}:{name}", {**inputs, "createdAt": created, "updatedAt": stamp}

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        return self._write(ctx, inputs, create=True)

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        return self._write(ctx, news, create=False)[1]

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        full_name = str(props["repository"]) if "/" in str(props["repository"]) else f"{_owner(ctx)}/{props['repository']}"
        with ctx.cloud.ci_store.edit() as store:
            store.get("github", {}).get(full_name, {}).get("variables", {}).pop(str(props["variableName"]), None)

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        full_name = str(props["repository"]) if "/" in str(props["repository"]) else f"{_owner(ctx)}/{props['repository']}"
        found = platform.ci_variables(ctx.cloud, "github", full_name).get("variables", {}).get(str(props["variableName"]))
        return {**props, "value": found["value"]} if found else None


class RepositoryFile(ResourceType):
    token = "github:index/repositoryFile:RepositoryFile"
    required = ("repository", "file", "content")
    defaults: ClassVar[Mapping[str, Any]] = {"overwriteOnCreate": False}
    force_new = frozenset({"repository", "file", "branch"})
    computed = ("commitSha", "sha", "ref", "commitMessage", "commitAuthor", "commitEmail", "branch")

    def _where(self, ctx: Context, inputs: wire.Props, method: str) -> tuple[str, Path, str]:
        path = f"/repos/{{repo}}/contents/{inputs['file']}"
        full_name, entry = _repository(ctx, str(inputs["repository"]), method, path)
        branch = str(inputs.get("branch") or entry["defaultBranch"])
        repo = Path(entry["gitDir"])
        if platform.branch_head(repo, branch) is None:
            if method == "PUT" and inputs.get("autocreateBranch"):
                source = str(inputs.get("autocreateBranchSourceSha") or "")
                source = source or platform.branch_head(repo, str(inputs.get("autocreateBranchSourceBranch") or "main")) or ""
                if not source:
                    raise CloudError(404, f"GET {_api(ctx)}/repos/{full_name}/branches/{branch}: 404 Branch not found []")
                platform.create_branch(repo, branch, source)
            else:
                raise CloudError(404, f"GET {_api(ctx)}/repos/{full_name}/branches/{branch}: 404 Branch not found []")
        return full_name, repo, branch

    def _author(self, ctx: Context, inputs: wire.Props) -> dict[str, str]:
        return {
            "name": str(inputs.get("commitAuthor") or ctx.config.get("owner") or "github-actions"),
            "email": str(inputs.get("commitEmail") or "noreply@github.com"),
        }

    def _commit(self, ctx: Context, inputs: wire.Props, message: str) -> tuple[str, wire.Props]:
        full_name, repo, branch = self._where(ctx, inputs, "PUT")
        path = str(inputs["file"])
        _refuse_protected(ctx, full_name, branch, f"PUT {_api(ctx)}/repos/{full_name}/contents/{path}")
        try:
            commit = platform.commit_file(repo, branch, path, str(inputs["content"]).encode(), message, self._author(ctx, inputs))
        except platform.GitError as error:
            raise CloudError(409, f"PUT {_api(ctx)}/repos/{full_name}/contents/{path}: 409 {error} []") from error
        blob = platform.file_blob(repo, branch, path) or ""
        return f"{inputs['repository']}/{path}:{branch}", {
            **inputs,
            "branch": branch,
            "ref": branch,
            "commitSha": commit,
            "sha": blob,
            "commitMessage": message,
            "commitAuthor": self._author(ctx, inputs)["name"],
            "commitEmail": self._author(ctx, inputs)["email"],
        }

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        _require_token(ctx, "PUT", f"/repos/{{repo}}/contents/{inputs['file']}")
        _, repo, branch = self._where(ctx, inputs, "PUT")
        if platform.file_blob(repo, branch, str(inputs["file"])) and not inputs.get("overwriteOnCreate"):
            raise CloudError(422, "refusing to overwrite existing file: configure `overwrite_on_create` to `true` to override")
        return self._commit(ctx, inputs, str(inputs.get("commitMessage") or f"Add {inputs['file']}"))

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        _require_token(ctx, "PUT", f"/repos/{{repo}}/contents/{news['file']}")
        message = str(news.get("commitMessage") or f"Update {news['file']}")
        return self._commit(ctx, {**news, "branch": news.get("branch") or olds.get("branch")}, message)[1]

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        _require_token(ctx, "DELETE", f"/repos/{{repo}}/contents/{props['file']}")
        _, repo, branch = self._where(ctx, props, "DELETE")
        path = str(props["file"])
        if platform.file_blob(repo, branch, path) is None:
            return  # already gone
        platform.commit_file(repo, branch, path, None, f"Delete {path}", self._author(ctx, props))

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        try:
            _, repo, branch = self._where(ctx, props, "GET")
        except CloudError:
            return None
        content = platform.file_content(repo, branch, str(props["file"]))
        if content is None:
            return None
        return {**props, "content": content.decode(errors="replace"), "sha": platform.file_blob(repo, branch, str(props["file"]))}


def _full_name(ctx: Context, name: str) -> str:
    return name if "/" in name else f"{_owner(ctx)}/{name}"


def _environment_path(ctx: Context, inputs: wire.Props, method: str, suffix: str = "") -> tuple[str, str, str]:
    """`owner/name`, the environment, and the request line for errors; 404 if the repository is missing."""
    environment = str(inputs["environment"])
    path = f"/repos/{{repo}}/environments/{urllib.parse.quote(environment, safe='')}{suffix}"
    _require_token(ctx, method, path)
    full_name, _ = _repository(ctx, str(inputs["repository"]), method, path)
    return full_name, environment, f"{method} {_api(ctx)}{path.format(repo=full_name)}"


def _environments(store: dict[str, Any], full_name: str) -> dict[str, Any]:
    return store.setdefault("github", {}).setdefault(full_name, {}).setdefault("environments", {})


class RepositoryEnvironment(ResourceType):
    token = "github:index/repositoryEnvironment:RepositoryEnvironment"
    required = ("repository", "environment")
    force_new = frozenset({"repository", "environment"})

    def _put(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        full_name, environment, _ = _environment_path(ctx, inputs, "PUT")
        with ctx.cloud.ci_store.edit() as store:
            entry = _environments(store, full_name).setdefault(environment, {"secrets": {}, "branchPolicies": {}})
            entry["deploymentBranchPolicy"] = inputs.get("deploymentBranchPolicy") or {}
        return f"{inputs['repository']}:{environment}", dict(inputs)

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        return self._put(ctx, inputs)

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        return self._put(ctx, news)[1]

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        full_name = _full_name(ctx, str(props["repository"]))
        with ctx.cloud.ci_store.edit() as store:
            _environments(store, full_name).pop(str(props["environment"]), None)  # its secrets and policies with it

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        stored = platform.ci_variables(ctx.cloud, "github", _full_name(ctx, str(props["repository"])))
        return props if str(props["environment"]) in stored.get("environments", {}) else None


class RepositoryEnvironmentDeploymentPolicy(ResourceType):
    token = "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy"
    required = ("repository", "environment")
    force_new = frozenset({"repository", "environment"})

    def _put(self, ctx: Context, inputs: wire.Props, id_: str | None = None) -> tuple[str, wire.Props]:
        full_name, environment, where = _environment_path(ctx, inputs, "POST", "/deployment-branch-policies")
        pattern = str(inputs.get("branchPattern") or inputs.get("tagPattern") or "")
        with ctx.cloud.ci_store.edit() as store:
            entry = _environments(store, full_name).get(environment)
            if entry is None:
                raise CloudError(404, f"{where}: 404 Not Found []")
            policies = entry.setdefault("branchPolicies", {})
            policy_id = id_.rsplit(":", 1)[-1] if id_ else str(platform.stamp().replace(":", "").replace("-", "")[-9:])
            policies[policy_id] = {"pattern": pattern, "type": "tag" if inputs.get("tagPattern") else "branch"}
        return f"{inputs['repository']}:{environment}:{policy_id}", dict(inputs)

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        return self._put(ctx, inputs)

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        return self._put(ctx, news, id_)[1]

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        full_name = _full_name(ctx, str(props["repository"]))
        with ctx.cloud.ci_store.edit() as store:
            entry = _environments(store, full_name).get(str(props["environment"]), {})
            entry.get("branchPolicies", {}).pop(id_.rsplit(":", 1)[-1], None)


class ActionsEnvironmentSecret(ResourceType):
    token = "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret"
    required = ("repository", "environment", "secretName")
    force_new = frozenset({"repository", "environment", "secretName", "encryptedValue", "plaintextValue"})
    computed = ("createdAt", "updatedAt")
    secret_inputs = ActionsSecret.secret_inputs
    secret_outputs = ActionsSecret.secret_outputs

    def validate(self, inputs: wire.Props) -> list[tuple[str, str]]:
        return _name_problem("secretName", inputs.get("secretName"))

    def _put(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        name = str(inputs["secretName"])
        full_name, environment, where = _environment_path(ctx, inputs, "PUT", f"/secrets/{name}")
        value = ActionsSecret.value_of(inputs)
        if len(value.encode()) > MAX_SECRET_BYTES:
            raise CloudError(422, f"{where}: 422 secret value exceeds 48 KB []")
        with ctx.cloud.ci_store.edit() as store:
            entry = _environments(store, full_name).get(environment)
            if entry is None:
                raise CloudError(404, f"{where}: 404 Not Found []")
            stamp = platform.stamp()
            created = entry.setdefault("secrets", {}).get(name, {}).get("createdAt", stamp)
            entry["secrets"][name] = {"value": value, "createdAt": created, "updatedAt": stamp}
        return f"{inputs['repository']}:{environment}:{name}", {**inputs, "createdAt": created, "updatedAt": stamp}

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        return self._put(ctx, inputs)

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        return self._put(ctx, news)[1]

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        full_name = _full_name(ctx, str(props["repository"]))
        with ctx.cloud.ci_store.edit() as store:
            entry = _environments(store, full_name).get(str(props["environment"]), {})
            entry.get("secrets", {}).pop(str(props["secretName"]), None)

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        stored = platform.ci_variables(ctx.cloud, "github", _full_name(ctx, str(props["repository"])))
        environment = stored.get("environments", {}).get(str(props["environment"]), {})
        return props if str(props["secretName"]) in environment.get("secrets", {}) else None


def get_repository(ctx: Context, args: wire.Props) -> wire.Props:
    """As `data.github_repository`: a 404 is an answer with empty fields, not an error."""
    name = str(args.get("fullName") or args.get("name") or "")
    full_name = _full_name(ctx, name)
    entry = platform.find_repository(ctx.cloud, "github", full_name)
    if entry is None:
        return {key: value for key, value in args.items() if key in ("fullName", "name")}
    git_url = Path(entry["gitDir"]).as_uri()
    return {
        "fullName": full_name,
        "name": full_name.split("/", 1)[1],
        "repoId": entry["id"],
        "nodeId": f"R_local{entry['id']}",
        "defaultBranch": entry["defaultBranch"],
        "htmlUrl": f"https://github.com/{full_name}",
        "httpCloneUrl": git_url,
        "gitCloneUrl": git_url,
        "sshCloneUrl": git_url,
        "private": True,
        "visibility": "private",
        "archived": False,
        "description": "",
        "topics": [],
    }


def _found_repository(ctx: Context, name: str) -> tuple[str, dict[str, Any] | None]:
    full_name = _full_name(ctx, name)
    return full_name, platform.find_repository(ctx.cloud, "github", full_name)


def get_branch(ctx: Context, args: wire.Props) -> wire.Props:
    """As `data.github_branch`: a missing repository or branch (404) answers empty fields."""
    repository, branch = str(args["repository"]), str(args["branch"])
    _, entry = _found_repository(ctx, repository)
    head = platform.branch_head(Path(entry["gitDir"]), branch) if entry else None
    if head is None:
        return {"repository": repository, "branch": branch}
    return {"repository": repository, "branch": branch, "ref": f"refs/heads/{branch}", "sha": head, "etag": f'W/"{head}"'}


def get_branch_protection_rules(ctx: Context, args: wire.Props) -> wire.Props:
    """As `data.github_branch_protection_rules` (GraphQL): the rules' patterns; an unknown
    repository is an error (GraphQL answers NOT_FOUND)."""
    repository = str(args["repository"])
    full_name, entry = _found_repository(ctx, repository)
    if entry is None:
        owner, _, name = full_name.partition("/")
        raise CloudError(404, f"Could not resolve to a Repository with the name '{owner}/{name}'.")
    rules = sorted(dict(entry.get("protectedBranches", {})))
    return {"repository": repository, "rules": [{"pattern": pattern} for pattern in rules]}


def get_repository_file(ctx: Context, args: wire.Props) -> wire.Props:
    """As `data.github_repository_file`: a 404 (repository, branch or file) answers empty fields."""
    repository, path = str(args["repository"]), str(args["file"])
    _, entry = _found_repository(ctx, repository)
    shown = {"repository": repository, "file": path, **({"branch": args["branch"]} if args.get("branch") else {})}
    if entry is None:
        return shown
    repo = Path(entry["gitDir"])
    branch = str(args.get("branch") or entry["defaultBranch"])
    content = platform.file_content(repo, branch, path)
    if content is None:
        return shown
    commit = platform.commit_of(repo, platform.last_commit_of_file(repo, branch, path))
    return {
        **shown,
        "branch": branch,
        "ref": branch,
        "content": content.decode(errors="replace"),
        "sha": platform.file_blob(repo, branch, path) or "",
        "commitSha": commit["id"],
        "commitMessage": commit["message"],
        "commitAuthor": commit["author"],
        "commitEmail": commit["email"],
    }


def get_user(ctx: Context, args: wire.Props) -> wire.Props:
    username = str(args.get("username") or "")
    user = ctx.cloud.platform.read().get("github", {}).get("users", {}).get(username)
    if user is None:
        raise CloudError(404, f"GET {_api(ctx)}/users/{username}: 404 Not Found []")
    return {"username": username, "login": username, "id": str(user["id"]), "nodeId": f"U_local{user['id']}", "name": username}


PROVIDER = Provider(
    "github",
    VERSION,
    [
        ActionsSecret(),
        ActionsVariable(),
        RepositoryFile(),
        RepositoryEnvironment(),
        RepositoryEnvironmentDeploymentPolicy(),
        ActionsEnvironmentSecret(),
    ],
    invokes={
        "github:index/getRepository:getRepository": get_repository,
        "github:index/getUser:getUser": get_user,
        "github:index/getBranch:getBranch": get_branch,
        "github:index/getBranchProtectionRules:getBranchProtectionRules": get_branch_protection_rules,
        "github:index/getRepositoryFile:getRepositoryFile": get_repository_file,
    },
    env_config={"token": "GITHUB_TOKEN", "owner": "GITHUB_OWNER", "baseUrl": "GITHUB_BASE_URL"},
)


def main() -> None:
    serve(PROVIDER)


if __name__ == "__main__":
    main()
