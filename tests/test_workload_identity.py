"""Keyless mode: a federation that trusts one repository, pinned to numeric ids; no key anywhere."""

# google-auth's credential classes are untyped:
# pyright: reportUnknownMemberType=false
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.auth import identity_pool

from mlops_ci.ci.files import render_ci_file
from mlops_ci.components.workload_identity import federation_id
from mlops_ci.offline import runtime
from mlops_ci.offline.runtime import numeric_id
from mlops_ci.platforms.gitlab import GITLAB
from mlops_ci.settings.loader import ConfigError
from tests.helpers import (
    ACCOUNT,
    ACCOUNT_BINDING,
    GITHUB_FILE,
    GITHUB_SECRET,
    GITHUB_VARIABLE,
    GITLAB_FILE,
    GITLAB_VARIABLE,
    GRANT,
    KEY,
    POOL,
    POOL_PROVIDER,
    SERVICE,
    CountingMocks,
    committed_file,
    make_settings,
    run,
    secret_paths,
    write_job_script,
)

PROVIDER = POOL_PROVIDER
CI_FILES = {"github": GITHUB_FILE, "gitlab": GITLAB_FILE}


def keyless(base: str, **overrides: Any):
    return run(base, auth="workload-identity", **overrides)


BOTH = pytest.mark.parametrize("base", ["github", "gitlab"])
MODES = pytest.mark.parametrize("mode", ["direct", "impersonation"])


@BOTH
@MODES
def test_no_key_and_no_secret_exist_in_keyless_mode(base: str, mode: str) -> None:
    evaluation = keyless(base, keylessMode=mode)
    types = {r.type for r in evaluation.registrations}
    assert KEY not in types
    assert (ACCOUNT in types) == (mode == "impersonation")
    assert GITHUB_SECRET not in types
    # Nothing but the platform token is secret: no credential exists to hide.
    secret_inputs = [
        (r.name, path)
        for r in evaluation.registrations
        if not r.type.startswith("pulumi:providers:")
        for path, is_secret, _ in secret_paths(r.inputs)
        if is_secret
    ]
    assert secret_inputs == []
    variables = evaluation.find(GITHUB_VARIABLE if base == "github" else GITLAB_VARIABLE)
    assert len(variables) == (2 if mode == "impersonation" else 1)
    assert not [v for v in variables if v.plain("masked")]
    assert "secretName" not in evaluation.exports


def test_github_condition_is_pinned_to_repository_and_owner_ids() -> None:
    provider = keyless("github").one(PROVIDER)
    repository_id = numeric_id("github/acme-ml/churn-model")
    owner_id = numeric_id("github/acme-ml")
    assert provider.plain("attributeCondition") == (
        f'assertion.repository_id == "{repository_id}" && assertion.repository_owner_id == "{owner_id}"'
    )
    assert provider.plain("oidc") == {"issuerUri": "https://token.actions.githubusercontent.com"}
    assert provider.plain("attributeMapping") == {
        "google.subject": "assertion.sub",
        "attribute.repository": "assertion.repository",
        "attribute.repository_id": "assertion.repository_id",
        "attribute.repository_owner_id": "assertion.repository_owner_id",
        "attribute.ref": "assertion.ref",
    }


def test_gitlab_condition_is_pinned_to_project_and_namespace_ids() -> None:
    provider = keyless("gitlab").one(PROVIDER)
    project_id = numeric_id("gitlab/acme-ml/research/churn-model")
    namespace_id = numeric_id("gitlab/acme-ml/research")
    assert provider.plain("attributeCondition") == (
        f'assertion.project_id == "{project_id}" && assertion.namespace_id == "{namespace_id}"'
    )
    assert provider.plain("oidc") == {"issuerUri": "https://gitlab.com", "allowedAudiences": ["mlops-ci/acme-ml-test/team-a"]}
    assert provider.plain("attributeMapping")["attribute.project_id"] == "assertion.project_id"


def test_self_managed_gitlab_is_the_issuer() -> None:
    provider = keyless("gitlab", gitlab__baseUrl="https://gitlab.acme.example/api/v4/").one(PROVIDER)
    assert provider.plain("oidc")["issuerUri"] == "https://gitlab.acme.example"


@pytest.mark.parametrize(
    ("base_url", "issuer"),
    [
        (None, "https://gitlab.com"),
        ("", "https://gitlab.com"),
        ("https://gitlab.acme.example/api/v4", "https://gitlab.acme.example"),
        ("https://gitlab.acme.example/api/v4//", "https://gitlab.acme.example"),
        ("https://gitlab.acme.example//api/v4/", "https://gitlab.acme.example"),
        ("https://gitlab.acme.example/", "https://gitlab.acme.example"),
        # An instance under a relative URL root: its tokens' issuer is its URL, root included.
        ("https://code.acme.example/GITLAB-X/api/v4/", "https://code.acme.example/GITLAB-X"),
        ("https://code.acme.example/GITLAB-X/", "https://code.acme.example/GITLAB-X"),
    ],
)
def test_the_gitlab_issuer_is_the_instances_url_without_its_api_path(base_url: str | None, issuer: str) -> None:
    assert GITLAB.oidc_issuer(base_url) == (issuer, "project_id")


@pytest.mark.parametrize(
    ("base", "attribute", "path"),
    [
        ("github", "repository_id", "acme-ml/churn-model"),
        ("gitlab", "project_id", "acme-ml/research/churn-model"),
    ],
)
def test_only_the_repository_principal_set_may_impersonate_the_account(base: str, attribute: str, path: str) -> None:
    evaluation = keyless(base, keylessMode="impersonation")
    binding = evaluation.one(ACCOUNT_BINDING)
    pool_name = evaluation.one(POOL).outputs["name"]
    assert binding.plain("role") == "roles/iam.workloadIdentityUser"
    assert (
        binding.plain("member")
        == f"principalSet://iam.googleapis.com/{pool_name}/attribute.{attribute}/{numeric_id(base + '/' + path)}"
    )
    assert binding.plain("serviceAccountId") == evaluation.one(ACCOUNT).outputs["name"]
    iam_types = {r.type for r in evaluation.registrations if "iam" in r.type.lower() and "workloadIdentityPool" not in r.type}
    assert iam_types == {GRANT, ACCOUNT_BINDING}, "no project-level, binding or policy resource"


@pytest.mark.parametrize(
    ("base", "attribute", "path"),
    [
        ("github", "repository_id", "acme-ml/churn-model"),
        ("gitlab", "project_id", "acme-ml/research/churn-model"),
    ],
)
def test_direct_mode_grants_the_bucket_roles_to_the_principal_set_of_one_repository(base: str, attribute: str, path: str) -> None:
    evaluation = keyless(base, access="push")
    pool_name = evaluation.one(POOL).outputs["name"]
    member = f"principalSet://iam.googleapis.com/{pool_name}/attribute.{attribute}/{numeric_id(base + '/' + path)}"
    grants = evaluation.find(GRANT)
    assert {(g.plain("role"), g.plain("member")) for g in grants} == {
        ("roles/storage.objectViewer", member),
        ("roles/storage.objectCreator", member),
    }
    types = {r.type for r in evaluation.registrations}
    assert not types & {ACCOUNT, ACCOUNT_BINDING, KEY}, "no service account, no impersonation grant, no key"
    assert "serviceAccountEmail" not in evaluation.exports
    assert evaluation.one(POOL).dependencies, "the pool waits for the APIs"


@BOTH
@MODES
def test_keyless_settings_reach_ci_as_plain_variables_before_the_ci_file(base: str, mode: str) -> None:
    evaluation = keyless(base, keylessMode=mode)
    variable_type, name_key = (GITHUB_VARIABLE, "variableName") if base == "github" else (GITLAB_VARIABLE, "key")
    variables = {r.plain(name_key): r for r in evaluation.find(variable_type)}
    expected = {"GCP_WORKLOAD_IDENTITY_PROVIDER": evaluation.one(PROVIDER).outputs["name"]}
    if mode == "impersonation":
        expected["GCP_SERVICE_ACCOUNT"] = evaluation.exports["serviceAccountEmail"]
    assert {name: v.plain("value") for name, v in variables.items()} == expected
    assert evaluation.exports["workloadIdentityProvider"] == evaluation.one(PROVIDER).outputs["name"]
    waits = {r.urn for r in evaluation.waits_for(committed_file(evaluation, CI_FILES[base]))}
    assert {v.urn for v in variables.values()} | {b.urn for b in evaluation.find(ACCOUNT_BINDING)} <= waits
    assert {g.urn for g in evaluation.find(GRANT)} <= waits


@MODES
def test_extra_google_apis_are_enabled(mode: str) -> None:
    services = {r.plain("service") for r in keyless("github", keylessMode=mode).find(SERVICE)}
    # IAM Credentials only where the job acts as the service account.
    impersonation: set[str] = {"iamcredentials.googleapis.com"} if mode == "impersonation" else set()
    assert services == {"storage.googleapis.com", "iam.googleapis.com", "sts.googleapis.com"} | impersonation


def test_ids_are_drawn_at_creation_and_kept_for_the_federations_life(monkeypatch: pytest.MonkeyPatch) -> None:
    """A federation created again (after destroy, or after `auth` went to key and back within the
    30 days Google keeps soft-deleted ids) gets new ids; the engine keeps the ones a federation
    was created with (`ignore_changes`), so existing stacks keep theirs."""

    def drawn(nonce: str) -> runtime.OfflineCalls:
        calls = runtime.OfflineCalls()
        monkeypatch.setattr(calls, "nonce", lambda: nonce)
        return calls

    monkeypatch.setattr(runtime, "OFFLINE_CALLS", drawn("first"))
    first = keyless("github")
    monkeypatch.setattr(runtime, "OFFLINE_CALLS", drawn("again"))
    again = keyless("github")
    assert first.one(POOL).plain("workloadIdentityPoolId") != again.one(POOL).plain("workloadIdentityPoolId")
    assert first.one(POOL).ignore_changes == ("workloadIdentityPoolId",)
    assert first.one(POOL_PROVIDER).ignore_changes == ("workloadIdentityPoolProviderId",)
    assert first.one(POOL_PROVIDER).plain("workloadIdentityPoolProviderId") == first.one(POOL).plain("workloadIdentityPoolId")


@MODES
def test_pool_and_provider_ids_are_a_digest_of_the_stack_the_seed_and_the_nonce(mode: str) -> None:
    """The seed: the service account's unique id; direct, with no account, the project."""
    evaluation = keyless("github", keylessMode=mode)
    seed = evaluation.one(ACCOUNT).outputs["uniqueId"] if mode == "impersonation" else "acme-ml-test"
    expected = federation_id("team-a", seed, runtime.OFFLINE_CALLS.nonce())
    assert evaluation.one(POOL).plain("workloadIdentityPoolId") == expected
    assert evaluation.one(POOL_PROVIDER).plain("workloadIdentityPoolProviderId") == expected


def test_pool_and_provider_say_in_the_console_what_they_are() -> None:
    evaluation = keyless("github", stack="a-very-long-stack-name-of-the-team-x")
    pool, provider = evaluation.one(POOL), evaluation.one(POOL_PROVIDER)
    assert pool.plain("displayName") == "mlops-ci a-very-long-stack-name-"  # Google's limit: 32 characters
    assert pool.plain("description") == "Managed by mlops-ci: CI OIDC tokens of one repository"
    assert provider.plain("displayName") == "mlops-ci CI OIDC"
    assert pool.plain("project") == provider.plain("project") == "acme-ml-test"


@MODES
def test_the_pool_waits_for_the_apis_of_the_federation_not_for_storage(mode: str) -> None:
    evaluation = keyless("github", keylessMode=mode)
    services = {r.urn: r.plain("service") for r in evaluation.find(SERVICE)}
    waits = {services[urn] for urn in evaluation.one(POOL).dependencies if urn in services}
    impersonation: set[str] = {"iamcredentials.googleapis.com"} if mode == "impersonation" else set()
    assert waits == {"iam.googleapis.com", "sts.googleapis.com"} | impersonation


@pytest.mark.parametrize("unique_id", ["1", "103944778899001122334", "x" * 40])
def test_federation_ids_satisfy_google_rules(unique_id: str) -> None:
    pool_id = federation_id("Some.Team_Stack", unique_id, "0123456789abcdef")
    assert re.fullmatch(r"ci-[0-9a-f]{20}", pool_id), "'ci-' and 20 hex digits of the digest"
    assert 4 <= len(pool_id) <= 32
    assert pool_id[0].isalpha()
    assert not pool_id.startswith("gcp-")
    assert set(pool_id) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"secretName": "MY_KEY"}, "mlops-ci:secretName: applies to auth key only"),
        ({"keyRotation": "2026-11"}, "mlops-ci:keyRotation: applies to auth key only"),
        ({"github__baseUrl": "https://github.acme.example/api/v3/"}, "github:baseUrl: workload-identity trusts github.com"),
    ],
)
def test_combinations_that_cannot_work_are_rejected(overrides: dict[str, str], problem: str) -> None:
    mocks = CountingMocks()
    with pytest.raises(ConfigError) as raised:
        keyless("github", mocks=mocks, **overrides)
    assert [p for p in raised.value.problems if p.startswith(problem)], raised.value.problems
    assert mocks.created == []


def test_gitlab_base_url_must_be_https() -> None:
    with pytest.raises(ConfigError, match=r"gitlab:baseUrl: an https:// URL"):
        keyless("gitlab", gitlab__baseUrl="gitlab.acme.example")


@MODES
def test_github_workflow_requests_an_id_token_and_uses_the_federation(mode: str) -> None:
    workflow = yaml.safe_load(render_ci_file(make_settings("github", auth="workload-identity", keyless_mode=mode)))
    assert workflow["permissions"] == {}
    assert workflow["jobs"]["reproduce"]["permissions"] == {"contents": "read", "id-token": "write"}
    auth = workflow["jobs"]["reproduce"]["steps"][3]
    assert auth["uses"].startswith("google-github-actions/auth@")
    # Direct: the provider only (google-github-actions/auth's direct Workload Identity Federation).
    impersonation = {"service_account": "${{ vars.GCP_SERVICE_ACCOUNT }}"} if mode == "impersonation" else {}
    assert auth["with"] == {"workload_identity_provider": "${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}"} | impersonation


def run_credential_steps(tmp_path: Path, provider_name: str, email: str | None) -> Path:
    """Run the GitLab job's credential commands in a shell, as the runner would (`email`: the service
    account to impersonate; None: direct)."""
    settings = make_settings("gitlab", auth="workload-identity", keyless_mode="impersonation" if email else "direct")
    job = yaml.safe_load(render_ci_file(settings))["reproduce"]
    assert job["id_tokens"] == {"GCP_ID_TOKEN": {"aud": "mlops-ci/acme-ml-test/team-a"}}
    project_dir = tmp_path / "project"
    write_job_script(project_dir, settings)
    credentials = job["variables"]["GOOGLE_APPLICATION_CREDENTIALS"].replace("$CI_PROJECT_DIR", str(project_dir))
    # Not the install, nor the credential check once it is written (a token request to Google).
    steps = [c for c in job["before_script"] if not any(x in c for x in ("venv", "pip install", "check-login"))]
    env = {
        "PATH": os.environ["PATH"],
        "GCP_ID_TOKEN": "header.payload.signature",
        "GCP_WORKLOAD_IDENTITY_PROVIDER": provider_name,
        "GOOGLE_APPLICATION_CREDENTIALS": credentials,
    } | ({"GCP_SERVICE_ACCOUNT": email} if email else {})
    subprocess.run(["bash", "-euc", "\n".join(steps)], cwd=project_dir, env=env, check=True, timeout=30)
    assert [p.name for p in project_dir.rglob("*")] == [".mlops-ci", "team-a.py"], "nothing is written into the project directory"
    return Path(credentials)


@MODES
def test_gitlab_credential_configuration_is_accepted_by_google_auth(tmp_path: Path, mode: str) -> None:
    evaluation = keyless("gitlab", keylessMode=mode)
    provider_name = evaluation.one(PROVIDER).outputs["name"]
    email = evaluation.exports.get("serviceAccountEmail")
    assert (email is not None) == (mode == "impersonation")
    path = run_credential_steps(tmp_path, provider_name, email)
    info = json.loads(path.read_text())
    credentials = identity_pool.Credentials.from_file(str(path))
    assert credentials.info["audience"] == f"//iam.googleapis.com/{provider_name}"
    assert credentials.service_account_email == email
    assert info["token_url"] == "https://sts.googleapis.com/v1/token"
    assert Path(info["credential_source"]["file"]).read_text() == "header.payload.signature"


@pytest.mark.parametrize(
    ("base", "pinned"),
    [
        ("github", ' && assertion.ref == "refs/heads/release/2026"'),
        ("gitlab", ' && assertion.ref_type == "branch" && assertion.ref == "release/2026"'),
    ],
)
def test_trust_branch_only_pins_the_branch_ref(base: str, pinned: str) -> None:
    open_condition = keyless(base, branch="release/2026").one(PROVIDER).plain("attributeCondition")
    pinned_condition = keyless(base, branch="release/2026", trustBranchOnly="true").one(PROVIDER).plain("attributeCondition")
    assert pinned not in open_condition
    assert pinned_condition == open_condition + pinned


@pytest.mark.parametrize(
    ("base", "attributes"),
    [
        ("github", {"repository", "repository_id", "repository_owner_id", "ref"}),
        ("gitlab", {"project_path", "project_id", "namespace_id", "ref"}),
    ],
)
def test_the_attribute_mapping_maps_each_claim_to_its_own_name(base: str, attributes: set[str]) -> None:
    """Google's subject is the token's `sub`; each claim the trust, the audit logs and the principal
    read is mapped under its own name (more may be added, none renamed)."""
    mapping = keyless(base).one(PROVIDER).plain("attributeMapping")
    assert mapping["google.subject"] == "assertion.sub"
    assert {f"attribute.{name}" for name in attributes} <= set(mapping)
    assert {key: value for key, value in mapping.items() if key != "google.subject"} == {
        key: f"assertion.{key.removeprefix('attribute.')}" for key in mapping if key != "google.subject"
    }
