"""The gcp plugin: buckets in the storage emulator, accounts and keys the token endpoint honours,
replacement semantics, soft-deleted pools, and no key material in the journal."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from google.auth.exceptions import RefreshError
from pulumi.runtime.proto import provider_pb2

from localcloud import iam, wire
from localcloud.plugins import gcp
from localcloud.state import LocalCloud

from .conftest import Created, PluginClient, PluginError, journal_for, sign_in, storage_get, unique

pytestmark = pytest.mark.localcloud

SERVICE = "gcp:projects/service:Service"
BUCKET = "gcp:storage/bucket:Bucket"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
ACCOUNT = "gcp:serviceaccount/account:Account"
KEY = "gcp:serviceaccount/key:Key"
ACCOUNT_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
POOL = "gcp:iam/workloadIdentityPool:WorkloadIdentityPool"
POOL_PROVIDER = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"


@pytest.fixture
def gcloud(plugins: Any) -> PluginClient:
    """The default gcp provider of a stack with `gcp:project`, APIs enabled."""
    client: PluginClient = plugins(gcp.PROVIDER, {"project": "acme-ml", "version": gcp.VERSION})
    for api in ("storage.googleapis.com", "iam.googleapis.com"):
        client.create(SERVICE, f"api-{api.split('.')[0]}", {"service": api, "project": "acme-ml", "disableOnDestroy": False})
    return client


def new_account(gcloud: PluginClient) -> Any:
    return gcloud.create(ACCOUNT, unique("account"), {"accountId": unique("dvc-ci-test"), "displayName": "CI"})


def test_bucket_lives_in_the_emulator_and_a_second_create_is_409(gcloud: PluginClient, cloud: LocalCloud) -> None:
    name = unique("acme-ml-dvc")
    props = {"name": name, "location": "europe-west6", "uniformBucketLevelAccess": True, "labels": {"stack": "t"}}
    bucket = gcloud.create(BUCKET, "bucket", props)

    assert bucket.id == name
    assert bucket.plain("url") == f"gs://{name}"
    status, resource = storage_get(cloud, f"/storage/v1/b/{name}")
    assert status == 200
    # one insert carries the attribution label too; the resource's `labels` stay the program's
    assert resource["labels"] == {"stack": "t", "goog-pulumi-provisioned": "true"}
    assert bucket.plain("labels") == {"stack": "t"}
    assert bucket.plain("pulumiLabels") == bucket.plain("effectiveLabels") == resource["labels"]
    assert wire.is_secret(bucket.outputs["pulumiLabels"])
    assert wire.is_secret(bucket.outputs["effectiveLabels"])
    assert "terraformLabels" not in bucket.outputs
    assert resource["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"] is True
    with pytest.raises(PluginError, match="Error 409"):
        gcloud.create(BUCKET, "bucket-again", props)
    assert gcloud.read(BUCKET, "bucket", bucket) == name


def test_bucket_delete_removes_it_unless_it_holds_data(gcloud: PluginClient, cloud: LocalCloud) -> None:
    empty = gcloud.create(BUCKET, "empty", {"name": unique("acme-ml-empty"), "location": "EU"})
    full = gcloud.create(BUCKET, "full", {"name": unique("acme-ml-full"), "location": "EU"})
    upload = urllib.request.Request(
        f"{cloud.urls()['storage']}/upload/storage/v1/b/{full.id}/o?uploadType=media&name=dvcstore/data",
        data=b"dvc data",
        method="POST",
        headers={"Content-Type": "application/octet-stream"},
    )
    urllib.request.urlopen(upload, timeout=10).close()

    gcloud.delete(BUCKET, "empty", empty)
    with pytest.raises(PluginError, match=r"Error trying to delete bucket .* without `force_destroy` set to true"):
        gcloud.delete(BUCKET, "full", full)

    assert storage_get(cloud, f"/storage/v1/b/{empty.id}")[0] == 404
    assert storage_get(cloud, f"/storage/v1/b/{full.id}")[0] == 200
    assert gcloud.read(BUCKET, "empty", empty) == ""


def test_bucket_name_and_location_force_replacement_labels_do_not(gcloud: PluginClient) -> None:
    props = {"name": unique("acme-ml-diff"), "location": "EU", "labels": {"a": "1"}}
    bucket = gcloud.create(BUCKET, "diff", props)

    relabel = gcloud.diff(BUCKET, "diff", bucket, {**props, "labels": {"a": "2"}})
    rename = gcloud.diff(BUCKET, "diff", bucket, {**props, "name": unique("acme-ml-other")})
    same = gcloud.diff(BUCKET, "diff", bucket, props)

    assert (relabel.changes, list(relabel.replaces)) == (provider_pb2.DiffResponse.DIFF_SOME, [])
    assert list(rename.replaces) == ["name"]
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE


def test_bucket_requires_the_storage_api(plugins: Any) -> None:
    gcloud = plugins(gcp.PROVIDER, {"project": "project-without-apis"})
    with pytest.raises(PluginError, match="SERVICE_DISABLED"):
        gcloud.create(BUCKET, "too-early", {"name": unique("acme-ml-early"), "location": "EU"})


def test_bucket_member_lands_in_the_bucket_policy(gcloud: PluginClient, cloud: LocalCloud) -> None:
    bucket = gcloud.create(BUCKET, "granted", {"name": unique("acme-ml-grant"), "location": "EU"})
    account = new_account(gcloud)
    member = gcloud.create(
        BUCKET_MEMBER, "viewer", {"bucket": bucket.id, "role": "roles/storage.objectViewer", "member": account.plain("member")}
    )

    bindings = storage_get(cloud, f"/storage/v1/b/{bucket.id}/iam")[1]["bindings"]
    assert {"role": "roles/storage.objectViewer", "members": [account.plain("member")]} in bindings
    gcloud.delete(BUCKET_MEMBER, "viewer", member)
    assert storage_get(cloud, f"/storage/v1/b/{bucket.id}/iam")[1]["bindings"] == []
    with pytest.raises(PluginError, match="Error 404"):
        gcloud.create(BUCKET_MEMBER, "nowhere", {"bucket": unique("no-such-bucket"), "role": "roles/x", "member": "user:a@b.c"})


def test_concurrent_grants_on_one_bucket_all_land(gcloud: PluginClient, cloud: LocalCloud) -> None:
    """The engine creates a push stack's two grants at once: the policy's read-modify-write must not
    lose one (upstream serialises IAM changes per bucket)."""
    bucket = gcloud.create(BUCKET, "granted-twice", {"name": unique("acme-ml-grants"), "location": "EU"})
    account = new_account(gcloud)
    roles = [f"roles/storage.{role}" for role in ("objectViewer", "objectCreator", "legacyBucketReader", "objectUser")]

    def grant(role: str) -> Created:
        return gcloud.create(
            BUCKET_MEMBER, role.rsplit(".", 1)[-1], {"bucket": bucket.id, "role": role, "member": account.plain("member")}
        )

    with concurrent.futures.ThreadPoolExecutor(len(roles)) as pool:
        members = list(pool.map(grant, roles))

    bindings = storage_get(cloud, f"/storage/v1/b/{bucket.id}/iam")[1]["bindings"]
    assert sorted(b["role"] for b in bindings) == sorted(roles)
    assert [gcloud.read(BUCKET_MEMBER, role.rsplit(".", 1)[-1], m) for role, m in zip(roles, members, strict=True)] == [
        m.id for m in members
    ]


def test_account_outputs_and_duplicate_409(gcloud: PluginClient) -> None:
    account_id = unique("dvc-ci-vision")
    account = gcloud.create(ACCOUNT, "account", {"accountId": account_id})
    email = f"{account_id}@acme-ml.iam.gserviceaccount.com"

    assert account.plain("email") == email
    assert account.plain("name") == f"projects/acme-ml/serviceAccounts/{email}"
    assert account.plain("member") == f"serviceAccount:{email}"
    assert account.plain("uniqueId").isdigit()
    with pytest.raises(PluginError, match=r"409.*already exists"):
        gcloud.create(ACCOUNT, "account-again", {"accountId": account_id})
    _, failures = gcloud.check(ACCOUNT, "bad", {"accountId": "Bad_Id"})
    assert failures


def _key_file(key: Any) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(key.plain("privateKey"))))


def test_key_is_a_real_rsa_key_file_as_a_secret_honoured_by_the_token_endpoint(gcloud: PluginClient, cloud: LocalCloud) -> None:
    account = new_account(gcloud)
    key = gcloud.create(KEY, "key", {"serviceAccountId": account.plain("name"), "keepers": {"rotation": ""}})

    assert wire.is_secret(key.outputs["privateKey"])
    key_file = json.loads(base64.b64decode(key.plain("privateKey")))
    assert key_file["client_email"] == account.plain("email")
    assert key_file["token_uri"] == cloud.urls()["token"]
    assert key.id.endswith(f"/keys/{key_file['private_key_id']}")
    assert isinstance(serialization.load_pem_private_key(key_file["private_key"].encode(), password=None), RSAPrivateKey)
    assert sign_in(key_file)  # google-auth's own path: a signed assertion to token_uri


def test_a_deleted_key_can_no_longer_sign_in(gcloud: PluginClient, cloud: LocalCloud) -> None:
    account = new_account(gcloud)
    key = gcloud.create(KEY, "deleted-key", {"serviceAccountId": account.plain("name")})
    gcloud.delete(KEY, "deleted-key", key)

    with pytest.raises(RefreshError, match="invalid_grant"):
        sign_in(_key_file(key))
    assert gcloud.read(KEY, "deleted-key", key) == ""
    exchanges = [json.loads(line) for line in (cloud.root / "token-exchanges.jsonl").read_text().splitlines()]
    assert exchanges[-1]["granted"] is False
    assert "DELETED" in exchanges[-1]["reason"]


def test_a_key_of_a_deleted_account_can_no_longer_sign_in(gcloud: PluginClient) -> None:
    account = new_account(gcloud)
    key = gcloud.create(KEY, "orphan-key", {"serviceAccountId": account.plain("name")})
    gcloud.delete(ACCOUNT, "orphan", account)
    with pytest.raises(RefreshError, match="invalid_grant"):
        sign_in(_key_file(key))


def test_keepers_force_a_new_key(gcloud: PluginClient) -> None:
    account = new_account(gcloud)
    props = {"serviceAccountId": account.plain("name"), "keepers": {"rotation": ""}}
    key = gcloud.create(KEY, "rotated", props)

    rotation = gcloud.diff(KEY, "rotated", key, {**props, "keepers": {"rotation": "2026-11"}})
    unchanged = gcloud.diff(KEY, "rotated", key, props)

    assert list(rotation.replaces) == ["keepers"]
    assert rotation.deleteBeforeReplace is False  # the new key exists before the old one goes
    assert unchanged.changes == provider_pb2.DiffResponse.DIFF_NONE


def test_preview_create_returns_unknown_computed_outputs(gcloud: PluginClient) -> None:
    account = new_account(gcloud)
    preview = gcloud.create(KEY, "preview", {"serviceAccountId": account.plain("name")}, preview=True)
    assert preview.id == ""
    assert wire.reveal(preview.outputs["privateKey"]) == wire.UNKNOWN
    assert wire.is_secret(preview.outputs["privateKey"])


def test_the_journal_never_holds_key_material(gcloud: PluginClient, cloud: LocalCloud) -> None:
    account = new_account(gcloud)
    key = gcloud.create(KEY, "journaled", {"serviceAccountId": account.plain("name")})
    gcloud.delete(KEY, "journaled", key)
    key_file = json.loads(base64.b64decode(key.plain("privateKey")))

    text = cloud.journal.path.read_text()
    assert "PRIVATE KEY" not in text
    assert key.plain("privateKey") not in text
    assert key_file["private_key"].splitlines()[1] not in text
    entries = journal_for(cloud, f"{KEY}::journaled")
    assert [e["op"] for e in entries] == ["create", "delete"]
    assert all(e["type"] == KEY and e["name"] == "journaled" for e in entries)


def test_pools_are_soft_deleted_and_their_ids_cannot_be_reused(plugins: Any) -> None:
    gcloud = plugins(gcp.PROVIDER, {"project": "acme-wif"})
    gcloud.create(SERVICE, "iam", {"service": "iam.googleapis.com"})
    pool_id = unique("ci-pool")
    pool = gcloud.create(POOL, "pool", {"workloadIdentityPoolId": pool_id})
    provider_props = {
        "workloadIdentityPoolId": pool_id,
        "workloadIdentityPoolProviderId": pool_id,
        "attributeMapping": {"google.subject": "assertion.sub"},
        "attributeCondition": 'assertion.repository_id == "1"',
        "oidc": {"issuerUri": "https://token.actions.githubusercontent.com"},
    }
    provider = gcloud.create(POOL_PROVIDER, "provider", provider_props)
    number = pool.plain("name").split("/")[1]

    assert number.isdigit()
    assert number != "acme-wif"
    assert provider.plain("name") == f"projects/{number}/locations/global/workloadIdentityPools/{pool_id}/providers/{pool_id}"
    with pytest.raises(PluginError, match="attribute condition"):
        gcloud.create(
            POOL_PROVIDER,
            "no-condition",
            {**provider_props, "workloadIdentityPoolProviderId": unique("p"), "attributeCondition": ""},
        )
    gcloud.delete(POOL_PROVIDER, "provider", provider)
    gcloud.delete(POOL, "pool", pool)
    with pytest.raises(PluginError, match="409"):
        gcloud.create(POOL, "pool-again", {"workloadIdentityPoolId": pool_id})


def test_service_account_member_is_recorded_on_the_account(gcloud: PluginClient, cloud: LocalCloud) -> None:
    account = new_account(gcloud)
    member = "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/attribute.repository_id/7"
    grant = gcloud.create(
        ACCOUNT_MEMBER,
        "wif-user",
        {"serviceAccountId": account.plain("name"), "role": "roles/iam.workloadIdentityUser", "member": member},
    )

    stored = cloud.gcp.read()["serviceAccounts"][account.plain("email")]["iam"]
    assert ["roles/iam.workloadIdentityUser", member] in stored
    gcloud.delete(ACCOUNT_MEMBER, "wif-user", grant)
    assert cloud.gcp.read()["serviceAccounts"][account.plain("email")]["iam"] == []


# --- pre-flight look-ups and import ---

GET_BUCKET = "gcp:storage/getBucket:getBucket"
GET_BUCKETS = "gcp:storage/getBuckets:getBuckets"
GET_POLICY = "gcp:projects/getOrganizationPolicy:getOrganizationPolicy"
KEY_CONSTRAINT = "constraints/iam.disableServiceAccountKeyCreation"


def test_bucket_lookups_answer_labels_as_upstream(gcloud: PluginClient, plugins: Any) -> None:
    name = unique("acme-ml-looked")
    labels = {"mlops-ci-stack": "vision-team"}
    props = {
        "name": name,
        "location": "EU",
        "uniformBucketLevelAccess": True,
        "publicAccessPrevention": "enforced",
        "labels": labels,
    }
    gcloud.create(BUCKET, "looked-up", props)
    unattributed = plugins(gcp.PROVIDER, {"project": "acme-ml", "addPulumiAttributionLabel": "false"})
    bare = unattributed.create(BUCKET, "no-labels", {"name": f"{name}-bare", "location": "EU"})

    found = gcloud.invoke(GET_BUCKET, {"name": name})
    listed = gcloud.invoke(GET_BUCKETS, {"project": "acme-ml", "prefix": name})

    assert (found["uniformBucketLevelAccess"], found["publicAccessPrevention"]) == (True, "enforced")
    # getBucket: labels only in effectiveLabels; getBuckets: the API's labels verbatim, null when none
    attributed = {**labels, "goog-pulumi-provisioned": "true"}
    assert (found["labels"], found["pulumiLabels"], found["effectiveLabels"]) == ({}, {}, attributed)
    assert [(b["name"], b["labels"]) for b in listed["buckets"]] == [(name, attributed), (bare.id, None)]
    assert gcloud.invoke(GET_BUCKETS, {"project": "other-project", "prefix": name})["buckets"] == []
    assert gcloud.invoke(GET_BUCKETS, {"project": "acme-ml", "prefix": name + "-x"})["buckets"] == []
    with pytest.raises(PluginError, match="404"):
        gcloud.invoke(GET_BUCKET, {"name": unique("acme-ml-absent")})


def test_a_kept_bucket_imports_without_its_labels(gcloud: PluginClient) -> None:
    """pulumi-gcp v9+ imports a bucket's labels into `effectiveLabels` only: a program that sets
    labels differs on `labels` and `pulumiLabels` (pulumi/pulumi-gcp#3044) unless it ignores them."""
    name = unique("acme-ml-kept")
    props = {"name": name, "location": "EU", "uniformBucketLevelAccess": True, "labels": {"stack": "t"}, "project": "acme-ml"}
    created = gcloud.create(BUCKET, "kept", props)
    answer = gcloud.read_import(BUCKET, "kept", name)

    assert answer.id == name
    imported = wire.from_struct(answer.inputs)
    outputs = wire.reveal(wire.from_struct(answer.properties))
    assert {k: imported[k] for k in props if k != "labels"} == {k: v for k, v in props.items() if k != "labels"}
    assert (imported["labels"], outputs["labels"], outputs["pulumiLabels"]) == ({}, {}, {})
    assert outputs["effectiveLabels"] == {"stack": "t", "goog-pulumi-provisioned": "true"}
    read = Created(name, wire.from_struct(answer.properties), imported)
    diff = gcloud.diff(BUCKET, "kept", read, created.inputs)
    assert sorted(diff.diffs) == ["labels", "pulumiLabels"]
    ignoring = gcloud.diff(BUCKET, "kept", read, created.inputs, ignore=["labels", "pulumiLabels"])
    assert ignoring.changes == provider_pb2.DiffResponse.DIFF_NONE
    assert gcloud.read_import(BUCKET, "gone", unique("acme-ml-gone")).id == ""


def test_a_bucket_keeps_its_attribution_label_through_updates(gcloud: PluginClient, cloud: LocalCloud) -> None:
    props = {"name": unique("acme-ml-relabel"), "location": "EU", "labels": {"a": "1"}}
    bucket = gcloud.create(BUCKET, "relabel", props)
    assert gcloud.diff(BUCKET, "relabel", bucket, props).changes == provider_pb2.DiffResponse.DIFF_NONE

    updated = gcloud.update(BUCKET, "relabel", bucket, {**props, "labels": {"b": "2"}})

    assert updated.plain("labels") == {"b": "2"}
    assert storage_get(cloud, f"/storage/v1/b/{bucket.id}")[1]["labels"] == {"b": "2", "goog-pulumi-provisioned": "true"}


def test_a_project_policy_is_seen_by_the_look_up_and_obeyed_by_the_key(gcloud: PluginClient, cloud: LocalCloud) -> None:
    open_project = gcloud.invoke(GET_POLICY, {"project": "acme-ml", "constraint": KEY_CONSTRAINT})
    assert open_project["booleanPolicies"] == []
    iam.block_key_creation(cloud, "acme-ml")
    try:
        enforced = gcloud.invoke(GET_POLICY, {"project": "acme-ml", "constraint": KEY_CONSTRAINT})
        other = gcloud.invoke(GET_POLICY, {"project": "acme-ml", "constraint": "constraints/compute.skipDefaultNetworkCreation"})

        assert enforced["booleanPolicies"] == [{"enforced": True}]
        assert other["booleanPolicies"] == []
        with pytest.raises(PluginError, match=r"(?s)Error 400: Key creation is not allowed.*failedPrecondition"):
            gcloud.create(KEY, "refused", {"serviceAccountId": new_account(gcloud).plain("name")})
    finally:
        with cloud.gcp.edit() as document:
            document["keyCreationDisabled"].remove("acme-ml")


def test_an_organization_policy_is_unseen_by_the_project_look_up_but_obeyed(plugins: Any, cloud: LocalCloud) -> None:
    """Secure-by-default organizations enforce the block above the project: v1 getOrgPolicy on the
    project answers nothing, and key creation fails all the same."""
    gcloud = plugins(gcp.PROVIDER, {"project": "acme-new-org"})
    gcloud.create(SERVICE, "iam", {"service": "iam.googleapis.com"})
    iam.block_key_creation(cloud, "acme-new-org", where="organization")

    looked_up = gcloud.invoke(GET_POLICY, {"project": "acme-new-org", "constraint": KEY_CONSTRAINT})

    assert looked_up["booleanPolicies"] == []
    account = gcloud.create(ACCOUNT, "blocked", {"accountId": unique("dvc-ci-blocked")})
    with pytest.raises(PluginError, match=r"iam\.managed\.disableServiceAccountKeyCreation"):
        gcloud.create(KEY, "refused", {"serviceAccountId": account.plain("name")})


# --- Google's timing: new keys and grants, newly enabled APIs, the deployer's own project ---


@pytest.fixture
def delays(cloud: LocalCloud) -> Any:
    """Set gcp.json `behaviour` for one test; put back as it was."""
    before = dict(cloud.gcp.read().get("behaviour") or {})
    yield
    with cloud.gcp.edit() as document:
        document["behaviour"] = before


def storage_call(cloud: LocalCloud, path: str, token: str = "", method: str = "GET") -> tuple[int, Any]:
    """A request to Cloud Storage as clients see it (the front), with a bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"{cloud.urls()['storageProxy']}{path}", method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.mark.usefixtures("delays")
def test_a_new_key_and_a_new_grant_take_effect_after_the_propagation_delay(gcloud: PluginClient, cloud: LocalCloud) -> None:
    bucket = gcloud.create(BUCKET, "propagating", {"name": unique("acme-ml-prop"), "location": "EU"})
    account = new_account(gcloud)
    iam.set_propagation_delay(cloud, 3)
    key = gcloud.create(KEY, "young", {"serviceAccountId": account.plain("name")})
    viewer = {"bucket": bucket.id, "role": "roles/storage.objectViewer", "member": account.plain("member")}
    gcloud.create(BUCKET_MEMBER, "young-grant", viewer)
    permissions = "permissions=storage.objects.list&permissions=storage.objects.create"

    with pytest.raises(RefreshError, match="invalid_grant"):
        sign_in(_key_file(key))
    time.sleep(3.2)
    token = sign_in(_key_file(key))
    assert storage_call(cloud, f"/storage/v1/b/{bucket.id}/o", token)[0] == 200
    assert storage_call(cloud, f"/storage/v1/b/{bucket.id}/iam/testPermissions?{permissions}", token)[1]["permissions"] == [
        "storage.objects.list"
    ]
    later = gcloud.create(BUCKET_MEMBER, "later", {**viewer, "role": "roles/storage.objectCreator"})
    assert storage_call(cloud, f"/storage/v1/b/{bucket.id}/iam/testPermissions?{permissions}", token)[1]["permissions"] == [
        "storage.objects.list"
    ]
    refused = storage_call(cloud, f"/upload/storage/v1/b/{bucket.id}/o?uploadType=media&name=x", token, "POST")
    assert (refused[0], refused[1]["error"]["errors"][0]["reason"]) == (403, "forbidden")
    assert "storage.objects.create" in refused[1]["error"]["message"]
    assert later.id


def test_storage_asks_for_a_token_the_token_endpoint_issued(gcloud: PluginClient, cloud: LocalCloud) -> None:
    bucket = gcloud.create(BUCKET, "guarded", {"name": unique("acme-ml-guarded"), "location": "EU"})
    stranger = new_account(gcloud)
    token = sign_in(_key_file(gcloud.create(KEY, "stranger", {"serviceAccountId": stranger.plain("name")})))

    assert storage_call(cloud, f"/storage/v1/b/{bucket.id}/o")[0] == 401
    assert storage_call(cloud, f"/storage/v1/b/{bucket.id}/o", "ya29.forged")[0] == 401
    assert storage_call(cloud, f"/storage/v1/b/{bucket.id}/o", token)[0] == 403  # no grant on this bucket
    tested = storage_call(cloud, f"/storage/v1/b/{bucket.id}/iam/testPermissions?permissions=storage.objects.get", token)
    assert "permissions" not in tested[1]


@pytest.mark.usefixtures("delays")
def test_an_api_answers_service_disabled_for_a_while_after_it_is_enabled(plugins: Any, cloud: LocalCloud) -> None:
    gcloud = plugins(gcp.PROVIDER, {"project": "acme-fresh"})
    iam.set_service_enable_delay(cloud, 2)
    gcloud.create(SERVICE, "iam", {"service": "iam.googleapis.com"})

    with pytest.raises(PluginError, match=r"(?s)If you enabled this API recently.*SERVICE_DISABLED"):
        gcloud.create(ACCOUNT, "too-early", {"accountId": unique("dvc-ci-early")})
    time.sleep(2.2)
    assert gcloud.create(ACCOUNT, "in-time", {"accountId": unique("dvc-ci-later")}).plain("email")


@pytest.mark.usefixtures("delays")
def test_cloud_resource_manager_off_in_the_deployers_project_breaks_services_and_the_policy_look_up(
    gcloud: PluginClient, cloud: LocalCloud
) -> None:
    iam.disable_caller_api(cloud, iam.CRM_API)
    expected = r"(?s)Cloud Resource Manager API has not been used in project \d+.*SERVICE_DISABLED"
    with pytest.raises(PluginError, match=expected):
        gcloud.create(SERVICE, "sts", {"service": "sts.googleapis.com", "project": "acme-ml"})
    with pytest.raises(PluginError, match=expected):
        gcloud.invoke(GET_POLICY, {"project": "acme-ml", "constraint": KEY_CONSTRAINT})


def test_a_service_left_enabled_on_destroy_unless_told(gcloud: PluginClient, cloud: LocalCloud) -> None:
    """Upstream's `disable_on_destroy` has no default: false, destroy makes no call."""
    service = gcloud.create(SERVICE, "kept-on", {"service": "bigquery.googleapis.com", "project": "acme-ml"})
    gcloud.delete(SERVICE, "kept-on", service)
    assert cloud.gcp.read()["services"]["acme-ml/bigquery.googleapis.com"]["state"] == "ENABLED"
