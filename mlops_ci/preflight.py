"""Pre-flight: blocking look-ups before any cloud resource, so `pulumi preview` fails early and a
failing `pulumi up` leaves nothing half-created. Every problem is reported at once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

import pulumi
import pulumi_gcp as gcp

from mlops_ci.components.google_errors import disabled_api
from mlops_ci.settings.model import MANAGED_BY_LABEL, PROJECT, PULUMI_PROJECT_LABEL, STACK_LABEL, ConfigError, Settings

# Organization policy that blocks service-account key creation when set on the project. The
# look-up reads a policy set on the project only (Cloud Resource Manager v1 `getOrgPolicy`): an
# enforcement inherited from the organization (the default of organizations created since May
# 2024) is caught when the key is created (components/google_errors.py).
KEY_CREATION_CONSTRAINT = "constraints/iam.disableServiceAccountKeyCreation"
# The API the stack enables itself in its project: disabled there, no bucket of its can exist yet.
STORAGE_API = "storage.googleapis.com"

T = TypeVar("T")
OWNER_LABELS = (MANAGED_BY_LABEL, STACK_LABEL, PULUMI_PROJECT_LABEL)


def _whose(labels: dict[str, str]) -> str | None:
    """The mlops-ci stack a bucket is labelled for (`dev`, or `dev of the project vision-ml`), if any."""
    if labels.get(MANAGED_BY_LABEL) != PROJECT:
        return None
    stack = f"{labels.get(STACK_LABEL)!a}"
    project = labels.get(PULUMI_PROJECT_LABEL)
    return f"{stack} of the Pulumi project {project!a}" if project else stack


def _is_own(labels: dict[str, str], settings: Settings) -> bool:
    """The bucket is labelled for this stack of this Pulumi project (no project label: mlops-ci's own)."""
    return all(labels.get(label) == settings.labels.get(label) for label in OWNER_LABELS)


class PreflightError(ConfigError):
    """What the look-ups found wrong; nothing was created."""


@dataclasses.dataclass(frozen=True)
class Preflight:
    """What the look-ups found that shapes the stack."""

    adopt_bucket: bool
    """The stack's own bucket exists, labelled as this stack's: kept by an earlier destroy (or
    created by an earlier `pulumi up`)."""


def _google(lookup: Callable[[], T], what: str, nothing_without: str = "") -> tuple[T | None, list[str]]:
    """A Google look-up's answer; None and no problem when there is nothing to find (or the API
    `nothing_without` is off); None and a problem when an API the look-up needs is disabled
    (never a silent "not found")."""
    try:
        return lookup(), []
    except Exception as error:  # noqa: BLE001 - not found and not readable are one answer (platforms.base.looked_up)
        disabled = disabled_api(str(error))
        if disabled is None or disabled[0] == nothing_without:
            return None, []
        api, project = disabled
        return None, [
            f"{what}: Google answers that {api} is disabled in project {project} (or was enabled minutes ago): enable it"
            f" there (`gcloud services enable {api} --project {project}`), wait a few minutes, and run pulumi up again"
        ]


def _existing_bucket_problems(settings: Settings, on_google: pulumi.InvokeOptions) -> list[str]:
    name = settings.existing_bucket
    key = f"mlops-ci:existingBucket = {name!r}"
    bucket, problems = _google(lambda: gcp.storage.get_bucket(name=name, opts=on_google), key)
    if problems:
        return problems
    if bucket is None or not bucket.name:
        return [f"{key}: no such bucket, or the credentials of `pulumi up` cannot read it"]
    # getBucket answers the bucket's labels in effectiveLabels; its `labels` are those a
    # configuration sets, none for a look-up (upstream `setStorageBucket`, `tpgresource.SetLabels`).
    labels = dict(bucket.effective_labels or {})
    if _whose(labels) and not _is_own(labels, settings):
        return [f"{key}: the bucket of another stack ({_whose(labels)}): a stack grants on its own"]
    # The team's bucket is theirs to change (other consumers may depend on it): say so, go on.
    if not bucket.uniform_bucket_level_access:
        pulumi.log.warn(f"bucket {name}: uniform bucket-level access is off, so object ACLs can grant access beside IAM")
    if bucket.public_access_prevention != "enforced":
        pulumi.log.warn(f"bucket {name}: public access prevention is not enforced, so the data could be made public")
    return []


def _kept_bucket(settings: Settings, on_google: pulumi.InvokeOptions) -> tuple[bool, list[str]]:
    """Whether the stack's own bucket already exists as this stack's, or a problem if another's.
    Ownership is the labels the stack sets: Google answers every label of the bucket (pulumi-gcp's
    `goog-pulumi-provisioned` too, or none at all), and only the stack's own are compared."""
    key = f"mlops-ci:bucketName = {settings.bucket_name!r}"
    listing = lambda: gcp.storage.get_buckets(project=settings.gcp_project, prefix=settings.bucket_name, opts=on_google)  # noqa: E731
    found, problems = _google(listing, key, nothing_without=STORAGE_API)
    bucket = next((b for b in (found.buckets if found else ()) if b.name == settings.bucket_name), None)
    if bucket is None:
        return False, problems
    labels = dict(bucket.labels or {})
    if _is_own(labels, settings):
        return True, []
    other = _whose(labels)
    whose = f"the bucket of the {PROJECT} stack {other}" if other else "not this stack's (not labelled for it)"
    # Labels removed by hand from the stack's own bucket: pulumi up compares the program with its
    # state, not with Google, and this check runs before it; putting them back by hand lets it go on.
    own = ",".join(f"{label}={value}" for label, value in settings.labels.items())
    relabel = (
        "; if it is this stack's own bucket and its labels were changed by hand, label it again"
        f" (`gcloud storage buckets update gs://{settings.bucket_name} --update-labels={own}`)"
    )
    return False, [
        f"{key}: the bucket exists in {settings.gcp_project} and is {whose}; choose another mlops-ci:bucketName, or"
        f" set mlops-ci:existingBucket to use it as the DVC remote without managing it{'' if other else relabel}"
    ]


def _key_creation_problems(settings: Settings, on_google: pulumi.InvokeOptions) -> list[str]:
    constraint = KEY_CREATION_CONSTRAINT
    key = "mlops-ci:auth = 'key'"
    policy, problems = _google(
        lambda: gcp.projects.get_organization_policy(project=settings.gcp_project, constraint=constraint, opts=on_google),
        key,
    )
    if policy and any(rule.enforced for rule in policy.boolean_policies):
        problems.append(
            f"{key}: the project {settings.gcp_project} enforces {constraint}, so no service-account key can be created;"
            " use mlops-ci:auth workload-identity (keyless)"
        )
    return problems


def preflight(settings: Settings, platform_provider: pulumi.ProviderResource, google: pulumi.ProviderResource) -> Preflight:
    """Every look-up; raises `PreflightError` listing all problems, or says what it found."""
    problems = settings.platform.preflight_problems(platform_provider, settings)
    on_google = pulumi.InvokeOptions(provider=google)
    adopt = False
    if settings.uses_existing_bucket:
        problems += _existing_bucket_problems(settings, on_google)
    else:
        adopt, bucket_problems = _kept_bucket(settings, on_google)
        problems += bucket_problems
    if not settings.keyless:
        problems += _key_creation_problems(settings, on_google)
    if problems:
        raise PreflightError(settings.stack, problems, "pre-flight")
    return Preflight(adopt_bucket=adopt)
