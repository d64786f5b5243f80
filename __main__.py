"""mlops-ci: one team's DVC remote, CI identity and CI pipeline, as one Pulumi stack."""

import pulumi
import pulumi_gcp as gcp

from mlops_ci.ci.files import render_ci_file, render_job_script
from mlops_ci.ci.next_steps import next_steps
from mlops_ci.components.apis import GoogleApis
from mlops_ci.components.identity import CiIdentity
from mlops_ci.components.storage import DvcRemote
from mlops_ci.components.workload_identity import WorkloadIdentity
from mlops_ci.preflight import preflight
from mlops_ci.settings.loader import load_settings
from mlops_ci.settings.rules import PROVIDER_VARIABLE, SERVICE_ACCOUNT_VARIABLE

# 1. Settings: every problem of the stack file is reported here, before any resource.
settings = load_settings()
platform = settings.platform

# 2. Pre-flight: the repository, branch and files, the bucket, the key policy; all before any cloud resource.
# Every provider is explicit and gets only what the settings validated: no stray `gcp:` key of the
# stack file (an endpoint, credentials) can take effect through a default provider.
provider = platform.provider(settings)
google = gcp.Provider("gcp-provider", project=settings.gcp_project)
on_google = pulumi.ResourceOptions(providers=[google])
found = preflight(settings, provider, google)

# 3. Google Cloud: APIs, the DVC remote bucket, the CI identity and (key mode) its key.
apis = GoogleApis("apis", {"project": settings.gcp_project, "services": settings.google_apis}, opts=on_google)
remote = DvcRemote(
    "dvc-remote",
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
    opts=on_google,
)
identity = CiIdentity(
    "ci-identity",
    {
        "project": settings.gcp_project,
        "account_id": settings.service_account_id,
        "display_name": f"mlops-ci: CI of {settings.repository}"[:100],
        "bucket": remote.bucket_name,
        "access": settings.access,
        "create_key": not settings.keyless,
        "key_rotation": settings.key_rotation,
        "after": [apis.services["iam.googleapis.com"]],
    },
    opts=on_google,
)

# 4. Keyless: a federation that trusts this repository's CI tokens only.
federation = (
    WorkloadIdentity(
        "workload-identity",
        {
            "project": settings.gcp_project,
            "stack": settings.stack,
            "service_account": identity.account,
            "trust": platform.oidc_trust(provider, settings),
            "after": [apis.services[api] for api in settings.google_apis if api != "storage.googleapis.com"],
        },
        opts=on_google,
    )
    if settings.keyless
    else None
)

# 5. The credential (or the keyless settings) first, then the job script, then the CI file that calls it.
platform.deliver(
    {
        "provider": provider,
        "settings": settings,
        "key_base64": identity.key_base64,
        "variables": {PROVIDER_VARIABLE: federation.provider_name, SERVICE_ACCOUNT_VARIABLE: identity.email}
        if federation
        else {},
        "ci_content": render_ci_file(settings),
        "job_script": render_job_script(settings),
        "after": [*identity.grants, *([federation.binding] if federation else [])],
    }
)

# 6. Exports: names and URLs only, never key material.
pulumi.export("bucketName", remote.bucket_name)
pulumi.export("bucketUrl", remote.bucket_url)
pulumi.export("dvcRemoteUrl", remote.remote_url)
pulumi.export("serviceAccountEmail", identity.email)
pulumi.export("ciFile", settings.ci_file)
pulumi.export("ciRunsUrl", platform.runs_url(settings))
pulumi.export("nextSteps", next_steps(settings, adopted_bucket=found.adopt_bucket))
if federation:
    pulumi.export("workloadIdentityProvider", federation.provider_name)
else:
    pulumi.export("secretName", settings.secret_name)
