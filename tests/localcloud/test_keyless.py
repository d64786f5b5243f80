"""Keyless CI against the local cloud, at the level of the stand-ins: ID tokens of the local OIDC
issuer, exchanged by google-auth's own external-account code (as dvc/gcsfs use it) at the local STS
through Google's URLs, for a provider created by the gcp plugin with the program's own attribute
mapping and condition; impersonation checked by the local IAM Credentials; the storage front admits
only the principals granted on the bucket. Every impostor is refused at the STS with its reason."""

from __future__ import annotations

import dataclasses
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import yaml
from google.auth import identity_pool
from google.auth.exceptions import GoogleAuthError
from google.auth.transport.requests import Request

from localcloud import keyless, platform
from localcloud.oidc_issuer import GITHUB_ISSUER, GithubRun, GitlabJob, SigningKey, github_request_variables
from localcloud.plugins import gcp
from localcloud.state import LocalCloud
from localcloud.storage_front import StorageFront
from mlops_ci.offline.runtime import evaluate
from mlops_ci.offline.stacks import STACKS_DIR, load_stack_file

from .conftest import PluginClient, unique

pytestmark = pytest.mark.localcloud

SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
APIS = ("storage.googleapis.com", "iam.googleapis.com", "sts.googleapis.com", "iamcredentials.googleapis.com")
PROVIDER = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"


@dataclasses.dataclass(frozen=True)
class Federation:
    """One stack's federation as the gcp plugin created it from the program's inputs."""

    provider_name: str
    account: str
    impersonation_bucket: str
    """Granted to the service account only (impersonation mode)."""
    direct_bucket: str
    """Granted to the repository's principal set only (direct mode)."""
    ids: dict[str, str]
    """The numeric ids the condition pins (repository_id / project_id, and the owner's / namespace's)."""
    audience: str
    """What the job's ID token must be issued for."""


def program_provider(stack: str, **settings: str) -> dict[str, Any]:
    """The provider's inputs as the program registers them for the example stack (offline)."""
    stack_file = load_stack_file(STACKS_DIR / f"Pulumi.{stack}.yaml")
    config = stack_file.config | {f"mlops-ci:{key}": value for key, value in settings.items()}
    registration = evaluate(stack_file.stack, config, stack_file.secret_keys).one(PROVIDER)
    return {key: registration.plain(key) for key in ("attributeMapping", "attributeCondition", "oidc")}


def federate(plugins: Any, stack: str, principal: str, **settings: str) -> Federation:
    project = unique("acme-ml-keyless")
    client: PluginClient = plugins(gcp.PROVIDER, {"project": project, "version": gcp.VERSION})
    for api in APIS:
        client.create("gcp:projects/service:Service", unique("api"), {"service": api, "project": project})
    inputs = program_provider(stack, **settings)
    pool_id = unique("ci-pool").replace("-", "")[:32]
    pool = client.create("gcp:iam/workloadIdentityPool:WorkloadIdentityPool", unique("pool"), {"workloadIdentityPoolId": pool_id})
    provider = client.create(
        PROVIDER, unique("provider"), {**inputs, "workloadIdentityPoolId": pool_id, "workloadIdentityPoolProviderId": pool_id}
    )
    ids = dict(re.findall(r'assertion\.(\w+_id) == "(\d+)"', str(inputs["attributeCondition"])))
    member = f"principalSet://iam.googleapis.com/{pool.plain('name')}/attribute.{principal}/{ids[principal]}"
    account = client.create("gcp:serviceaccount/account:Account", unique("account"), {"accountId": unique("dvc-ci-kl")})
    email = str(account.plain("email"))
    client.create(
        "gcp:serviceaccount/iAMMember:IAMMember",
        unique("wiu"),
        {"serviceAccountId": account.plain("name"), "role": "roles/iam.workloadIdentityUser", "member": member},
    )
    buckets: list[str] = []
    for grantee in (f"serviceAccount:{email}", member):
        bucket = client.create("gcp:storage/bucket:Bucket", unique("b"), {"name": unique("acme-kl"), "location": "EU"}).id
        client.create(
            "gcp:storage/bucketIAMMember:BucketIAMMember",
            unique("g"),
            {"bucket": bucket, "role": "roles/storage.objectViewer", "member": grantee},
        )
        buckets.append(bucket)
    name = str(provider.plain("name"))
    audiences = list(inputs["oidc"].get("allowedAudiences") or [f"https://iam.googleapis.com/{name}"])
    return Federation(name, email, buckets[0], buckets[1], ids, audiences[0])


@pytest.fixture
def github(plugins: Any) -> Federation:
    return federate(plugins, "recsys-team", "repository_id")


@pytest.fixture
def gitlab(plugins: Any) -> Federation:
    return federate(plugins, "speech-team", "project_id")


def good_run(federation: Federation, **changes: str) -> GithubRun:
    run = GithubRun("acme-ml/recsys", federation.ids["repository_id"], federation.ids["repository_owner_id"])
    return dataclasses.replace(run, **changes)


def transport(cloud: LocalCloud) -> Request:
    """What a job's google-auth uses: requests, Google's hosts through the local cloud's HTTPS proxy."""
    session = requests.Session()
    session.trust_env = False  # as a job's REQUESTS_CA_BUNDLE (localcloud.sts.client_environment), not this machine's
    session.proxies = {"https": cloud.urls()["googleProxy"]}
    session.verify = cloud.urls()["googleCertificate"]
    return Request(session)


def credential_file(federation: Federation, source: dict[str, Any], impersonate: bool) -> dict[str, Any]:
    """The credential file the auth action (GitHub: `source` a URL) or the job script (GitLab: a file) writes."""
    info: dict[str, Any] = {
        "type": "external_account",
        "audience": f"//iam.googleapis.com/{federation.provider_name}",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
        "credential_source": source,
    }
    if impersonate:
        info["service_account_impersonation_url"] = (
            f"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{federation.account}:generateAccessToken"
        )
    return info


def github_source(cloud: LocalCloud, run: GithubRun, audience: str) -> dict[str, Any]:
    """`credential_source` as google-github-actions/auth writes it: the runtime's ID token URL."""
    variables = github_request_variables(cloud.urls()["oidcIssuer"], SigningKey(cloud.root / "oidc"), run)
    return {
        "url": f"{variables['ACTIONS_ID_TOKEN_REQUEST_URL']}&audience={audience}",
        "headers": {"Authorization": f"Bearer {variables['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"},
        "format": {"type": "json", "subject_token_field_name": "value"},
    }


def sign_in(cloud: LocalCloud, info: dict[str, Any]) -> str:
    credentials: Any = identity_pool.Credentials.from_info(info, scopes=[SCOPE])  # type: ignore[no-untyped-call]
    credentials.refresh(transport(cloud))
    return str(credentials.token)


def list_objects(cloud: LocalCloud, bucket: str, token: str) -> int:
    request = urllib.request.Request(
        f"{cloud.urls()['storageProxy']}/storage/v1/b/{bucket}/o", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def exchanges(cloud: LocalCloud) -> list[dict[str, Any]]:
    path = cloud.root / "federation-exchanges.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_github_impersonation_reads_the_bucket_granted_to_the_account_only(cloud: LocalCloud, github: Federation) -> None:
    info = credential_file(github, github_source(cloud, good_run(github), github.audience), impersonate=True)

    token = sign_in(cloud, info)

    assert list_objects(cloud, github.impersonation_bucket, token) == 200
    assert list_objects(cloud, github.direct_bucket, token) == 403  # the account holds nothing there


def test_github_direct_federation_reads_the_bucket_granted_to_the_principal_set(cloud: LocalCloud, github: Federation) -> None:
    info = credential_file(github, github_source(cloud, good_run(github), github.audience), impersonate=False)

    token = sign_in(cloud, info)

    assert list_objects(cloud, github.direct_bucket, token) == 200
    assert list_objects(cloud, github.impersonation_bucket, token) == 403


def test_gitlab_job_token_from_its_variable_file_impersonates(cloud: LocalCloud, gitlab: Federation, tmp_path: Path) -> None:
    job = GitlabJob("ml/speech/asr-experiments", gitlab.ids["project_id"], gitlab.ids["namespace_id"], ref="develop")
    id_token = tmp_path / "id-token.jwt"
    id_token.write_text(SigningKey(cloud.root / "oidc").mint("https://gitlab.acme.example", job.claims(), gitlab.audience))

    token = sign_in(cloud, credential_file(gitlab, {"file": str(id_token)}, impersonate=True))

    assert list_objects(cloud, gitlab.impersonation_bucket, token) == 200


def test_a_principal_without_the_workload_identity_user_grant_cannot_impersonate(cloud: LocalCloud, plugins: Any) -> None:
    # The federation of another stack trusts this repository too, but its account grants it nothing.
    federation = federate(plugins, "recsys-team", "repository_id")
    with cloud.gcp.edit() as state:
        state["serviceAccounts"][federation.account]["iam"] = []
    info = credential_file(federation, github_source(cloud, good_run(federation), federation.audience), impersonate=True)

    with pytest.raises(
        GoogleAuthError, match=r"Unable to acquire impersonated credentials.*iam\.serviceAccounts\.getAccessToken.* denied"
    ):
        sign_in(cloud, info)


IMPOSTORS: dict[str, Callable[[Federation], GithubRun]] = {
    # the same name, re-created: other numeric ids
    "same-name-other-ids": lambda f: good_run(
        f, repository_id="1" + f.ids["repository_id"], repository_owner_id="2" + f.ids["repository_owner_id"]
    ),
    "same-owner-other-repository": lambda f: good_run(f, repository="acme-ml/other", repository_id="3" + f.ids["repository_id"]),
}


@pytest.mark.parametrize("impostor", sorted(IMPOSTORS))
def test_a_token_of_another_repository_is_rejected_by_the_condition(cloud: LocalCloud, github: Federation, impostor: str) -> None:
    info = credential_file(github, github_source(cloud, IMPOSTORS[impostor](github), github.audience), impersonate=False)

    with pytest.raises(
        GoogleAuthError, match="Error code unauthorized_client: The given credential is rejected by the attribute condition"
    ):
        sign_in(cloud, info)
    assert exchanges(cloud)[-1]["granted"] is False


def test_another_branch_is_rejected_under_trust_branch_only(cloud: LocalCloud, plugins: Any) -> None:
    federation = federate(plugins, "recsys-team", "repository_id", trustBranchOnly="true")
    on_main = credential_file(federation, github_source(cloud, good_run(federation), federation.audience), impersonate=False)
    assert list_objects(cloud, federation.direct_bucket, sign_in(cloud, on_main)) == 200
    branch = good_run(federation, ref="refs/heads/experiment")
    info = credential_file(federation, github_source(cloud, branch, federation.audience), impersonate=False)

    with pytest.raises(
        GoogleAuthError, match="Error code unauthorized_client: The given credential is rejected by the attribute condition"
    ):
        sign_in(cloud, info)


def test_an_expired_token_is_rejected(cloud: LocalCloud, github: Federation, tmp_path: Path) -> None:
    expired = SigningKey(cloud.root / "oidc").mint(
        GITHUB_ISSUER, good_run(github).claims(), github.audience, issued=time.time() - 600
    )
    (tmp_path / "token").write_text(expired)

    with pytest.raises(GoogleAuthError, match="Error code invalid_grant: The ID Token has expired"):
        sign_in(cloud, credential_file(github, {"file": str(tmp_path / "token")}, impersonate=False))


@pytest.mark.parametrize("platform", ["github", "gitlab"])
def test_a_token_for_another_audience_is_rejected(cloud: LocalCloud, plugins: Any, platform: str, tmp_path: Path) -> None:
    if platform == "github":
        federation = federate(plugins, "recsys-team", "repository_id")
        issuer, claims = GITHUB_ISSUER, good_run(federation).claims()
    else:
        federation = federate(plugins, "speech-team", "project_id")
        issuer = "https://gitlab.acme.example"
        claims = GitlabJob("ml/speech/asr-experiments", federation.ids["project_id"], federation.ids["namespace_id"]).claims()
    other = "https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/p"
    (tmp_path / "token").write_text(SigningKey(cloud.root / "oidc").mint(issuer, claims, other))

    with pytest.raises(GoogleAuthError, match="Error code invalid_grant: The audience in ID Token does not match"):
        sign_in(cloud, credential_file(federation, {"file": str(tmp_path / "token")}, impersonate=False))


def test_a_token_signed_by_another_key_is_rejected(cloud: LocalCloud, github: Federation, tmp_path: Path) -> None:
    forged = SigningKey(tmp_path / "forger").mint(GITHUB_ISSUER, good_run(github).claims(), github.audience)
    (tmp_path / "token").write_text(forged)

    with pytest.raises(GoogleAuthError, match="Error code invalid_grant: Invalid ID Token"):
        sign_in(cloud, credential_file(github, {"file": str(tmp_path / "token")}, impersonate=False))


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/json", b"[1, 2]"), ("application/json", b"{not json"), ("application/x-www-form-urlencoded", b"\xff\xfe")],
)
def test_a_body_that_is_no_token_request_is_a_400(cloud: LocalCloud, content_type: str, body: bytes) -> None:
    session = transport(cloud).session
    response = session.post("https://sts.googleapis.com/v1/token", data=body, headers={"Content-Type": content_type})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_provider_that_does_not_exist_is_an_invalid_target(cloud: LocalCloud, github: Federation, tmp_path: Path) -> None:
    (tmp_path / "token").write_text(
        SigningKey(cloud.root / "oidc").mint(GITHUB_ISSUER, good_run(github).claims(), github.audience)
    )
    info = credential_file(github, {"file": str(tmp_path / "token")}, impersonate=False)
    info["audience"] = info["audience"].replace("/providers/", "/providers/x")

    with pytest.raises(GoogleAuthError, match="Error code invalid_target"):
        sign_in(cloud, info)


# Red team (branch roidc): where the local STS admits what Google's refuses.


def test_a_mapped_subject_over_127_bytes_is_refused(cloud: LocalCloud, github: Federation) -> None:
    # google.subject is limited to 127 bytes (cloud.google.com/iam/docs/workload-identity-federation,
    # "Attribute mappings"; the error GitLab users hit: "The size of mapped attribute exceeds the 127 bytes
    # limit", gitlab-org/gitlab MR 114147). The program maps google.subject to `sub`, which carries the ref:
    # a job on a long branch name is refused at Google's STS, so it must not be green here.
    run = good_run(github, ref="refs/heads/feature/" + "x" * 100)
    assert len(f"repo:{run.repository}:ref:{run.ref}".encode()) > 127
    info = credential_file(github, github_source(cloud, run, github.audience), impersonate=False)

    with pytest.raises(GoogleAuthError, match="127 bytes"):
        sign_in(cloud, info)
    assert exchanges(cloud)[-1]["granted"] is False


TOKEN_TYPES = {
    # GoogleIdentityStsV1ExchangeTokenRequest (sts v1 REST reference): subjectTokenType and
    # requestedTokenType are Required; for an OIDC provider the subject token type is ...:jwt or ...:id_token.
    "no-subject-token-type": {"subject_token_type": None},
    "saml-subject-token-type": {"subject_token_type": "urn:ietf:params:oauth:token-type:saml2"},
    "no-requested-token-type": {"requested_token_type": None},
}


@pytest.mark.parametrize("changes", sorted(TOKEN_TYPES))
def test_a_token_request_without_its_required_token_types_is_a_400(cloud: LocalCloud, github: Federation, changes: str) -> None:
    form: dict[str, str | None] = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "audience": f"//iam.googleapis.com/{github.provider_name}",
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "subject_token": SigningKey(cloud.root / "oidc").mint(GITHUB_ISSUER, good_run(github).claims(), github.audience),
        **TOKEN_TYPES[changes],
    }
    sent = {key: value for key, value in form.items() if value is not None}

    response = transport(cloud).session.post("https://sts.googleapis.com/v1/token", data=sent)

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("condition", ["assertion.repository", "assertion.run_attempt"])
def test_a_condition_that_yields_no_boolean_refuses(cloud: LocalCloud, github: Federation, condition: str) -> None:
    # WorkloadIdentityPoolProvider.attributeCondition: "The expression must output a boolean representing
    # whether to allow the federation" (iam v1 REST reference). A non-empty string is no `true`.
    provider = github.provider_name.split("/")
    with cloud.gcp.edit() as state:
        key = next(k for k in state["poolProviders"] if k.endswith(f"/{provider[5]}/{provider[7]}"))
        state["poolProviders"][key]["attributeCondition"] = condition
    info = credential_file(github, github_source(cloud, good_run(github), github.audience), impersonate=False)

    with pytest.raises(GoogleAuthError):
        sign_in(cloud, info)
    assert exchanges(cloud)[-1]["granted"] is False


def test_a_federated_token_is_judged_by_its_own_attributes_not_by_another_of_the_same_subject(
    cloud: LocalCloud, github: Federation
) -> None:
    # A federated token carries the attributes mapped from its own assertion (cloud.google.com/iam/docs/
    # principal-identifiers); Cloud Storage admits it on the principal sets those attributes name. The front
    # keeps a token's members by its principal (`principal://…/subject/<sub>`): a token of the same subject
    # (a repository re-created under the same name, admitted by a pool's provider that pins no ids) whose
    # request is being decided while the granted token is used is judged with the granted token's members.
    pool = github.provider_name.rsplit("/providers/", 1)[0]
    subject = f"principal://iam.googleapis.com/{pool}/subject/repo:acme-ml/recsys:ref:refs/heads/main"
    granted_id = github.ids["repository_id"]
    tokens = {
        "granted": (subject, f"principalSet://iam.googleapis.com/{pool}/attribute.repository_id/{granted_id}"),
        "impostor": (subject, f"principalSet://iam.googleapis.com/{pool}/attribute.repository_id/1{granted_id}"),
    }
    front = StorageFront(cloud, cloud.urls()["storage"], lambda token: None, members_of=tokens.get)
    policy = front._policy  # pyright: ignore[reportPrivateUsage]

    def concurrent_policy(bucket: str) -> list[dict[str, Any]]:
        front.caller("granted")  # the granted token's request, arriving meanwhile (ThreadingHTTPServer)
        return policy(bucket)

    front._policy = concurrent_policy  # pyright: ignore[reportPrivateUsage]
    refused = front.refusal("GET", f"/storage/v1/b/{github.direct_bucket}/o", "Bearer impostor")

    assert refused is not None, "the impostor was let through with the granted token's members"
    assert refused[0] == 403


def test_a_gitlab_job_token_names_its_instance_not_whatever_issuer_the_provider_trusts(
    cloud: LocalCloud, gitlab: Federation, tmp_path: Path
) -> None:
    # GitLab's ID token: `iss` is the GitLab instance's URL (docs.gitlab.com, "OpenID Connect (OIDC)
    # Authentication Using ID Tokens", token payload), whatever a Google provider trusts. The local job's token
    # is minted for the provider's `issuerUri` instead, so a stack whose issuer is wrong (a mistyped
    # `gitlab:baseUrl`) is green here and refused by Google's STS ("The issuer in ID Token does not match").
    with cloud.platform.edit() as state:
        projects = state.setdefault("gitlab", {}).setdefault("projects", {})
        projects["ml/speech/asr-experiments"] = {"id": gitlab.ids["project_id"], "namespaceId": gitlab.ids["namespace_id"]}
    provider = gitlab.provider_name.split("/")
    with cloud.gcp.edit() as gcp_state:
        key = next(k for k in gcp_state["poolProviders"] if k.endswith(f"/{provider[5]}/{provider[7]}"))
        gcp_state["poolProviders"][key]["issuerUri"] = "https://gitlab.wrong.example"
    ci_file = tmp_path / ".gitlab-ci.yml"
    ci_file.write_text(yaml.safe_dump({"train": {"id_tokens": {"GCP_ID_TOKEN": {"aud": gitlab.audience}}}}))
    variables = {keyless.PROVIDER_VARIABLE: gitlab.provider_name}

    identity = keyless.job_identity(cloud, "gitlab", "ml/speech/asr-experiments", "main", ci_file, variables)

    assert identity is not None
    token = identity.gitlab_variables["GCP_ID_TOKEN"]
    assert jwt.decode(token, options={"verify_signature": False})["iss"] != "https://gitlab.wrong.example"


@pytest.mark.parametrize("wrong", ["/locations/us-east1/", "/zones/global/"])
def test_an_audience_that_is_not_the_providers_resource_name_is_refused(
    cloud: LocalCloud, gitlab: Federation, tmp_path: Path, wrong: str
) -> None:
    # The STS `audience`: `//iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/
    # providers/<provider>` (GoogleIdentityStsV1ExchangeTokenRequest, sts v1 REST reference); pools live in
    # `global` only. The local STS reads the number, pool and provider and skips the two segments between.
    # (A provider with `allowedAudiences`, as the GitLab stacks have, then admits the token: a 200.)
    job = GitlabJob("ml/speech/asr-experiments", gitlab.ids["project_id"], gitlab.ids["namespace_id"])
    (tmp_path / "token").write_text(
        SigningKey(cloud.root / "oidc").mint("https://gitlab.acme.example", job.claims(), gitlab.audience)
    )
    info = credential_file(gitlab, {"file": str(tmp_path / "token")}, impersonate=False)
    info["audience"] = info["audience"].replace("/locations/global/", wrong)

    with pytest.raises(GoogleAuthError, match=r"Error code invalid_(request|target)"):
        sign_in(cloud, info)


def gitlab_job(cloud: LocalCloud, gitlab: Federation, tmp_path: Path, audience: str | list[str]) -> keyless.JobIdentity:
    """The identity of a job of the speech team's project (on https://gitlab.acme.example, as the stack's
    `gitlab:baseUrl` names it) whose `id_tokens:` asks GCP_ID_TOKEN for `audience`."""
    platform.create_repository(cloud, "gitlab", "ml/speech/asr-experiments", ["main"], instance="https://gitlab.acme.example")
    with cloud.platform.edit() as state:
        state["gitlab"]["projects"]["ml/speech/asr-experiments"] |= {
            "id": gitlab.ids["project_id"], "namespaceId": gitlab.ids["namespace_id"]
        }  # fmt: skip
    ci_file = tmp_path / ".gitlab-ci.yml"
    ci_file.write_text(yaml.safe_dump({"train": {"id_tokens": {"GCP_ID_TOKEN": {"aud": audience}}}}))
    variables = {keyless.PROVIDER_VARIABLE: gitlab.provider_name}
    identity = keyless.job_identity(cloud, "gitlab", "ml/speech/asr-experiments", "main", ci_file, variables)
    assert identity is not None
    return identity


def test_a_gitlab_job_token_names_the_instance_its_project_lives_on(
    cloud: LocalCloud, gitlab: Federation, tmp_path: Path
) -> None:
    # `iss`: "the domain of the GitLab instance" (docs.gitlab.com, "OpenID Connect (OIDC) Authentication Using
    # ID Tokens", token payload); the stack's provider trusts the same instance, so the exchange is granted.
    token = gitlab_job(cloud, gitlab, tmp_path, gitlab.audience).gitlab_variables["GCP_ID_TOKEN"]
    (tmp_path / "token").write_text(token)

    assert jwt.decode(token, options={"verify_signature": False})["iss"] == "https://gitlab.acme.example"
    info = credential_file(gitlab, {"file": str(tmp_path / "token")}, impersonate=False)
    assert list_objects(cloud, gitlab.direct_bucket, sign_in(cloud, info)) == 200


def test_a_gitlab_id_token_asked_for_a_list_of_audiences_carries_the_list(
    cloud: LocalCloud, gitlab: Federation, tmp_path: Path
) -> None:
    # `id_tokens:` `aud` is a string or an array of strings (docs.gitlab.com, CI/CD YAML syntax reference,
    # `id_tokens`); the token's `aud` is then the array, one of which the provider allows (RFC 7519 §4.1.3).
    audiences = [gitlab.audience, "https://vault.acme.example"]
    token = gitlab_job(cloud, gitlab, tmp_path, audiences).gitlab_variables["GCP_ID_TOKEN"]
    (tmp_path / "token").write_text(token)

    assert jwt.decode(token, options={"verify_signature": False})["aud"] == audiences
    info = credential_file(gitlab, {"file": str(tmp_path / "token")}, impersonate=False)
    assert list_objects(cloud, gitlab.direct_bucket, sign_in(cloud, info)) == 200


@pytest.mark.parametrize("body", [{}, {"scope": []}, {"scope": "https://www.googleapis.com/auth/cloud-platform"}])
def test_generate_access_token_without_its_scopes_is_a_400(cloud: LocalCloud, github: Federation, body: dict[str, Any]) -> None:
    # GenerateAccessTokenRequest (iamcredentials v1 REST reference): `scope[]` is Required, a list.
    federated = sign_in(
        cloud, credential_file(github, github_source(cloud, good_run(github), github.audience), impersonate=False)
    )
    url = f"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{github.account}:generateAccessToken"

    response = transport(cloud).session.post(url, json=body, headers={"Authorization": f"Bearer {federated}"})

    assert response.status_code == 400, response.text
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_a_job_with_a_kept_provider_name_gets_its_token_after_the_provider_is_gone(
    cloud: LocalCloud, gitlab: Federation, tmp_path: Path
) -> None:
    # The platform issues a job's ID token whatever Google holds: after `pulumi destroy` a job run with
    # the provider name a runner kept (make demo's "CI red: access revoked") gets its token, and the STS
    # refuses it because the provider is gone, not because the job had none.
    with cloud.gcp.edit() as gcp_state:
        provider = gitlab.provider_name.split("/")
        key = next(k for k in gcp_state["poolProviders"] if k.endswith(f"/{provider[5]}/{provider[7]}"))
        gcp_state["poolProviders"][key]["state"] = "DELETED"
    token = gitlab_job(cloud, gitlab, tmp_path, gitlab.audience).gitlab_variables["GCP_ID_TOKEN"]
    (tmp_path / "token").write_text(token)
    info = credential_file(gitlab, {"file": str(tmp_path / "token")}, impersonate=False)

    with pytest.raises(GoogleAuthError, match=r"invalid_target"):
        sign_in(cloud, info)
