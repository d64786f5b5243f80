"""The CI identity: a service account (or, direct keyless, the repository's federated principal set),
its bucket-scoped grants, and its key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import pulumi
import pulumi_gcp as gcp

from mlops_ci.components import google_errors, propagation
from mlops_ci.settings.loader import ACCESS_ROLES, Access


class CiIdentityArgs(TypedDict):
    project: str
    """Google Cloud project id."""
    account_id: str
    """Service-account id (the part before `@`)."""
    principal: pulumi.Input[str] | None
    """Direct keyless: the principal set the grants go to, and no service account; None: the account."""
    display_name: str
    """Display name; says which repository the account serves."""
    bucket: pulumi.Input[str]
    """Bucket the grants are scoped to."""
    access: Access
    """Access preset: which bucket roles the account gets."""
    create_key: bool
    """Create a service-account key (auth mode `key`)."""
    key_rotation: str
    """Keeper of the key: changing it replaces the key, new before old."""
    after: Sequence[pulumi.Resource]
    """Resources that must exist first (the IAM API)."""


class CiIdentity(pulumi.ComponentResource):
    """Service account (or a federated principal set) with non-authoritative, bucket-scoped grants
    (`BucketIAMMember`): grants made elsewhere on the bucket are left alone."""

    account: gcp.serviceaccount.Account | None
    grants: list[gcp.storage.BucketIAMMember]
    key: gcp.serviceaccount.Key | None
    email: pulumi.Output[str] | None
    """The service account's email; None in direct keyless mode."""
    key_base64: pulumi.Output[str] | None
    """The key file, base64 (as Google returns it); always secret; on `pulumi up`, resolved once
    Google accepts the key and the grants are effective. Each platform delivers it in its own form."""

    def __init__(self, name: str, args: CiIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-ci:identity:CiIdentity", name, {}, opts)
        on_google_error = pulumi.ResourceHookBinding(on_error=[google_errors.api_errors(name)])
        self.account, self.email, self.key = None, None, None
        member = args["principal"]
        if member is None:
            self.account = gcp.serviceaccount.Account(
                f"{name}-account",
                project=args["project"],
                account_id=args["account_id"],
                display_name=args["display_name"],
                description="Managed by mlops-ci: CI access to the DVC remote bucket.",
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args["after"]), hooks=on_google_error),
            )
            self.email, member = self.account.email, self.account.member
            # Before the grants: where an organization policy forbids keys, the stack stops with only
            # the APIs, the bucket and the account, which the next up or destroy takes over.
            self.key = self._key(name, args, self.account) if args["create_key"] else None
        self.grants = [
            gcp.storage.BucketIAMMember(
                f"{name}-{role.rsplit('.', 1)[1].lower()}",
                bucket=args["bucket"],
                role=role,
                member=member,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.key] if self.key else None),
            )
            for role in ACCESS_ROLES[args["access"]]
        ]
        self.key_base64 = None
        if self.key:
            # The provider marks private_key secret, but nothing downstream may depend on that.
            key = pulumi.Output.secret(self.key.private_key)
            self.key_base64 = propagation.accepted(self.key, key, args["bucket"], self.grants, args["access"])
        self.register_outputs({"email": self.email, "member": member})

    def _key(self, name: str, args: CiIdentityArgs, account: gcp.serviceaccount.Account) -> gcp.serviceaccount.Key:
        return gcp.serviceaccount.Key(
            f"{name}-key",
            service_account_id=account.name,
            keepers={"rotation": args["key_rotation"]},
            opts=pulumi.ResourceOptions(
                parent=self, hooks=pulumi.ResourceHookBinding(on_error=[google_errors.key_errors(name, args["project"])])
            ),
        )
