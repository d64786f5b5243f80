"""The CI platforms' side of the local cloud: repositories (bare git repositories playing the
remotes, with the numeric ids the platforms assign), commits of single files, and the store of
Actions secrets/variables and GitLab CI/CD variables a CI runner reads."""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import os
import re
import secrets
import subprocess
import tempfile
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

from localcloud.state import LocalCloud, now

GIT_IDENTITY = {"name": "localcloud", "email": "localcloud@localhost"}


class GitError(Exception):
    pass


def _new_id() -> int:
    return secrets.randbelow(9 * 10**8) + 10**8


def repository_dir(cloud: LocalCloud, platform: str, path: str) -> Path:
    return cloud.git_root / platform / f"{path}.git"


def git(repo: Path, *args: str, input_: bytes | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["git", *args],
        input=input_,
        capture_output=True,
        env={**os.environ, "GIT_DIR": str(repo), **(env or {})},
        check=False,
    )
    if result.returncode != 0:
        raise GitError(result.stderr.decode(errors="replace").strip())
    return result.stdout.decode().strip()


@contextlib.contextmanager
def _repository_lock(repo: Path) -> Generator[None]:
    with (repo.parent / f"{repo.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


GITLAB_API = "https://gitlab.com/api/v4"
"""The GitLab provider's default `baseUrl` (pulumi/pulumi-gitlab, gitlabhq/terraform-provider-gitlab)."""


def gitlab_instance(base_url: str | None) -> str:
    """A GitLab instance's root URL from its API's (`gitlab:baseUrl`, which may end in /api/v4/): the `iss`
    of its jobs' ID tokens (docs.gitlab.com, "OpenID Connect (OIDC) Authentication Using ID Tokens",
    token payload: "the domain of the GitLab instance")."""
    return re.sub(r"/api/v4/?$", "", (base_url or GITLAB_API).rstrip("/")).rstrip("/")


def create_repository(
    cloud: LocalCloud,
    platform: str,
    path: str,
    branches: list[str],
    files: Mapping[str, bytes] | None = None,
    instance: str = gitlab_instance(None),
) -> dict[str, Any]:
    """A repository (GitHub) or project (GitLab, on the instance at `instance`, its root URL) with an
    initial commit on each branch, holding a README and `files` (path → content: e.g. a DVC project's
    dvc.yaml and requirements); its ids."""
    repo = repository_dir(cloud, platform, path)
    repo.parent.mkdir(parents=True, exist_ok=True)
    if not repo.exists():
        subprocess.run(["git", "init", "-q", "--bare", "-b", branches[0], str(repo)], check=True)
        seeded = {"README.md": f"# {path}\n".encode(), **(files or {})}
        with _repository_lock(repo):
            with tempfile.TemporaryDirectory() as scratch:
                index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
                for name, content in sorted(seeded.items()):
                    blob = git(repo, "hash-object", "-w", "--stdin", input_=content)
                    git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=index)
                tree = git(repo, "write-tree", env=index)
            commit = git(repo, "commit-tree", tree, "-m", "Initial commit", env=_identity(GIT_IDENTITY))
            for branch in branches:
                git(repo, "update-ref", f"refs/heads/{branch}", commit)
    with cloud.platform.edit() as document:
        section = document.setdefault(platform, {})
        if platform == "github":
            owner = path.split("/")[0]
            users = section.setdefault("users", {})
            users.setdefault(owner, {"id": _new_id(), "login": owner})
            repos = section.setdefault("repos", {})
            entry = repos.setdefault(path, {"id": _new_id(), "defaultBranch": branches[0]})
        else:
            group = path.rsplit("/", 1)[0]
            namespaces = section.setdefault("namespaces", {})
            namespaces.setdefault(group, {"id": _new_id()})
            projects = section.setdefault("projects", {})
            entry = projects.setdefault(path, {"id": _new_id(), "defaultBranch": branches[0]})
            entry["namespaceId"] = namespaces[group]["id"]
            entry.setdefault("instanceUrl", instance)
        entry["path"] = path
        entry["gitDir"] = str(repo)
        return dict(entry)


def _edit_entry(cloud: LocalCloud, platform: str, path: str, change: str, value: Any) -> None:
    with cloud.platform.edit() as document:
        entries = document.get(platform, {}).get("repos" if platform == "github" else "projects", {})
        if path not in entries:
            raise KeyError(f"no {platform} repository {path}")
        entries[path][change] = value


def protect_branch(cloud: LocalCloud, platform: str, path: str, pattern: str, can_push: bool = False) -> None:
    """GitHub: a branch protection rule with this pattern. GitLab: a protected branch; `can_push`
    says whether the token's user (the one user of the local cloud) may push to it."""
    entry = find_repository(cloud, platform, path)
    if entry is None:
        raise KeyError(f"no {platform} repository {path}")
    rules = {**entry.get("protectedBranches", {}), pattern: {"canPush": can_push}}
    _edit_entry(cloud, platform, path, "protectedBranches", rules)


def protection(entry: Mapping[str, Any], branch: str) -> dict[str, Any] | None:
    """The protection rule of `branch` (fnmatch patterns, as both platforms' wildcards), or None."""
    rules: dict[str, dict[str, Any]] = dict(entry.get("protectedBranches", {}))
    return next((dict(rule) for pattern, rule in rules.items() if fnmatch.fnmatchcase(branch, pattern)), None)


def commit_of(repo: Path, revision: str) -> dict[str, Any]:
    """Id, message, author, email, date (ISO 8601), tree and parents of a commit."""
    text = git(repo, "log", "-1", "--format=%H%x00%s%x00%an%x00%ae%x00%cI%x00%T%x00%P", revision)
    sha, message, author, email, date, tree, parents = text.split("\x00")
    return {
        "id": sha,
        "message": message,
        "author": author,
        "email": email,
        "date": date,
        "tree": tree,
        "parents": parents.split(),
    }


def commits_touching(repo: Path, branch: str, path: str) -> list[str]:
    """The commits of `branch` that changed `path`, newest first."""
    listed = git(repo, "log", "--format=%H", f"refs/heads/{branch}", "--", path)
    return listed.split()


def last_commit_of_file(repo: Path, branch: str, path: str) -> str:
    return git(repo, "log", "-1", "--format=%H", f"refs/heads/{branch}", "--", path)


def find_repository(cloud: LocalCloud, platform: str, path: str) -> dict[str, Any] | None:
    section = cloud.platform.read().get(platform, {})
    entries = section.get("repos" if platform == "github" else "projects", {})
    if path in entries:
        return dict(entries[path])
    for entry in entries.values():  # GitLab also names projects by numeric id
        if str(entry.get("id")) == path:
            return dict(entry)
    return None


def _identity(author: dict[str, str]) -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": author["name"],
        "GIT_AUTHOR_EMAIL": author["email"],
        "GIT_COMMITTER_NAME": author["name"],
        "GIT_COMMITTER_EMAIL": author["email"],
    }


def branch_head(repo: Path, branch: str) -> str | None:
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}")
    except GitError:
        return None


def file_blob(repo: Path, branch: str, path: str) -> str | None:
    """The blob id of `path` on `branch`, or None."""
    head = branch_head(repo, branch)
    if head is None:
        return None
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{head}:{path}")
    except GitError:
        return None


def file_content(repo: Path, branch: str, path: str) -> bytes | None:
    blob = file_blob(repo, branch, path)
    if blob is None:
        return None
    return subprocess.run(
        ["git", "cat-file", "blob", blob], env={**os.environ, "GIT_DIR": str(repo)}, capture_output=True, check=True
    ).stdout


def create_branch(repo: Path, branch: str, source: str) -> None:
    git(repo, "update-ref", f"refs/heads/{branch}", source, "0" * 40)


def commit_file(repo: Path, branch: str, path: str, content: bytes | None, message: str, author: dict[str, str]) -> str:
    """Commit `content` at `path` on `branch` (None deletes it); the new commit's id. The branch
    must exist (GitError otherwise)."""
    with _repository_lock(repo):
        parent = branch_head(repo, branch)
        if parent is None:
            raise GitError(f"branch {branch} not found")
        with tempfile.TemporaryDirectory() as scratch:
            index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            git(repo, "read-tree", parent, env=index)
            if content is None:
                # mode 0 removes the entry (no work tree needed, unlike --force-remove)
                git(repo, "update-index", "--index-info", input_=f"0 {'0' * 40}\t{path}\n".encode(), env=index)
            else:
                blob = git(repo, "hash-object", "-w", "--stdin", input_=content)
                git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=index)
            tree = git(repo, "write-tree", env=index)
        commit = git(repo, "commit-tree", tree, "-p", parent, "-m", message, env=_identity(author))
        git(repo, "update-ref", f"refs/heads/{branch}", commit, parent)
        return commit


# --- CI variables ---


def ci_variables(cloud: LocalCloud, platform: str, path: str) -> dict[str, Any]:
    """What CI of the repository sees: GitHub {"secrets": {...}, "variables": {...}};
    GitLab {"variables": {key: {"value", "masked", "protected", ...}}}."""
    return dict(cloud.ci_store.read().get(platform, {}).get(path, {}))


def ci_environment(cloud: LocalCloud, platform: str, path: str, protected_ref: bool = False) -> dict[str, str]:
    """The variables a job of the repository gets as environment (GitHub: secrets and variables
    by name; GitLab: protected variables only on protected refs)."""
    stored = ci_variables(cloud, platform, path)
    if platform == "github":
        from localcloud import github_api

        # Secrets opened with the keys GitHub sealed them to; a job in an environment also gets the
        # environment's secrets (all environments merged here).
        opened = github_api.secret_values(cloud, path)
        return {
            **{k: str(v["value"]) for k, v in stored.get("variables", {}).items()},
            **{k: v for scope in opened.values() for k, v in scope.items()},
        }
    return {
        str(v["key"]): str(v["value"]) for v in stored.get("variables", {}).values() if protected_ref or not v.get("protected")
    }


def stamp() -> str:
    return now()
