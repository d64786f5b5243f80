"""Red-team (rt18): the pre-flight's direct calls to GitHub and the stand-in's OpenAPI check, against
what GitHub documents. Each test fails on ghprovider 8f08c35; the fake GitHub below answers only
what @octokit/openapi (api.github.com.json) allows for these routes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mlops_ci import direct_calls
from mlops_ci.platforms import github

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

        def log_message(self, *_: Any) -> None:
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
    ],
)
def test_the_preflight_asks_where_the_provider_asks(base_url: str, expected: str) -> None:
    """upstream v6.13.0 config.go `getBaseURL`: github.com and *.ghe.com take no /api/v3/."""
    assert github.rest_url(base_url) == expected


def test_the_environment_cannot_swap_the_providers_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """upstream v6.13.0 provider.go `getAppAuth`: GITHUB_APP_ID/_INSTALLATION_ID/_PEM_FILE, all three
    set, replace the stack's token (`token` is read only `if config.AppID == nil`)."""
    for name in ("GITHUB_APP_ID", "GITHUB_APP_INSTALLATION_ID", "GITHUB_APP_PEM_FILE"):
        monkeypatch.setenv(name, "1")
    settings: Any = type("S", (), {"repository": "acme/vision"})()
    assert any("GITHUB_APP_ID" in p for p in github.owner_problems(settings))
