"""Pre-flight: blocking look-ups before any cloud resource, so `pulumi preview` fails early and a
failing `pulumi up` leaves nothing half-created. Every problem is reported at once."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import TypeVar

import pulumi
import pulumi_gcp as gcp

from mlops_ci.components.google_errors import disabled_api
from mlops_ci.settings.model import (
    CREDENTIAL_KEYS,
    MANAGED_BY_LABEL,
    PROJECT,
    PULUMI_PROJECT_LABEL,
    STACK_LABEL,
    ConfigError,
    Settings,
)

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


# The provider's data source google_service_account fails a 404 with "<name> not found"
# (terraform-provider-google tpgresource HandleDataSourceNotFoundError) and any other failure with
# Google's own answer ("Error when reading or editing ...: googleapi: Error 403: ..."): only the
# first says the account does not exist (Google's own 404, `Error 404: ... notFound`, says so too).
_NOT_FOUND = re.compile(r"\bnot ?found\b|\bError 404\b", re.IGNORECASE)
_OTHER_STATUS = re.compile(r"\bError (?!404\b)[0-9]{3}\b")


def _account_lookup(settings: Settings, on_google: pulumi.InvokeOptions) -> tuple[str | None, str | None]:
    """(the email of the stack's service account, None), (None, None) when Google answers it does not
    exist (404, or IAM disabled in the stack's own project: no account there), or (None, Google's
    answer) when the look-up failed otherwise (403, 5xx, IAM off in another project): it cannot tell."""
    try:
        account = gcp.serviceaccount.get_account(
            account_id=settings.service_account_id, project=settings.gcp_project, opts=on_google
        )
    except Exception as error:  # noqa: BLE001 - the provider's failure is its message; sorted out here
        text = str(error)
        disabled = disabled_api(text)
        if disabled == ("iam.googleapis.com", settings.gcp_project):
            return None, None
        if disabled is None and _NOT_FOUND.search(text) and not _OTHER_STATUS.search(text):
            return None, None
        return None, " ".join(text.split())[:400]
    return account.email or None, None


def _credential_change_problems(settings: Settings, on_google: pulumi.InvokeOptions) -> list[str]:
    """A keyless stack that leaves `auth` (this release's default: keyless) or `keylessMode` (direct:
    no service account) to its default, and whose service account exists: deployed by an earlier
    release with a key (`auth` defaulted to key) or with impersonation. Its next `pulumi up` would
    replace the credential CI uses, silently: the stack file must say which it wants. A look-up that
    cannot tell whether the account exists stops too."""
    if not settings.keyless or not settings.defaulted:
        return []
    email, failed = _account_lookup(settings, on_google)
    if email is None and failed is None:
        return []
    unset = " and ".join(f"{PROJECT}:{name}" for name in CREDENTIAL_KEYS if name in settings.defaulted)
    if "auth" in settings.defaulted:
        # The account alone cannot tell a key stack (the earlier default) from a keyless one whose file dropped auth.
        keep = (
            f"`{PROJECT}:auth: key` (the key, as before) if it had a key, or `{PROJECT}:auth: workload-identity` with"
            f" `{PROJECT}:keylessMode: impersonation` if it was keyless"
        )
        switch = (
            f"`{PROJECT}:auth: workload-identity` with `{PROJECT}:keylessMode: direct` (or impersonation, to keep the account)"
        )
    else:
        keep = f"`{PROJECT}:keylessMode: impersonation` (CI acts as the account, as before)"
        switch = f"`{PROJECT}:keylessMode: direct`"
    default = "keyless, direct: no service account" if settings.direct else "keyless, with impersonation: no key"
    advice = (
        f"keep it with {keep}, or switch with {switch}: pulumi up then deletes what the old credential needed and CI"
        " authenticates as the repository"
    )
    if failed:
        return [
            f"{unset}: not set, and the look-up of the service account {settings.service_account_id} in"
            f" {settings.gcp_project} failed, so pulumi up cannot tell whether this release's default ({default}) would"
            f" replace the credential this stack deployed (Google: {failed}); set it: {advice}"
        ]
    return [
        f"{unset}: not set, and this release's default ({default}) would replace the credential this stack deployed"
        f" with its service account {email}; {advice}"
    ]


def _shared_provider_problems(settings: Settings, on_google: pulumi.InvokeOptions) -> list[str]:
    """A shared provider (`workloadIdentityProvider`): the stack's project's, active, trusting the
    platform's issuer, mapping the attribute the principal set names from its claim, and accepting
    the audience CI asks for. The grants of the stack name that attribute only."""
    name = settings.workload_identity_provider
    if not settings.keyless or not name:
        return []
    key = f"{PROJECT}:workloadIdentityProvider = {name!r}"
    parts = name.split("/")  # projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>

    def lookup() -> gcp.iam.GetWorkloadIdentityPoolProviderResult:
        return gcp.iam.get_workload_identity_pool_provider(
            project=settings.gcp_project,
            workload_identity_pool_id=parts[5],
            workload_identity_pool_provider_id=parts[7],
            opts=on_google,
        )

    found, problems = _google(lookup, key)
    if found is None or not found.name:
        return problems or [
            f"{key}: no such provider in gcp:project {settings.gcp_project}, or the credentials of `pulumi up` cannot read it"
            " (a stack shares a pool of its own project only)"
        ]
    if found.name != name:
        theirs = f"{settings.gcp_project}'s is {found.name}"
        return [f"{key}: a provider of another project ({theirs}): a stack shares a pool of its own project only"]
    return _shared_provider_rules(settings, key, found)


def _shared_provider_rules(settings: Settings, key: str, found: gcp.iam.GetWorkloadIdentityPoolProviderResult) -> list[str]:
    issuer, attribute = settings.platform.oidc_issuer(settings.platform_url)
    oidc = found.oidcs[0] if found.oidcs else None
    mapped = dict(found.attribute_mapping or {}).get(f"attribute.{attribute}")
    audiences = list(oidc.allowed_audiences or ()) if oidc else []
    broken = [
        f"disabled or deleted (state {found.state}): enable it, or name an active one"
        if found.disabled or found.state != "ACTIVE"
        else "",
        f"trusts the issuer {oidc.issuer_uri if oidc else None!r}, not {settings.platform.name}'s ({issuer})"
        if oidc is None or oidc.issuer_uri.rstrip("/") != issuer.rstrip("/")
        else "",
        f"its attribute mapping gives attribute.{attribute} = {mapped!r}, not assertion.{attribute}: the stack's grants name"
        f" this repository by attribute.{attribute}, its numeric id"
        if mapped != f"assertion.{attribute}"
        else "",
        f"accepts the audiences {audiences}, not {settings.oidc_audience} that CI asks for: add it, or clear them"
        if audiences and settings.oidc_audience not in audiences
        else "",
    ]
    return [f"{key}: {problem}" for problem in broken if problem]


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
    problems += _credential_change_problems(settings, on_google) + _shared_provider_problems(settings, on_google)
    if problems:
        raise PreflightError(settings.stack, problems, "pre-flight")
    return Preflight(adopt_bucket=adopt)
