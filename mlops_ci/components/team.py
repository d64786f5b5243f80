"""One team's chapter 2.3 as one component: its DVC remote, its CI identity, the credential
delivered to its CI platform and the CI file that uses it.

Any Pulumi program in Python can create it once per team, from settings it validated
(`load_settings()`) and a pre-flight it passed (`preflight()`): every rule and look-up runs before
the first resource, which is why its arguments are plain validated values, not Outputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypedDict

import pulumi
import pulumi_gcp as gcp

from mlops_ci.ci.files import render_ci_file, render_job_script
from mlops_ci.ci.next_steps import next_steps
from mlops_ci.components.apis import GoogleApis
from mlops_ci.components.identity import CiIdentity
from mlops_ci.components.storage import DvcRemote
from mlops_ci.components.workload_identity import WorkloadIdentity
from mlops_ci.preflight import Preflight
from mlops_ci.settings.model import Settings
from mlops_ci.settings.rules import PROVIDER_VARIABLE, SERVICE_ACCOUNT_VARIABLE

Named = tuple[str, pulumi.ResourceOptions]
"""A child's name and options (`Children.named`)."""


class TeamCiArgs(TypedDict):
    settings: Settings
    """The team's validated settings: one field per configuration key (`mlops_ci/settings/config.yaml`)."""
    preflight: Preflight
    """What the pre-flight look-ups found (a bucket this stack kept, to adopt)."""
    platform_provider: pulumi.ProviderResource
    """The CI platform's explicit provider (`settings.platform.provider(settings)`)."""
    google_provider: gcp.Provider
    """The explicit Google provider: no stray `gcp:` key of a stack file reaches a default one."""


class TeamCi(pulumi.ComponentResource):
    """Google Cloud first (APIs, bucket, identity, key or federation), then the credential, then
    the job script and the CI file that calls it: the first CI run finds everything it needs.
    Outputs are the stack's exports."""

    bucket_name: pulumi.Output[str]
    bucket_url: pulumi.Output[str]
    dvc_remote_url: pulumi.Output[str]
    service_account_email: pulumi.Output[str] | None
    """The CI service account's email; None in direct keyless mode, which has none."""
    ci_file: str
    ci_runs_url: str
    next_steps: str
    workload_identity_provider: pulumi.Output[str] | None
    """The federation's provider name (keyless); None with a key."""
    secret_name: str | None
    """The CI secret or variable that holds the key; None when keyless."""

    def __init__(self, name: str, args: TeamCiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-ci:index:TeamCi", name, {}, opts)
        # Before this component, its children were the stack's own: the alias keeps their URNs.
        chapter = build_chapter(args, Children(self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)]))
        self.bucket_name, self.bucket_url, self.dvc_remote_url = chapter.bucket_name, chapter.bucket_url, chapter.dvc_remote_url
        self.service_account_email = chapter.service_account_email
        self.ci_file, self.next_steps, self.ci_runs_url = chapter.ci_file, chapter.next_steps, chapter.ci_runs_url
        self.workload_identity_provider, self.secret_name = chapter.workload_identity_provider, chapter.secret_name
        self.register_outputs({"bucket_name": self.bucket_name, "service_account_email": self.service_account_email})


@dataclasses.dataclass(frozen=True)
class Chapter:
    """What the chapter's children give the component: its outputs (see `TeamCi`)."""

    bucket_name: pulumi.Output[str]
    bucket_url: pulumi.Output[str]
    dvc_remote_url: pulumi.Output[str]
    service_account_email: pulumi.Output[str] | None
    ci_file: str
    ci_runs_url: str
    next_steps: str
    workload_identity_provider: pulumi.Output[str] | None
    secret_name: str | None


@dataclasses.dataclass(frozen=True)
class Children:
    """Names and options of a component's children, each a child of `parent`."""

    parent: pulumi.Resource
    prefix: str = ""
    """Before each child's name: `<component>-` where a program holds one component per team (no URN twice);
    empty in this repository's stack, whose children keep the short names they were deployed with."""
    aliases: Sequence[pulumi.Alias] = ()
    """Where the children were before (this repository's stack: at its root, before the component)."""

    def named(self, short: str, provider: pulumi.ProviderResource | None = None) -> tuple[str, pulumi.ResourceOptions]:
        """The child's name and options; `provider`: the explicit provider of its resources."""
        return f"{self.prefix}{short}", pulumi.ResourceOptions(
            parent=self.parent, aliases=list(self.aliases) or None, providers=[provider] if provider else None
        )


def build_chapter(args: TeamCiArgs, children: Children) -> Chapter:
    """The children of one team's chapter (`children`: their names and parent), in order: Google Cloud,
    then the credential, then the job script and the CI file."""
    settings = args["settings"]
    google = args["google_provider"]
    apis_name, on_google = children.named("apis", google)
    apis = GoogleApis(apis_name, {"project": settings.gcp_project, "services": settings.google_apis}, opts=on_google)
    remote = _dvc_remote(settings, args["preflight"], apis, children.named("dvc-remote", google))
    platform_provider = args["platform_provider"]
    identity, federation = _credential(settings, remote, apis, platform_provider, children, google)
    delivery_name, delivery_opts = children.named(settings.platform.name)
    settings.platform.deliver(
        delivery_name,
        {
            "provider": platform_provider,
            "settings": settings,
            "key_base64": identity.key_base64,
            "variables": _keyless_variables(federation, identity),
            "ci_content": render_ci_file(settings),
            "job_script": render_job_script(settings),
            "after": [*identity.grants, *([federation.binding] if federation and federation.binding else [])],
        },
        opts=delivery_opts,
    )
    return Chapter(
        bucket_name=remote.bucket_name,
        bucket_url=remote.bucket_url,
        dvc_remote_url=remote.remote_url,
        service_account_email=identity.email,
        ci_file=settings.ci_file,
        ci_runs_url=settings.platform.runs_url(settings),
        next_steps=next_steps(settings, adopted_bucket=args["preflight"].adopt_bucket),
        workload_identity_provider=federation.provider_name if federation else None,
        secret_name=None if federation else settings.secret_name,
    )


def _credential(
    settings: Settings,
    remote: DvcRemote,
    apis: GoogleApis,
    platform_provider: pulumi.ProviderResource,
    children: Children,
    google: gcp.Provider,
) -> tuple[CiIdentity, WorkloadIdentity | None]:
    """The CI identity and, keyless, its federation: direct mode makes the federation first (the
    grants go to its principal set), impersonation the service account first (the federation trusts it)."""
    if settings.direct:
        federation = _federation(settings, platform_provider, None, apis, children.named("workload-identity", google))
        return _ci_identity(settings, remote, apis, federation.principal_set, children.named("ci-identity", google)), federation
    identity = _ci_identity(settings, remote, apis, None, children.named("ci-identity", google))
    if not settings.keyless:
        return identity, None
    return identity, _federation(settings, platform_provider, identity, apis, children.named("workload-identity", google))


def _dvc_remote(settings: Settings, found: Preflight, apis: GoogleApis, named: Named) -> DvcRemote:
    return DvcRemote(
        named[0],
        {
            "project": settings.gcp_project,
            "bucket_name": settings.bucket_name,
            "existing": settings.uses_existing_bucket,
            "adopt": found.adopt_bucket,
            "location": settings.bucket_location,
            "remote_path": settings.dvc_remote_path,
            "labels": settings.labels,
            "protect": settings.protect_bucket,
            "after": [apis.services["storage.googleapis.com"]],
        },
        opts=named[1],
    )


def _keyless_variables(federation: WorkloadIdentity | None, identity: CiIdentity) -> dict[str, pulumi.Input[str]]:
    """What the keyless CI job reads: the provider, and with impersonation the service account."""
    if federation is None:
        return {}
    variables: dict[str, pulumi.Input[str]] = {PROVIDER_VARIABLE: federation.provider_name}
    if identity.email is not None:
        variables[SERVICE_ACCOUNT_VARIABLE] = identity.email
    return variables


def _ci_identity(
    settings: Settings, remote: DvcRemote, apis: GoogleApis, principal: pulumi.Output[str] | None, named: Named
) -> CiIdentity:
    return CiIdentity(
        named[0],
        {
            "project": settings.gcp_project,
            "account_id": settings.service_account_id,
            "principal": principal,
            "display_name": f"mlops-ci: CI of {settings.repository}"[:100],
            "bucket": remote.bucket_name,
            "access": settings.access,
            "create_key": not settings.keyless,
            "key_rotation": settings.key_rotation,
            "after": [apis.services["iam.googleapis.com"]],
        },
        opts=named[1],
    )


def _federation(
    settings: Settings,
    platform_provider: pulumi.ProviderResource,
    identity: CiIdentity | None,
    apis: GoogleApis,
    named: Named,
) -> WorkloadIdentity:
    """Keyless: a federation that trusts this repository's CI tokens only (`identity`: the service
    account CI impersonates; None: direct)."""
    return WorkloadIdentity(
        named[0],
        {
            "project": settings.gcp_project,
            "stack": settings.stack,
            "service_account": identity.account if identity else None,
            "existing_provider": settings.workload_identity_provider,
            "trust": settings.platform.oidc_trust(platform_provider, settings),
            "after": [apis.services[api] for api in settings.google_apis if api != "storage.googleapis.com"],
        },
        opts=named[1],
    )
