"""Keyless CI credentials: Workload Identity Federation trusting one repository's OIDC tokens."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from typing import TypedDict

import pulumi
import pulumi_gcp as gcp

from mlops_ci import direct_calls
from mlops_ci.components import google_errors


@dataclasses.dataclass(frozen=True)
class OidcTrust:
    """What the CI platform's OIDC tokens look like, and which of them the stack trusts."""

    issuer_uri: str
    """The platform's OIDC issuer."""
    allowed_audiences: Sequence[str]
    """Audiences the provider accepts; empty accepts the provider's own resource name."""
    attribute_mapping: Mapping[str, str]
    """Google attributes from token claims."""
    attribute_condition: pulumi.Output[str]
    """CEL condition pinned to numeric ids, so a renamed or re-registered repository cannot borrow access."""
    principal_attribute: str
    """Mapped attribute that names the repository in the principal set."""
    principal_value: pulumi.Output[str]
    """Its value: the repository's (or project's) numeric id."""


class WorkloadIdentityArgs(TypedDict):
    project: str
    """Google Cloud project id."""
    stack: str
    """Stack name: part of the pool and provider ids."""
    service_account: gcp.serviceaccount.Account | None
    """The account CI may impersonate (keylessMode impersonation); None: direct, no account."""
    existing_provider: str
    """A shared provider's full name (`mlops-ci:workloadIdentityProvider`): its pool is used, no pool
    or provider created; empty: the stack's own pool and provider."""
    trust: OidcTrust
    """Issuer, mapping and the condition pinned to the repository."""
    after: Sequence[pulumi.Resource]
    """Resources that must exist first (the IAM, STS and IAM Credentials APIs)."""


def federation_id(stack: str, seed: str, nonce: str) -> str:
    """Pool and provider id: 'ci-' and a digest of the stack, a seed (the service account's unique
    id; direct, with no account: the project) and a nonce drawn when the program runs. Pools and
    providers are soft-deleted for 30 days and their ids cannot be reused meanwhile: a federation
    created again (after `pulumi destroy`, or after `auth` went to key and back) must get new ids.
    The program ignores later changes of the ids (`ignore_changes`), so the ids drawn at creation
    stay for the federation's life."""
    return "ci-" + hashlib.sha256(f"{stack}/{seed}/{nonce}".encode()).hexdigest()[:20]


def pool_of(provider_name: str) -> str:
    """`projects/<n>/locations/global/workloadIdentityPools/<pool>` of a provider's full name."""
    return provider_name.split("/providers/", 1)[0]


def principal_set(pool_name: pulumi.Input[str], trust: OidcTrust) -> pulumi.Output[str]:
    """The federated identities of exactly one repository: the pool's tokens whose mapped attribute
    is the repository's (or project's) numeric id."""
    return pulumi.Output.concat(
        "principalSet://iam.googleapis.com/", pool_name, f"/attribute.{trust.principal_attribute}/", trust.principal_value
    )


class WorkloadIdentity(pulumi.ComponentResource):
    """Pool and OIDC provider (or a shared provider's pool), the principal set of exactly one
    repository, and with a service account `roles/iam.workloadIdentityUser` for that principal set
    on the account only (non-authoritative)."""

    pool: gcp.iam.WorkloadIdentityPool | None
    provider: gcp.iam.WorkloadIdentityPoolProvider | None
    binding: gcp.serviceaccount.IAMMember | None
    provider_name: pulumi.Output[str]
    """`projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>`."""
    principal_set: pulumi.Output[str]
    """`principalSet://iam.googleapis.com/<pool>/attribute.<id attribute>/<numeric id>`: direct, the
    member of the bucket grants."""

    def __init__(self, name: str, args: WorkloadIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-ci:identity:WorkloadIdentity", name, {}, opts)
        account = args["service_account"]
        on_google_error = pulumi.ResourceHookBinding(on_error=[google_errors.api_errors(name)])
        self.pool, self.provider = None, None
        if args["existing_provider"]:
            self.provider_name = pulumi.Output.from_input(args["existing_provider"])
            pool_name: pulumi.Input[str] = pool_of(args["existing_provider"])
        else:
            self.pool, self.provider = self._own_pool(name, args, on_google_error)
            self.provider_name, pool_name = self.provider.name, self.pool.name
        self.principal_set = principal_set(pool_name, args["trust"])
        self.binding = None
        if account is not None:
            self.binding = gcp.serviceaccount.IAMMember(
                f"{name}-workload-identity-user",
                service_account_id=account.name,
                role="roles/iam.workloadIdentityUser",
                member=self.principal_set,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=list(args["after"]) if self.pool is None else None, hooks=on_google_error
                ),
            )
        self.register_outputs({"provider_name": self.provider_name, "principal_set": self.principal_set})

    def _own_pool(
        self, name: str, args: WorkloadIdentityArgs, hooks: pulumi.ResourceHookBinding
    ) -> tuple[gcp.iam.WorkloadIdentityPool, gcp.iam.WorkloadIdentityPoolProvider]:
        account, nonce = args["service_account"], direct_calls.current().nonce()
        seed = account.unique_id if account is not None else pulumi.Output.from_input(args["project"])
        ids = seed.apply(lambda value: federation_id(args["stack"], value, nonce))
        pool = gcp.iam.WorkloadIdentityPool(
            f"{name}-pool",
            project=args["project"],
            workload_identity_pool_id=ids,
            display_name=f"mlops-ci {args['stack']}"[:32],
            description="Managed by mlops-ci: CI OIDC tokens of one repository",
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=list(args["after"]), ignore_changes=["workloadIdentityPoolId"], hooks=hooks
            ),
        )
        trust = args["trust"]
        provider = gcp.iam.WorkloadIdentityPoolProvider(
            f"{name}-provider",
            project=args["project"],
            workload_identity_pool_id=pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=ids,
            display_name="mlops-ci CI OIDC",
            attribute_mapping=dict(trust.attribute_mapping),
            attribute_condition=trust.attribute_condition,
            oidc=gcp.iam.WorkloadIdentityPoolProviderOidcArgs(
                issuer_uri=trust.issuer_uri,
                allowed_audiences=list(trust.allowed_audiences) or None,
            ),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["workloadIdentityPoolProviderId"], hooks=hooks),
        )
        return pool, provider
