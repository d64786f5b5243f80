"""The offline runtime's stand-in for the providers' look-ups and computed outputs: one table, by
type token. Offline, the world is a project where nothing exists yet and nothing is forbidden, a
repository that exists, a branch that accepts the token's commits and holds every file asked for
but the stack's job script.

Each look-up also says what the real provider would refuse: the provider package that serves it
(the offline runtime checks that it comes through the program's explicit provider, never a default
one) and its arguments, against that provider's own inputs (`problem`)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from mlops_ci.offline import google
from mlops_ci.settings.rules import JOB_SCRIPT_FOLDER

Answer = Callable[[Mapping[str, Any]], dict[str, Any]]
# What the real provider would refuse in a look-up's arguments, given the provider's own inputs; None: nothing.
Check = Callable[[Mapping[str, Any], Mapping[str, Any]], str | None]


def numeric_id(text: str) -> int:
    """A stand-in for a server-assigned number, stable for the same text."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:10], 16)


def _nothing_refused(args: Mapping[str, Any], provider: Mapping[str, Any]) -> str | None:
    return None


def _same_project(args: Mapping[str, Any], provider: Mapping[str, Any]) -> str | None:
    """Google's look-ups name the project the explicit provider was built for."""
    if args.get("project") != provider.get("project"):
        return f"project {args.get('project')!r} is not the provider's project {provider.get('project')!r}"
    return None


def _policy_of_the_project(args: Mapping[str, Any], provider: Mapping[str, Any]) -> str | None:
    """`constraint` is a required argument of getOrganizationPolicy (upstream
    data_source_google_organization_policy.go)."""
    if not args.get("constraint"):
        return "no constraint named (a required argument)"
    return _same_project(args, provider)


def _bare_repository(args: Mapping[str, Any], provider: Mapping[str, Any]) -> str | None:
    """GitHub's provider prefixes the repository with its owner: the look-up names the bare repository
    (upstream data_source_github_branch.go and friends read `owner` from the provider's meta)."""
    repository = str(args.get("repository", ""))
    if not repository or "/" in repository:
        return f"repository {repository!r} is not a bare repository name (the owner {provider.get('owner')!r} is the provider's)"
    return None


def _owners_repository(args: Mapping[str, Any], provider: Mapping[str, Any]) -> str | None:
    owner, _, name = str(args.get("fullName", "")).partition("/")
    if owner != provider.get("owner") or not name:
        return f"fullName {args.get('fullName')!r} is not a repository of the provider's owner {provider.get('owner')!r}"
    return None


def _owner(args: Mapping[str, Any], provider: Mapping[str, Any]) -> str | None:
    if args.get("username") != provider.get("owner"):
        return f"username {args.get('username')!r} is not the provider's owner {provider.get('owner')!r}"
    return None


def _project_path(args: Mapping[str, Any], provider: Mapping[str, Any]) -> str | None:
    """GitLab's look-ups name the project by its full path (group/project)."""
    project = str(args.get("project", args.get("pathWithNamespace", "")))
    if "/" not in project.strip("/"):
        return f"project {project!r} is not a project's full path (group/name)"
    return None


def _no_account(args: Mapping[str, Any]) -> dict[str, Any]:
    # None yet: Google answers 404 and the provider fails the look-up.
    raise LookupError(f"Error 404: service account {args['accountId']} not found")


def _github_file(args: Mapping[str, Any]) -> dict[str, Any]:
    if str(args["file"]).startswith(f"{JOB_SCRIPT_FOLDER}/"):
        return {"file": args["file"], "branch": args["branch"], "sha": "", "content": ""}  # as GitHub's provider answers a 404
    return {"file": args["file"], "branch": args["branch"], "sha": f"{numeric_id(args['file']):040x}", "content": ""}


def _gitlab_file(args: Mapping[str, Any]) -> dict[str, Any]:
    if str(args["filePath"]).startswith(f"{JOB_SCRIPT_FOLDER}/"):
        raise LookupError(f"404 File Not Found: {args['filePath']}")  # GitLab's answer, an error to the provider
    return {"filePath": args["filePath"], "ref": args["ref"], "content": "", "encoding": "base64"}


def _gitlab_project(args: Mapping[str, Any]) -> dict[str, Any]:
    path = args["pathWithNamespace"]
    group = path.rsplit("/", 1)[0]
    namespace = {"id": numeric_id(f"gitlab/{group}"), "fullPath": group, "kind": "group", "name": group, "path": group}
    return {"pathWithNamespace": path, "id": str(numeric_id(f"gitlab/{path}")), "namespaces": [namespace]}


@dataclasses.dataclass(frozen=True)
class Lookup:
    """One look-up's offline answer (LookupError: the API answers "not found" and the provider fails
    the look-up) and what its provider would refuse in its arguments."""

    answer: Answer
    problem: Check = _nothing_refused


LOOKUPS: dict[str, Lookup] = {
    # An existing bucket is found, private.
    "gcp:storage/getBucket:getBucket": Lookup(
        lambda a: {
            "name": a["name"],
            "url": f"gs://{a['name']}",
            "uniformBucketLevelAccess": True,
            "publicAccessPrevention": "enforced",
        }
    ),
    "gcp:storage/getBuckets:getBuckets": Lookup(lambda a: {"buckets": []}, _same_project),
    "gcp:projects/getOrganizationPolicy:getOrganizationPolicy": Lookup(
        lambda a: {"constraint": a.get("constraint", ""), "booleanPolicies": []}, _policy_of_the_project
    ),
    "gcp:serviceaccount/getAccount:getAccount": Lookup(_no_account, _same_project),
    "gcp:iam/getWorkloadIdentityPoolProvider:getWorkloadIdentityPoolProvider": Lookup(
        lambda a: google.shared_provider(a, numeric_id), _same_project
    ),
    "github:index/getRepository:getRepository": Lookup(
        lambda a: {"fullName": a["fullName"], "repoId": numeric_id(f"github/{a['fullName']}")}, _owners_repository
    ),
    "github:index/getUser:getUser": Lookup(
        lambda a: {"username": a["username"], "id": str(numeric_id(f"github/{a['username']}"))}, _owner
    ),
    "github:index/getBranch:getBranch": Lookup(
        lambda a: {
            "branch": a["branch"],
            "ref": f"refs/heads/{a['branch']}",
            "sha": f"{numeric_id('github/' + a['repository'] + '/' + a['branch']):040x}",
            "etag": "",
        },
        _bare_repository,
    ),
    "github:index/getBranchProtectionRules:getBranchProtectionRules": Lookup(
        lambda a: {"repository": a["repository"], "rules": []}, _bare_repository
    ),
    "github:index/getRepositoryFile:getRepositoryFile": Lookup(_github_file, _bare_repository),
    "gitlab:index/getProject:getProject": Lookup(_gitlab_project, _project_path),
    "gitlab:index/getBranch:getBranch": Lookup(
        lambda a: {"name": a["name"], "project": a["project"], "canPush": True, "protected": False}, _project_path
    ),
    # Offline, nothing was delivered yet.
    "gitlab:index/getProjectVariable:getProjectVariable": Lookup(lambda a: {}, _project_path),
    "gitlab:index/getProjectAccessTokens:getProjectAccessTokens": Lookup(
        lambda a: {"project": a["project"], "accessTokens": []}, _project_path
    ),
    "gitlab:index/getRepositoryFile:getRepositoryFile": Lookup(_gitlab_file, _project_path),
}


def _project_access_token(inputs: Mapping[str, Any]) -> dict[str, Any]:
    # A placeholder in the shape of GitLab's tokens (prefix, maskable), no credential.
    digest = hashlib.sha256(f"{inputs['project']}/{inputs['name']}".encode()).hexdigest()
    return {"token": f"glpat-offline-{digest[:20]}"}


# What a platform computes when it creates one of its resources, beyond the inputs.
COMPUTED: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "gitlab:index/projectAccessToken:ProjectAccessToken": _project_access_token,
}
