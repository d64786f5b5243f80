"""The guardrails every mlops-ci stack must pass, whatever its configuration.

Each rule is a named function with the signature pulumi_policy calls; `POLICIES` gives them names,
descriptions and mandatory enforcement. A rule reads the resource's inputs in Pulumi's camelCase
wire names (`uniformBucketLevelAccess`), as the engine hands them to a policy pack.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

import pulumi
import pulumi_gcp as gcp
import pulumi_gitlab as gitlab
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

# Type tokens from the SDK classes the program registers (pulumi_gcp loads its modules lazily).
BUCKET = pulumi.get_type_token(gcp.storage.Bucket)
GITLAB_VARIABLE = pulumi.get_type_token(gitlab.ProjectVariable)
SERVICE_ACCOUNT = pulumi.get_type_token(gcp.serviceaccount.Account)
SERVICE_ACCOUNT_KEY = pulumi.get_type_token(gcp.serviceaccount.Key)
WORKLOAD_IDENTITY_PROVIDER = pulumi.get_type_token(gcp.iam.WorkloadIdentityPoolProvider)

REQUIRED_BUCKET_LABELS = ("managed-by", "stack")
PRIMITIVE_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})

# Type tokens are `gcp:<module>/<camelName>:<Name>`; the provider spells IAM both `IAM` and `Iam`.
# IAM on a project, folder or organization (members, bindings, policies, removals, custom roles,
# audit configs): a team stack may only grant on the resources it owns.
_HIERARCHY_IAM = re.compile(r"gcp:(projects|folder|organizations)/iam\w*:\w+", re.IGNORECASE)
# Authoritative IAM on any resource: a binding replaces every member of its role, a policy every
# grant, wiping access granted elsewhere.
_AUTHORITATIVE_IAM = re.compile(r"gcp:\w+/\w+:\w*iam(binding|policy)", re.IGNORECASE)
# Resources that grant one role (`role` input).
_ROLE_GRANT = re.compile(r"gcp:\w+/\w+:\w*iam(member|binding)", re.IGNORECASE)

# The public identifiers keyless CI reads from unmasked variables: the workload identity provider's
# resource name and the service account's email. They grant nothing without a token from the
# trusted repository's CI.
_PROVIDER_RESOURCE_NAME = re.compile(
    r"projects/[a-z0-9-]+/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32}"
)
_SERVICE_ACCOUNT_EMAIL = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.iam\.gserviceaccount\.com")


def carries_credential(value: Any) -> bool:
    """Whether a CI variable's value must be treated as a credential: anything but one of keyless
    CI's public identifiers. Deny by default: a value of a new kind counts as a credential until
    this function learns otherwise.

    The engine hands a policy pack secret values unwrapped, so the value's shape decides. Where a
    value still carries its secret marker (Pulumi's wire marker `{sig: secret, value}` in raw
    registrations, or pulumi_policy's `Secret` in remediation props) it is not a string, and so a
    credential: a value the program marked secret is never judged public."""
    if not isinstance(value, str):
        return True
    return not (_PROVIDER_RESOURCE_NAME.fullmatch(value) or _SERVICE_ACCOUNT_EMAIL.fullmatch(value))


# Federated identities in IAM (https://cloud.google.com/iam/docs/principal-identifiers): the one form a
# stack may grant, the principal set of one repository by its numeric id (GitHub `repository_id`,
# GitLab `project_id`), which a renamed or re-created repository of the same name never matches.
FEDERATED = ("principalSet://", "principal://", "principalHierarchy://")
_ONE_REPOSITORY = re.compile(
    r"principalSet://iam\.googleapis\.com/projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}"
    r"/attribute\.(repository_id|project_id)/[0-9]+"
)


# The pool a federated member names (`.../workloadIdentityPools/<pool>/...`); a principal set spans every
# provider of its pool, which maps its attributes as it likes.
_MEMBER_POOL = re.compile(r"[a-zA-Z]+://iam\.googleapis\.com/(projects/[^/]+/locations/global/workloadIdentityPools/[^/]+)")


def federated_member_problem(member: Any) -> str | None:
    """Why a grant's member is a federated identity broader than one repository (or not pinned to its
    numeric id), or None: not federated, not known yet (preview), or one repository's principal set."""
    if not isinstance(member, str) or not member.startswith(FEDERATED) or _ONE_REPOSITORY.fullmatch(member):
        return None
    return (
        f"member {member} is not the principal set of one repository: only principalSet://iam.googleapis.com/<pool>/"
        "attribute.repository_id/<id> (GitHub) or attribute.project_id/<id> (GitLab), a numeric id, never /*,"
        " a name, a branch, an owner or a subject"
    )


def is_hierarchy_or_authoritative_iam(resource_type: str) -> bool:
    return bool(_HIERARCHY_IAM.fullmatch(resource_type) or _AUTHORITATIVE_IAM.fullmatch(resource_type))


def bucket_private(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != BUCKET:
        return
    uniform = args.props.get("uniformBucketLevelAccess")
    if uniform is not True:
        report_violation(f"uniformBucketLevelAccess is {uniform!r}, must be true (object ACLs could grant access)", None)
    prevention = args.props.get("publicAccessPrevention")
    if prevention != "enforced":
        report_violation(f"publicAccessPrevention is {prevention!r}, must be 'enforced' (the bucket could be made public)", None)


def bucket_labelled(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != BUCKET:
        return
    labels = args.props.get("labels")
    present: Mapping[str, Any] = cast(Mapping[str, Any], labels) if isinstance(labels, Mapping) else {}
    missing = [label for label in REQUIRED_BUCKET_LABELS if not present.get(label)]
    if missing:
        report_violation(f"missing label(s) {', '.join(missing)}: the bucket's owner and stack must be findable", None)


def no_hierarchy_or_authoritative_iam(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if is_hierarchy_or_authoritative_iam(args.resource_type):
        report_violation(
            f"{args.resource_type} is project/folder/organization-level or authoritative IAM;"
            " grant with a non-authoritative member resource on the stack's own resource (e.g. BucketIAMMember)",
            None,
        )


def no_primitive_roles(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not _ROLE_GRANT.fullmatch(args.resource_type):
        return
    role = args.props.get("role")
    if role in PRIMITIVE_ROLES:
        report_violation(f"role {role} is a primitive role; grant a predefined role such as roles/storage.objectViewer", None)


def federated_grants_pinned_to_one_repository(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not _ROLE_GRANT.fullmatch(args.resource_type):
        return
    if broken := federated_member_problem(args.props.get("member")):
        report_violation(broken, None)


def gitlab_credential_variables_masked(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != GITLAB_VARIABLE:
        return
    masked = args.props.get("masked")
    if carries_credential(args.props.get("value")) and masked is not True:
        report_violation(
            f"variable {args.props.get('key')!r} carries a credential and masked is {masked!r}:"
            " it would be printed in job logs; set masked: true",
            None,
        )


def gitlab_credential_variables_hidden(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != GITLAB_VARIABLE:
        return
    if carries_credential(args.props.get("value")) and args.props.get("hidden") is not True:
        report_violation(
            f"variable {args.props.get('key')!r} carries a credential and is not hidden: a Maintainer can reveal it"
            " in the UI; set mlops-ci:hiddenVariable true on GitLab 17.4+",
            None,
        )


def _grants_to_federated(resource: Any) -> bool:
    member = resource.props.get("member")
    return bool(_ROLE_GRANT.fullmatch(resource.resource_type)) and isinstance(member, str) and member.startswith(FEDERATED)


def _member_pool(resource: Any) -> str | None:
    """The pool of a grant's federated member, if the grant is to one that names a pool."""
    found = _MEMBER_POOL.match(resource.props.get("member", "")) if _grants_to_federated(resource) else None
    return found[1] if found else None


def federated_grants_in_the_stacks_pool(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """A stack trusts one pool: its own provider's, or else the shared one its grants name (settings
    allow only a provider the platform lists, pre-flight checks its mapping). A principal set of another
    pool matches whatever that pool's providers map, which nobody checked for this stack."""
    own = {
        name.split("/providers/", 1)[0]
        for r in args.resources
        if r.resource_type == WORKLOAD_IDENTITY_PROVIDER and isinstance(name := r.props.get("name"), str)
    }
    grants = [(r, pool) for r in args.resources if (pool := _member_pool(r))]
    trusted = own or {pool for _, pool in grants[:1]}
    for resource, pool in grants:
        if pool not in trusted:
            report_violation(
                f"{resource.name}: grants to a principal set of the pool {pool}, not the stack's"
                f" ({', '.join(sorted(trusted))}): a stack trusts its own pool or the one shared provider it names",
                resource.urn,
            )


def no_key_with_workload_identity(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Keyless: a provider of its own, or a grant to a federated identity (a shared pool's)."""
    keyless = any(r.resource_type == WORKLOAD_IDENTITY_PROVIDER or _grants_to_federated(r) for r in args.resources)
    if not keyless:
        return
    for resource in args.resources:
        if resource.resource_type == SERVICE_ACCOUNT_KEY:
            report_violation(
                f"{resource.name}: the stack is keyless (it has a workload identity provider) but creates a"
                " service-account key, a long-lived credential that keyless mode exists to avoid",
                resource.urn,
            )


def no_service_account_with_direct_grants(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Direct keyless: the bucket roles go to the repository's principal set, so a service account
    would be a second, unused identity (and a key's holder): none."""
    direct = any(_grants_to_federated(r) and r.props.get("role") != "roles/iam.workloadIdentityUser" for r in args.resources)
    if not direct:
        return
    for resource in args.resources:
        if resource.resource_type in (SERVICE_ACCOUNT, SERVICE_ACCOUNT_KEY):
            report_violation(
                f"{resource.name}: the stack grants its roles to a federated principal set (direct keyless mode) but"
                " creates a service account or key; with keylessMode impersonation the roles go to the account instead",
                resource.urn,
            )


# Every rule is mandatory (the pack, policy/__main__.py, sets the level) but the one a stack may
# have to break: self-managed GitLab before 17.4 cannot hide a variable.
POLICIES: list[Policy] = [
    ResourceValidationPolicy(
        name="gcs-bucket-private",
        description="GCS buckets have uniform bucket-level access and enforced public access prevention.",
        validate=bucket_private,
    ),
    ResourceValidationPolicy(
        name="gcs-bucket-labelled",
        description="GCS buckets carry the labels managed-by and stack.",
        validate=bucket_labelled,
    ),
    ResourceValidationPolicy(
        name="no-project-level-or-authoritative-iam",
        description="No IAM on a project, folder or organization, and no authoritative IAM binding or policy anywhere.",
        validate=no_hierarchy_or_authoritative_iam,
    ),
    ResourceValidationPolicy(
        name="no-primitive-roles",
        description="No IAM grant of roles/owner, roles/editor or roles/viewer.",
        validate=no_primitive_roles,
    ),
    ResourceValidationPolicy(
        name="federated-grants-pinned-to-one-repository",
        description="A grant to a federated identity names the principal set of one repository by its numeric id, never more.",
        validate=federated_grants_pinned_to_one_repository,
    ),
    ResourceValidationPolicy(
        name="gitlab-credential-variables-masked",
        description="A GitLab CI/CD variable that carries a credential is masked.",
        validate=gitlab_credential_variables_masked,
    ),
    ResourceValidationPolicy(
        name="gitlab-credential-variables-hidden",
        description="A GitLab CI/CD variable that carries a credential is hidden (GitLab 17.4+).",
        validate=gitlab_credential_variables_hidden,
        enforcement_level=EnforcementLevel.ADVISORY,
    ),
    StackValidationPolicy(
        name="federated-grants-in-the-stacks-pool",
        description="Every grant to a federated identity names one pool: the stack's own provider's, or the shared one.",
        validate=federated_grants_in_the_stacks_pool,
    ),
    StackValidationPolicy(
        name="no-key-with-workload-identity",
        description="A keyless stack (with a workload identity provider) creates no service-account key.",
        validate=no_key_with_workload_identity,
    ),
    StackValidationPolicy(
        name="no-service-account-with-direct-grants",
        description="A stack that grants to a federated principal set (direct keyless mode) creates no service account or key.",
        validate=no_service_account_with_direct_grants,
    ),
]
