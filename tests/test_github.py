"""GitHub delivery: the key secret where only the branch's runs can read it, when asked; the pre-flight's own
calls to GitHub (scopes, rulesets on the branch, where the provider calls) and what in the environment redirects
the provider."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pulumi_github as github_sdk
import pytest
import yaml
from pulumi.runtime import rpc

from mlops_ci import direct_calls
from mlops_ci.offline.runtime import type_token
from mlops_ci.platforms import github
from tests.helpers import GITHUB_FILE, GITHUB_SECRET, KEY, committed_file, decode_key_file, make_settings, run


def test_github_environment_holds_the_key_secret_for_the_branch_only() -> None:
    evaluation = run("github", githubEnvironment="dvc-ci", branch="main")
    environment = evaluation.one(type_token(github_sdk.RepositoryEnvironment))
    assert environment.plain("environment") == "dvc-ci"
    assert environment.plain("deploymentBranchPolicy") == {"protectedBranches": False, "customBranchPolicies": True}
    policy = evaluation.one(type_token(github_sdk.RepositoryEnvironmentDeploymentPolicy))
    assert (policy.plain("environment"), policy.plain("branchPattern")) == ("dvc-ci", "main")
    secret = evaluation.one(type_token(github_sdk.ActionsEnvironmentSecret))
    assert secret.plain("environment") == "dvc-ci"
    assert rpc.is_rpc_secret(secret.inputs["value"])
    assert evaluation.find(GITHUB_SECRET) == []
    ci_file = committed_file(evaluation, GITHUB_FILE)
    assert {secret.urn, policy.urn} <= set(ci_file.dependencies)
    assert json.loads(secret.plain("value")) == decode_key_file(evaluation.one(KEY).outputs["privateKey"])
    delivery, provider = evaluation.one("mlops-ci:github:GithubDelivery"), evaluation.one("pulumi:providers:github")
    assert [(r.parent, r.provider_urn) for r in (environment, policy, secret)] == [(delivery.urn, provider.urn)] * 3
    # Named after the delivery, as every other resource of it: a rename would replace them on the next `up`.
    named = [r.name for r in (delivery, environment, policy, secret)]
    assert named[1:] == [f"{named[0]}-environment", f"{named[0]}-environment-branch", f"{named[0]}-secret"]
    assert yaml.safe_load(ci_file.plain("content"))["jobs"]["reproduce"]["environment"] == "dvc-ci"


def test_without_an_environment_the_key_is_a_repository_secret_and_the_job_names_none() -> None:
    evaluation = run("github")
    assert evaluation.find(type_token(github_sdk.ActionsEnvironmentSecret)) == []
    assert "environment" not in yaml.safe_load(committed_file(evaluation, GITHUB_FILE).plain("content"))["jobs"]["reproduce"]


Route = tuple[int, Any, dict[str, str]]


@pytest.fixture
def fake_github() -> Iterator[tuple[dict[str, Route], str]]:
    """A plain-HTTP GitHub answering `routes[path-with-query]`; (routes, base URL)."""
    routes: dict[str, Route] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            # The request line's target as sent: `self.path` has a leading '//' collapsed (http.server, gh-87389).
            target = self.requestline.split(" ")[1]
            status, body, headers = routes.get(target, (404, {"message": "Not Found"}, {}))
            data = json.dumps(body).encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield routes, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


USER: Route = (200, {"login": "octo"}, {"X-OAuth-Scopes": "repo, workflow"})
RULES = "/repos/acme/vision/rules/branches/main"


def ruleset(bypass: str) -> Route:
    return 200, {"id": 7, "name": "protect-main", "current_user_can_bypass": bypass}, {}


def test_an_organization_ruleset_blocks_the_commit_too(fake_github: tuple[dict[str, Route], str]) -> None:
    """docs repos/rules#get-rules-for-a-branch: every active rule, whatever its level;
    `repository-rule-ruleset-info.ruleset_source_type` is `Repository` or `Organization`."""
    routes, base = fake_github
    routes["/user"] = USER
    routes[RULES] = (
        200,
        [{"type": "pull_request", "ruleset_source_type": "Organization", "ruleset_source": "acme", "ruleset_id": 7}],
        {},
    )
    routes["/repos/acme/vision/rulesets/7"] = ruleset("never")
    access = direct_calls.DirectCalls().github_access(base, "t", "acme/vision", "main")
    assert access is not None
    assert access.blocking_rulesets, "an org ruleset requiring a pull request is ignored"


def test_an_exempt_user_is_not_blocked(fake_github: tuple[dict[str, Route], str]) -> None:
    """`repository-ruleset.current_user_can_bypass` enum: always, pull_requests_only, never, exempt."""
    routes, base = fake_github
    routes["/user"] = USER
    routes[RULES] = (
        200,
        [{"type": "pull_request", "ruleset_source_type": "Repository", "ruleset_source": "acme/vision", "ruleset_id": 7}],
        {},
    )
    routes["/repos/acme/vision/rulesets/7"] = ruleset("exempt")
    access = direct_calls.DirectCalls().github_access(base, "t", "acme/vision", "main")
    assert access is not None
    assert access.blocking_rulesets == ()


def test_scopes_are_read_whatever_the_headers_case(fake_github: tuple[dict[str, Route], str]) -> None:
    """HTTP field names are case-insensitive (RFC 9110 §5.1); GitHub sends them lower-case over HTTP/2."""
    routes, base = fake_github
    routes["/user"] = (200, {"login": "octo"}, {"x-oauth-scopes": "repo"})
    routes[RULES] = (200, [], {})
    access = direct_calls.DirectCalls().github_access(base, "t", "acme/vision", "main")
    assert access is not None
    assert access.scopes == ("repo",), "a classic token without workflow passes as fine-grained"


def test_a_refused_rulesets_read_keeps_the_scope_check(fake_github: tuple[dict[str, Route], str]) -> None:
    """A token that may not read the branch's rules (403) still has its scopes told by `/user`."""
    routes, base = fake_github
    routes["/user"] = (200, {"login": "octo"}, {"X-OAuth-Scopes": "repo"})
    routes[RULES] = (403, {"message": "Resource not accessible by personal access token"}, {})
    access = direct_calls.DirectCalls().github_access(base, "t", "acme/vision", "main")
    assert access is not None
    assert access.scopes == ("repo",), "the missing workflow scope goes unsaid"


def test_the_branch_rules_are_read_past_the_first_page(fake_github: tuple[dict[str, Route], str]) -> None:
    """repos/get-branch-rules takes per_page/page (default 30): GitHub pages with a Link header."""
    routes, base = fake_github
    routes["/user"] = USER
    filler = [{"type": "non_fast_forward", "ruleset_source_type": "Repository", "ruleset_source": "acme/vision", "ruleset_id": 8}]
    link = {"Link": f'<{base}repos/acme/vision/rules/branches/main?page=2>; rel="next"'}
    routes[RULES] = (200, filler * 30, link)
    page2 = [{"type": "pull_request", "ruleset_source_type": "Repository", "ruleset_source": "acme/vision", "ruleset_id": 7}]
    routes[RULES + "?page=2"] = (200, page2, {})
    routes["/repos/acme/vision/rulesets/7"] = ruleset("never")
    access = direct_calls.DirectCalls().github_access(base, "t", "acme/vision", "main")
    assert access is not None
    assert access.blocking_rulesets


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://api.github.com/", "https://api.github.com/"),
        ("https://github.com", "https://api.github.com/"),
        ("https://octo.ghe.com", "https://api.octo.ghe.com/"),
        ("https://ghes.example.com/api/v3/", "https://ghes.example.com/api/v3/"),
        ("https://api.octo.ghe.com", "https://api.octo.ghe.com/"),
        ("https://ghes.example.com/github", "https://ghes.example.com/github/api/v3/"),
        ("https://ghes.example.com/GHX/", "https://ghes.example.com/GHX/api/v3/"),  # only '/' is stripped, never a letter
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/api/v3/"),
        (None, "https://api.github.com/"),
    ],
)
def test_the_preflight_asks_where_the_provider_asks(base_url: str | None, expected: str) -> None:
    """upstream v6.13.0 config.go `getBaseURL`: github.com and *.ghe.com take no /api/v3/."""
    assert github.rest_url(base_url) == expected


def test_the_environment_cannot_swap_the_providers_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """upstream v6.13.0 provider.go `getAppAuth`: GITHUB_APP_ID/_INSTALLATION_ID/_PEM_FILE, all three
    set, replace the stack's token (`token` is read only `if config.AppID == nil`)."""
    for name in ("GITHUB_APP_ID", "GITHUB_APP_INSTALLATION_ID", "GITHUB_APP_PEM_FILE"):
        monkeypatch.setenv(name, "1")
    settings: Any = type("S", (), {"repository": "acme/vision"})()
    assert any("GITHUB_APP_ID" in p for p in github.owner_problems(settings))
    monkeypatch.delenv("GITHUB_APP_PEM_FILE")  # upstream `validateAppAuth`: all three, or the token
    assert github.owner_problems(settings) == []


def test_a_refused_user_read_keeps_the_rules_check_and_says_what_it_needs(fake_github: tuple[dict[str, Route], str]) -> None:
    """A GitHub App's installation token: `GET /user` answers 403 ("Resource not accessible by
    integration"); the branch's rules are still read, and the refusal is told with its remedy."""
    routes, base = fake_github
    routes["/user"] = (403, {"message": "Resource not accessible by integration"}, {})
    routes[RULES] = (
        200,
        [{"type": "pull_request", "ruleset_source_type": "Repository", "ruleset_source": "acme/vision", "ruleset_id": 7}],
        {},
    )
    routes["/repos/acme/vision/rulesets/7"] = ruleset("pull_requests_only")
    access = direct_calls.DirectCalls().github_access(base, "t", "acme/vision", "main")
    assert access is not None
    assert access.scopes is None
    assert access.blocking_rulesets == ("'protect-main' (pull_request)",)
    assert access.refusals == (
        "GitHub answers 403 to GET /user (a GitHub App's token cannot read a user): the token's scopes are unknown;"
        " the commit of the CI file needs Contents and Workflows: write",
    )


def test_a_bad_token_is_told_once(fake_github: tuple[dict[str, Route], str]) -> None:
    routes, base = fake_github
    routes["/user"] = routes[RULES] = (401, {"message": "Bad credentials"}, {})
    access = direct_calls.DirectCalls().github_access(base, "t", "acme/vision", "main")
    assert access is not None
    assert access.refusals == (direct_calls.BAD_CREDENTIALS,)


def test_github_out_of_reach_is_unknown() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()  # nothing listens on the port any more
    assert direct_calls.DirectCalls().github_access(f"http://127.0.0.1:{port}/", "t", "acme/vision", "main") is None


def test_a_next_page_on_another_host_is_not_followed(fake_github: tuple[dict[str, Route], str]) -> None:
    """The token goes to the API it was given for only."""
    routes, base = fake_github
    routes["/user"] = USER
    routes[RULES] = (200, [], {"Link": '<https://elsewhere.example/rules?page=2>; rel="next"'})
    access = direct_calls.DirectCalls().github_access(base, "t", "acme/vision", "main")
    assert access == direct_calls.GithubAccess(("repo", "workflow"), ())


class _Told(direct_calls.DirectCalls):
    def __init__(self, access: direct_calls.GithubAccess | None) -> None:
        self.access = access

    def github_access(self, api_url: str, token: str, repository: str, branch: str) -> direct_calls.GithubAccess | None:
        return self.access


@pytest.mark.parametrize(
    ("access", "warned"),
    [
        (None, "https://api.github.com/ cannot be reached"),
        (direct_calls.GithubAccess(("repo", "workflow"), (), refusals=("GitHub answers 403 to GET x",)), "403 to GET x"),
    ],
)
def test_what_github_does_not_tell_is_a_warning(
    access: direct_calls.GithubAccess | None, warned: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    told: list[str] = []

    def warn(message: str, *_: object, **__: object) -> None:
        told.append(message)

    monkeypatch.setattr(github.pulumi.log, "warn", warn)
    settings: Any = type("S", (), {"repository": "acme/vision", "branch": "main", "platform_url": None, "ci_file": "f"})()
    with direct_calls.replaced_by(_Told(access)):
        assert github.access_problems(settings) == []
    assert any(warned in message for message in told)


ENVIRONMENT_REDIRECTS = (*github.OWNER_VARIABLES, *github.APP_VARIABLES)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No variable that redirects the provider, whatever the machine sets."""
    for name in ENVIRONMENT_REDIRECTS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("variable", ["GITHUB_OWNER", "GITHUB_ORGANIZATION"])
def test_an_owner_variable_naming_another_owner_is_refused(variable: str, clean_environment: pytest.MonkeyPatch) -> None:
    """upstream v6.13.0 provider.go `configureProvider`: either variable overrides the provider's `owner`."""
    clean_environment.setenv(variable, "someone-else")
    assert github.owner_problems(make_settings()) == [
        f"{variable} = 'someone-else' in the environment: the GitHub provider manages that owner's repositories instead of"
        f" 'acme-ml' (it reads the variable before the owner the stack gives it); unset {variable}"
    ]
    clean_environment.setenv(variable, "acme-ml")  # the repository's own owner: harmless
    assert github.owner_problems(make_settings()) == []


def test_an_app_in_the_environment_is_told_with_what_to_unset(clean_environment: pytest.MonkeyPatch) -> None:
    for name in github.APP_VARIABLES:
        clean_environment.setenv(name, "12")
    assert github.owner_problems(make_settings()) == [
        "GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID, GITHUB_APP_PEM_FILE in the environment: the GitHub provider"
        " authenticates as that GitHub App (GITHUB_APP_ID = '12') instead of with github:token; unset them"
    ]


@pytest.mark.parametrize("unset", ["GITHUB_APP_ID", "GITHUB_APP_INSTALLATION_ID", "GITHUB_APP_PEM_FILE"])
def test_an_app_lacking_one_variable_leaves_the_token(unset: str, clean_environment: pytest.MonkeyPatch) -> None:
    """upstream v6.13.0 provider.go `validateAppAuth`: all three, or the token."""
    for name in github.APP_VARIABLES:
        if name != unset:
            clean_environment.setenv(name, "12")
    assert github.owner_problems(make_settings()) == []


class _Asked(_Told):
    """Tells `access`, and records what it was asked."""

    def __init__(self, access: direct_calls.GithubAccess | None) -> None:
        super().__init__(access)
        self.asked: list[tuple[str, str, str, str]] = []

    def github_access(self, api_url: str, token: str, repository: str, branch: str) -> direct_calls.GithubAccess | None:
        self.asked.append((api_url, token, repository, branch))
        return self.access


@pytest.fixture
def warnings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What `pulumi.log.warn` is given while the test runs."""
    told: list[str] = []

    def warn(message: str, *_: object, **__: object) -> None:
        told.append(message)

    monkeypatch.setattr(github.pulumi.log, "warn", warn)
    return told


def access_problems(access: direct_calls.GithubAccess | None, **fields: Any) -> list[str]:
    with direct_calls.replaced_by(_Told(access)):
        return github.access_problems(make_settings(**fields))


FULL = direct_calls.GithubAccess(("repo", "workflow"), ())


@pytest.mark.parametrize(
    ("config", "environment", "token"),
    [({"github:token": "ghp_stack"}, "ghp_env", "ghp_stack"), ({}, "ghp_env", "ghp_env"), ({}, None, "")],
)
def test_the_access_is_asked_with_the_stacks_token_where_the_provider_calls(
    config: dict[str, str], environment: str | None, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """github:token, else GITHUB_TOKEN (as the provider reads them); at the REST URL of github:baseUrl."""
    monkeypatch.setattr(github.runtime_config, "get_config", config.get)
    if environment is None:
        monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    else:
        monkeypatch.setenv("GITHUB_TOKEN", environment)
    asked = _Asked(FULL)
    with direct_calls.replaced_by(asked):
        github.access_problems(make_settings(platform_url="https://ghes.acme.example", branch="dev"))
    assert asked.asked == [("https://ghes.acme.example/api/v3/", token, "acme-ml/churn-model", "dev")]


def test_github_out_of_reach_is_a_warning_naming_what_goes_unchecked(warnings: list[str]) -> None:
    assert access_problems(None) == []
    assert warnings == [
        "github: https://api.github.com/ cannot be reached: the token's permission to commit .github/workflows/mlops.yaml"
        " and the rulesets on 'main' are not checked before the resources"
    ]


def test_each_refused_read_is_a_warning_of_its_own(warnings: list[str]) -> None:
    refusals = ("GitHub answers 403 to GET /user", "GitHub answers 404 to GET /repos")
    assert access_problems(direct_calls.GithubAccess(("workflow",), (), refusals=refusals)) == []
    assert warnings == ["github:token: GitHub answers 403 to GET /user", "github:token: GitHub answers 404 to GET /repos"]


@pytest.mark.parametrize(("scopes", "held"), [(("repo", "read:org"), "repo, read:org"), ((), "none")])
def test_a_classic_token_without_the_workflow_scope_is_refused(scopes: tuple[str, ...], held: str, warnings: list[str]) -> None:
    assert access_problems(direct_calls.GithubAccess(scopes, ()), ci_file=".github/workflows/repro.yml") == [
        f"github:token: a classic token without the `workflow` scope (it has {held}): GitHub refuses the commit of"
        " .github/workflows/repro.yml; add the `workflow` scope, or use a fine-grained token with Contents and Workflows: write"
    ]
    assert warnings == []


def test_a_token_whose_scopes_github_does_not_tell_is_a_warning(warnings: list[str]) -> None:
    assert access_problems(direct_calls.GithubAccess(None, ())) == []
    assert warnings == [
        "github:token: GitHub does not tell what a fine-grained token may do: the commit of .github/workflows/mlops.yaml"
        " needs Workflows: write (and Contents: write) on acme-ml/churn-model; without it GitHub answers that commit"
        " with 404 Not Found, after the secret exists"
    ]


def test_a_classic_token_with_the_workflow_scope_passes_silently(warnings: list[str]) -> None:
    assert access_problems(FULL) == []
    assert warnings == []


def test_rulesets_forbidding_the_commit_are_refused_and_unreadable_ones_warned(warnings: list[str]) -> None:
    access = direct_calls.GithubAccess(
        ("workflow",), ("'main' (pull_request)", "'org' (update)"), unsure_rulesets=("7 (required_signatures)", "9 (update)")
    )
    assert access_problems(access, branch="release") == [
        "mlops-ci:branch = 'release': the rulesets 'main' (pull_request), 'org' (update) of acme-ml/churn-model apply to it,"
        " forbid a direct commit and the token's user may not bypass them (GitHub: GH013 Repository rule violations):"
        " choose another branch, or add the token's user to the rulesets' bypass list"
    ]
    assert warnings == [
        "mlops-ci:branch = 'release': the rulesets 7 (required_signatures), 9 (update) of acme-ml/churn-model forbid a"
        " direct commit and this token cannot read whether its user may bypass them: the commit of"
        " .github/workflows/mlops.yaml fails unless it may"
    ]


def test_each_github_rule_is_told_in_full_naming_the_key_and_the_value() -> None:
    assert github.GITHUB.config_problems("acme/vïsion.git", "github_key", ".github/ci.yml", False, None) == [
        "mlops-ci:repository = 'acme/v\\xefsion.git': a GitHub repository is owner/name: owner 1-39 letters, digits or"
        " single inner '-'; name 1-100 letters, digits, '.', '_', '-', not ending in .git",
        "mlops-ci:secretName = 'github_key': GitHub secret names use letters, digits and '_', do not start with a digit"
        " or with GITHUB_",
        "mlops-ci:ciFile = '.github/ci.yml': a GitHub workflow lives directly in .github/workflows/ and ends in .yml or .yaml",
    ]


@pytest.mark.parametrize("repository", ["acme/.", "acme/..", "acme/vision.git"])
def test_a_repository_name_github_reserves_is_refused(repository: str) -> None:
    """GitHub refuses `.`, `..` and names ending in `.git` (its new-repository form)."""
    assert github.repository_problem(repository)


@pytest.mark.parametrize(
    ("keyless", "base_url", "refused"),
    [
        (True, None, False),
        (True, "https://api.github.com", False),
        (True, "https://api.github.com/", False),
        (False, "https://ghes.acme.example/api/v3/", False),
        (True, "https://ghes.acme.example/api/v3/", True),
        (True, "https://api.github.com/X", True),  # github.com's API exactly: a path under it is another URL
    ],
)
def test_keyless_mode_is_refused_off_github_com_only(keyless: bool, base_url: str | None, refused: bool) -> None:
    problems = github.GITHUB.config_problems("acme/vision", "KEY", ".github/workflows/mlops.yaml", keyless, base_url)
    expected = (
        "github:baseUrl: workload-identity trusts github.com's OIDC issuer only; use auth key with GitHub Enterprise Server"
    )
    assert problems == ([expected] if refused else [])
