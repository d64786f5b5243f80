"""The GitHub API stand-in, reached as the provider reaches it (https://api.github.com through the
local cloud's proxy, trusting its test certificate): every answer checked against GitHub's OpenAPI
description, the contents API's `sha` rules, secrets sealed to the repository's key, the workflow
permission, rulesets, and the GraphQL query of `getBranchProtectionRules` against GitHub's schema."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nacl.public
import pytest

from localcloud import github_api, github_openapi, platform
from localcloud.github_server import GithubServer, call
from localcloud.state import LocalCloud, open_cloud

pytestmark = pytest.mark.skipif(
    not github_openapi.DESCRIPTION.exists(), reason="needs node_modules (npm ci): GitHub's OpenAPI description and GraphQL schema"
)

REPO = "acme/vision"
WORKFLOW = ".github/workflows/mlops.yaml"
RULES_QUERY = (
    "query($cursor:String$first:Int!$name:String!$owner:String!){repository(name: $name, owner: $owner)"
    "{id,branchProtectionRules(first:$first, after:$cursor){nodes{pattern},pageInfo{endCursor,hasNextPage}}}}"
)
"""The query githubv4 builds from upstream `dataSourceGithubBranchProtectionRulesRead`'s struct."""


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[LocalCloud, Any]]:
    """A cloud with `acme/vision` (main, dvc.yaml) and its GitHub server; `api(method, path, body, token)`."""
    cloud = open_cloud(tmp_path)
    platform.create_repository(cloud, "github", REPO, ["main"], {"dvc.yaml": b"stages: {}\n"})
    server = GithubServer(cloud, 0, github_openapi.checker())
    server.start()
    urls = {"githubProxy": server.url, "githubCertificate": str(server.certificate)}

    def api(method: str, path: str, body: Any = None, token: str | None = "ghp_local") -> tuple[int, Any, dict[str, str]]:
        return call(urls, method, path, token, body)

    yield cloud, api
    server.stop()
    assert github_api.requests_log(cloud, "github-violations.jsonl") == []


def sealed(api: Any, value: str, path: str = f"/repos/{REPO}/actions/secrets/public-key") -> dict[str, str]:
    """`value` sealed to the key GitHub answers, as upstream `encryptPlaintext` seals it."""
    _, key, _ = api("GET", path)
    box = nacl.public.SealedBox(nacl.public.PublicKey(base64.b64decode(key["key"])))
    return {"encrypted_value": base64.b64encode(box.encrypt(value.encode())).decode(), "key_id": key["key_id"]}


def put_file(api: Any, content: bytes, sha: str | None = None, token: str = "ghp_local") -> tuple[int, Any, dict[str, str]]:
    body = {
        "message": "mlops-ci",
        "content": base64.b64encode(content).decode(),
        "branch": "main",
        **({"sha": sha} if sha else {}),
    }
    return api("PUT", f"/repos/{REPO}/contents/{WORKFLOW}", body, token)


def test_every_route_answers_within_githubs_openapi_description(hub: tuple[LocalCloud, Any]) -> None:
    _, api = hub
    calls = [
        ("GET", f"/repos/{REPO}", None, 200),
        ("GET", "/repos/acme/missing", None, 404),
        ("GET", "/user", None, 200),
        ("GET", "/users/acme", None, 200),
        ("GET", "/users/acme/gpg_keys", None, 200),
        ("GET", "/orgs/acme", None, 404),
        ("GET", f"/repos/{REPO}/branches/main", None, 200),
        ("GET", f"/repos/{REPO}/git/ref/heads/main", None, 200),
        ("GET", f"/repos/{REPO}/contents/dvc.yaml?ref=main", None, 200),
        ("GET", f"/repos/{REPO}/commits?sha=main&path=dvc.yaml", None, 200),
        ("GET", f"/repos/{REPO}/rules/branches/main", None, 200),
        ("POST", f"/repos/{REPO}/actions/variables", {"name": "GCP_PROJECT", "value": "p"}, 201),
        ("GET", f"/repos/{REPO}/actions/variables/GCP_PROJECT", None, 200),
        ("PATCH", f"/repos/{REPO}/actions/variables/GCP_PROJECT", {"name": "GCP_PROJECT", "value": "q"}, 204),
        ("DELETE", f"/repos/{REPO}/actions/variables/GCP_PROJECT", None, 204),
        (
            "PUT",
            f"/repos/{REPO}/environments/ci",
            {"deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True}},
            200,
        ),
        ("POST", f"/repos/{REPO}/environments/ci/deployment-branch-policies", {"name": "main", "type": "branch"}, 200),
        ("GET", f"/repos/{REPO}/environments/ci", None, 200),
    ]
    for method, path, body, status in calls:
        answered = api(method, path, body)
        assert answered[0] == status, (method, path, answered)
    created = put_file(api, b"on: push\n")
    assert created[0] == 201
    _, commit, _ = api("GET", f"/repos/{REPO}/commits/{created[1]['commit']['sha']}")
    assert [(f["filename"], f["status"]) for f in commit["files"]] == [(WORKFLOW, "added")]


def test_an_answer_the_description_does_not_allow_is_a_problem() -> None:
    checker = github_openapi.OpenApiChecker()
    exchange: dict[str, Any] = {
        "method": "GET",
        "path": f"/repos/{REPO}/actions/secrets/X",
        "query": {},
        "request": None,
        "status": 200,
    }
    assert (
        checker.problems(
            {**exchange, "answer": {"name": "X", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}}
        )
        == []
    )
    missing = checker.problems({**exchange, "answer": {"name": "X"}})
    assert missing
    assert "'created_at' is a required property" in missing[0]
    assert checker.problems({**exchange, "status": 202, "answer": {}})  # a success the operation does not list
    assert checker.problems({**exchange, "status": 403, "answer": {"error": "no message"}})
    assert checker.problems({**exchange, "status": 403, "answer": {"message": "GitHub's error shape"}}) == []
    assert checker.problems({**exchange, "status": 422, "answer": {"message": "listed neither here nor for every route"}})
    environment: dict[str, Any] = {"method": "PUT", "path": f"/repos/{REPO}/environments/ci", "query": {}, "status": 422}
    refused = {"answer": {"message": "refused"}}
    # what upstream's createUpdateEnvironmentData sends: `can_admins_bypass`, which the description omits
    assert checker.problems({**environment, **refused, "request": {"can_admins_bypass": True, "wait_timer": 0}}) == []
    assert checker.problems({**environment, **refused, "request": {"no_such_field": True}})


def test_the_contents_api_wants_the_files_current_sha(hub: tuple[LocalCloud, Any]) -> None:
    """docs.github.com repos/contents: updating or deleting a file needs its blob `sha`."""
    _, api = hub
    first = put_file(api, b"on: push\n")[1]["content"]["sha"]
    assert put_file(api, b"on: [push]\n")[0] == 422  # an existing file without its sha
    stale = put_file(api, b"on: [push]\n", sha="0" * 40)
    assert stale[0] == 409
    assert stale[1]["message"] == f"{WORKFLOW} does not match {'0' * 40}"
    assert put_file(api, b"on: [push]\n", sha=first)[0] == 200
    _, current, _ = api("GET", f"/repos/{REPO}/contents/{WORKFLOW}?ref=main")
    assert base64.b64decode(current["content"]) == b"on: [push]\n"
    assert current["url"].endswith("?ref=main")  # upstream's Read takes the ref from it
    delete = {"message": "bye", "branch": "main"}
    assert api("DELETE", f"/repos/{REPO}/contents/{WORKFLOW}", {**delete, "sha": first})[0] == 409
    assert api("DELETE", f"/repos/{REPO}/contents/{WORKFLOW}", {**delete, "sha": current["sha"]})[0] == 200
    assert api("DELETE", f"/repos/{REPO}/contents/{WORKFLOW}", {**delete, "sha": current["sha"]})[0] == 404


def test_secrets_are_sealed_to_the_repositorys_key_and_opened_for_ci(hub: tuple[LocalCloud, Any]) -> None:
    cloud, api = hub
    assert api("PUT", f"/repos/{REPO}/actions/secrets/KEY", sealed(api, '{"type":"service_account"}'))[0] == 201
    assert api("PUT", f"/repos/{REPO}/actions/secrets/KEY", sealed(api, '{"rotated":1}'))[0] == 204
    assert platform.ci_environment(cloud, "github", REPO) == {"KEY": '{"rotated":1}'}
    assert "rotated" not in (cloud.root / "ci-store.json").read_text()  # stored sealed
    other = nacl.public.SealedBox(nacl.public.PrivateKey.generate().public_key).encrypt(b"x")
    _, key, _ = api("GET", f"/repos/{REPO}/actions/secrets/public-key")
    foreign = {"encrypted_value": base64.b64encode(other).decode(), "key_id": key["key_id"]}
    assert api("PUT", f"/repos/{REPO}/actions/secrets/OTHER", foreign)[0] == 422
    assert api("DELETE", f"/repos/{REPO}/actions/secrets/KEY")[0] == 204
    assert api("GET", f"/repos/{REPO}/actions/secrets/KEY")[0] == 404
    assert platform.ci_environment(cloud, "github", REPO) == {}


def test_environment_secrets_use_the_environments_key_and_go_with_it(hub: tuple[LocalCloud, Any]) -> None:
    cloud, api = hub
    repo_id = platform.find_repository(cloud, "github", REPO)["id"]  # type: ignore[index]
    prefix = f"/repositories/{repo_id}/environments/ci/secrets"  # go-github's route
    assert api("GET", f"{prefix}/public-key")[0] == 404  # no environment yet
    api("PUT", f"/repos/{REPO}/environments/ci", {"deployment_branch_policy": None})
    assert api("PUT", f"{prefix}/KEY", sealed(api, "k", f"{prefix}/public-key"))[0] == 201
    assert platform.ci_environment(cloud, "github", REPO) == {"KEY": "k"}
    assert api("DELETE", f"/repos/{REPO}/environments/ci")[0] == 204
    assert platform.ci_environment(cloud, "github", REPO) == {}


def test_a_token_without_the_workflow_scope_cannot_commit_a_workflow(hub: tuple[LocalCloud, Any]) -> None:
    """Classic tokens: GitHub names their scopes in `X-OAuth-Scopes`; fine-grained ones: nothing.
    Without `workflow` (Workflows: write) a commit under .github/workflows/ is a 404 (github/docs#4770)."""
    cloud, api = hub
    github_api.register_token(cloud, "ghp_noworkflow", "classic", ("repo",))
    github_api.register_token(cloud, "github_pat_noworkflow", "fine-grained", ("contents",))
    assert api("GET", "/user", token="ghp_noworkflow")[2]["X-OAuth-Scopes"] == "repo"
    assert api("GET", "/user")[2]["X-OAuth-Scopes"] == "repo, workflow"
    assert "X-OAuth-Scopes" not in api("GET", "/user", token="github_pat_noworkflow")[2]
    assert put_file(api, b"on: push\n", token="ghp_noworkflow")[0] == 404
    assert put_file(api, b"on: push\n", token="github_pat_noworkflow")[0] == 404
    assert put_file(api, b"on: push\n")[0] == 201
    assert api("GET", "/user", token=None)[0] == 401


def test_rulesets_apply_to_their_branches_and_refuse_a_direct_commit(hub: tuple[LocalCloud, Any]) -> None:
    cloud, api = hub
    ruleset = github_api.add_ruleset(cloud, REPO, "main needs reviews", ["main"], ["pull_request", "deletion"])
    _, rules, _ = api("GET", f"/repos/{REPO}/rules/branches/main")
    assert [(r["type"], r["ruleset_id"]) for r in rules] == [("pull_request", ruleset), ("deletion", ruleset)]
    assert api("GET", f"/repos/{REPO}/rules/branches/develop")[1] == []
    refused = put_file(api, b"on: push\n")
    assert refused[0] == 409
    assert refused[1]["message"].startswith("Repository rule violations found")


def test_branch_protection_rules_by_githubs_graphql_schema(hub: tuple[LocalCloud, Any]) -> None:
    cloud, api = hub
    platform.protect_branch(cloud, "github", REPO, "ma*")
    variables = {"cursor": None, "first": 100, "name": "vision", "owner": "acme"}
    _, answer, _ = api("POST", "/graphql", {"query": RULES_QUERY, "variables": variables})
    assert answer["data"]["repository"]["branchProtectionRules"]["nodes"] == [{"pattern": "ma*"}]
    _, missing, _ = api("POST", "/graphql", {"query": RULES_QUERY, "variables": {**variables, "name": "nope"}})
    assert missing["data"] == {"repository": None}
    assert missing["errors"][0]["type"] == "NOT_FOUND"
    _, invalid, _ = api("POST", "/graphql", {"query": '{repository(owner:"acme", name:"vision"){noSuchField}}'})
    assert "Cannot query field 'noSuchField'" in json.dumps(invalid["errors"])


@pytest.mark.parametrize(
    ("method", "path", "status", "allowed"),
    [
        ("GET", f"/repos/{REPO}", 409, False),  # described: 200, 301, 403, 404
        ("DELETE", f"/repos/{REPO}/actions/secrets/KEY", 409, False),  # described: 204 only
        ("GET", f"/repos/{REPO}/actions/secrets/KEY", 422, False),
        ("DELETE", f"/repos/{REPO}/actions/secrets/KEY", 404, True),  # any route: ANY_ROUTE_ERRORS
        ("PUT", f"/repos/{REPO}/actions/secrets/KEY", 422, True),  # ROUTE_ERRORS, with its sources
        ("PUT", "/repositories/1/environments/ci/secrets/KEY", 422, True),  # go-github's route, its described twin
        ("PUT", f"/repos/{REPO}/actions/secrets/KEY", 409, False),
    ],
)
def test_an_error_status_is_allowed_on_every_route_or_on_its_own_route_only(
    method: str, path: str, status: int, allowed: bool
) -> None:
    """Red team rt18: any status >= 400 with a `message` used to pass, so the stand-in could answer an
    error GitHub never gives; now 401/403/404 anywhere, others where `ROUTE_ERRORS` names their source."""
    request = {"encrypted_value": "aGk=", "key_id": "1"} if method == "PUT" else None
    exchange = {"method": method, "path": path, "query": {}, "request": request, "status": status, "answer": {"message": "x"}}
    assert (github_openapi.OpenApiChecker().problems(exchange) == []) is allowed


def test_the_checker_refuses_to_switch_itself_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without GitHub's description (no `npm ci`) the stand-in would answer unchecked: it fails instead."""
    monkeypatch.setattr(github_openapi, "DESCRIPTION", tmp_path / "missing.json")
    with pytest.raises(FileNotFoundError, match="npm ci"):
        github_openapi.checker()


ENV = f"/repos/{REPO}/environments/ci"


def environment_api(tmp_path: Path, custom: bool) -> Any:
    """The stand-in, called directly (a 303 is not followed), with environment `ci` of `acme/vision`
    open to custom branch policies or not."""
    cloud = open_cloud(tmp_path)
    platform.create_repository(cloud, "github", REPO, ["main"], {"dvc.yaml": b"stages: {}\n"})
    stand_in = github_api.Api(cloud, github_openapi.checker())
    policy = {"protected_branches": not custom, "custom_branch_policies": custom}

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        status, data, headers = stand_in.handle(method, path, {"authorization": "Bearer t"}, json.dumps(body).encode())
        return status, json.loads(data) if data else None, headers

    assert call("PUT", ENV, {"deployment_branch_policy": policy})[0] == 200
    return call


def test_the_same_pattern_twice_is_a_see_other(tmp_path: Path) -> None:
    """@octokit/openapi, POST .../deployment-branch-policies: 303 "if the same branch name pattern
    already exists" (red team rt18: the stand-in added a second policy)."""
    call = environment_api(tmp_path, custom=True)
    assert call("POST", f"{ENV}/deployment-branch-policies", {"name": "main", "type": "branch"})[0] == 200
    status, _, headers = call("POST", f"{ENV}/deployment-branch-policies", {"name": "main", "type": "branch"})
    assert status == 303
    assert "Location" in headers


def test_no_policy_without_custom_branch_policies(tmp_path: Path) -> None:
    """The same operation: 404 when the environment's `custom_branch_policies` is false."""
    call = environment_api(tmp_path, custom=False)
    assert call("POST", f"{ENV}/deployment-branch-policies", {"name": "main", "type": "branch"})[0] == 404
