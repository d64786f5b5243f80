"""The GitLab API stand-in over HTTP: project access tokens as GitLab's REST API has them (the value
answered once, a digest kept, rotation, revocation, expiry by the local cloud's clock) and the
merge-request notes a reporter token with `api` may write; no token value in its files or log."""

from __future__ import annotations

import datetime
import hashlib
import json
import ssl
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud import gitlab_api, platform
from localcloud.state import LocalCloud

from .conftest import unique

pytestmark = pytest.mark.localcloud

AUTHOR = {"name": "mlops-ci test", "email": "test@example.com"}
USER = "glpat-localcloud"
"""The plugins' provider token: the local cloud's one user, who owns every project."""


@pytest.fixture
def project(cloud: LocalCloud) -> dict[str, Any]:
    return platform.create_repository(cloud, "gitlab", f"acme/research/{unique('reports')}", ["main"])


@pytest.fixture
def api(cloud: LocalCloud) -> Any:
    """`api(method, path, token=USER, body=None)` → (status, answer) on the stand-in."""
    base = cloud.urls()["gitlab"]

    def call(method: str, path: str, token: str | None = USER, body: Any = None) -> tuple[int, Any]:
        return gitlab_api.call(base, method, path, token, body)

    return call


@pytest.fixture
def clock(cloud: LocalCloud) -> Iterator[Any]:
    """`clock(days)` moves the shared cloud's clock; it is moved back when the test ends."""
    moved: list[float] = []

    def advance(days: float) -> None:
        cloud.advance_clock(days)
        moved.append(days)

    yield advance
    cloud.advance_clock(-sum(moved))


def new_token(api: Any, project: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"name": "report", "scopes": ["api"], "access_level": 20, **fields}
    status, answer = api("POST", f"/projects/{project['id']}/access_tokens", body=body)
    assert status == 201, answer
    return dict(answer)


def test_a_token_is_answered_once_and_kept_as_a_digest(api: Any, project: dict[str, Any], cloud: LocalCloud) -> None:
    expires = (cloud.clock().date() + datetime.timedelta(days=30)).isoformat()
    created = new_token(api, project, expires_at=expires, description="posts the report")
    value = created["token"]

    assert value.startswith("glpat-")
    assert len(value) == 26
    assert (created["access_level"], created["scopes"], created["expires_at"]) == (20, ["api"], expires)
    assert (created["active"], created["revoked"]) == (True, False)
    status, shown = api("GET", f"/projects/{project['id']}/access_tokens/{created['id']}")
    assert status == 200
    assert "token" not in shown
    assert shown == {k: v for k, v in created.items() if k != "token"}
    _, listed = api("GET", f"/projects/{project['id']}/access_tokens")
    assert [t["id"] for t in listed] == [created["id"]]
    # The stand-in keeps the value's digest only; neither its store nor its request log holds the value.
    [stored] = gitlab_api.access_tokens(cloud, project["path"])
    assert stored["digest"] == hashlib.sha256(value.encode()).hexdigest()
    assert value not in cloud.gitlab.path.read_text()
    assert value not in (cloud.root / "gitlab-requests.jsonl").read_text()
    assert cloud.gitlab.path.stat().st_mode & 0o777 == 0o600


def test_token_requests_are_validated_as_gitlab_does(api: Any, project: dict[str, Any], cloud: LocalCloud) -> None:
    where = f"/projects/{project['id']}/access_tokens"
    today = cloud.clock().date()

    assert new_token(api, project)["expires_at"] == (today + datetime.timedelta(days=365)).isoformat()  # the maximum
    assert api("POST", where, body={"scopes": ["api"]}) == (400, {"error": "name is missing"})
    assert api("POST", where, body={"name": "x", "scopes": ["all"]}) == (400, {"error": "scopes does not have a valid value"})
    assert api("POST", where, body={"name": "x", "scopes": ["api"], "expires_at": today.isoformat()})[0] == 400
    too_late = (today + datetime.timedelta(days=366)).isoformat()
    assert api("POST", where, body={"name": "x", "scopes": ["api"], "expires_at": too_late})[0] == 400
    assert api("POST", where, token=None, body={"name": "x", "scopes": ["api"]}) == (401, {"message": "401 Unauthorized"})
    assert api("POST", "/projects/acme%2Fmissing/access_tokens", body={"name": "x", "scopes": ["api"]}) == (
        404,
        {"message": "404 Project Not Found"},
    )


def test_rotation_revokes_the_token_and_answers_a_new_one(api: Any, project: dict[str, Any], cloud: LocalCloud) -> None:
    first = new_token(api, project)
    rotate = f"/projects/{project['id']}/access_tokens/{first['id']}/rotate"

    status, second = api("POST", rotate, body={})

    assert status == 200
    assert second["id"] != first["id"]
    assert second["token"] != first["token"]
    assert (second["user_id"], second["name"], second["scopes"]) == (first["user_id"], first["name"], first["scopes"])
    assert second["expires_at"] == (cloud.clock().date() + datetime.timedelta(days=7)).isoformat()  # GitLab's default
    _, old = api("GET", f"/projects/{project['id']}/access_tokens/{first['id']}")
    assert (old["revoked"], old["active"]) == (True, False)
    assert api("GET", "/user", token=first["token"])[1]["error"] == "invalid_token"
    assert api("GET", "/user", token=second["token"])[0] == 200
    assert api("POST", rotate, body={})[0] == 400  # a revoked token cannot be rotated


def test_a_revoked_token_stays_listed_inactive_and_is_refused(api: Any, project: dict[str, Any]) -> None:
    token = new_token(api, project)
    where = f"/projects/{project['id']}/access_tokens"

    assert api("DELETE", f"{where}/{token['id']}") == (204, None)

    assert api("GET", f"{where}/{token['id']}")[1]["revoked"] is True
    assert [t["id"] for t in api("GET", f"{where}?state=inactive")[1]] == [token["id"]]
    assert api("GET", f"{where}?state=active")[1] == []
    status, refused = api("GET", f"/projects/{project['id']}", token=token["token"])
    assert status == 401
    assert refused["error_description"].startswith("Token was revoked")
    assert api("DELETE", f"{where}/{token['id']}")[0] == 400
    assert api("DELETE", f"{where}/999999")[0] == 404


def test_a_token_expires_on_its_day_by_the_clouds_clock(api: Any, project: dict[str, Any], cloud: LocalCloud, clock: Any) -> None:
    token = new_token(api, project, expires_at=(cloud.clock().date() + datetime.timedelta(days=2)).isoformat())
    assert api("GET", f"/projects/{project['id']}", token=token["token"])[0] == 200

    clock(2)

    assert api("GET", f"/projects/{project['id']}", token=token["token"]) == (
        401,
        {"error": "invalid_token", "error_description": "Token has expired."},
    )
    assert api("GET", f"/projects/{project['id']}/access_tokens/{token['id']}")[1]["active"] is False


def test_a_reporter_api_token_writes_and_edits_its_note_on_a_merge_request(
    api: Any, project: dict[str, Any], cloud: LocalCloud
) -> None:
    iid = gitlab_api.open_merge_request(cloud, project["path"], "feature", "main", "Tune the learning rate")
    notes = f"/projects/{project['id']}/merge_requests/{iid}/notes"
    reporter = new_token(api, project)["token"]

    status, note = api("POST", notes, token=reporter, body={"body": "first report"})
    assert status == 201
    assert note["author"]["username"].startswith(f"project_{project['id']}_bot_")
    status, edited = api("PUT", f"{notes}/{note['id']}", token=reporter, body={"body": "second report"})
    assert (status, edited["body"]) == (200, "second report")
    assert [n["body"] for n in api("GET", f"{notes}?per_page=100&page=1", token=reporter)[1]] == ["second report"]
    assert [n["body"] for n in gitlab_api.notes(cloud, project["path"], iid)] == ["second report"]
    # what the token may not do: manage tokens (Maintainer), or reach another project
    assert api("GET", f"/projects/{project['id']}/access_tokens", token=reporter) == (403, {"message": "403 Forbidden"})
    other = platform.create_repository(cloud, "gitlab", f"acme/research/{unique('other')}", ["main"])
    assert api("GET", f"/projects/{other['id']}", token=reporter) == (404, {"message": "404 Project Not Found"})


def test_a_reporter_token_reads_a_file_of_a_branch_raw(api: Any, project: dict[str, Any], cloud: LocalCloud) -> None:
    """What the report job does first: the job script as the stack's branch has it."""
    platform.commit_file(Path(project["gitDir"]), "main", ".mlops-ci/job.py", b"print('hi')\n", "job script", AUTHOR)
    reporter = new_token(api, project)["token"]
    raw = f"{cloud.urls()['gitlab']}/projects/{project['id']}/repository/files/.mlops-ci%2Fjob.py/raw"
    request = urllib.request.Request(f"{raw}?ref=main", headers={"PRIVATE-TOKEN": reporter})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert (response.status, response.read()) == (200, b"print('hi')\n")
    missing = f"/projects/{project['id']}/repository/files/nothing.py/raw?ref=main"
    assert api("GET", missing, token=reporter) == (404, {"message": "404 File Not Found"})
    guest = new_token(api, project, access_level=10)["token"]
    assert api("GET", f"/projects/{project['id']}/repository/files/.mlops-ci%2Fjob.py/raw?ref=main", token=guest)[0] == 403


def test_a_note_needs_the_api_scope_and_the_reporter_role(api: Any, project: dict[str, Any], cloud: LocalCloud) -> None:
    iid = gitlab_api.open_merge_request(cloud, project["path"], "feature", "main", "Scopes")
    notes = f"/projects/{project['id']}/merge_requests/{iid}/notes"
    reader = new_token(api, project, scopes=["read_api"])["token"]
    guest = new_token(api, project, access_level=10)["token"]

    assert api("GET", notes, token=reader)[0] == 200
    status, refused = api("POST", notes, token=reader, body={"body": "x"})
    assert (status, refused["error"]) == (403, "insufficient_scope")
    assert api("POST", notes, token=guest, body={"body": "x"}) == (403, {"message": "403 Forbidden"})
    assert api("GET", f"/projects/{project['id']}/merge_requests/{iid}", token=guest)[0] == 403
    assert gitlab_api.notes(cloud, project["path"], iid) == []


def test_the_request_log_names_who_asked_never_a_token(api: Any, project: dict[str, Any], cloud: LocalCloud) -> None:
    token = new_token(api, project)
    api("GET", f"/projects/{project['id']}", token=token["token"])
    api("DELETE", f"/projects/{project['id']}/access_tokens/{token['id']}")
    api("GET", f"/projects/{project['id']}", token=token["token"])

    logged = gitlab_api.requests_log(cloud)[-4:]

    assert [(e["method"], e["status"], e["principal"]) for e in logged] == [
        ("POST", 201, "user"),
        ("GET", 200, f"token:{token['id']}"),
        ("DELETE", 204, "user"),
        ("GET", 401, "refused"),
    ]
    assert token["token"] not in (cloud.root / "gitlab-requests.jsonl").read_text()


# --- gitlab.com's tiers: the plan of a group, and project access tokens refused on Free ---


@pytest.fixture
def own_group_project(cloud: LocalCloud) -> dict[str, Any]:
    """A project alone in its group: the group's plan is for this test only (the cloud is shared)."""
    return platform.create_repository(cloud, "gitlab", f"{unique('billed')}/app", ["main"])


def test_a_groups_plan_is_shown_to_its_owner_only(api: Any, cloud: LocalCloud, own_group_project: dict[str, Any]) -> None:
    project = own_group_project
    group = project["path"].rsplit("/", 1)[0]
    assert api("GET", f"/namespaces/{project['namespaceId']}")[1]["plan"] == "default"  # self-managed's answer
    gitlab_api.set_plan(cloud, group, "premium")
    status, shown = api("GET", f"/namespaces/{urllib.parse.quote(group, safe='')}")
    assert (status, shown["full_path"], shown["plan"]) == (200, group, "premium")
    bot = new_token(api, project)["token"]
    status, as_bot = api("GET", f"/namespaces/{project['namespaceId']}", bot)
    assert status == 200
    assert "plan" not in as_bot  # a member that does not own the group


def test_a_project_access_token_is_refused_on_gitlabs_free_plan(
    api: Any, cloud: LocalCloud, own_group_project: dict[str, Any]
) -> None:
    """GitLab lists the project's tokens to a Maintainer on Free, and refuses to create one."""
    project = own_group_project
    gitlab_api.set_plan(cloud, project["path"].rsplit("/", 1)[0], gitlab_api.FREE_PLAN)

    assert api("GET", f"/projects/{project['id']}/access_tokens")[0] == 200
    status, answer = api("POST", f"/projects/{project['id']}/access_tokens", body={"name": "report", "scopes": ["api"]})

    refusal = "400 Bad request - User does not have permission to create project access token"
    assert (status, answer) == (400, {"message": refusal})


def test_a_subgroup_has_the_plan_of_its_top_level_group(api: Any, cloud: LocalCloud) -> None:
    """gitlab.com bills top-level groups: a subgroup's plan is its root's (GitLab EE
    `Namespace#actual_plan`: `root_ancestor.actual_plan` when it has a parent), which the
    pre-flight reads from the project's own namespace."""
    root = unique("billed")
    project = platform.create_repository(cloud, "gitlab", f"{root}/research/app", ["main"])
    gitlab_api.set_plan(cloud, root, gitlab_api.FREE_PLAN)

    assert api("GET", f"/namespaces/{project['namespaceId']}")[1]["plan"] == gitlab_api.FREE_PLAN
    assert api("POST", f"/projects/{project['id']}/access_tokens", body={"name": "report", "scopes": ["api"]})[0] == 400


def test_the_api_answers_over_https_with_the_state_directorys_certificate(cloud: LocalCloud) -> None:
    context = ssl.create_default_context(cafile=cloud.urls()["gitlabCertificate"])
    request = urllib.request.Request(cloud.urls()["gitlabTls"] + "/user", headers={"PRIVATE-TOKEN": USER})
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        assert json.loads(response.read())["username"] == gitlab_api.LOCAL_USERNAME
