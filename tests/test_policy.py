"""The policy pack: each rule against a violating and a passing resource, every stack file and
auth mode against all rules, and the pack as the Pulumi engine runs it (served over gRPC)."""

# The analyzer's gRPC stubs and messages are untyped:
# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false
from __future__ import annotations

import functools
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import grpc
import pulumi_gcp
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime import proto, rpc
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs, Secret
from pulumi_policy.proxy import UnknownValueError

from mlops_ci.offline.analyzer import Violation, analyze, policy_props, wire_struct
from mlops_ci.offline.runtime import Registration, evaluate
from mlops_ci.offline.stacks import load_stack_file, stack_files
from mlops_ci.policy import rules
from mlops_ci.policy.rules import POLICIES
from mlops_ci.settings.model import ACCESS_PRESETS
from tests.helpers import ACCOUNT, ACCOUNT_BINDING, BUCKET, GITLAB_VARIABLE, GRANT, KEY, POOL, POOL_PROVIDER, run

ROOT = Path(__file__).resolve().parent.parent
POLICY_DIR = ROOT / "policy"
GCP_PACKAGE = Path(pulumi_gcp.__file__).parent

BUCKET_GRANT = GRANT
ACCOUNT_GRANT = ACCOUNT_BINDING

PRIVATE_BUCKET = {
    "name": "acme-ml-test-team-a-dvc",
    "uniformBucketLevelAccess": True,
    "publicAccessPrevention": "enforced",
    "labels": {"managed-by": "mlops-ci", "stack": "team-a"},
}
KEY_BASE64 = "eyJ0eXBlIjogInNlcnZpY2VfYWNjb3VudCIsICJwcml2YXRlX2tleSI6ICItLS0tLUJFR0lOIFBSSVZBVEUgS0VZLS0tLS0ifQ=="
PROVIDER_NAME = (
    "projects/123456789/locations/global/workloadIdentityPools/ci-7ad4bb986ede2e1c81b2/providers/ci-7ad4bb986ede2e1c81b2"
)
ACCOUNT_EMAIL = "dvc-ci-team-a@acme-ml-test.iam.gserviceaccount.com"


def registration(type_: str, inputs: dict[str, Any], name: str = "resource") -> Registration:
    """A registration as the recording monitor makes it, of any type (outputs = inputs). Built, not recorded: these
    are parametrize arguments, and a program run at collection would leave grpc threads in every forked test run
    (`make mutation`'s fork server collects the tests once)."""
    urn = f"urn:pulumi:team-a::mlops-ci::{type_}::{name}"
    return Registration(
        urn=urn,
        type=type_,
        name=name,
        custom=True,
        parent="",
        inputs=inputs,
        outputs=inputs,
        dependencies=(),
        provider="",
        protect=False,
        retain_on_delete=False,
        delete_before_replace=False,
        replace_on_changes=(),
        import_id="",
        ignore_changes=(),
        error_hooks=(),
    )


def secret(value: Any) -> dict[str, Any]:
    """Pulumi's wire marker of a secret value, as registrations carry it."""
    return cast(dict[str, Any], rpc.wrap_rpc_secret(value))


def violations(policy: str, *registrations: Registration) -> list[str]:
    return [v.message for v in analyze(list(registrations), POLICIES) if v.policy == policy]


# --- gcs-bucket-private, gcs-bucket-labelled ---


def test_private_bucket_passes() -> None:
    assert violations("gcs-bucket-private", registration(BUCKET, PRIVATE_BUCKET)) == []
    assert violations("gcs-bucket-labelled", registration(BUCKET, PRIVATE_BUCKET)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"uniformBucketLevelAccess": False}, ["uniformBucketLevelAccess is False, must be true"]),
        ({"publicAccessPrevention": "inherited"}, ["publicAccessPrevention is 'inherited', must be 'enforced'"]),
        (
            {"uniformBucketLevelAccess": None, "publicAccessPrevention": None},
            ["uniformBucketLevelAccess is None", "publicAccessPrevention is None"],
        ),
    ],
)
def test_bucket_without_uniform_access_or_public_access_prevention_violates(change: dict[str, Any], expected: list[str]) -> None:
    bucket = {key: value for key, value in (PRIVATE_BUCKET | change).items() if value is not None}
    found = violations("gcs-bucket-private", registration(BUCKET, bucket))
    assert len(found) == len(expected)
    assert all(message.startswith(start) for message, start in zip(found, expected, strict=True))


@pytest.mark.parametrize(
    ("labels", "missing"),
    [({"managed-by": "mlops-ci"}, "stack"), ({"stack": "team-a", "managed-by": ""}, "managed-by"), (None, "managed-by, stack")],
)
def test_bucket_without_its_labels_violates(labels: dict[str, str] | None, missing: str) -> None:
    bucket = {key: value for key, value in (PRIVATE_BUCKET | {"labels": labels}).items() if value is not None}
    assert violations("gcs-bucket-labelled", registration(BUCKET, bucket)) == [
        f"missing label(s) {missing}: the bucket's owner and stack must be findable"
    ]


# --- no-project-level-or-authoritative-iam ---

DENIED_IAM = [
    "gcp:projects/iAMMember:IAMMember",
    "gcp:projects/iAMBinding:IAMBinding",
    "gcp:projects/iAMPolicy:IAMPolicy",
    "gcp:storage/bucketIAMBinding:BucketIAMBinding",
    "gcp:storage/bucketIAMPolicy:BucketIAMPolicy",
    "gcp:serviceaccount/iAMBinding:IAMBinding",
    "gcp:serviceaccount/iAMPolicy:IAMPolicy",
    "gcp:organizations/iAMMember:IAMMember",
    "gcp:organizations/iAMBinding:IAMBinding",
    "gcp:organizations/iAMPolicy:IAMPolicy",
    "gcp:folder/iAMMember:IAMMember",
    "gcp:folder/iAMBinding:IAMBinding",
    "gcp:folder/iAMPolicy:IAMPolicy",
]
ALLOWED_IAM = [BUCKET_GRANT, ACCOUNT_GRANT, POOL, POOL_PROVIDER, KEY]
IAM_GRANT = {"role": "roles/storage.objectViewer", "member": f"serviceAccount:{ACCOUNT_EMAIL}"}


@functools.cache
def installed_resource_tokens(*modules: str) -> frozenset[str]:
    """Resource type tokens of the installed pulumi_gcp (what `super().__init__` registers), per module."""
    found: set[str] = set()
    for module in modules:
        for source in (GCP_PACKAGE / module).glob("*.py"):
            found |= set(re.findall(r"__init__\(\s*['\"](gcp:\w+/\w+:\w+)['\"]", source.read_text()))
    return frozenset(found)


@pytest.mark.parametrize("type_", DENIED_IAM)
def test_project_level_and_authoritative_iam_violates(type_: str) -> None:
    assert type_ in installed_resource_tokens(type_.split(":")[1].split("/")[0]), "a real type token of pulumi_gcp"
    found = violations("no-project-level-or-authoritative-iam", registration(type_, IAM_GRANT))
    assert found == [
        f"{type_} is project/folder/organization-level or authoritative IAM;"
        " grant with a non-authoritative member resource on the stack's own resource (e.g. BucketIAMMember)"
    ]


@pytest.mark.parametrize("type_", ALLOWED_IAM)
def test_resource_scoped_iam_members_pass(type_: str) -> None:
    assert violations("no-project-level-or-authoritative-iam", registration(type_, IAM_GRANT)) == []


def test_iam_rule_reach_over_the_installed_provider() -> None:
    """Exactly which resources of the IAM-bearing modules the rule denies: a provider upgrade that
    adds one shows up here."""
    modules = ("projects", "folder", "organizations", "storage", "serviceaccount", "iam")
    denied = {t for t in installed_resource_tokens(*modules) if rules.is_hierarchy_or_authoritative_iam(t)}
    assert denied == set(DENIED_IAM) | {
        "gcp:folder/iamAuditConfig:IamAuditConfig",
        "gcp:organizations/iAMCustomRole:IAMCustomRole",
        "gcp:organizations/iamAuditConfig:IamAuditConfig",
        "gcp:projects/iAMAuditConfig:IAMAuditConfig",
        "gcp:projects/iAMCustomRole:IAMCustomRole",
        "gcp:projects/iamMemberRemove:IamMemberRemove",
        "gcp:storage/managedFolderIamBinding:ManagedFolderIamBinding",
        "gcp:storage/managedFolderIamPolicy:ManagedFolderIamPolicy",
        "gcp:iam/workforcePoolIamBinding:WorkforcePoolIamBinding",
        "gcp:iam/workforcePoolIamPolicy:WorkforcePoolIamPolicy",
        "gcp:iam/workloadIdentityPoolIamBinding:WorkloadIdentityPoolIamBinding",
        "gcp:iam/workloadIdentityPoolIamPolicy:WorkloadIdentityPoolIamPolicy",
    }


# --- no-primitive-roles ---


@pytest.mark.parametrize("role", ["roles/owner", "roles/editor", "roles/viewer"])
@pytest.mark.parametrize("type_", [BUCKET_GRANT, ACCOUNT_GRANT, "gcp:projects/iAMBinding:IAMBinding"])
def test_primitive_role_grant_violates(type_: str, role: str) -> None:
    found = violations("no-primitive-roles", registration(type_, IAM_GRANT | {"role": role}))
    assert found == [f"role {role} is a primitive role; grant a predefined role such as roles/storage.objectViewer"]


@pytest.mark.parametrize("role", ["roles/storage.objectViewer", "roles/storage.objectAdmin", "roles/iam.workloadIdentityUser"])
def test_predefined_role_grant_passes(role: str) -> None:
    assert violations("no-primitive-roles", registration(BUCKET_GRANT, IAM_GRANT | {"role": role})) == []


# --- gitlab-credential-variables-masked ---


def gitlab_variable(key: str, value: Any, masked: bool | None) -> Registration:
    inputs = {"project": "acme-ml/churn-model", "key": key, "value": value, "raw": True}
    return registration(GITLAB_VARIABLE, inputs | ({} if masked is None else {"masked": masked}), name=key.lower())


@pytest.mark.parametrize(
    ("variable", "masked"),
    [
        (gitlab_variable("GOOGLE_SERVICE_ACCOUNT_KEY", KEY_BASE64, masked=False), False),
        (gitlab_variable("GOOGLE_SERVICE_ACCOUNT_KEY", secret(KEY_BASE64), masked=None), None),
        # Deny by default: a key under a keyless variable's name, a near-identifier, are credentials.
        (gitlab_variable("GCP_SERVICE_ACCOUNT", secret(KEY_BASE64), masked=False), False),
        (gitlab_variable("GCP_WORKLOAD_IDENTITY_PROVIDER", f"{PROVIDER_NAME}\n", masked=False), False),
    ],
)
def test_unmasked_credential_variable_violates(variable: Registration, masked: bool | None) -> None:
    assert violations("gitlab-credential-variables-masked", variable) == [
        f"variable {variable.plain('key')!r} carries a credential and masked is {masked!r}:"
        " it would be printed in job logs; set masked: true"
    ]


@pytest.mark.parametrize(
    "variable",
    [
        gitlab_variable("GOOGLE_SERVICE_ACCOUNT_KEY", secret(KEY_BASE64), masked=True),
        gitlab_variable("GCP_WORKLOAD_IDENTITY_PROVIDER", PROVIDER_NAME, masked=False),
        gitlab_variable("GCP_SERVICE_ACCOUNT", ACCOUNT_EMAIL, masked=False),
    ],
)
def test_masked_credential_and_unmasked_keyless_identifiers_pass(variable: Registration) -> None:
    assert violations("gitlab-credential-variables-masked", variable) == []


# --- gitlab-credential-variables-hidden (advisory) ---


def test_a_credential_variable_not_hidden_is_an_advisory_finding() -> None:
    variable = registration(GITLAB_VARIABLE, gitlab_variable("KEY", secret(KEY_BASE64), masked=True).inputs | {"hidden": False})
    found = [v for v in analyze([variable], POLICIES) if v.policy == "gitlab-credential-variables-hidden"]
    assert [(v.message.split(":")[0], v.mandatory) for v in found] == [
        ("variable 'KEY' carries a credential and is not hidden", False)
    ]


def test_hidden_credential_and_keyless_identifiers_pass_the_hidden_rule() -> None:
    hidden = registration(GITLAB_VARIABLE, gitlab_variable("KEY", secret(KEY_BASE64), masked=True).inputs | {"hidden": True})
    keyless = gitlab_variable("GCP_SERVICE_ACCOUNT", ACCOUNT_EMAIL, masked=False)
    assert violations("gitlab-credential-variables-hidden", hidden, keyless) == []


def rule_messages(props: dict[str, Any]) -> list[str]:
    """The masked rule called directly, with props *not* unmarshalled by pulumi_policy."""
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    args = ResourceValidationArgs(GITLAB_VARIABLE, props, "urn", "variable", options, None)
    messages: list[str] = []
    rules.gitlab_credential_variables_masked(args, lambda message, urn=None: messages.append(message))
    return messages


@pytest.mark.parametrize("marked", [secret(ACCOUNT_EMAIL), Secret(ACCOUNT_EMAIL)], ids=["wire-marker", "pulumi_policy.Secret"])
def test_a_value_marked_secret_is_a_credential_even_when_it_looks_public(marked: Any) -> None:
    assert len(rule_messages({"key": "GCP_SERVICE_ACCOUNT", "value": marked, "masked": False})) == 1
    assert rule_messages({"key": "GCP_SERVICE_ACCOUNT", "value": marked, "masked": True}) == []
    assert rule_messages({"key": "GCP_SERVICE_ACCOUNT", "value": ACCOUNT_EMAIL, "masked": False}) == []


# --- no-key-with-workload-identity (stack) ---


def test_key_in_a_keyless_stack_violates_naming_the_key() -> None:
    key = registration(KEY, {"serviceAccountId": "projects/acme-ml-test/serviceAccounts/x"}, name="ci-identity-key")
    found = [v for v in analyze([registration(POOL_PROVIDER, {}), key], POLICIES) if v.policy == "no-key-with-workload-identity"]
    assert found == [
        Violation(
            "no-key-with-workload-identity",
            key,
            "ci-identity-key: the stack is keyless (it has a workload identity provider) but creates a"
            " service-account key, a long-lived credential that keyless mode exists to avoid",
        )
    ]


def test_key_without_federation_and_federation_without_key_pass() -> None:
    assert violations("no-key-with-workload-identity", registration(KEY, {})) == []
    assert violations("no-key-with-workload-identity", registration(POOL_PROVIDER, {})) == []


# --- federated-grants-pinned-to-one-repository, no-service-account-with-direct-grants ---

POOL_NAME = "projects/123/locations/global/workloadIdentityPools/ci-pool"
ONE_REPOSITORY = f"principalSet://iam.googleapis.com/{POOL_NAME}/attribute.repository_id/987"


def direct_grant(member: str, role: str = "roles/storage.objectViewer") -> Registration:
    return registration(BUCKET_GRANT, {"bucket": "b", "role": role, "member": member}, name="grant")


@pytest.mark.parametrize(
    "member",
    [
        f"principalSet://iam.googleapis.com/{POOL_NAME}/*",
        f"principalSet://iam.googleapis.com/{POOL_NAME}/attribute.repository/acme-ml/churn",
        f"principalSet://iam.googleapis.com/{POOL_NAME}/attribute.repository_owner_id/42",
        f"principalSet://iam.googleapis.com/{POOL_NAME}/attribute.ref/refs/heads/main",
        f"principalSet://iam.googleapis.com/{POOL_NAME}/attribute.repository_id/*",
        f"principalSet://iam.googleapis.com/{POOL_NAME}/attribute.repository_id/987/../*",
        f"principalSet://iam.googleapis.com/{POOL_NAME}/group/admins",
        f"principal://iam.googleapis.com/{POOL_NAME}/subject/repo:acme-ml/churn:ref:refs/heads/main",
    ],
)
@pytest.mark.parametrize("type_", [BUCKET_GRANT, ACCOUNT_GRANT])
def test_a_federated_grant_broader_than_one_repository_violates(type_: str, member: str) -> None:
    found = violations("federated-grants-pinned-to-one-repository", registration(type_, IAM_GRANT | {"member": member}))
    assert found == [
        f"member {member} is not the principal set of one repository: only principalSet://iam.googleapis.com/<pool>/"
        "attribute.repository_id/<id> (GitHub) or attribute.project_id/<id> (GitLab), a numeric id, never /*,"
        " a name, a branch, an owner or a subject"
    ]


@pytest.mark.parametrize(
    "member", [ONE_REPOSITORY, ONE_REPOSITORY.replace("repository_id", "project_id"), f"serviceAccount:{ACCOUNT_EMAIL}"]
)
def test_one_repositorys_principal_set_and_a_service_account_pass(member: str) -> None:
    assert violations("federated-grants-pinned-to-one-repository", direct_grant(member)) == []


def test_a_service_account_or_key_beside_direct_grants_violates() -> None:
    account = registration(ACCOUNT, {"accountId": "dvc-ci-team-a"}, name="ci-identity-account")
    key = registration(KEY, {}, name="ci-identity-key")
    found = violations("no-service-account-with-direct-grants", direct_grant(ONE_REPOSITORY), account, key)
    assert [message.split(":", 1)[0] for message in found] == ["ci-identity-account", "ci-identity-key"]
    # A key beside a shared pool's grants (no provider of the stack's own) is a keyless stack's key too.
    assert violations("no-key-with-workload-identity", direct_grant(ONE_REPOSITORY), key)


def test_impersonation_keeps_its_service_account() -> None:
    account = registration(ACCOUNT, {"accountId": "dvc-ci-team-a"}, name="ci-identity-account")
    binding = direct_grant(ONE_REPOSITORY, role="roles/iam.workloadIdentityUser")
    assert violations("no-service-account-with-direct-grants", binding, account) == []


# --- every stack passes every rule ---


@pytest.mark.parametrize("stack_file", stack_files(), ids=lambda p: p.name)
def test_every_stack_file_passes_every_policy(stack_file: Path) -> None:
    stack = load_stack_file(stack_file)
    evaluation = evaluate(stack.stack, stack.config, stack.secret_keys)
    assert analyze(evaluation.registrations, POLICIES) == []


@pytest.mark.parametrize(
    ("auth", "mode"), [("key", None), ("workload-identity", "direct"), ("workload-identity", "impersonation")]
)
@pytest.mark.parametrize("base", ["github", "gitlab"])
@pytest.mark.parametrize("access", ACCESS_PRESETS)
def test_every_platform_auth_and_access_passes_every_policy(base: str, auth: str, mode: str | None, access: str) -> None:
    evaluation = run(base, auth=auth, keylessMode=mode, access=access)
    assert analyze(evaluation.registrations, POLICIES) == []
    if auth == "workload-identity":
        assert evaluation.find(POOL_PROVIDER), "the keyless stack rule had something to check"
        members = [r.plain("member") for r in [*evaluation.find(GRANT), *evaluation.find(ACCOUNT_BINDING)]]
        assert [m for m in members if m.startswith("principalSet://")], "the federated grant rule had something to check"


# --- what a rule receives: the engine's wire format, unmarshalled by pulumi_policy ---


def test_rules_receive_secrets_unwrapped_and_numbers_as_the_engine_sends_them() -> None:
    props = policy_props({"value": secret("k3y-material"), "retries": 3, "__defaults": ["value"]})
    assert props["value"] == "k3y-material"
    assert isinstance(props["retries"], float)
    assert "__defaults" not in props


def test_an_unknown_value_raises_when_a_rule_reads_it() -> None:
    props = policy_props({"value": rpc.UNKNOWN})
    with pytest.raises(UnknownValueError):
        props["value"]


# --- the pack as the engine runs it ---


@pytest.fixture(scope="module")
def served_pack() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """The pack started the way the CLI starts it (its `pulumi-analyzer-policy-python` script): in the
    pack folder, `<virtualenv>/bin/python -u -m pulumi.policy <engine address> .`. It serves the
    Analyzer gRPC service on the port it prints; this pack never calls the engine address."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", "."],
        cwd=POLICY_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        if not port.isdigit():
            process.kill()
            pytest.fail(f"the policy pack did not start: {process.communicate(timeout=10)[1]}")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_served_pack_declares_every_policy_mandatory_but_hiding(served_pack: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = served_pack.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == "mlops-ci"
    assert [p.name for p in info.policies] == [p.name for p in POLICIES]
    levels: dict[str, int] = {p.name: p.enforcementLevel for p in info.policies}
    assert levels.pop("gitlab-credential-variables-hidden") == proto.ADVISORY
    assert set(levels.values()) == {proto.MANDATORY}


def served_violations(pack: analyzer_pb2_grpc.AnalyzerStub, registrations: list[Registration]) -> set[tuple[str, str]]:
    """(policy, URN) of every diagnostic, with the requests the engine sends (resource inputs, stack outputs)."""
    found: set[tuple[str, str]] = set()
    for r in registrations:
        request = proto.AnalyzeRequest(urn=r.urn, type=r.type, name=r.name, properties=wire_struct(r.inputs))
        found |= {(d.policyName, r.urn) for d in pack.Analyze(request, timeout=30).diagnostics}
    resources = [
        proto.AnalyzerResource(urn=r.urn, type=r.type, name=r.name, properties=wire_struct(r.outputs)) for r in registrations
    ]
    response = pack.AnalyzeStack(proto.AnalyzeStackRequest(resources=resources), timeout=30)
    return found | {(d.policyName, d.urn) for d in response.diagnostics}


def test_offline_analysis_reports_what_the_served_pack_reports(served_pack: analyzer_pb2_grpc.AnalyzerStub) -> None:
    keyless = run("gitlab", auth="workload-identity").registrations
    broken = [
        registration(BUCKET, PRIVATE_BUCKET | {"publicAccessPrevention": "inherited", "labels": {}}, name="bucket"),
        direct_grant(f"principalSet://iam.googleapis.com/{POOL_NAME}/*"),
        registration(ACCOUNT, {"accountId": "dvc-ci-team-a"}, name="account"),
        registration("gcp:projects/iAMMember:IAMMember", IAM_GRANT | {"role": "roles/editor"}, name="project-grant"),
        gitlab_variable("GOOGLE_SERVICE_ACCOUNT_KEY", secret(KEY_BASE64), masked=False),
        registration(KEY, {}, name="key"),
    ]
    offline = {(v.policy, v.resource.urn if v.resource else "") for v in analyze([*keyless, *broken], POLICIES)}
    assert offline == served_violations(served_pack, [*keyless, *broken])
    assert {policy for policy, _ in offline} == {p.name for p in POLICIES}, "every rule fired"


def pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file, names normalized (PEP 503)."""
    found = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", path.read_text(), re.MULTILINE)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in found}


def test_pack_requirements_are_the_projects_pins() -> None:
    pack = pins(POLICY_DIR / "requirements.txt")
    assert set(pack) == {"pulumi-policy", "pulumi", "pulumi-gcp", "pulumi-gitlab"}
    assert pack.items() <= pins(ROOT / "constraints.txt").items()


def test_a_federated_grant_to_a_pool_of_another_project_violates() -> None:
    """Red team (rkl): a principal set is a pool's (every provider of it maps the attribute as it
    likes), so one repository's principal set in a pool of another project, beside the stack's own
    provider, is not pinned to this stack's repository: the pool's mapping is nobody's the stack
    checked (pre-flight reads the stack's own project only). Today every rule lets it pass."""
    own_provider = registration(POOL_PROVIDER, {"name": PROVIDER_NAME}, name="provider")
    other_pool = "projects/999/locations/global/workloadIdentityPools/their-pool"
    grant = direct_grant(f"principalSet://iam.googleapis.com/{other_pool}/attribute.repository_id/987")
    found = [v for v in analyze([own_provider, grant], POLICIES) if other_pool in v.message]
    assert found, "a grant to a principal set of another project's pool passes every rule"


@pytest.mark.parametrize(
    "member",
    [
        # IAM's federated member types are principal:, principalSet: and principalHierarchy:
        # (pulumi/pulumi-google-native provider/pkg/provider/iam.go `iamMemberIsCaseSensitive`, adapted
        # from terraform-provider-google-beta iam.go); the first form is its iam_test.go example. What a
        # hierarchy spans is not verified here: the rule must judge it, not skip it.
        "principalHierarchy://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools",
        f"principalHierarchy://iam.googleapis.com/{POOL_NAME}",
    ],
)
def test_a_grant_to_a_principal_hierarchy_violates(member: str) -> None:
    """Red team (rkl): FEDERATED knows principalSet:// and principal:// only, so a grant to a whole
    hierarchy of federated identities, broader than `/*`, is not checked at all."""
    assert violations("federated-grants-pinned-to-one-repository", direct_grant(member)), member
