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
from tests.helpers import GITHUB_FILE, GITHUB_SECRET, committed_file, run


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
            status, body, headers = routes.get(self.path, (404, {"message": "Not Found"}, {}))
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
