"""Pre-flight: blocking look-ups before any cloud resource, so `pulumi preview` fails early and a
failing `pulumi up` leaves nothing half-created. Every problem is reported at once."""

from __future__ import annotations

import dataclasses

import pulumi
import pulumi_gcp as gcp

from mlops_ci.platforms.base import looked_up
from mlops_ci.settings.loader import ConfigError, Settings

# Organization policy that blocks service-account key creation (enforced by default in
# organizations created since May 2024).
KEY_CREATION_CONSTRAINT = "constraints/iam.disableServiceAccountKeyCreation"


class PreflightError(ConfigError):
    """What the look-ups found wrong; nothing was created."""


@dataclasses.dataclass(frozen=True)
class Preflight:
    """What the look-ups found that shapes the stack."""

    adopt_bucket: bool
    """The stack's own bucket exists, labelled as this stack's: kept by an earlier destroy."""


def _existing_bucket_problems(settings: Settings, on_google: pulumi.InvokeOptions) -> list[str]:
    name = settings.existing_bucket
    bucket = looked_up(lambda: gcp.storage.get_bucket(name=name, opts=on_google))
    if bucket is None or not bucket.name:
        return [f"mlops-ci:existingBucket = {name!r}: no such bucket, or the credentials of `pulumi up` cannot read it"]
    labels = dict(bucket.labels or {})
    if labels.get("managed-by") == settings.labels["managed-by"] and labels.get("stack") != settings.labels["stack"]:
        owner = labels.get("stack")
        return [f"mlops-ci:existingBucket = {name!r}: the bucket of another stack ({owner!r}): a stack grants on its own"]
    # The team's bucket is theirs to change (other consumers may depend on it): say so, go on.
    if not bucket.uniform_bucket_level_access:
        pulumi.log.warn(f"bucket {name}: uniform bucket-level access is off, so object ACLs can grant access beside IAM")
    if bucket.public_access_prevention != "enforced":
        pulumi.log.warn(f"bucket {name}: public access prevention is not enforced, so the data could be made public")
    return []


def _kept_bucket(settings: Settings, on_google: pulumi.InvokeOptions) -> tuple[bool, list[str]]:
    """Whether the stack's own bucket already exists as this stack's, or a problem if another's."""
    found = looked_up(lambda: gcp.storage.get_buckets(project=settings.gcp_project, prefix=settings.bucket_name, opts=on_google))
    bucket = next((b for b in (found.buckets if found else ()) if b.name == settings.bucket_name), None)
    if bucket is None:
        return False, []
    if dict(bucket.labels) == settings.labels:
        return True, []
    return False, [
        f"mlops-ci:bucketName = {settings.bucket_name!r}: the bucket exists and is not this stack's (labels"
        f" {dict(bucket.labels)}); to use it as the DVC remote, set mlops-ci:existingBucket instead"
    ]


def _key_creation_problems(settings: Settings, on_google: pulumi.InvokeOptions) -> list[str]:
    policy = looked_up(
        lambda: gcp.projects.get_organization_policy(
            project=settings.gcp_project, constraint=KEY_CREATION_CONSTRAINT, opts=on_google
        )
    )
    if policy and any(rule.enforced for rule in policy.boolean_policies):
        return [
            f"mlops-ci:auth = 'key': the project {settings.gcp_project} enforces {KEY_CREATION_CONSTRAINT}, so no"
            " service-account key can be created; use mlops-ci:auth workload-identity (keyless)"
        ]
    return []


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
