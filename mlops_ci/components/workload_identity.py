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
    service_account: gcp.serviceaccount.Account
    """The account CI may impersonate."""
    trust: OidcTrust
    """Issuer, mapping and the condition pinned to the repository."""
    after: Sequence[pulumi.Resource]
    """Resources that must exist first (the IAM, STS and IAM Credentials APIs)."""


def federation_id(stack: str, account_unique_id: str, nonce: str) -> str:
    """Pool and provider id: 'ci-' and a digest of the stack, the service account's unique id and
    a nonce drawn when the program runs. Pools and providers are soft-deleted for 30 days and
    their ids cannot be reused meanwhile: a federation created again (after `pulumi destroy`, or
    after `auth` went to key and back) must get new ids. The program ignores later changes of the
    ids (`ignore_changes`), so the ids drawn at creation stay for the federation's life."""
    return "ci-" + hashlib.sha256(f"{stack}/{account_unique_id}/{nonce}".encode()).hexdigest()[:20]


class WorkloadIdentity(pulumi.ComponentResource):
    """Pool, OIDC provider, and `roles/iam.workloadIdentityUser` on the service account for the
    principal set of exactly one repository (non-authoritative, on the account only)."""

    pool: gcp.iam.WorkloadIdentityPool
    provider: gcp.iam.WorkloadIdentityPoolProvider
    binding: gcp.serviceaccount.IAMMember
    provider_name: pulumi.Output[str]
    """`projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>`."""

    def __init__(self, name: str, args: WorkloadIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-ci:identity:WorkloadIdentity", name, {}, opts)
        account = args["service_account"]
        trust = args["trust"]
        nonce = direct_calls.current().nonce()
        ids = account.unique_id.apply(lambda unique_id: federation_id(args["stack"], unique_id, nonce))
        on_google_error = pulumi.ResourceHookBinding(on_error=[google_errors.api_errors(name)])
        self.pool = gcp.iam.WorkloadIdentityPool(
            f"{name}-pool",
            project=args["project"],
            workload_identity_pool_id=ids,
            display_name=f"mlops-ci {args['stack']}"[:32],
            description="Managed by mlops-ci: CI OIDC tokens of one repository",
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(args["after"]),
                ignore_changes=["workloadIdentityPoolId"],
                hooks=on_google_error,
            ),
        )
        self.provider = self._oidc_provider(name, args, ids, on_google_error)
        self.binding = gcp.serviceaccount.IAMMember(
            f"{name}-workload-identity-user",
            service_account_id=account.name,
            role="roles/iam.workloadIdentityUser",
            member=pulumi.Output.concat(
                "principalSet://iam.googleapis.com/",
                self.pool.name,
                f"/attribute.{trust.principal_attribute}/",
                trust.principal_value,
            ),
            opts=pulumi.ResourceOptions(parent=self, hooks=on_google_error),
        )
        self.provider_name = self.provider.name
        self.register_outputs({"provider_name": self.provider_name})

    def _oidc_provider(
        self, name: str, args: WorkloadIdentityArgs, ids: pulumi.Output[str], hooks: pulumi.ResourceHookBinding
    ) -> gcp.iam.WorkloadIdentityPoolProvider:
        trust = args["trust"]
        return gcp.iam.WorkloadIdentityPoolProvider(
            f"{name}-provider",
            project=args["project"],
            workload_identity_pool_id=self.pool.workload_identity_pool_id,
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
