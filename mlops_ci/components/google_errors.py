"""What the stack does when Google refuses a create: a bounded wait for an API enabled moments ago,
one clear error for a key an organization policy forbids or for an API disabled in the
deployer's project (Cloud Resource Manager, Service Usage: none the stack enables). These are
Pulumi error hooks: the engine calls them when an operation fails, and retries it when one
answers True; they act on failed creates only (a failed delete, e.g. of a bucket holding data,
keeps Google's own message: `pulumi destroy` shows it too, having no program to call them)."""

from __future__ import annotations

import asyncio
import functools
import re

import pulumi

CRM_API = "cloudresourcemanager.googleapis.com"
KEY_APIS = ("storage.googleapis.com", "iam.googleapis.com")
"""The Google APIs a stack enables in its project: its bucket, its service account."""
DIRECT_APIS = (*KEY_APIS, "sts.googleapis.com")
"""Direct keyless CI exchanges its token for Google's (STS); the pool is IAM's."""
KEYLESS_APIS = (*DIRECT_APIS, "iamcredentials.googleapis.com")
"""Keyless CI with impersonation also acts as the service account (IAM Credentials)."""
RETRY_DELAYS = (5, 10, 20, 30, 30, 30, 30, 30, 30, 30, 30, 30)
"""Seconds between the creates of a resource whose API Google calls disabled: about 5 minutes in
all (Google: "If you enabled this API recently, wait a few minutes ... and retry")."""
KEY_REFUSED = ("Key creation is not allowed", "disableServiceAccountKeyCreation")
# Google's SERVICE_DISABLED answer names the API and the project in its link.
UNNAMED = ("an API", "the project")
"""A SERVICE_DISABLED answer without Google's link: which API, in which project, unknown."""
_DISABLED_API = re.compile(r"apis/api/(?P<api>[a-z0-9.-]+)/overview\?project=(?P<project>[A-Za-z0-9-]+)")


class GoogleRefusedError(Exception):
    """Why Google refused a create, and what to do; the engine shows the message as the error."""


def disabled_api(text: str) -> tuple[str, str] | None:
    """(API, project) when `text` is Google's SERVICE_DISABLED answer, else None."""
    if "SERVICE_DISABLED" not in text and "has not been used in project" not in text:
        return None
    found = _DISABLED_API.search(text)
    return (found["api"], found["project"]) if found else UNNAMED


def caller_api_disabled(api: str, project: str) -> GoogleRefusedError:
    """An API off in the project of the deployer's credentials: waiting does not help."""
    if api == CRM_API:
        why = (
            f"{CRM_API} (Cloud Resource Manager) is disabled in project {project}, the project of the credentials"
            " pulumi up uses: the Google provider reads every project through it"
        )
    else:
        why = (
            f"{api} is disabled in project {project}: not an API the stack enables, so that is the project of the"
            " credentials pulumi up uses (or their quota project)"
        )
    return GoogleRefusedError(
        f"Google answers that {why}. Enable it there (`gcloud services enable {api} --project {project}`)"
        " and run pulumi up again."
    )


async def retry_disabled_api(args: pulumi.ErrorHookArgs) -> bool:
    """Retry a create Google refused because its API was enabled moments ago, for a few minutes;
    then, or for an API the stack does not enable (off in the deployer's project: Cloud Resource
    Manager, Service Usage), stop with a clear error."""
    disabled = disabled_api(args.errors[0] if args.errors else "")
    if args.failed_operation != "create" or disabled is None:
        return False
    api, project = disabled
    if disabled != UNNAMED and api not in KEYLESS_APIS:
        raise caller_api_disabled(api, project)
    attempt = len(args.errors) - 1
    if attempt >= len(RETRY_DELAYS):
        raise GoogleRefusedError(
            f"Google still answers that {api} is disabled in project {project}, {sum(RETRY_DELAYS) // 60} minutes after"
            f" the stack enabled it. Check it is enabled (`gcloud services list --project {project}`), then pulumi up again."
        )
    delay = RETRY_DELAYS[attempt]
    pulumi.log.warn(f"{args.name}: {api} is not usable yet in project {project} (enabled moments ago): again in {delay} s")
    await asyncio.sleep(delay)
    return True


def api_errors(name: str) -> pulumi.ErrorHook:
    """The error hook of a resource created right after its API is enabled."""
    return pulumi.ErrorHook(f"{name}-google-api-errors", retry_disabled_api)


async def on_key_error(project: str, args: pulumi.ErrorHookArgs) -> bool:
    """A key an organization policy forbids: one clear error naming keyless mode; an API enabled
    moments ago: waited for."""
    latest = args.errors[0] if args.errors else ""
    if args.failed_operation == "create" and any(marker in latest for marker in KEY_REFUSED):
        raise GoogleRefusedError(
            f"Google refuses to create a service-account key in project {project}: an organization policy forbids keys"
            " (iam.disableServiceAccountKeyCreation, or iam.managed.disableServiceAccountKeyCreation, enforced by"
            " default in organizations created since May 2024). Set mlops-ci:auth to workload-identity (keyless: no"
            " key to leak or rotate) with mlops-ci:keylessMode direct (no service account: the one this run created"
            " goes) or impersonation (CI acts as it), and run pulumi up again; pulumi destroy removes what it created."
        )
    return await retry_disabled_api(args)


def key_errors(name: str, project: str) -> pulumi.ErrorHook:
    """The error hook of the service-account key (`on_key_error`)."""
    return pulumi.ErrorHook(f"{name}-key-errors", functools.partial(on_key_error, project))
