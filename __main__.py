"""mlops-ci: one team's DVC remote, CI identity and CI pipeline, as one Pulumi stack."""

import pulumi

from components.apis import GoogleApis
from components.ci_files import render_ci_file
from components.identity import CiIdentity
from components.settings import load_settings
from components.storage import DvcRemote

# 1. Settings: every problem of the stack file is reported here, before any resource.
settings = load_settings()

# 2. Google Cloud: APIs, the DVC remote bucket, the CI identity and its credential.
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
        "create_key": settings.auth == "key",
        "key_rotation": settings.key_rotation,
        "after": [apis.services["iam.googleapis.com"]],
    },
)

# 3. The CI platform: the credential first, then the CI file that uses it.
if settings.platform == "github":
    # Provider SDKs load eagerly (~0.5 s): import only the platform in use.
    from components.github import GithubDelivery

    GithubDelivery(
        "github",
        {
            "repository": settings.repository,
            "branch": settings.branch,
            "token": pulumi.Config("github").get_secret("token"),
            "base_url": pulumi.Config("github").get("baseUrl"),
            "secret_name": settings.secret_name,
            "secret_value": identity.key_json,
            "ci_file": settings.ci_file,
            "ci_content": render_ci_file(settings),
            "after": identity.grants,
        },
    )
else:
    from components.gitlab import GitlabDelivery

    GitlabDelivery(
        "gitlab",
        {
            "project": settings.repository,
            "branch": settings.branch,
            "token": pulumi.Config("gitlab").get_secret("token"),
            "base_url": pulumi.Config("gitlab").get("baseUrl"),
            "variable_key": settings.secret_name,
            "variable_value": identity.key_base64,
            "protected": settings.protected_variable,
            "ci_file": settings.ci_file,
            "ci_content": render_ci_file(settings),
            "after": identity.grants,
        },
    )

# 4. Exports: names and URLs only, never key material.
pulumi.export("bucketName", remote.bucket_name)
pulumi.export("bucketUrl", remote.bucket_url)
pulumi.export("dvcRemoteUrl", remote.remote_url)
pulumi.export("serviceAccountEmail", identity.email)
pulumi.export("ciFile", settings.ci_file)
pulumi.export("secretName", settings.secret_name)
