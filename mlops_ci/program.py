"""The whole program, shared by this repository's `__main__.py` and the `pulumi new` template's
(templates/python): settings → pre-flight → the `TeamCi` component → exports."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from mlops_ci.components.team import TeamCi
from mlops_ci.preflight import preflight
from mlops_ci.settings.loader import load_settings


def run() -> TeamCi:
    """One team's chapter from the stack's configuration; every problem of it is reported before any resource."""
    # 1. Settings: every problem of the stack's configuration is reported here, before any resource.
    settings = load_settings()
    # 2. Pre-flight: the repository, branch and files, the bucket, the key policy; all before any cloud resource.
    # Every provider is explicit and gets only what the settings validated: no stray `gcp:` key of the
    # stack (an endpoint, credentials) can take effect through a default provider.
    platform_provider = settings.platform.provider(settings)
    google_provider = gcp.Provider("gcp-provider", project=settings.gcp_project)
    found = preflight(settings, platform_provider, google_provider)
    # 3. The chapter: Google Cloud (APIs, the DVC remote bucket, the CI identity, its key or keyless
    # federation), then the credential on the CI platform, then the CI file that uses it.
    team = TeamCi(
        settings.stack,
        {"settings": settings, "preflight": found, "platform_provider": platform_provider, "google_provider": google_provider},
    )
    export(team)
    return team


def export(team: TeamCi) -> None:
    """The stack's exports: names and URLs only, never key material."""
    pulumi.export("bucketName", team.bucket_name)
    pulumi.export("bucketUrl", team.bucket_url)
    pulumi.export("dvcRemoteUrl", team.dvc_remote_url)
    pulumi.export("ciFile", team.ci_file)
    pulumi.export("ciRunsUrl", team.ci_runs_url)
    pulumi.export("nextSteps", team.next_steps)
    if team.service_account_email is not None:  # none in direct keyless mode
        pulumi.export("serviceAccountEmail", team.service_account_email)
    if team.workload_identity_provider is not None:
        pulumi.export("workloadIdentityProvider", team.workload_identity_provider)
    if team.secret_name is not None:
        pulumi.export("secretName", team.secret_name)
