"""mlops-ci: one team's DVC remote, CI identity and CI pipeline, as one Pulumi stack."""

import pulumi

from components.apis import GoogleApis
from components.ci_files import PROVIDER_VARIABLE, SERVICE_ACCOUNT_VARIABLE, render_ci_file
from components.identity import CiIdentity
from components.settings import load_settings
from components.storage import DvcRemote
from components.workload_identity import WorkloadIdentity

# 1. Settings: every problem of the stack file is reported here, before any resource.
settings = load_settings()
keyless = settings.auth == "workload-identity"

# 2. Google Cloud: APIs, the DVC remote bucket, the CI identity and (key mode) its key.
apis = GoogleApis("apis", {"project": settings.gcp_project, "services": settings.google_apis})
remote = DvcRemote(
    "dvc-remote",
    {
        "project": settings.gcp_project,
        "bucket_name": settings.bucket_name,
        "location": settings.bucket_location,
        "remote_path": settings.dvc_remote_path,
        "labels": settings.labels,
        "protect": settings.protect_bucket,
        "after": [apis.services["storage.googleapis.com"]],
    },
)
identity = CiIdentity(
    "ci-identity",
    {
        "project": settings.gcp_project,
        "account_id": settings.service_account_id,
        "display_name": f"mlops-ci: CI of {settings.repository}"[:100],
        "bucket": remote.bucket_name,
        "access": settings.access,
        "create_key": not keyless,
        "key_rotation": settings.key_rotation,
        "after": [apis.services["iam.googleapis.com"]],
    },
)

# 3. The CI platform's provider; keyless, a federation that trusts this repository only.
# Provider SDKs load eagerly (~0.5 s): import only the platform in use.
if settings.platform == "github":
    from components.github import GithubDelivery, github_oidc_trust, github_provider

    platform = github_provider(
        "github-provider", settings.repository, pulumi.Config("github").get_secret("token"), settings.platform_url
    )
    trust = github_oidc_trust(platform, settings.repository) if keyless else None
else:
    from components.gitlab import GitlabDelivery, gitlab_issuer, gitlab_oidc_trust, gitlab_provider

    platform = gitlab_provider("gitlab-provider", pulumi.Config("gitlab").get_secret("token"), settings.platform_url)
    issuer = gitlab_issuer(settings.platform_url)
    trust = gitlab_oidc_trust(platform, settings.repository, issuer, settings.oidc_audience) if keyless else None

federation = None
if trust:
    federation = WorkloadIdentity(
        "workload-identity",
        {
            "project": settings.gcp_project,
            "stack": settings.stack,
            "service_account": identity.account,
            "trust": trust,
            "after": [apis.services[api] for api in settings.google_apis if api != "storage.googleapis.com"],
        },
    )
ci_variables = {PROVIDER_VARIABLE: federation.provider_name, SERVICE_ACCOUNT_VARIABLE: identity.email} if federation else {}
ready = [*identity.grants, *([federation.binding] if federation else [])]

# 4. The credential (or keyless settings) first, then the CI file that uses it.
if settings.platform == "github":
    GithubDelivery(
        "github",
        {
            "provider": platform,
            "repository": settings.repository,
            "branch": settings.branch,
            "secret_name": settings.secret_name,
            "secret_value": identity.key_json,
            "variables": ci_variables,
            "ci_file": settings.ci_file,
            "ci_content": render_ci_file(settings),
            "after": ready,
        },
    )
else:
    GitlabDelivery(
        "gitlab",
        {
            "provider": platform,
            "project": settings.repository,
            "branch": settings.branch,
            "variable_key": settings.secret_name,
            "variable_value": identity.key_base64,
            "protected": settings.protected_variable,
            "variables": ci_variables,
            "ci_file": settings.ci_file,
            "ci_content": render_ci_file(settings),
            "after": ready,
        },
    )

# 5. Exports: names and URLs only, never key material.
pulumi.export("bucketName", remote.bucket_name)
pulumi.export("bucketUrl", remote.bucket_url)
pulumi.export("dvcRemoteUrl", remote.remote_url)
pulumi.export("serviceAccountEmail", identity.email)
pulumi.export("ciFile", settings.ci_file)
if federation:
    pulumi.export("workloadIdentityProvider", federation.provider_name)
else:
    pulumi.export("secretName", settings.secret_name)
