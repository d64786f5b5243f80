"""Stand-in for actions/checkout v7.0.1 (3d3c42e5aac5ba805825da76410c181273ba90b1), read from its
`src/` at that commit: `git-source-provider.ts` `getSource` and `cleanup`, `ref-helper.ts`
(refspecs, checkout info), `input-helper.ts` (the event's ref and sha when `ref` is empty),
`git-auth-helper.ts` (`persist-credentials`: the token in a config file under RUNNER_TEMP,
included from .git/config; removed by the post step). The git commands are the real ones; the
fetch reaches the runner's local repository instead of GitHub through a `url.<dir>.insteadOf`
given to that command only, so .git/config names https://github.com/<owner>/<repo> as on GitHub.

Not the real action's: once its cleanup is done, the post step (the job's last) copies the
workspace, as the job leaves it, where the runner keeps it (`KEEP_WORKSPACES`): GitHub discards
a hosted runner's workspace and act removes its own, and the tests read what the job left.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from localcloud.actions import stand_in
from localcloud.actions.stand_in import ActionError, Inputs, StandIn

TAGS_REFSPEC = "+refs/tags/*:refs/tags/*"


def git(*args: str, cwd: Path) -> str:
    print(f"[command]git {' '.join(args)}", flush=True)
    result = subprocess.run(["git", *args], cwd=cwd, stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode:
        raise ActionError(f"The process 'git' failed with exit code {result.returncode}")
    return result.stdout


def fetch_depth(text: str) -> int:
    """`Math.floor(Number(input || '1'))`; not a number or negative: 0 (all history)."""
    try:
        depth = int(float(text or "1"))
    except ValueError:
        return 0
    return max(depth, 0)


def refspecs(ref: str, commit: str, depth: int) -> list[str]:
    """`getRefSpecForAllHistory` (depth 0) or `getRefSpec`, for a branch or a pull request's ref."""
    if ref.startswith("refs/pull/"):
        pull = f"+{commit}:refs/remotes/pull/{ref.removeprefix('refs/pull/')}"
    elif ref.startswith("refs/heads/"):
        pull = ""
    else:
        raise ActionError(f"the stand-in checks out branches and pull requests only, not {ref!r}")
    if depth == 0:
        return ["+refs/heads/*:refs/remotes/origin/*", TAGS_REFSPEC, *([pull] if pull else [])]
    return [pull or f"+{commit}:refs/remotes/origin/{ref.removeprefix('refs/heads/')}"]


def checkout_args(ref: str) -> list[str]:
    """`getCheckoutInfo` then `git checkout`: a branch at its remote ref, a pull request detached."""
    if ref.startswith("refs/heads/"):
        branch = ref.removeprefix("refs/heads/")
        return ["checkout", "--progress", "--force", "-B", branch, f"refs/remotes/origin/{branch}"]
    return ["checkout", "--progress", "--force", f"refs/remotes/pull/{ref.removeprefix('refs/pull/')}"]


def persist_token(workspace: Path, server_url: str, token: str) -> None:
    """`configureToken`: the token in git-credentials-<uuid>.config under RUNNER_TEMP, included
    from .git/config for this repository (and its worktrees)."""
    credentials = Path(os.environ["RUNNER_TEMP"]) / f"git-credentials-{uuid.uuid4()}.config"
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    stand_in.set_secret(basic)
    git("config", "--file", str(credentials), f"http.{server_url}/.extraheader", f"AUTHORIZATION: basic {basic}", cwd=workspace)
    for git_dir in (f"{workspace}/.git", f"{workspace}/.git/worktrees/*"):
        git("config", "--local", f"includeIf.gitdir:{git_dir}.path", str(credentials), cwd=workspace)
    stand_in.save_state("credentialsConfigPath", str(credentials))


def main(inputs: Inputs) -> None:
    repository = inputs.get("repository")
    if repository != os.environ["GITHUB_REPOSITORY"]:
        raise ActionError(f"the stand-in checks out the workflow's repository only, not {repository!r}")
    ref, commit = os.environ["GITHUB_REF"], os.environ["GITHUB_SHA"]
    depth = fetch_depth(inputs.get("fetch-depth"))
    workspace = Path(os.environ["GITHUB_WORKSPACE"])
    server_url = os.environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    print(f"Syncing repository: {repository}", flush=True)
    git("init", str(workspace), cwd=workspace)
    git("remote", "add", "origin", f"{server_url}/{repository}", cwd=workspace)
    git("config", "--local", "gc.auto", "0", cwd=workspace)
    stand_in.save_state("repositoryPath", str(workspace))
    local = f"url.{Path(os.environ[stand_in.GITHUB_GIT]).as_uri()}/.insteadOf={server_url}/"
    fetch = ["-c", local, "-c", "protocol.version=2", "fetch", "--no-tags", "--prune", "--no-recurse-submodules"]
    git(*fetch, *([f"--depth={depth}"] if depth else []), "origin", *refspecs(ref, commit, depth), cwd=workspace)
    git(*checkout_args(ref), cwd=workspace)
    if inputs.boolean("persist-credentials"):
        persist_token(workspace, server_url, inputs.get("token"))
    stand_in.set_output("commit", git("log", "-1", "--format=%H", cwd=workspace).strip())
    stand_in.set_output("ref", ref)


def post(inputs: Inputs) -> None:
    """`cleanup`: the persisted token removed; then the workspace kept for the runner."""
    workspace = Path(stand_in.state("repositoryPath") or os.environ["GITHUB_WORKSPACE"])
    if credentials := stand_in.state("credentialsConfigPath"):
        for git_dir in (f"{workspace}/.git", f"{workspace}/.git/worktrees/*"):
            git("config", "--local", "--unset-all", f"includeIf.gitdir:{git_dir}.path", cwd=workspace)
        Path(credentials).unlink(missing_ok=True)
    keep = Path(os.environ[stand_in.KEEP_WORKSPACES]) / os.environ["GITHUB_JOB"]
    shutil.copytree(os.environ["GITHUB_WORKSPACE"], keep, symlinks=True, copy_function=os.link)


STAND_IN = StandIn(
    action="actions/checkout",
    commit="3d3c42e5aac5ba805825da76410c181273ba90b1",
    release="v7.0.1",
    implemented=frozenset({"repository", "token", "persist-credentials", "fetch-depth"}),
    main=main,
    post=post,
)

if __name__ == "__main__":
    STAND_IN.run()
