"""The program's own requests beside the providers: whether Google lets a new key do what CI does on
the bucket (as CI's clients ask, at Google's token endpoint then Cloud Storage), and the GitLab plan
look-up, which asks with the token and sends it to the instance named by `gitlab:baseUrl` only."""

# google-auth's session is untyped:
# pyright: reportUnknownMemberType=false

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from collections.abc import Callable, Generator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest
import requests
from google.auth.transport.requests import AuthorizedSession

from localcloud.kit.servers import TokenEndpoint
from localcloud.kit.stack import service_account_key
from mlops_ci.direct_calls import DirectCalls, GithubAccess, UnreachableError


class Recorder(ThreadingHTTPServer):
    """A local HTTP server that records each request (path with query, headers) and answers
    `routes[path without query]`, else `answer` (status, headers, JSON body)."""

    def __init__(self, answer: tuple[int, dict[str, str], object]) -> None:
        self.answer = answer
        self.routes: dict[str, tuple[int, dict[str, str], object]] = {}
        self.requests: list[tuple[str, Message]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def tokens(self) -> list[str | None]:
        """Each request's PRIVATE-TOKEN header."""
        return [headers.get("PRIVATE-TOKEN") for _, headers in self.requests]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, Recorder)
        # The request line's target as sent: `self.path` has a leading '//' collapsed (http.server, gh-87389).
        target = self.requestline.split(" ")[1]
        server.requests.append((target, self.headers))
        status, headers, body = server.routes.get(target.partition("?")[0], server.answer)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Generator[list[Recorder]]:
    """Servers started by the test (append them), stopped after it."""
    started: list[Recorder] = []
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


def started(servers: list[Recorder], answer: tuple[int, dict[str, str], object]) -> Recorder:
    server = Recorder(answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
    return server


def closed_port() -> int:
    """A port nothing listens on any more."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.server_close()
    return server.server_address[1]


def waited_for(monkeypatch: pytest.MonkeyPatch, call: Callable[[], object]) -> list[object]:
    """The time urllib is given to wait for each answer (seconds) while `call` runs."""
    given: list[object] = []
    real = urllib.request.urlopen

    def urlopen(request: urllib.request.Request, *args: Any, **kwargs: Any) -> Any:
        given.append(kwargs.get("timeout"))
        return real(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    call()
    return given


def test_the_plan_is_asked_with_the_token(serve: list[Recorder]) -> None:
    gitlab = started(serve, (200, {}, {"id": 7, "plan": "free"}))
    assert DirectCalls().gitlab_plan(f"{gitlab.url}/api/v4/", "glpat-secret", 7) == "free"
    assert gitlab.tokens == ["glpat-secret"]


def test_the_token_never_follows_a_redirect_to_another_host(serve: list[Recorder]) -> None:
    """urllib copies a request's headers into the redirected one, whatever the host: the token
    would reach whoever the answer points at."""
    elsewhere = started(serve, (200, {}, {"plan": "premium"}))
    gitlab = started(serve, (302, {"Location": f"{elsewhere.url}/namespaces/7"}, {}))
    DirectCalls().gitlab_plan(f"{gitlab.url}/api/v4/", "glpat-secret", 7)
    assert gitlab.tokens == ["glpat-secret"]
    assert elsewhere.tokens == [None]


@pytest.mark.parametrize(("base", "path"), [("/api/v4/", "/api/v4/namespaces/7"), ("/gitlab-X", "/gitlab-X/namespaces/7")])
def test_the_plan_is_asked_of_the_namespace_under_the_base_url(base: str, path: str, serve: list[Recorder]) -> None:
    gitlab = started(serve, (200, {}, {"id": 7, "plan": "premium"}))
    assert DirectCalls().gitlab_plan(gitlab.url + base, "glpat-secret", 7) == "premium"
    assert [asked for asked, _ in gitlab.requests] == [path]


@pytest.mark.parametrize("answer", [(200, {}, {"id": 7}), (200, {}, b"<html>"), (403, {}, {"message": "403 Forbidden"})])
def test_a_plan_gitlab_does_not_tell_is_none(answer: tuple[int, dict[str, str], object], serve: list[Recorder]) -> None:
    """GitLab answers `plan` to the group's owners only; a refusal or an answer that is no JSON tells nothing."""
    gitlab = started(serve, answer)
    assert DirectCalls().gitlab_plan(f"{gitlab.url}/api/v4/", "glpat-secret", 7) is None


def test_gitlab_out_of_reach_tells_no_plan() -> None:
    assert DirectCalls().gitlab_plan(f"http://127.0.0.1:{closed_port()}/api/v4/", "glpat-secret", 7) is None


def test_gitlab_is_given_ten_seconds_to_answer(serve: list[Recorder], monkeypatch: pytest.MonkeyPatch) -> None:
    gitlab = started(serve, (200, {}, {"id": 7, "plan": "free"}))
    assert waited_for(monkeypatch, lambda: DirectCalls().gitlab_plan(f"{gitlab.url}/api/v4/", "t", 7)) == [10]


EMAIL = "dvc-ci-team-a@acme-ml-test.iam.gserviceaccount.com"
BUCKET = "acme-ml-test-dvc"
BUCKET_PATH = f"/storage/v1/b/{BUCKET}"
READ = ("storage.objects.get", "storage.objects.list")


def key_base64(token_endpoint: TokenEndpoint, trusted: bool = True, token_uri: str | None = None) -> str:
    """A new key file of EMAIL (base64, as Google gives it) whose token_uri is the endpoint; `trusted`: the
    endpoint honours it."""
    key_file, public_key = service_account_key(EMAIL, "acme-ml-test", token_uri or token_endpoint.url)
    if trusted:
        token_endpoint.trust(EMAIL, public_key)
    return base64.b64encode(json.dumps(key_file).encode()).decode()


@pytest.fixture
def storage(serve: list[Recorder], monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Cloud Storage at STORAGE_EMULATOR_HOST (given with a trailing slash), answering 404 to what the test
    does not route."""
    server = started(serve, (404, {}, {"error": {"code": 404, "message": "Not Found"}}))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url + "/")
    return server


def granting(storage: Recorder, permissions: object, listing: int = 200) -> None:
    storage.routes[f"{BUCKET_PATH}/iam/testPermissions"] = (200, {}, permissions)
    storage.routes[f"{BUCKET_PATH}/o"] = (listing, {}, {"kind": "storage#objects"})


def test_a_key_google_honours_on_a_granted_bucket_is_let_through_as_ci_asks(
    storage: Recorder, token_endpoint: TokenEndpoint
) -> None:
    """As CI's clients: a read-only token for the key, then testIamPermissions and one listing with it."""
    granting(storage, {"permissions": list(READ)})
    assert DirectCalls().credential_refusal(key_base64(token_endpoint), BUCKET, READ) is None
    assert [(e.issuer, e.scope, e.granted) for e in token_endpoint.exchanges] == [
        (EMAIL, "https://www.googleapis.com/auth/devstorage.read_only", True)
    ]
    (token,) = token_endpoint.issued
    assert [(path, headers["Authorization"]) for path, headers in storage.requests] == [
        (
            f"{BUCKET_PATH}/iam/testPermissions?permissions=storage.objects.get&permissions=storage.objects.list",
            f"Bearer {token}",
        ),
        (f"{BUCKET_PATH}/o?maxResults=1", f"Bearer {token}"),
    ]


def test_a_key_google_refuses_is_told_in_googles_words_before_cloud_storage_is_asked(
    storage: Recorder, token_endpoint: TokenEndpoint
) -> None:
    refusal = DirectCalls().credential_refusal(key_base64(token_endpoint, trusted=False), BUCKET, READ)
    assert refusal == "Google refuses the key (invalid_grant: Invalid JWT Signature.)"
    assert storage.requests == []


@pytest.mark.parametrize(
    ("answer", "missing"),
    [
        ({"kind": "storage#testIamPermissionsResponse"}, "storage.objects.get, storage.objects.list"),
        ({"permissions": ["storage.objects.list"]}, "storage.objects.get"),
    ],
)
def test_grants_not_effective_yet_name_the_missing_permissions(
    answer: object, missing: str, storage: Recorder, token_endpoint: TokenEndpoint
) -> None:
    """testIamPermissions answers the permissions held; none held: no `permissions` field at all."""
    granting(storage, answer)
    refusal = DirectCalls().credential_refusal(key_base64(token_endpoint), BUCKET, READ)
    assert refusal == f"the bucket grants are not effective yet (missing {missing})"


def test_a_refused_permission_test_is_told_and_nothing_is_listed(storage: Recorder, token_endpoint: TokenEndpoint) -> None:
    storage.routes[f"{BUCKET_PATH}/iam/testPermissions"] = (403, {}, {"error": {"code": 403}})
    refusal = DirectCalls().credential_refusal(key_base64(token_endpoint), BUCKET, READ)
    assert refusal == "Cloud Storage answers 403 to the bucket's testIamPermissions"
    assert [path.partition("?")[0] for path, _ in storage.requests] == [f"{BUCKET_PATH}/iam/testPermissions"]


def test_a_refused_listing_is_told(storage: Recorder, token_endpoint: TokenEndpoint) -> None:
    granting(storage, {"permissions": list(READ)}, listing=403)
    refusal = DirectCalls().credential_refusal(key_base64(token_endpoint), BUCKET, READ)
    assert refusal == "Cloud Storage answers 403 to a listing of the bucket"


def test_a_token_endpoint_out_of_reach_cannot_tell(storage: Recorder, token_endpoint: TokenEndpoint) -> None:
    token_uri = f"http://127.0.0.1:{closed_port()}/token"
    with pytest.raises(UnreachableError) as raised:
        DirectCalls().credential_refusal(key_base64(token_endpoint, token_uri=token_uri), BUCKET, READ)
    assert str(raised.value).startswith(f"{token_uri}: ")
    assert storage.requests == []


def test_cloud_storage_out_of_reach_cannot_tell(token_endpoint: TokenEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage)
    with pytest.raises(UnreachableError) as raised:
        DirectCalls().credential_refusal(key_base64(token_endpoint), BUCKET, READ)
    assert str(raised.value).startswith(f"{storage}: ")


def test_without_an_emulator_cloud_storage_is_googles(token_endpoint: TokenEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """google-cloud-storage's default endpoint; no request leaves this machine (the session is cut)."""
    asked: list[str] = []

    def cut(self: AuthorizedSession, method: str, url: str, *args: object, **kwargs: object) -> requests.Response:
        asked.append(url)
        raise requests.ConnectionError("no network in the tests")

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setattr(AuthorizedSession, "request", cut)
    with pytest.raises(UnreachableError, match=r"^https://storage\.googleapis\.com: "):
        DirectCalls().credential_refusal(key_base64(token_endpoint), BUCKET, READ)
    assert asked == [f"https://storage.googleapis.com{BUCKET_PATH}/iam/testPermissions"]


def test_cloud_storage_is_given_thirty_seconds_to_answer(
    storage: Recorder, token_endpoint: TokenEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    granting(storage, {"permissions": list(READ)})
    given: list[object] = []
    real = cast(Callable[..., requests.Response], AuthorizedSession.request)

    def timed(self: AuthorizedSession, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        given.append(kwargs.get("timeout"))
        return real(self, method, url, *args, **kwargs)

    monkeypatch.setattr(AuthorizedSession, "request", timed)
    assert DirectCalls().credential_refusal(key_base64(token_endpoint), BUCKET, READ) is None
    assert given == [30, 30]


def test_an_emulator_under_a_path_is_asked_there(
    serve: list[Recorder], token_endpoint: TokenEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As google-cloud-storage joins STORAGE_EMULATOR_HOST and the API's path: whatever the URL ends in."""
    storage = started(serve, (404, {}, {}))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"{storage.url}/gcs-X")
    storage.routes[f"/gcs-X{BUCKET_PATH}/iam/testPermissions"] = (200, {}, {"permissions": list(READ)})
    storage.routes[f"/gcs-X{BUCKET_PATH}/o"] = (200, {}, {"kind": "storage#objects"})
    assert DirectCalls().credential_refusal(key_base64(token_endpoint), BUCKET, READ) is None


# --- what GitHub lets the token do on the branch (`github_access`) ---

RULES = "/repos/acme/vision/rules/branches/main"


@pytest.fixture
def github(serve: list[Recorder]) -> Recorder:
    """GitHub's REST API for a classic token with `repo, workflow` and no rule on `main`; 404 to the rest."""
    server = started(serve, (404, {}, {"message": "Not Found"}))
    server.routes["/user"] = (200, {"X-OAuth-Scopes": "repo, workflow"}, {"login": "octo"})
    server.routes[RULES] = (200, {}, [])
    return server


def rule(type_: str, ruleset_id: int | None = 7) -> dict[str, object]:
    """One entry of `GET /repos/{repo}/rules/branches/{branch}` (docs: repository-rule-detailed)."""
    found: dict[str, object] = {"type": type_, "ruleset_source_type": "Repository", "ruleset_source": "acme/vision"}
    return found if ruleset_id is None else {**found, "ruleset_id": ruleset_id}


def ruleset(bypass: str, name: str | None = "protect-main") -> tuple[int, dict[str, str], object]:
    answer: dict[str, object] = {"id": 7, "current_user_can_bypass": bypass}
    return 200, {}, answer if name is None else {**answer, "name": name}


def access_of(github: Recorder, token: str = "t", branch: str = "main") -> GithubAccess | None:
    return DirectCalls().github_access(f"{github.url}/", token, "acme/vision", branch)


def test_each_read_asks_for_githubs_json_with_the_token(github: Recorder) -> None:
    assert access_of(github, "ghp_x") == GithubAccess(("repo", "workflow"), ())
    assert [(path, headers["Accept"], headers["Authorization"]) for path, headers in github.requests] == [
        ("/user", "application/vnd.github+json", "Bearer ghp_x"),
        (RULES, "application/vnd.github+json", "Bearer ghp_x"),
    ]


def test_without_a_token_nothing_claims_to_authorize(github: Recorder) -> None:
    access_of(github, "")
    assert [headers["Authorization"] for _, headers in github.requests] == [None, None]


def test_a_branch_with_a_slash_is_one_path_segment(github: Recorder) -> None:
    access_of(github, branch="release/2026")
    assert [path for path, _ in github.requests][1] == "/repos/acme/vision/rules/branches/release%2F2026"


@pytest.mark.parametrize(
    ("type_", "blocks"),
    [
        ("pull_request", True),
        ("update", True),
        ("required_status_checks", True),
        ("required_signatures", True),
        ("required_deployments", True),
        ("non_fast_forward", False),
        ("deletion", False),
        ("creation", False),
    ],
)
def test_each_rule_a_commit_through_the_contents_api_cannot_satisfy_blocks_it(github: Recorder, type_: str, blocks: bool) -> None:
    """GitHub docs, "Available rules for rulesets"; creation, deletion and non_fast_forward concern the branch itself."""
    github.routes[RULES] = (200, {}, [rule(type_)])
    github.routes["/repos/acme/vision/rulesets/7"] = ruleset("never")
    access = access_of(github)
    assert access is not None
    assert access.blocking_rulesets == ((f"'protect-main' ({type_})",) if blocks else ())


@pytest.mark.parametrize(
    ("bypass", "blocks"), [("always", False), ("exempt", False), ("pull_requests_only", True), ("never", True)]
)
def test_only_a_user_who_may_bypass_the_ruleset_directly_is_let_through(github: Recorder, bypass: str, blocks: bool) -> None:
    """@octokit/openapi `repository-ruleset.current_user_can_bypass`: always, pull_requests_only, never, exempt."""
    github.routes[RULES] = (200, {}, [rule("pull_request")])
    github.routes["/repos/acme/vision/rulesets/7"] = ruleset(bypass)
    access = access_of(github)
    assert access is not None
    assert access.blocking_rulesets == (("'protect-main' (pull_request)",) if blocks else ())


def test_a_ruleset_is_told_once_with_its_blocking_rules(github: Recorder) -> None:
    rules = [rule("required_signatures"), rule("non_fast_forward"), rule("pull_request"), rule("pull_request", None)]
    github.routes[RULES] = (200, {}, rules)
    github.routes["/repos/acme/vision/rulesets/7"] = ruleset("never", name=None)
    access = access_of(github)
    assert access is not None
    assert access.blocking_rulesets == ("7 (pull_request, required_signatures)",)
    assert [path for path, _ in github.requests] == ["/user", RULES, "/repos/acme/vision/rulesets/7"]


def test_rulesets_whose_bypass_cannot_be_read_are_unsure_and_the_others_still_read(github: Recorder) -> None:
    github.routes[RULES] = (200, {}, [rule("pull_request", 5), rule("update", 6), rule("pull_request", 7)])
    github.routes["/repos/acme/vision/rulesets/6"] = (403, {}, {"message": "Resource not accessible by integration"})
    github.routes["/repos/acme/vision/rulesets/7"] = ruleset("never")
    access = access_of(github)
    assert access is not None
    assert (access.unsure_rulesets, access.blocking_rulesets) == (
        ("5 (pull_request)", "6 (update)"),
        ("'protect-main' (pull_request)",),
    )


def test_a_rules_page_that_is_no_list_adds_no_rule(github: Recorder) -> None:
    github.routes[RULES] = (200, {}, {"type": "pull_request", "ruleset_id": 7})
    assert access_of(github) == GithubAccess(("repo", "workflow"), ())


@pytest.mark.parametrize(
    ("header", "scopes"), [({}, None), ({"X-OAuth-Scopes": ""}, ()), ({"X-OAuth-Scopes": "workflow"}, ("workflow",))]
)
def test_the_scopes_are_a_classic_tokens_only(github: Recorder, header: dict[str, str], scopes: tuple[str, ...] | None) -> None:
    """A fine-grained token's answer has no X-OAuth-Scopes: unknown, not none; a classic token may have none."""
    github.routes["/user"] = (200, header, {"login": "octo"})
    assert access_of(github) == GithubAccess(scopes, ())


def test_an_empty_answer_is_no_refusal(github: Recorder) -> None:
    github.routes["/user"] = (200, {"X-OAuth-Scopes": "repo"}, b"")
    assert access_of(github) == GithubAccess(("repo",), ())


@pytest.mark.parametrize("answer", [(200, {"Content-Type": "text/html"}, b"<html>"), (403, {}, {"message": "Forbidden"})])
def test_a_rules_read_refused_or_not_json_leaves_them_unknown_and_says_what_the_token_needs(
    github: Recorder, answer: tuple[int, dict[str, str], object]
) -> None:
    github.routes[RULES] = answer
    assert access_of(github) == GithubAccess(
        ("repo", "workflow"),
        (),
        refusals=(
            f"GitHub answers {answer[0]} to GET /repos/acme/vision/rules/branches/main: the rulesets on the branch are"
            " unknown; the token needs read access to acme/vision (fine-grained: Metadata: read)",
        ),
    )


def test_a_bad_token_is_told_what_to_do(github: Recorder) -> None:
    github.routes["/user"] = (401, {}, {"message": "Bad credentials"})
    access = access_of(github)
    assert access is not None
    assert access.refusals == (
        "GitHub refuses the token (401 Bad credentials): it is expired, revoked or mistyped; set a valid github:token",
    )


def test_github_is_given_ten_seconds_to_answer_each_read(github: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    assert waited_for(monkeypatch, lambda: access_of(github)) == [10, 10]
