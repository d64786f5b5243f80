"""The objects GitHub's REST API answers with, in the shapes of its OpenAPI description (npm
`@octokit/openapi`, `generated/api.github.com.json`, components `full-repository`, `simple-user`,
`public-user`, `private-user`, `commit`, `file-commit`, `content-file`, `git-ref`, `short-branch`,
`branch-with-protection`, `environment`): every field the description requires, with the values of
the local cloud's repositories. URLs are api.github.com's and github.com's, as GitHub answers them.
"""

from __future__ import annotations

import base64
from typing import Any

API = "https://api.github.com"
WEB = "https://github.com"
EPOCH = "2026-01-01T00:00:00Z"

_USER_URLS = {
    "followers_url": "/followers",
    "following_url": "/following{/other_user}",
    "gists_url": "/gists{/gist_id}",
    "starred_url": "/starred{/owner}{/repo}",
    "subscriptions_url": "/subscriptions",
    "organizations_url": "/orgs",
    "repos_url": "/repos",
    "events_url": "/events{/privacy}",
    "received_events_url": "/received_events",
}
_REPOSITORY_URLS = {
    "forks_url": "/forks",
    "keys_url": "/keys{/key_id}",
    "collaborators_url": "/collaborators{/collaborator}",
    "teams_url": "/teams",
    "hooks_url": "/hooks",
    "issue_events_url": "/issues/events{/number}",
    "events_url": "/events",
    "assignees_url": "/assignees{/user}",
    "branches_url": "/branches{/branch}",
    "tags_url": "/tags",
    "blobs_url": "/git/blobs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "trees_url": "/git/trees{/sha}",
    "statuses_url": "/statuses/{sha}",
    "languages_url": "/languages",
    "stargazers_url": "/stargazers",
    "contributors_url": "/contributors",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "commits_url": "/commits{/sha}",
    "git_commits_url": "/git/commits{/sha}",
    "comments_url": "/comments{/number}",
    "issue_comment_url": "/issues/comments{/number}",
    "contents_url": "/contents/{+path}",
    "compare_url": "/compare/{base}...{head}",
    "merges_url": "/merges",
    "archive_url": "/{archive_format}{/ref}",
    "downloads_url": "/downloads",
    "issues_url": "/issues{/number}",
    "pulls_url": "/pulls{/number}",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "labels_url": "/labels{/name}",
    "releases_url": "/releases{/id}",
    "deployments_url": "/deployments",
}


def simple_user(login: str, user_id: int, kind: str = "User") -> dict[str, Any]:
    url = f"{API}/users/{login}"
    return {
        "login": login,
        "id": user_id,
        "node_id": f"U_local{user_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{WEB}/{login}",
        "type": kind,
        "site_admin": False,
        **{key: url + suffix for key, suffix in _USER_URLS.items()},
    }


def public_user(login: str, user_id: int) -> dict[str, Any]:
    """`GET /users/{username}` (`public-user`)."""
    return {
        **simple_user(login, user_id),
        "name": login,
        "company": None,
        "blog": "",
        "location": None,
        "email": None,
        "hireable": None,
        "bio": None,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": EPOCH,
        "updated_at": EPOCH,
        "user_view_type": "public",
    }


def private_user(login: str, user_id: int) -> dict[str, Any]:
    """`GET /user` (`private-user`): the token's own account."""
    return {
        **public_user(login, user_id),
        "private_gists": 0,
        "total_private_repos": 0,
        "owned_private_repos": 0,
        "disk_usage": 0,
        "collaborators": 0,
        "two_factor_authentication": True,
        "user_view_type": "private",
    }


def repository(full_name: str, repo_id: int, owner_id: int, default_branch: str) -> dict[str, Any]:
    """`GET /repos/{owner}/{repo}` (`full-repository`): a private repository without pages or
    licence (so the provider's `data.github_repository` asks nothing more)."""
    owner, name = full_name.split("/", 1)
    url = f"{API}/repos/{full_name}"
    flags = ("has_issues", "has_projects", "has_wiki")
    return {
        "id": repo_id,
        "node_id": f"R_local{repo_id}",
        "name": name,
        "full_name": full_name,
        "owner": simple_user(owner, owner_id),
        "private": True,
        "visibility": "private",
        "html_url": f"{WEB}/{full_name}",
        "description": None,
        "fork": False,
        "url": url,
        **{key: url + suffix for key, suffix in _REPOSITORY_URLS.items()},
        "git_url": f"git://github.com/{full_name}.git",
        "ssh_url": f"git@github.com:{full_name}.git",
        "clone_url": f"{WEB}/{full_name}.git",
        "svn_url": f"{WEB}/{full_name}",
        "mirror_url": None,
        "homepage": None,
        "language": None,
        **dict.fromkeys(("forks", "forks_count", "open_issues", "open_issues_count", "size"), 0),
        **dict.fromkeys(("stargazers_count", "watchers", "watchers_count", "network_count", "subscribers_count"), 0),
        "default_branch": default_branch,
        **dict.fromkeys(flags, True),
        "has_pages": False,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "license": None,
        "topics": [],
        "pushed_at": EPOCH,
        "created_at": EPOCH,
        "updated_at": EPOCH,
        "permissions": {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
    }


def git_user(person: dict[str, str]) -> dict[str, str]:
    return {"name": person["name"], "email": person["email"], "date": person["date"]}


def commit(full_name: str, details: dict[str, Any], files: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`GET /repos/{owner}/{repo}/commits/{ref}` (`commit`); `details` from `platform.commit_of`
    ."""
    sha = str(details["id"])
    url = f"{API}/repos/{full_name}/commits/{sha}"
    person = {"name": details["author"], "email": details["email"], "date": details["date"]}
    shown: dict[str, Any] = {
        "url": url,
        "sha": sha,
        "node_id": f"C_local{sha[:12]}",
        "html_url": f"{WEB}/{full_name}/commit/{sha}",
        "comments_url": f"{url}/comments",
        "commit": {
            "url": f"{API}/repos/{full_name}/git/commits/{sha}",
            "author": git_user(person),
            "committer": git_user(person),
            "message": details["message"],
            "comment_count": 0,
            "tree": {"sha": details["tree"], "url": f"{API}/repos/{full_name}/git/trees/{details['tree']}"},
        },
        # git identities, not GitHub accounts: GitHub answers null; the description allows `empty-object`
        # only (its `nullable` beside `oneOf` is not honoured by OpenAPI 3.0 validators)
        "author": {},
        "committer": {},
        "parents": [
            {"sha": parent, "url": f"{API}/repos/{full_name}/commits/{parent}", "html_url": f"{WEB}/{full_name}/commit/{parent}"}
            for parent in details["parents"]
        ],
    }
    if files is not None:
        shown["files"] = files
    return shown


def content_file(full_name: str, path: str, ref: str, blob: str, data: bytes) -> dict[str, Any]:
    """`GET /repos/{owner}/{repo}/contents/{path}` of a file (`content-file`). The `url` carries
    `?ref=`: the provider's Read takes the ref from it (upstream `resourceGithubRepositoryFileRead`)."""
    shown = content_entry(full_name, path, ref, blob, len(data))
    encoded = base64.b64encode(data).decode()
    # GitHub wraps the base64 text at 60 characters
    shown["content"] = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)) + "\n"
    shown["encoding"] = "base64"
    return shown


def content_entry(full_name: str, path: str, ref: str, blob: str, size: int) -> dict[str, Any]:
    """A file as the contents API names it (without its content: `file-commit`'s `content`)."""
    url = f"{API}/repos/{full_name}/contents/{path}?ref={ref}"
    git_url = f"{API}/repos/{full_name}/git/blobs/{blob}"
    html_url = f"{WEB}/{full_name}/blob/{ref}/{path}"
    return {
        "type": "file",
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": blob,
        "size": size,
        "url": url,
        "git_url": git_url,
        "html_url": html_url,
        "download_url": f"https://raw.githubusercontent.com/{full_name}/{ref}/{path}",
        "_links": {"self": url, "git": git_url, "html": html_url},
    }


def file_commit(full_name: str, details: dict[str, Any], content: dict[str, Any] | None) -> dict[str, Any]:
    """The answer to `PUT`/`DELETE /repos/{owner}/{repo}/contents/{path}` (`file-commit`)."""
    sha = str(details["id"])
    person = {"name": details["author"], "email": details["email"], "date": details["date"]}
    return {
        "content": content,
        "commit": {
            "sha": sha,
            "node_id": f"C_local{sha[:12]}",
            "url": f"{API}/repos/{full_name}/git/commits/{sha}",
            "html_url": f"{WEB}/{full_name}/commit/{sha}",
            "author": git_user(person),
            "committer": git_user(person),
            "message": details["message"],
            "tree": {"sha": details["tree"], "url": f"{API}/repos/{full_name}/git/trees/{details['tree']}"},
            "parents": [
                {
                    "sha": parent,
                    "url": f"{API}/repos/{full_name}/git/commits/{parent}",
                    "html_url": f"{WEB}/{full_name}/commit/{parent}",
                }
                for parent in details["parents"]
            ],
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None, "verified_at": None},
        },
    }


def git_ref(full_name: str, branch: str, head: str) -> dict[str, Any]:
    """`GET /repos/{owner}/{repo}/git/ref/heads/{branch}` (`git-ref`)."""
    return {
        "ref": f"refs/heads/{branch}",
        "node_id": f"REF_local{head[:12]}",
        "url": f"{API}/repos/{full_name}/git/refs/heads/{branch}",
        "object": {"type": "commit", "sha": head, "url": f"{API}/repos/{full_name}/git/commits/{head}"},
    }


def branch(full_name: str, name: str, head_commit: dict[str, Any], protected: bool) -> dict[str, Any]:
    """`GET /repos/{owner}/{repo}/branches/{branch}` (`branch-with-protection`)."""
    protection_url = f"{API}/repos/{full_name}/branches/{name}/protection"
    return {
        "name": name,
        "commit": head_commit,
        "_links": {"html": f"{WEB}/{full_name}/tree/{name}", "self": f"{API}/repos/{full_name}/branches/{name}"},
        "protected": protected,
        "protection": {
            "enabled": protected,
            "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []},
        },
        "protection_url": protection_url,
    }


def environment(full_name: str, name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """`GET`/`PUT /repos/{owner}/{repo}/environments/{name}` (`environment`)."""
    policy = entry.get("deployment_branch_policy")
    return {
        "id": entry["id"],
        "node_id": f"EN_local{entry['id']}",
        "name": name,
        "url": f"{API}/repos/{full_name}/environments/{name}",
        "html_url": f"{WEB}/{full_name}/deployments/activity_log?environments_filter={name}",
        "created_at": entry["created_at"],
        "updated_at": entry["updated_at"],
        "can_admins_bypass": entry.get("can_admins_bypass", True),
        "protection_rules": [],
        "deployment_branch_policy": policy,
    }
