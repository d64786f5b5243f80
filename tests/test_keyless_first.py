"""Keyless first (issue 21): the credential's default per host, direct and impersonation modes, a
shared pool, and no deployed stack changing its credential silently on its next `pulumi up`."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from mlops_ci.ci.files import render_ci_file
from mlops_ci.offline.runtime import numeric_id
from mlops_ci.settings import validate
from mlops_ci.settings.loader import ConfigError
from tests.helpers import ACCOUNT, ACCOUNT_BINDING, GRANT, KEY, POOL, POOL_PROVIDER, SERVICE, CountingMocks, run
from tests.test_preflight import NOT_FOUND, Answers, refused, service_disabled

NUMBER = numeric_id("acme-ml-test")
SHARED = f"projects/{NUMBER}/locations/global/workloadIdentityPools/platform-ci/providers/github"


@pytest.mark.parametrize(
    ("base", "url", "keyless"),
    [
        ("github", None, True),
        ("gitlab", None, True),
        ("github", "https://api.github.com/", True),
        ("gitlab", "https://gitlab.com/api/v4/", True),
        ("github", "https://github.acme.example/api/v3/", False),
        ("gitlab", "https://gitlab.acme.example/api/v4/", False),
        ("gitlab", "https://gitlab.com/api/v4X", False),  # gitlab.com's host, not its API: a key, as for any other
    ],
)
def test_auth_left_unset_is_keyless_where_google_reaches_the_issuer(
    base: str, url: str | None, keyless: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if url:  # the platform team lets stack files name that API
        monkeypatch.setattr(validate, "SCHEMA", dataclasses.replace(validate.SCHEMA, base_urls=(url,)))
    evaluation = run(base, {"auth": None, f"{base}__baseUrl": url})
    types = {r.type for r in evaluation.registrations}
    if keyless:  # direct: no key, no service account
        assert POOL_PROVIDER in types
        assert not types & {KEY, ACCOUNT}
    else:
        assert KEY in types
        assert POOL_PROVIDER not in types


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"keylessMode": "impersonation"}, "mlops-ci:keylessMode: applies to auth workload-identity only"),
        ({"trustBranchOnly": "true"}, "mlops-ci:trustBranchOnly: applies to auth workload-identity only"),
        ({"workloadIdentityProvider": SHARED}, "mlops-ci:workloadIdentityProvider: applies to auth workload-identity only"),
        ({"auth": "workload-identity", "keylessMode": "proxy"}, "mlops-ci:keylessMode = 'proxy': one of direct, impersonation"),
        (
            {"auth": "workload-identity", "serviceAccountId": "ci-account"},
            "mlops-ci:serviceAccountId: applies to a service account; keylessMode direct creates none",
        ),
        (
            {"auth": "workload-identity", "workloadIdentityProvider": "projects/x/pools/p"},
            "mlops-ci:workloadIdentityProvider = 'projects/x/pools/p': a provider's full name",
        ),
        (
            {"auth": "workload-identity", "workloadIdentityProvider": SHARED},
            f"mlops-ci:workloadIdentityProvider = '{SHARED}': not a provider the platform lets this stack share"
            " (Pulumi.yaml platform.workloadIdentityProviders: none)",
        ),
    ],
)
def test_keyless_keys_that_cannot_apply_are_refused(overrides: dict[str, str], problem: str) -> None:
    mocks = CountingMocks()
    with pytest.raises(ConfigError) as raised:
        run("github", overrides, mocks=mocks)
    assert [p for p in raised.value.problems if p.startswith(problem)], raised.value.problems
    assert mocks.created == []


def test_impersonation_may_name_its_service_account() -> None:
    evaluation = run("github", auth="workload-identity", keylessMode="impersonation", serviceAccountId="ci-account")
    assert evaluation.one(ACCOUNT).plain("accountId") == "ci-account"


@pytest.fixture
def shared_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """The platform team lets stacks share its pools (Pulumi.yaml platform.workloadIdentityProviders)."""
    allowed = dataclasses.replace(validate.SCHEMA, workload_identity_providers=(f"projects/{NUMBER}/*",))
    monkeypatch.setattr(validate, "SCHEMA", allowed)


@pytest.mark.usefixtures("shared_pool")
@pytest.mark.parametrize(("base", "attribute"), [("github", "repository_id"), ("gitlab", "project_id")])
@pytest.mark.parametrize("mode", ["direct", "impersonation"])
def test_a_shared_pool_gets_grants_for_this_repository_only_and_no_pool_of_the_stack(
    base: str, attribute: str, mode: str
) -> None:
    evaluation = run(base, auth="workload-identity", keylessMode=mode, workloadIdentityProvider=SHARED)
    types = {r.type for r in evaluation.registrations}
    assert not types & {POOL, POOL_PROVIDER, KEY}, "the platform team's pool and provider: the stack creates none"
    repository = "acme-ml/churn-model" if base == "github" else "acme-ml/research/churn-model"
    member = (
        f"principalSet://iam.googleapis.com/projects/{NUMBER}/locations/global/workloadIdentityPools/platform-ci"
        f"/attribute.{attribute}/{numeric_id(f'{base}/{repository}')}"
    )
    granted = [b.plain("member") for b in evaluation.find(ACCOUNT_BINDING)] if mode == "impersonation" else []
    granted += [g.plain("member") for g in evaluation.find(GRANT)] if mode == "direct" else []
    assert granted
    assert set(granted) == {member}
    assert evaluation.exports["workloadIdentityProvider"] == SHARED


@pytest.mark.usefixtures("shared_pool")
def test_with_a_shared_pool_the_impersonation_grant_waits_for_the_apis() -> None:
    """With no pool of the stack to wait for, the grant on the account waits for the APIs itself."""
    evaluation = run("github", auth="workload-identity", keylessMode="impersonation", workloadIdentityProvider=SHARED)
    services = {r.urn: r.plain("service") for r in evaluation.find(SERVICE)}
    waits = {services[urn] for urn in evaluation.one(ACCOUNT_BINDING).dependencies if urn in services}
    assert waits == {"iam.googleapis.com", "sts.googleapis.com", "iamcredentials.googleapis.com"}


@pytest.mark.usefixtures("shared_pool")
def test_gitlab_asks_a_shared_provider_for_its_default_audience() -> None:
    evaluation = run("gitlab", auth="workload-identity", workloadIdentityProvider=SHARED)
    ci_file = next(f for f in evaluation.committed_ci_files())
    assert yaml.safe_load(ci_file.content)["reproduce"]["id_tokens"] == {
        "GCP_ID_TOKEN": {"aud": f"https://iam.googleapis.com/{SHARED}"}
    }


@pytest.mark.usefixtures("shared_pool")
def test_a_long_branch_is_no_problem_of_a_stack_with_a_shared_provider() -> None:
    # The subject limit binds the stack's own provider, which maps google.subject from the token's `sub`; a shared
    # provider's mapping is the platform team's.
    run("github", auth="workload-identity", workloadIdentityProvider=SHARED, branch="b" * 128)


@pytest.mark.usefixtures("shared_pool")
def test_a_shared_provider_cannot_restrict_the_branch() -> None:
    with pytest.raises(ConfigError, match="mlops-ci:trustBranchOnly: cannot be combined with mlops-ci:workloadIdentityProvider"):
        run("github", auth="workload-identity", workloadIdentityProvider=SHARED, trustBranchOnly="true")


def provider_answer(**changes: Any) -> Any:
    def answer(args: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
        return found | changes

    return answer


PROVIDER_FLAWS: list[tuple[dict[str, Any], str]] = [
    (
        {"name": SHARED.replace(str(NUMBER), "42")},
        f"a provider of another project (acme-ml-test's is {SHARED.replace(str(NUMBER), '42')})",
    ),
    ({"state": "DELETED"}, "disabled or deleted (state DELETED)"),
    ({"disabled": True}, "disabled or deleted (state ACTIVE)"),
    (
        {"oidcs": [{"issuerUri": "https://gitlab.com", "allowedAudiences": []}]},
        "trusts the issuer 'https://gitlab.com', not github's (https://token.actions.githubusercontent.com)",
    ),
    ({"oidcs": []}, "trusts the issuer None, not github's (https://token.actions.githubusercontent.com)"),
    (
        {"oidcs": [{"issuerUri": "https://token.actions.githubusercontent.comX", "allowedAudiences": []}]},
        "trusts the issuer 'https://token.actions.githubusercontent.comX', not github's",
    ),
    (
        {"attributeMapping": {"google.subject": "assertion.sub", "attribute.repository_id": "assertion.repository"}},
        "its attribute mapping gives attribute.repository_id = 'assertion.repository', not assertion.repository_id",
    ),
    (
        {"oidcs": [{"issuerUri": "https://token.actions.githubusercontent.com", "allowedAudiences": ["other"]}]},
        f"accepts the audiences ['other'], not https://iam.googleapis.com/{SHARED} that CI asks for",
    ),
]


@pytest.mark.usefixtures("shared_pool")
@pytest.mark.parametrize(("changes", "problem"), PROVIDER_FLAWS)
def test_pre_flight_refuses_a_shared_provider_the_stack_cannot_trust(changes: dict[str, Any], problem: str) -> None:
    overrides = {"auth": "workload-identity", "workloadIdentityProvider": SHARED}
    problems, _ = refused("github", {"getWorkloadIdentityPoolProvider": provider_answer(**changes)}, overrides)
    assert [p for p in problems if p.startswith(f"mlops-ci:workloadIdentityProvider = '{SHARED}': {problem}")], problems


@pytest.mark.usefixtures("shared_pool")
def test_pre_flight_refuses_a_provider_it_cannot_find() -> None:
    overrides = {"auth": "workload-identity", "workloadIdentityProvider": SHARED}
    problems, _ = refused("github", {"getWorkloadIdentityPoolProvider": NOT_FOUND}, overrides)
    assert problems == [
        f"mlops-ci:workloadIdentityProvider = '{SHARED}': no such provider in gcp:project acme-ml-test, or the credentials"
        " of `pulumi up` cannot read it (a stack shares a pool of its own project only)"
    ]


@pytest.mark.usefixtures("shared_pool")
def test_pre_flight_names_the_shared_provider_whose_look_up_finds_iam_off() -> None:
    overrides = {"auth": "workload-identity", "workloadIdentityProvider": SHARED}
    answers = {"getWorkloadIdentityPoolProvider": service_disabled("iam.googleapis.com", "acme-ml-test")}
    problems, _ = refused("github", answers, overrides)
    assert problems == [
        f"mlops-ci:workloadIdentityProvider = '{SHARED}': Google answers that iam.googleapis.com is disabled in project"
        " acme-ml-test (or was enabled minutes ago): enable it there (`gcloud services enable iam.googleapis.com"
        " --project acme-ml-test`), wait a few minutes, and run pulumi up again"
    ]


@pytest.mark.usefixtures("shared_pool")
@pytest.mark.parametrize(
    ("base", "overrides", "issuer"),
    [
        ("github", {}, "https://token.actions.githubusercontent.com/"),
        ("gitlab", {"gitlab__baseUrl": "https://gitlab.acme.example/api/v4/"}, "https://gitlab.acme.example"),
        ("gitlab", {"gitlab__baseUrl": "https://acme.example/GITLAB-X/"}, "https://acme.example/GITLAB-X/"),
    ],
    ids=["trailing-slash", "self-managed", "self-managed-under-a-path"],
)
def test_a_shared_provider_of_the_platforms_issuer_is_trusted(
    base: str, overrides: dict[str, str], issuer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issuer compared without its trailing '/'; a self-managed instance's issuer is its own root URL."""
    listed = (*validate.SCHEMA.base_urls, *overrides.values())
    monkeypatch.setattr(validate, "SCHEMA", dataclasses.replace(validate.SCHEMA, base_urls=listed))
    provider = provider_answer(oidcs=[{"issuerUri": issuer, "allowedAudiences": []}])
    chosen = {"auth": "workload-identity", "workloadIdentityProvider": SHARED, **overrides}
    evaluation = run(base, chosen, mocks=Answers({"getWorkloadIdentityPoolProvider": provider}))
    assert evaluation.exports["workloadIdentityProvider"] == SHARED


ACCOUNT_FOUND = {"email": "dvc-ci-team-a@acme-ml-test.iam.gserviceaccount.com", "name": "projects/acme-ml-test/serviceAccounts/x"}


@pytest.mark.parametrize(
    ("overrides", "keep", "switch"),
    [
        ({"auth": None}, "`mlops-ci:auth: key` (the key, as before)", "`mlops-ci:auth: workload-identity` with"),
        ({"auth": "workload-identity"}, "`mlops-ci:keylessMode: impersonation`", "`mlops-ci:keylessMode: direct`"),
    ],
)
def test_a_deployed_stack_whose_credential_the_new_defaults_would_change_stops(
    overrides: dict[str, str | None], keep: str, switch: str
) -> None:
    problems, mocks = refused("github", {"getAccount": ACCOUNT_FOUND}, overrides)
    assert "getAccount" in mocks.asked
    [problem] = problems
    unset = "mlops-ci:auth and mlops-ci:keylessMode" if overrides["auth"] is None else "mlops-ci:keylessMode"
    assert problem.startswith(f"{unset}: not set, and this release's default (keyless, direct: no service account) would")
    assert ACCOUNT_FOUND["email"] in problem
    assert f"keep it with {keep}" in problem
    assert f"switch with {switch}" in problem
    assert problem.endswith("pulumi up then deletes what the old credential needed and CI authenticates as the repository")


@pytest.mark.parametrize(
    "overrides",
    [
        {"auth": "workload-identity", "keylessMode": "direct"},  # chosen: the switch is the stack file's
        {"auth": "workload-identity", "keylessMode": "impersonation"},
        {"auth": "key"},
    ],
)
def test_a_stack_file_that_chose_its_credential_is_not_stopped(overrides: dict[str, str]) -> None:
    mocks = Answers({"getAccount": ACCOUNT_FOUND})
    run("github", overrides, mocks=mocks)
    assert "getAccount" not in mocks.asked


def test_a_new_stack_left_to_the_defaults_goes_keyless_direct() -> None:
    mocks = Answers({})
    evaluation = run("github", {"auth": None}, mocks=mocks)
    assert "getAccount" in mocks.asked  # answered "not found": nothing deployed before
    assert not {r.type for r in evaluation.registrations} & {ACCOUNT, KEY}
    workflow = yaml.safe_load(next(f for f in evaluation.committed_ci_files()).content)
    assert "service_account" not in workflow["jobs"]["reproduce"]["steps"][3]["with"]


def test_the_ci_file_of_a_key_stack_is_unchanged_by_the_keyless_modes() -> None:
    from tests.helpers import make_settings

    assert render_ci_file(make_settings("github")) == render_ci_file(make_settings("github", keyless_mode="impersonation"))


# --- red team (rkl): the upgrade stop must not depend on the look-up answering cleanly ---

# What IAM answers `projects.serviceAccounts.get` when the caller lacks iam.serviceAccounts.get (the
# same answer whether or not the account exists), as terraform-provider-google's data source
# google_service_account passes it on (`Error reading Service Account ...: googleapi: Error 403`).
FORBIDDEN: tuple[dict[str, Any], list[tuple[str, str]]] = (
    {},
    [("", "googleapi: Error 403: Permission 'iam.serviceAccounts.get' denied on resource (or it may not exist)., forbidden")],
)
# A read that fails for a reason that says nothing about the account (quota, backend).
UNAVAILABLE: tuple[dict[str, Any], list[tuple[str, str]]] = (
    {},
    [("", "googleapi: Error 503: The service is currently unavailable., backendError")],
)
# A failure with another status whose text says "not found" of something else: its status decides, not the words.
BACKEND_NOT_FOUND: tuple[dict[str, Any], list[tuple[str, str]]] = (
    {},
    [("", "googleapi: Error 502: upstream backend not found, please retry., backendError")],
)

# IAM disabled in another project than the stack's (the quota project of the deployer's credentials):
# it says nothing about the stack's project, where the earlier release enabled IAM for its account.
DISABLED_ELSEWHERE: tuple[dict[str, Any], list[tuple[str, str]]] = (
    {},
    [
        (
            "",
            "googleapi: Error 403: Identity and Access Management (IAM) API has not been used in project 999 before or it is"
            " disabled. Enable it by visiting https://console.developers.google.com/apis/api/iam.googleapis.com/overview?project=999"
            " then retry., accessNotConfigured (SERVICE_DISABLED)",
        )
    ],
)


# No answer from Google at all: nothing says whether the account exists.
UNREACHABLE: tuple[dict[str, Any], list[tuple[str, str]]] = (
    {},
    [("", 'Post "https://iam.googleapis.com/v1/projects/acme-ml-test/serviceAccounts": dial tcp: connection refused')],
)


@pytest.mark.parametrize(
    "answer",
    [FORBIDDEN, UNAVAILABLE, BACKEND_NOT_FOUND, DISABLED_ELSEWHERE, UNREACHABLE],
    ids=["403", "503", "502-not-found", "iam-off-elsewhere", "unreachable"],
)
@pytest.mark.parametrize("overrides", [{"auth": None}, {"auth": "workload-identity"}], ids=["key-stack", "impersonation-stack"])
def test_the_upgrade_stop_does_not_switch_when_the_account_look_up_fails(overrides: dict[str, str | None], answer: Any) -> None:
    """Only "not found" (404) says nothing was deployed; an answer that cannot tell (403, 5xx) must
    stop too, or a stack deployed with a key switches its credential silently (issue 21: "No existing
    stack changes its credential silently")."""
    problems, mocks = refused("github", {"getAccount": answer}, overrides)
    assert "getAccount" in mocks.asked
    unset = "mlops-ci:auth" if overrides["auth"] is None else "mlops-ci:keylessMode"
    assert [p for p in problems if p.startswith(unset)], problems


def test_a_key_stack_that_adds_keyless_mode_impersonation_but_not_auth_stops() -> None:
    """A key stack (auth never set) whose file gains `keylessMode: impersonation` (as the refusal of
    serviceAccountId in direct mode suggests) still leaves auth to its new default: its key and secret
    would be deleted and CI switched to keyless without the stack file saying `auth`."""
    problems, mocks = refused("github", {"getAccount": ACCOUNT_FOUND}, {"auth": None, "keylessMode": "impersonation"})
    assert "getAccount" in mocks.asked
    [problem] = problems
    # The default it would get is impersonation's (its keylessMode is set), not direct's.
    assert problem.startswith("mlops-ci:auth: not set, and this release's default (keyless, with impersonation: no key) would"), (
        problem
    )


def test_a_key_stack_with_its_own_service_account_id_is_told_about_auth() -> None:
    """A key stack (auth never set) that named its account (`serviceAccountId`) is refused under the
    new default for that key only, with advice (keylessMode impersonation, or dropping the key) that
    leads to a silent switch: dropped, the look-up asks for the derived account, finds none (404) and
    the stack goes direct, deleting the named account and its key. The refusal must name auth."""
    with pytest.raises(ConfigError) as raised:
        run("github", {"auth": None, "serviceAccountId": "custom-ci-account"}, mocks=Answers({}))
    assert [p for p in raised.value.problems if p.startswith("mlops-ci:auth")], raised.value.problems


@pytest.mark.parametrize(
    ("base", "prefix"),
    [
        ("github", "repo:acme-ml/churn-model:ref:refs/heads/"),
        ("gitlab", "project_path:acme-ml/research/churn-model:ref_type:branch:ref:"),
    ],
)
def test_a_branch_whose_runs_subject_google_refuses_is_refused(base: str, prefix: str) -> None:
    """Google refuses a mapped google.subject over 127 bytes; the stack's own provider maps the token's
    `sub`, which names the branch: a subject of 128 bytes is refused, one of 127 goes up."""
    fits = "b" * (127 - len(prefix))
    run(base, auth="workload-identity", branch=fits)
    longer = fits + "x"  # one more byte
    with pytest.raises(ConfigError) as raised:
        run(base, {"auth": "workload-identity", "branch": longer}, mocks=CountingMocks())
    [problem] = [p for p in raised.value.problems if p.startswith(f"mlops-ci:branch = '{longer}'")]
    assert f"{prefix}{longer}" in problem
    assert "128 bytes" in problem
    assert "over 127 bytes" in problem


def test_a_failed_account_look_up_says_what_google_answered() -> None:
    problems, _ = refused("github", {"getAccount": UNAVAILABLE}, {"auth": None})
    [problem] = problems
    assert "googleapi: Error 503: The service is currently unavailable., backendError" in problem
    assert "keep it with `mlops-ci:auth: key` (the key, as before) if it had a key" in problem


def test_a_long_answer_from_google_is_quoted_to_its_first_400_characters() -> None:
    answer = "googleapi: Error 503: " + "backend detail " * 40
    problems, _ = refused("github", {"getAccount": ({}, [("", answer)])}, {"auth": None})
    [problem] = problems
    quoted = problem.split("(Google: ", 1)[1].split("); set it", 1)[0]
    assert len(quoted) == 400
    assert quoted.endswith("backend detail back")


@pytest.mark.parametrize(
    "answer",
    [
        # terraform-provider-google HandleDataSourceNotFoundError: a 404 becomes "<name> not found".
        ({}, [("", "projects/acme-ml-test/serviceAccounts/dvc-ci-team-a@acme-ml-test.iam.gserviceaccount.com not found")]),
        # Google's own 404 as the local cloud's gcp plugin passes it (localcloud/plugins/gcp.py `_account`).
        ({}, [("", "googleapi: Error 404: Service account dvc-ci-team-a does not exist., notFound")]),
        # IAM disabled in the stack's own project: no account can be there.
        (
            {},
            [
                (
                    "",
                    "googleapi: Error 403: Identity and Access Management (IAM) API has not been used in project acme-ml-test"
                    " before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/"
                    "iam.googleapis.com/overview?project=acme-ml-test then retry., accessNotConfigured (SERVICE_DISABLED)",
                )
            ],
        ),
    ],
    ids=["404", "google-404", "iam-off-in-the-stacks-project"],
)
def test_an_account_google_says_is_not_there_lets_a_new_stack_go_direct(answer: Any) -> None:
    mocks = Answers({"getAccount": answer})
    evaluation = run("github", {"auth": None}, mocks=mocks)
    assert "getAccount" in mocks.asked
    assert not {r.type for r in evaluation.registrations} & {ACCOUNT, KEY}
