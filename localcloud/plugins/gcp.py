"""The `gcp` plugin (10.2.0): the Google Cloud resources mlops-ci creates, on the local cloud.

Buckets and their IAM policies live in the storage emulator; service accounts, key public halves,
service-account IAM members, enabled services and workload identity pools in `gcp.json`, which
the token endpoint reads to decide whether a key may still sign in.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, ClassVar, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from localcloud import iam, services, wire
from localcloud.key_files import new_key_file
from localcloud.server import CloudError, Context, Provider, ResourceType, serve
from localcloud.state import LocalCloud

VERSION = "10.2.0"
SOFT_DELETE_DAYS = 30
_ACCOUNT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
_POOL_ID = re.compile(r"[a-z0-9-]{4,32}")
_MEMBER = re.compile(r"(allUsers|allAuthenticatedUsers|(user|serviceAccount|group|domain|principal|principalSet):\S+)")


def _utc(moment: datetime.datetime | None = None) -> str:
    return (moment or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def project_number(ctx: Context, project: str) -> str:
    """The project's number, assigned the first time the local cloud sees the project."""
    with ctx.cloud.gcp.edit() as gcp:
        entry = gcp.setdefault("projects", {}).setdefault(project, {})
        entry.setdefault("number", str(secrets.randbelow(9 * 10**11) + 10**11))
        return str(entry["number"])


def require_api(ctx: Context, project: str, api: str) -> None:
    """Google refuses calls to a service the project has not enabled, and for a few minutes after
    it was enabled (403 SERVICE_DISABLED): nothing in the provider retries it (upstream
    `transport/error_retry_predicates.go` has no such predicate; only Service Usage's own
    operation polling retries "has not been used in project")."""
    gcp = ctx.cloud.gcp.read()
    service = gcp.get("services", {}).get(f"{project}/{api}", {})
    if service.get("state") != "ENABLED" or iam.young(gcp, service.get("enableTime"), "serviceEnableDelaySeconds"):
        raise CloudError(403, iam.disabled_api_message(api, project_number(ctx, project)))


def _caller_api(ctx: Context, api: str, what: str) -> None:
    """The deployer's own project must have `api` enabled (its quota project answers for it)."""
    problem = iam.caller_api_problem(ctx.cloud.gcp.read(), api)
    if problem:
        raise CloudError(403, f"{what}: {problem}")


def _project(ctx: Context, inputs: wire.Props) -> str:
    project = inputs.get("project") or ctx.config.get("project")
    if not project:
        raise CloudError(400, "project: required field is not set (set gcp:project or the resource's project)")
    return str(project)


# --- Cloud Storage, through the emulator's JSON API ---


def _storage(ctx: Context, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    base = services.start(ctx.cloud.root)["storage"]
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text.strip() else {}
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            payload: Any = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            payload = {"raw": text.decode(errors="replace")}
        return error.code, payload


def bucket_name_problem(name: str) -> str | None:
    parts = name.split(".")
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*[a-z0-9]", name) or not 3 <= len(name) <= 222:
        return "bucket names are 3-63 (222 with dots) lowercase letters, digits, -, _ and ., starting and ending alphanumeric"
    if ("." not in name and len(name) > 63) or any(len(part) > 63 for part in parts):
        return "each dot-separated part of a bucket name is at most 63 characters"
    if name.startswith("goog") or "google" in name:
        return "bucket names cannot begin with goog or contain google"
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return None
    return "bucket names cannot be IP addresses"


class Service(ResourceType):
    """`google_project_service` (upstream `resource_google_project_service.go`): `project` and
    `service` force a new resource; `disableOnDestroy` has no default (false: destroy leaves the
    API on, without a call). Create first lists the project's enabled services through Service
    Usage (`BatchRequestReadServices`), billed to the deployer's project without
    `user_project_override` (its 403 when the API is off there: terraform-provider-google #1538,
    #14174), then adopts an API already enabled, else enables it; then, as every Read, it reads
    the project through Cloud Resource Manager v1 (`projects.get`), so a deployer whose own
    project has that API disabled gets its 403, unhandled (`HandleNotFoundError` only swallows 404)."""

    token = "gcp:projects/service:Service"
    required = ("service",)
    force_new = frozenset({"project", "service"})

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        project, service = _project(ctx, inputs), str(inputs["service"])
        if not service.endswith(".googleapis.com"):
            raise CloudError(
                403, f"googleapi: Error 403: Service {service} not found or permission denied., SERVICE_CONFIG_NOT_FOUND"
            )
        project_number(ctx, project)
        _caller_api(
            ctx,
            iam.SERVICE_USAGE_API,
            f"Error when reading or editing Project Service : Request `List Project Services {project}` returned error:"
            f" Failed to list enabled services for project {project}",
        )
        with ctx.cloud.gcp.edit() as gcp:
            services_ = gcp.setdefault("services", {})
            if services_.get(f"{project}/{service}", {}).get("state") != "ENABLED":
                services_[f"{project}/{service}"] = {"state": "ENABLED", "enableTime": time.time()}
        _caller_api(ctx, iam.CRM_API, f"Error when reading or editing Project Service {project}/{service}")
        return f"{project}/{service}", {**inputs, "project": project}

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        return {**olds, **news}

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        if props.get("disableOnDestroy"):
            with ctx.cloud.gcp.edit() as gcp:
                gcp.setdefault("services", {})[id_] = {"state": "DISABLED"}

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        _caller_api(ctx, iam.CRM_API, f"Error when reading or editing Project Service {id_}")
        state = ctx.cloud.gcp.read().get("services", {}).get(id_, {}).get("state")
        return props if state == "ENABLED" else None


ATTRIBUTION_LABEL = ("goog-pulumi-provisioned", "true")
"""Terraform's attribution label (`transport/config.go` `AttributionKey`), renamed by pulumi-gcp's
patch `0006-Rename-default-provisioning-label-to-goog-pulumi-pro.patch`; added at creation only
(`terraform_attribution_label_addition_strategy` defaults to CREATION_ONLY) unless the provider's
`addPulumiAttributionLabel` is false."""


def _attributed(ctx: Context) -> bool:
    return str(ctx.config.get("addPulumiAttributionLabel", "true")).lower() != "false"


def _kept(keys: Any, labels: dict[str, str]) -> dict[str, str]:
    """`tpgresource.SetLabels`: only the keys the field already holds, with the cloud's values."""
    return {k: labels[k] for k in dict(keys or {}) if k in labels}


class Bucket(ResourceType):
    """`google_storage_bucket` (upstream `resource_storage_bucket.go`; labels by
    `tpgresource/labels.go`, renamed by pulumi-gcp `provider/labels.go` `fixLabelNames`): `labels`
    are the program's; `pulumiLabels` (Terraform's `terraform_labels`) add the attribution label;
    `effectiveLabels` are all the bucket's labels; both secret. An import (a Read without state)
    reads `labels` and `pulumiLabels` as {} (pulumi-gcp v9 dropped its bucket label-import patch,
    docs/version-9-update.md), so a program that sets labels differs from it, on `pulumiLabels`
    too (pulumi/pulumi-gcp#3044)."""

    token = "gcp:storage/bucket:Bucket"
    required = ("location",)
    defaults: ClassVar[Mapping[str, Any]] = {"forceDestroy": False}
    force_new = frozenset({"name", "project", "location"})
    computed = ("url", "selfLink", "projectNumber", "timeCreated", "updated", "storageClass", "effectiveLabels", "pulumiLabels")
    secret_outputs = frozenset({"effectiveLabels", "pulumiLabels"})
    plans_changes = True

    def validate(self, inputs: wire.Props) -> list[tuple[str, str]]:
        name = inputs.get("name")
        problem = bucket_name_problem(str(name)) if name else None
        return [("name", f"{name!r}: {problem}")] if problem else []

    def _metadata(self, inputs: wire.Props, labels: dict[str, str]) -> dict[str, Any]:
        return {
            "location": str(inputs["location"]).upper(),
            "storageClass": inputs.get("storageClass") or "STANDARD",
            "labels": labels,
            "iamConfiguration": {
                "uniformBucketLevelAccess": {"enabled": bool(inputs.get("uniformBucketLevelAccess"))},
                "publicAccessPrevention": inputs.get("publicAccessPrevention") or "inherited",
            },
        }

    @staticmethod
    def _planned_labels(labels: Any, effective: dict[str, str], creating: bool, attributed: bool) -> dict[str, str]:
        """`setLabelsFields`: the resource's labels, plus the attribution label on creation or
        when the bucket already carries it."""
        planned = dict(labels or {})
        key, value = ATTRIBUTION_LABEL
        if key in effective or (creating and attributed):
            planned[key] = value
        return planned

    def _outputs(self, ctx: Context, inputs: wire.Props, project: str, found: dict[str, Any], kept: wire.Props) -> wire.Props:
        """The state as upstream's `setStorageBucket` writes it; `kept` holds the label maps to
        keep (their keys) — the program's on create and update, the recorded ones on refresh."""
        name = str(inputs["name"])
        effective = dict(found.get("labels") or {})
        return {
            **inputs,
            "name": name,
            "project": project,
            "location": str(inputs["location"]).upper(),
            "storageClass": inputs.get("storageClass") or "STANDARD",
            "url": f"gs://{name}",
            "selfLink": f"https://www.googleapis.com/storage/v1/b/{name}",
            "projectNumber": int(project_number(ctx, project)),
            "timeCreated": found.get("resource", {}).get("timeCreated", ""),
            "updated": found.get("resource", {}).get("updated", ""),
            "labels": _kept(kept.get("labels"), effective),
            "effectiveLabels": effective,
            "pulumiLabels": _kept(kept.get("pulumiLabels"), effective),
        }

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        project = _project(ctx, inputs)
        name = inputs.get("name") or f"{ctx.name}-{secrets.token_hex(4)}"
        inputs = {**inputs, "name": name}
        require_api(ctx, project, "storage.googleapis.com")
        status, answer = _storage(ctx, "POST", f"/storage/v1/b?project={urllib.parse.quote(project)}", {"name": name})
        if status == 409:
            raise CloudError(
                409,
                f"googleapi: Error 409: Your previous request to create the named bucket succeeded and you already own it. "
                f"(bucket {name}), conflict",
            )
        if status != 200:
            raise CloudError(status, f"googleapi: Error {status}: creating bucket {name}: {answer}")
        labels = self._planned_labels(inputs.get("labels"), {}, creating=True, attributed=_attributed(ctx))
        return self._write(ctx, str(name), project, inputs, labels)

    def _write(self, ctx: Context, name: str, project: str, inputs: wire.Props, labels: dict[str, str]) -> tuple[str, wire.Props]:
        status, answer = _storage(ctx, "PATCH", f"/storage/v1/b/{name}", self._metadata(inputs, labels))
        if status == 404:
            raise CloudError(404, f"googleapi: Error 404: The specified bucket does not exist. (bucket {name}), notFound")
        _remember_bucket(ctx, name, project, inputs, labels, answer)
        found = bucket_state(ctx, name) or {}
        return name, self._outputs(ctx, inputs, project, found, {"labels": inputs.get("labels"), "pulumiLabels": labels})

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        project = str(olds.get("project") or _project(ctx, news))
        effective = dict(olds.get("effectiveLabels") or {})
        planned = self._planned_labels(news.get("labels"), effective, creating=False, attributed=_attributed(ctx))
        # labels set outside the program stay; the ones it managed and dropped go
        unmanaged = {k: v for k, v in effective.items() if k not in dict(olds.get("pulumiLabels") or {})}
        return self._write(ctx, id_, project, {**news, "name": id_}, {**unmanaged, **planned})[1]

    def planned_changes(self, ctx: Context, olds: wire.Props, news: wire.Props) -> dict[str, bool]:
        planned = self._planned_labels(news.get("labels"), dict(olds.get("effectiveLabels") or {}), False, _attributed(ctx))
        return {"pulumiLabels": False} if planned != dict(olds.get("pulumiLabels") or {}) else {}

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        # Upstream `resourceStorageBucketDelete` lists the objects first and refuses by itself when
        # some exist and `force_destroy` is false (no DELETE sent).
        _, listing = _storage(ctx, "GET", f"/storage/v1/b/{id_}/o")
        if listing.get("items") and not props.get("forceDestroy"):
            raise CloudError(409, f"Error trying to delete bucket {id_} without `force_destroy` set to true")
        for item in listing.get("items", []):
            _storage(ctx, "DELETE", f"/storage/v1/b/{id_}/o/{urllib.parse.quote(item['name'], safe='')}")
        status, _ = _storage(ctx, "DELETE", f"/storage/v1/b/{id_}")
        if status == 409:
            raise CloudError(409, f"could not delete non-empty bucket due to error when listing contents: (bucket {id_})")
        if status not in (200, 204, 404):
            raise CloudError(status, f"googleapi: Error {status}: deleting bucket {id_}")

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        found = bucket_state(ctx, id_)
        if found is None:
            return None
        keys = ("name", "location", "uniformBucketLevelAccess", "publicAccessPrevention")
        inputs = {**props, **{key: found[key] for key in keys if found.get(key) is not None}}
        # refresh keeps the label keys recorded; an import (nothing recorded) has none
        outputs = self._outputs(ctx, inputs, str(found["project"]), found, props)
        # The location as written at creation: the API answers it upper-case, and upstream suppresses
        # that difference in its diff, which this plugin's plain diff does not.
        return {**outputs, "location": found["location"]}

    def read_inputs(self, outputs: wire.Props) -> wire.Props | None:
        """The inputs an import records: what the bucket has, its labels as upstream imports them
        (none: they are in `effectiveLabels` only), so the engine diffs the program's against that."""
        keys = ("name", "project", "labels", "uniformBucketLevelAccess", "publicAccessPrevention", "location")
        return {"forceDestroy": False, **{key: outputs[key] for key in keys if key in outputs}}


def _remember_bucket(ctx: Context, name: str, project: str, inputs: wire.Props, labels: dict[str, str], resource: Any) -> None:
    """The bucket's project, labels (all of them, as the API holds them) and settings in gcp.json:
    the emulator keeps neither the project of a bucket nor (reliably) its labels and IAM
    configuration, which `getBucket`/`getBuckets` and import answer."""
    with ctx.cloud.gcp.edit() as gcp:
        gcp.setdefault("buckets", {})[name] = {
            "project": project,
            "location": str(inputs["location"]),
            "labels": labels,
            "storageClass": inputs.get("storageClass") or "STANDARD",
            # as written (None: not set), so an import reads back exactly the arguments
            "uniformBucketLevelAccess": inputs.get("uniformBucketLevelAccess"),
            "publicAccessPrevention": inputs.get("publicAccessPrevention"),
            "resource": {k: v for k, v in dict(resource or {}).items() if k in ("timeCreated", "updated")},
        }


def bucket_state(ctx: Context, name: str) -> dict[str, Any] | None:
    """The bucket if the emulator has it: its settings as recorded at creation (or defaults for a
    bucket created behind the plugin's back, e.g. by a test), or None."""
    status, answer = _storage(ctx, "GET", f"/storage/v1/b/{urllib.parse.quote(name, safe='')}")
    if status != 200:
        return None
    recorded = ctx.cloud.gcp.read().get("buckets", {}).get(name)
    if recorded is None:
        iam_config = dict(answer.get("iamConfiguration") or {})
        recorded = {
            "project": str(ctx.config.get("project") or ""),
            "location": str(answer.get("location") or "US").upper(),
            "labels": dict(answer.get("labels") or {}),
            "storageClass": answer.get("storageClass") or "STANDARD",
            "uniformBucketLevelAccess": bool(dict(iam_config.get("uniformBucketLevelAccess") or {}).get("enabled")),
            "publicAccessPrevention": iam_config.get("publicAccessPrevention") or "inherited",
            "resource": {},
        }
    return {"name": name, **recorded}


def get_bucket(ctx: Context, args: wire.Props) -> wire.Props:
    """As `data.google_storage_bucket` (`data_source_google_storage_bucket.go`: `Buckets.Get`,
    then the resource's `setStorageBucket` with no prior labels): `labels` and `pulumiLabels` are
    {}, the bucket's labels are in `effectiveLabels` only; an error if it does not exist."""
    name = str(args["name"])
    found = bucket_state(ctx, name)
    if found is None:
        raise CloudError(404, f"googleapi: Error 404: The specified bucket does not exist. (bucket {name}), notFound")
    return {
        **{k: v for k, v in found.items() if k != "resource"},
        "uniformBucketLevelAccess": bool(found["uniformBucketLevelAccess"]),
        "publicAccessPrevention": found["publicAccessPrevention"] or "inherited",
        "url": f"gs://{name}",
        "selfLink": f"https://www.googleapis.com/storage/v1/b/{name}",
        "forceDestroy": False,
        "labels": {},
        "pulumiLabels": {},
        "effectiveLabels": dict(found["labels"]),
        "timeCreated": found.get("resource", {}).get("timeCreated", ""),
    }


def get_buckets(ctx: Context, args: wire.Props) -> wire.Props:
    """As `data.google_storage_buckets` (`data_source_google_storage_buckets.go`: the raw `GET
    storage/v1/b?project=&prefix=`): the project's buckets whose names start with `prefix`, each
    with its labels verbatim from the API (the attribution label included), null when it has none."""
    project = _project(ctx, args)
    prefix = str(args.get("prefix") or "")
    _, listing = _storage(ctx, "GET", f"/storage/v1/b?project={urllib.parse.quote(project)}")
    buckets: list[dict[str, Any]] = []
    for item in listing.get("items", []):
        name = str(item.get("name", ""))
        found = bucket_state(ctx, name) if name.startswith(prefix) else None
        if found is not None and found["project"] == project:
            buckets.append(
                {
                    "name": name,
                    "labels": dict(found["labels"]) or None,
                    "location": found["location"],
                    "storageClass": found["storageClass"],
                    "selfLink": f"https://www.googleapis.com/storage/v1/b/{name}",
                }
            )
    return {"project": project, "prefix": prefix, "buckets": sorted(buckets, key=lambda b: b["name"])}


KEY_CREATION_CONSTRAINTS = (iam.KEY_CREATION_CONSTRAINT, iam.KEY_CREATION_CONSTRAINT.removeprefix("constraints/"))


def get_organization_policy(ctx: Context, args: wire.Props) -> wire.Props:
    """As `data.google_project_organization_policy`: Cloud Resource Manager v1
    `projects.getOrgPolicy` (upstream `resourceGoogleProjectOrganizationPolicyRead`), the policy
    set on the project itself: `booleanPolicies` enforced for the projects in gcp.json
    `keyCreationDisabled`, and nothing for an enforcement inherited from the organization
    (`keyCreationDisabledByOrganization`, which the Key obeys all the same). 403 when the API is
    disabled in the deployer's project."""
    project, constraint = str(args["project"]), str(args["constraint"])
    _caller_api(ctx, iam.CRM_API, f"Error reading organization policy for project {project}")
    enforced = constraint in KEY_CREATION_CONSTRAINTS and project in ctx.cloud.gcp.read().get("keyCreationDisabled", [])
    return {
        "project": project,
        "constraint": constraint,
        "booleanPolicies": [{"enforced": True}] if enforced else [],
        "listPolicies": [],
        "restorePolicies": [],
        "version": 0,
        "etag": base64.b64encode(secrets.token_bytes(8)).decode() if enforced else "",
        "updateTime": _utc() if enforced else "",
    }


class BucketIAMMember(ResourceType):
    token = "gcp:storage/bucketIAMMember:BucketIAMMember"
    required = ("bucket", "role", "member")
    force_new = frozenset({"bucket", "role", "member", "condition"})
    computed = ("etag",)

    def validate(self, inputs: wire.Props) -> list[tuple[str, str]]:
        member = inputs.get("member")
        if member and not _MEMBER.fullmatch(str(member)):
            return [("member", f"{member!r}: not a member such as serviceAccount:<email> or user:<email>")]
        return []

    def _policy(self, ctx: Context, bucket: str) -> dict[str, Any]:
        status, policy = _storage(ctx, "GET", f"/storage/v1/b/{bucket}/iam")
        if status == 404:
            raise CloudError(404, f"googleapi: Error 404: The specified bucket does not exist. (bucket {bucket}), notFound")
        return dict(policy)

    def _change(self, ctx: Context, bucket: str, role: str, member: str, add: bool) -> str:
        # The engine creates several members of one bucket at once, and the emulator has no etag
        # check: one read-modify-write at a time per bucket (upstream serialises them per bucket too).
        with ctx.cloud.lock(f"iam-b-{bucket}"):
            return self._read_modify_write(ctx, bucket, role, member, add)

    def _read_modify_write(self, ctx: Context, bucket: str, role: str, member: str, add: bool) -> str:
        policy = self._policy(ctx, bucket)
        bindings = cast(list[dict[str, Any]], list(policy.get("bindings", [])))
        binding = next((b for b in bindings if b.get("role") == role and "condition" not in b), None)
        if binding is None:
            binding = cast(dict[str, Any], {"role": role, "members": []})
            bindings.append(binding)
        members = [m for m in cast(list[str], binding.get("members", [])) if m != member] + ([member] if add else [])
        binding["members"] = members
        policy["bindings"] = [b for b in bindings if b.get("members")]
        policy["etag"] = base64.b64encode(secrets.token_bytes(8)).decode()
        _storage(ctx, "PUT", f"/storage/v1/b/{bucket}/iam", policy)
        return str(policy["etag"])

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        bucket, role, member = str(inputs["bucket"]).removeprefix("b/"), str(inputs["role"]), str(inputs["member"])
        if not role.startswith(("roles/", "projects/", "organizations/")):
            raise CloudError(400, f"googleapi: Error 400: Role {role} is not supported for this resource., badRequest")
        etag = self._change(ctx, bucket, role, member, add=True)
        with ctx.cloud.gcp.edit() as gcp:  # the storage front honours it after the propagation delay
            gcp.setdefault("grantTimes", {})[f"{bucket}/{role}/{member}"] = time.time()
        return f"b/{bucket}/{role}/{member}", {**inputs, "etag": etag}

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        bucket = str(props["bucket"]).removeprefix("b/")
        status, _ = _storage(ctx, "GET", f"/storage/v1/b/{bucket}")
        if status == 404:
            return  # the bucket, and its policy, are gone
        self._change(ctx, bucket, str(props["role"]), str(props["member"]), add=False)

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        try:
            policy = self._policy(ctx, str(props["bucket"]).removeprefix("b/"))
        except CloudError:
            return None
        held = any(b.get("role") == props["role"] and props["member"] in b.get("members", []) for b in policy.get("bindings", []))
        return props if held else None


# --- IAM ---


def _account_email(service_account_id: str) -> str:
    """`projects/<p>/serviceAccounts/<email>`, `<email>` or `projects/-/serviceAccounts/<email>` → email."""
    return service_account_id.rsplit("/", 1)[-1]


def _account(ctx: Context, service_account_id: str) -> dict[str, Any]:
    email = _account_email(service_account_id)
    account = ctx.cloud.gcp.read().get("serviceAccounts", {}).get(email)
    if account is None:
        raise CloudError(404, f"googleapi: Error 404: Service account {service_account_id} does not exist., notFound")
    return dict(account)


def get_account(ctx: Context, args: wire.Props) -> wire.Props:
    """As `data.google_service_account` (terraform-provider-google-beta
    services/resourcemanager/data_source_google_service_account.go, `dataSourceGoogleServiceAccountRead`):
    `account_id` made `projects/<project>/serviceAccounts/<id>@<project>.iam.gserviceaccount.com`
    (`tpgresource.ServiceAccountFQN`) unless it is an email or a full name, then IAM `ServiceAccounts.Get`;
    a missing account fails the look-up (`HandleDataSourceNotFoundError`)."""
    account_id = str(args["accountId"])
    if "@" not in account_id and "/" not in account_id:
        project = _project(ctx, args)
        account_id = f"projects/{project}/serviceAccounts/{account_id}@{project}.iam.gserviceaccount.com"
    email = _account_email(account_id)
    account = _account(ctx, account_id)
    name = f"projects/{account['project']}/serviceAccounts/{email}"
    return {
        "id": name,
        "name": name,
        "email": email,
        "uniqueId": account["uniqueId"],
        "project": account["project"],
        "accountId": email.split("@", 1)[0],
        "displayName": account.get("displayName", ""),
        "member": f"serviceAccount:{email}",
        "disabled": bool(account.get("disabled")),
    }


class Account(ResourceType):
    token = "gcp:serviceaccount/account:Account"
    required = ("accountId",)
    defaults: ClassVar[Mapping[str, Any]] = {"disabled": False}
    force_new = frozenset({"accountId", "project"})
    computed = ("email", "name", "member", "uniqueId")

    def validate(self, inputs: wire.Props) -> list[tuple[str, str]]:
        account_id = inputs.get("accountId")
        if account_id and not _ACCOUNT_ID.fullmatch(str(account_id)):
            return [("accountId", f'"account_id" ("{account_id}") doesn\'t match regexp "^[a-z](?:[-a-z0-9]{{4,28}}[a-z0-9])$"')]
        return []

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        project, account_id = _project(ctx, inputs), str(inputs["accountId"])
        require_api(ctx, project, "iam.googleapis.com")
        email = f"{account_id}@{project}.iam.gserviceaccount.com"
        name = f"projects/{project}/serviceAccounts/{email}"
        unique_id = str(secrets.randbelow(9 * 10**20) + 10**20)
        with ctx.cloud.gcp.edit() as gcp:
            accounts = gcp.setdefault("serviceAccounts", {})
            if email in accounts:
                raise CloudError(
                    409,
                    f"googleapi: Error 409: Service account {account_id} already exists within project projects/{project}., "
                    "alreadyExists",
                )
            accounts[email] = {
                "project": project,
                "uniqueId": unique_id,
                "displayName": inputs.get("displayName", ""),
                "disabled": bool(inputs.get("disabled")),
                "iam": [],
            }
        return name, {
            **inputs,
            "project": project,
            "email": email,
            "name": name,
            "member": f"serviceAccount:{email}",
            "uniqueId": unique_id,
        }

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        email = _account_email(id_)
        with ctx.cloud.gcp.edit() as gcp:
            account = gcp.get("serviceAccounts", {}).get(email)
            if account is None:
                raise CloudError(404, f"googleapi: Error 404: Service account {id_} does not exist., notFound")
            account["displayName"] = news.get("displayName", "")
            account["disabled"] = bool(news.get("disabled"))
        return {**olds, **news}

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        email = _account_email(id_)
        with ctx.cloud.gcp.edit() as gcp:
            gcp.get("serviceAccounts", {}).pop(email, None)
            for key in gcp.get("keys", {}).values():
                if key.get("email") == email and key.get("state") == "ACTIVE":
                    key["state"] = "DELETED"  # an account's keys die with it

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        account = ctx.cloud.gcp.read().get("serviceAccounts", {}).get(_account_email(id_))
        return props if account and account.get("uniqueId") == props.get("uniqueId") else None


def mint_key(
    cloud: LocalCloud, email: str, project: str, unique_id: str
) -> tuple[str, dict[str, Any], bytes, datetime.datetime, datetime.datetime]:
    """A new RSA key of the account: its public half ACTIVE in gcp.json (the token endpoint
    honours it), the key file (private half) returned and kept nowhere."""
    key_file, private_key = new_key_file(email, project, unique_id, services.start(cloud.root)["token"])
    key_id = key_file["private_key_id"]
    valid_after = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    valid_before = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
    # The account's unique id as the common name: X.509 bounds a CN to 64 characters (RFC 5280
    # ub-common-name) and an account's email reaches 85. What Google's key certificates name: not verified.
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, unique_id)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_after)
        .not_valid_after(valid_before)
        .sign(private_key, hashes.SHA256())
    )
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    _register_key(cloud, key_id, {"email": email, "project": project, "publicKeyPem": public_pem})
    return key_id, key_file, certificate_pem, valid_after, valid_before


def _register_key(cloud: LocalCloud, key_id: str, key: dict[str, str]) -> None:
    """The key's public half, ACTIVE, in gcp.json: the token endpoint honours it (after the
    propagation delay from its creation time)."""
    with cloud.gcp.edit() as gcp:
        gcp.setdefault("keys", {})[key_id] = {**key, "state": "ACTIVE", "createTime": time.time()}


def _key_creation_refused(constraint: str, project: str, email: str) -> str:
    """Upstream's `Error creating service account key: ` and Google's 400 FAILED_PRECONDITION
    (cloud.google.com/iam/docs/troubleshoot-org-policies, REST), as googleapi prints it."""
    subject = f"projects/{project}/serviceAccounts/{email}?configvalue={urllib.parse.quote(email)}"
    violation = {"type": constraint, "subject": subject, "description": "Key creation is not allowed on this service account."}
    details = [{"@type": "type.googleapis.com/google.rpc.PreconditionFailure", "violations": [violation]}]
    return (
        "Error creating service account key: googleapi: Error 400: Key creation is not allowed on this service account."
        f"\nDetails:\n{json.dumps(details)}, failedPrecondition"
    )


class Key(ResourceType):
    token = "gcp:serviceaccount/key:Key"
    required = ("serviceAccountId",)
    defaults: ClassVar[Mapping[str, Any]] = {
        "keyAlgorithm": "KEY_ALG_RSA_2048",
        "privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE",
        "publicKeyType": "TYPE_X509_PEM_FILE",
    }
    # The upstream resource has no update: every argument forces a new key.
    force_new = frozenset({"serviceAccountId", "keepers", "keyAlgorithm", "privateKeyType", "publicKeyType", "publicKeyData"})
    computed = ("name", "privateKey", "publicKey", "validAfter", "validBefore")
    secret_outputs = frozenset({"privateKey"})

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        account_name = str(inputs["serviceAccountId"])
        account = _account(ctx, account_name)
        email, project = _account_email(account_name), str(account["project"])
        require_api(ctx, project, "iam.googleapis.com")
        constraint = iam.key_creation_blocked_by(ctx.cloud.gcp.read(), project)
        if constraint:
            raise CloudError(400, _key_creation_refused(constraint, project, email))
        key_id, key_file, certificate_pem, valid_after, valid_before = mint_key(ctx.cloud, email, project, account["uniqueId"])
        name = f"projects/{project}/serviceAccounts/{email}/keys/{key_id}"
        return name, {
            **inputs,
            "name": name,
            "privateKey": base64.b64encode(json.dumps(key_file, indent=2).encode()).decode(),
            "publicKey": base64.b64encode(certificate_pem).decode(),
            "validAfter": _utc(valid_after),
            "validBefore": _utc(valid_before),
        }

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        key_id = id_.rsplit("/", 1)[-1]
        with ctx.cloud.gcp.edit() as gcp:
            key = gcp.get("keys", {}).get(key_id)
            if key is not None:
                key["state"] = "DELETED"

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        key = ctx.cloud.gcp.read().get("keys", {}).get(id_.rsplit("/", 1)[-1])
        return props if key and key.get("state") == "ACTIVE" else None


class ServiceAccountIAMMember(ResourceType):
    token = "gcp:serviceaccount/iAMMember:IAMMember"
    required = ("serviceAccountId", "role", "member")
    force_new = frozenset({"serviceAccountId", "role", "member", "condition"})
    computed = ("etag",)

    def validate(self, inputs: wire.Props) -> list[tuple[str, str]]:
        member = inputs.get("member")
        if member and not _MEMBER.fullmatch(str(member)):
            return [("member", f"{member!r}: not a member such as serviceAccount:<email> or principalSet://...")]
        return []

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        account_name, role, member = str(inputs["serviceAccountId"]), str(inputs["role"]), str(inputs["member"])
        email = _account_email(account_name)
        if member.startswith("principalSet://iam.googleapis.com/"):
            pool = re.match(
                r"principalSet://iam\.googleapis\.com/(projects/\d+/locations/global/workloadIdentityPools/[^/]+)/", member
            )
            if not pool:
                raise CloudError(400, f"googleapi: Error 400: Invalid principalSet member {member}., badRequest")
        with ctx.cloud.gcp.edit() as gcp:
            account = gcp.get("serviceAccounts", {}).get(email)
            if account is None:
                raise CloudError(404, f"googleapi: Error 404: Service account {account_name} does not exist., notFound")
            grants = account.setdefault("iam", [])
            if [role, member] not in grants:
                grants.append([role, member])
        return f"{account_name}/{role}/{member}", {**inputs, "etag": base64.b64encode(secrets.token_bytes(8)).decode()}

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        email = _account_email(str(props["serviceAccountId"]))
        with ctx.cloud.gcp.edit() as gcp:
            account = gcp.get("serviceAccounts", {}).get(email)
            if account is not None:
                account["iam"] = [g for g in account.get("iam", []) if g != [props["role"], props["member"]]]

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        account = ctx.cloud.gcp.read().get("serviceAccounts", {}).get(_account_email(str(props["serviceAccountId"])))
        return props if account and [props["role"], props["member"]] in account.get("iam", []) else None


def _soft_deleted_conflict(entry: dict[str, Any] | None) -> bool:
    """An entity with this id exists, or was deleted less than 30 days ago."""
    if entry is None:
        return False
    if entry.get("state") != "DELETED":
        return True
    deleted = datetime.datetime.strptime(entry["deleteTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    return datetime.datetime.now(datetime.UTC) - deleted < datetime.timedelta(days=SOFT_DELETE_DAYS)


def _id_problem(field: str, value: Any) -> list[tuple[str, str]]:
    if value and (not _POOL_ID.fullmatch(str(value)) or str(value).startswith("gcp-")):
        return [(field, f"{value!r}: 4-32 lowercase letters, digits or hyphens, not starting with gcp-")]
    return []


class WorkloadIdentityPool(ResourceType):
    token = "gcp:iam/workloadIdentityPool:WorkloadIdentityPool"
    required = ("workloadIdentityPoolId",)
    force_new = frozenset({"project", "workloadIdentityPoolId"})
    computed = ("name", "state")

    def validate(self, inputs: wire.Props) -> list[tuple[str, str]]:
        return _id_problem("workloadIdentityPoolId", inputs.get("workloadIdentityPoolId"))

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        project, pool_id = _project(ctx, inputs), str(inputs["workloadIdentityPoolId"])
        require_api(ctx, project, "iam.googleapis.com")
        number = project_number(ctx, project)
        key = f"{project}/{pool_id}"
        with ctx.cloud.gcp.edit() as gcp:
            pools = gcp.setdefault("pools", {})
            if _soft_deleted_conflict(pools.get(key)):
                raise CloudError(409, "googleapi: Error 409: Requested entity already exists, alreadyExists")
            pools[key] = {"state": "ACTIVE", "disabled": bool(inputs.get("disabled"))}
        name = f"projects/{number}/locations/global/workloadIdentityPools/{pool_id}"
        return f"projects/{project}/locations/global/workloadIdentityPools/{pool_id}", {
            **inputs,
            "project": project,
            "name": name,
            "state": "ACTIVE",
        }

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        return {**olds, **news}

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        with ctx.cloud.gcp.edit() as gcp:
            entry = gcp.get("pools", {}).get(f"{props['project']}/{props['workloadIdentityPoolId']}")
            if entry is not None and entry.get("state") != "DELETED":
                entry.update(state="DELETED", deleteTime=_utc())

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        """Gone once soft-deleted: upstream `resourceIAMBetaWorkloadIdentityPoolDecoder` answers nil for
        state DELETED (the provider's too: `resourceIAMBetaWorkloadIdentityPoolProviderDecoder`)."""
        entry = ctx.cloud.gcp.read().get("pools", {}).get(f"{props['project']}/{props['workloadIdentityPoolId']}")
        return props if entry and entry.get("state") == "ACTIVE" else None


def _trust(inputs: wire.Props) -> dict[str, Any]:
    """What the local STS (localcloud/sts.py) checks a token against."""
    oidc = cast(dict[str, Any], inputs.get("oidc") or {})
    return {
        "issuerUri": oidc["issuerUri"],
        "allowedAudiences": list(oidc.get("allowedAudiences") or []),
        "attributeMapping": dict(inputs.get("attributeMapping") or {}),
        "attributeCondition": str(inputs.get("attributeCondition") or ""),
    }


class WorkloadIdentityPoolProvider(ResourceType):
    token = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"
    required = ("workloadIdentityPoolId", "workloadIdentityPoolProviderId")
    force_new = frozenset({"project", "workloadIdentityPoolId", "workloadIdentityPoolProviderId"})
    computed = ("name", "state")

    def validate(self, inputs: wire.Props) -> list[tuple[str, str]]:
        return _id_problem("workloadIdentityPoolProviderId", inputs.get("workloadIdentityPoolProviderId"))

    def _check(self, inputs: wire.Props) -> None:
        oidc = cast(dict[str, Any], inputs.get("oidc") or {})
        issuer = str(oidc.get("issuerUri", ""))
        if not issuer.startswith("https://"):
            raise CloudError(400, "googleapi: Error 400: The OIDC issuer URI must be an https URL., badRequest")
        if "google.subject" not in (inputs.get("attributeMapping") or {}):
            raise CloudError(
                400, "googleapi: Error 400: The attribute mapping must contain a mapping for google.subject., badRequest"
            )
        if issuer == "https://token.actions.githubusercontent.com" and not inputs.get("attributeCondition"):
            raise CloudError(
                400, "googleapi: Error 400: The attribute condition must reference one of the provider's claims., badRequest"
            )

    def create(self, ctx: Context, inputs: wire.Props) -> tuple[str, wire.Props]:
        project = _project(ctx, inputs)
        pool_id, provider_id = str(inputs["workloadIdentityPoolId"]), str(inputs["workloadIdentityPoolProviderId"])
        self._check(inputs)
        number = project_number(ctx, project)
        with ctx.cloud.gcp.edit() as gcp:
            pool = gcp.get("pools", {}).get(f"{project}/{pool_id}")
            if pool is None or pool.get("state") != "ACTIVE":
                raise CloudError(404, f"googleapi: Error 404: Requested entity was not found. (pool {pool_id}), notFound")
            providers = gcp.setdefault("poolProviders", {})
            key = f"{project}/{pool_id}/{provider_id}"
            if _soft_deleted_conflict(providers.get(key)):
                raise CloudError(409, "googleapi: Error 409: Requested entity already exists, alreadyExists")
            providers[key] = {"state": "ACTIVE", **_trust(inputs)}
        pool_name = f"projects/{number}/locations/global/workloadIdentityPools/{pool_id}"
        return f"projects/{project}/locations/global/workloadIdentityPools/{pool_id}/providers/{provider_id}", {
            **inputs,
            "project": project,
            "name": f"{pool_name}/providers/{provider_id}",
            "state": "ACTIVE",
        }

    def update(self, ctx: Context, id_: str, olds: wire.Props, news: wire.Props) -> wire.Props:
        self._check(news)
        key = f"{olds['project']}/{olds['workloadIdentityPoolId']}/{olds['workloadIdentityPoolProviderId']}"
        with ctx.cloud.gcp.edit() as gcp:
            gcp.get("poolProviders", {}).get(key, {}).update(_trust(news))
        return {**olds, **news}

    def delete(self, ctx: Context, id_: str, props: wire.Props) -> None:
        key = f"{props['project']}/{props['workloadIdentityPoolId']}/{props['workloadIdentityPoolProviderId']}"
        with ctx.cloud.gcp.edit() as gcp:
            entry = gcp.get("poolProviders", {}).get(key)
            if entry is not None and entry.get("state") != "DELETED":
                entry.update(state="DELETED", deleteTime=_utc())

    def read(self, ctx: Context, id_: str, props: wire.Props) -> wire.Props | None:
        key = f"{props['project']}/{props['workloadIdentityPoolId']}/{props['workloadIdentityPoolProviderId']}"
        entry = ctx.cloud.gcp.read().get("poolProviders", {}).get(key)
        return props if entry and entry.get("state") == "ACTIVE" else None


PROVIDER = Provider(
    "gcp",
    VERSION,
    [
        Service(),
        Bucket(),
        BucketIAMMember(),
        Account(),
        Key(),
        ServiceAccountIAMMember(),
        WorkloadIdentityPool(),
        WorkloadIdentityPoolProvider(),
    ],
    invokes={
        "gcp:storage/getBucket:getBucket": get_bucket,
        "gcp:storage/getBuckets:getBuckets": get_buckets,
        "gcp:projects/getOrganizationPolicy:getOrganizationPolicy": get_organization_policy,
        "gcp:serviceaccount/getAccount:getAccount": get_account,
    },
    env_config={"project": "GOOGLE_PROJECT"},
)


def main() -> None:
    serve(PROVIDER)


if __name__ == "__main__":
    main()
