"""What Google decides about access in the local cloud, shared by the `gcp` plugin (key creation,
APIs) and the services (the token endpoint, the storage front): organization policies, the delay
before new keys and grants take effect, the delay before a newly enabled API answers, and which
storage permissions a principal holds on a bucket.

The knobs live in `gcp.json` `behaviour` (set by the helpers below; absent: Google at its fastest):

    propagationDelaySeconds   a key or a bucket grant takes effect this long after its creation
    serviceEnableDelaySeconds an API answers SERVICE_DISABLED this long after it was enabled
    callerDisabledApis        APIs disabled in the project of the credentials `pulumi up` uses
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from localcloud.state import LocalCloud

KEY_CREATION_CONSTRAINT = "constraints/iam.disableServiceAccountKeyCreation"
# The managed constraint new organizations get (cloud.google.com/resource-manager/docs/
# secure-by-default-organizations); its violation type in the error: not verified.
MANAGED_KEY_CREATION_CONSTRAINT = "constraints/iam.managed.disableServiceAccountKeyCreation"
CALLER_PROJECT_NUMBER = "100000000001"
"""The project of the deployer's credentials (the quota project Google names in its errors)."""
CRM_API = "cloudresourcemanager.googleapis.com"
SERVICE_USAGE_API = "serviceusage.googleapis.com"
API_TITLES = {
    "storage.googleapis.com": "Cloud Storage",
    "iam.googleapis.com": "Identity and Access Management (IAM)",
    "sts.googleapis.com": "Security Token Service",
    "iamcredentials.googleapis.com": "IAM Service Account Credentials",
    CRM_API: "Cloud Resource Manager",
    SERVICE_USAGE_API: "Service Usage",
}

# The storage permissions of the predefined roles the program grants, and of the project-level
# role a team maintainer holds (cloud.google.com/storage/docs/access-control/iam-roles), for the
# permissions the clients here use.
_VIEWER = frozenset({"storage.objects.get", "storage.objects.list"})
_CREATOR = frozenset({"storage.objects.create"})
_ADMIN = _VIEWER | _CREATOR | {"storage.objects.delete", "storage.objects.update"}
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "roles/storage.objectViewer": _VIEWER,
    "roles/storage.objectCreator": _CREATOR,
    "roles/storage.objectUser": _ADMIN,
    "roles/storage.objectAdmin": _ADMIN,
    "roles/storage.admin": _ADMIN | {"storage.buckets.get", "storage.buckets.list"},
}


def behaviour(gcp: dict[str, Any]) -> dict[str, Any]:
    return dict(gcp.get("behaviour") or {})


def _set(cloud: LocalCloud, key: str, value: Any) -> None:
    with cloud.gcp.edit() as gcp:
        gcp.setdefault("behaviour", {})[key] = value


def set_propagation_delay(cloud: LocalCloud, seconds: float) -> None:
    """New keys and bucket grants take effect `seconds` after their creation, as Google's IAM
    documents ("access change propagation": usually 2 minutes, up to 7 or more; a new key "60
    seconds or more"): meanwhile the token endpoint refuses the key and the storage front the grant."""
    _set(cloud, "propagationDelaySeconds", float(seconds))


def set_service_enable_delay(cloud: LocalCloud, seconds: float) -> None:
    """An API enabled by the stack answers SERVICE_DISABLED for `seconds` more (Google's message:
    "If you enabled this API recently, wait a few minutes for the action to propagate")."""
    _set(cloud, "serviceEnableDelaySeconds", float(seconds))


def disable_caller_api(cloud: LocalCloud, api: str) -> None:
    """`api` is disabled in the project of the deployer's credentials (e.g. Cloud Resource Manager)."""
    with cloud.gcp.edit() as gcp:
        disabled = gcp.setdefault("behaviour", {}).setdefault("callerDisabledApis", [])
        if api not in disabled:
            disabled.append(api)


def block_key_creation(cloud: LocalCloud, project: str, where: str = "project") -> None:
    """Key creation blocked for `project`: by a policy set on the project itself ("project"; the
    v1 `projects.getOrgPolicy` that `getOrganizationPolicy` calls sees it), or enforced above it
    ("organization": secure-by-default organizations; the project look-up does not see it)."""
    list_name = "keyCreationDisabled" if where == "project" else "keyCreationDisabledByOrganization"
    with cloud.gcp.edit() as gcp:
        projects = gcp.setdefault(list_name, [])
        if project not in projects:
            projects.append(project)


def key_creation_blocked_by(gcp: dict[str, Any], project: str) -> str | None:
    """The constraint that forbids a new key in `project`, or None."""
    if project in gcp.get("keyCreationDisabled", []):
        return KEY_CREATION_CONSTRAINT
    if project in gcp.get("keyCreationDisabledByOrganization", []):
        return MANAGED_KEY_CREATION_CONSTRAINT
    return None


def young(gcp: dict[str, Any], created: float | None, delay_key: str) -> float:
    """Seconds before something created at `created` (epoch) takes effect; 0 when it has."""
    delay = float(behaviour(gcp).get(delay_key, 0))
    if not delay or created is None:
        return 0.0
    return max(0.0, float(created) + delay - time.time())


def disabled_api_message(api: str, project_number: str) -> str:
    """Google's answer to a call to an API the project has not enabled (or enabled moments ago)
    (403 PERMISSION_DENIED, reason SERVICE_DISABLED; text as Google sends it, quoted in many
    public reports)."""
    title = API_TITLES.get(api, api)
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "SERVICE_DISABLED",
            "domain": "googleapis.com",
            "metadata": {"service": api, "consumer": f"projects/{project_number}"},
        }
    ]
    return (
        f"googleapi: Error 403: {title} API has not been used in project {project_number} before or it is disabled. "
        f"Enable it by visiting https://console.developers.google.com/apis/api/{api}/overview?project={project_number} "
        "then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems "
        f"and retry.\nDetails:\n{json.dumps(details)}, accessNotConfigured"
    )


def caller_api_problem(gcp: dict[str, Any], api: str) -> str | None:
    """Google's 403 when `api` is disabled in the deployer's own project, else None."""
    if api in behaviour(gcp).get("callerDisabledApis", []):
        return disabled_api_message(api, CALLER_PROJECT_NUMBER)
    return None


def held_permissions(
    gcp: dict[str, Any], bucket: str, member: str, bindings: Iterable[dict[str, Any]], wanted: Iterable[str]
) -> set[str]:
    """The permissions of `wanted` that `member` holds on `bucket` now: from the bucket's IAM
    `bindings` (each grant once its propagation delay has passed) and from the roles of the
    bucket's project."""
    held: set[str] = set()
    grant_times = gcp.get("grantTimes", {})
    for binding in bindings:
        role = str(binding.get("role", ""))
        granted = grant_times.get(f"{bucket}/{role}/{member}")
        if member in binding.get("members", []) and not young(gcp, granted, "propagationDelaySeconds"):
            held |= ROLE_PERMISSIONS.get(role, frozenset())
    project = gcp.get("buckets", {}).get(bucket, {}).get("project")
    project_grants: list[list[str]] = gcp.get("projects", {}).get(project, {}).get("iam", []) if project else []
    held |= {permission for role, holder in project_grants if holder == member for permission in ROLE_PERMISSIONS.get(role, ())}
    return held & set(wanted)


def grant_project_role(cloud: LocalCloud, project: str, role: str, member: str) -> None:
    """A project-level role (a team maintainer's `roles/storage.admin`), effective at once."""
    with cloud.gcp.edit() as gcp:
        grants = gcp.setdefault("projects", {}).setdefault(project, {}).setdefault("iam", [])
        if [role, member] not in grants:
            grants.append([role, member])
