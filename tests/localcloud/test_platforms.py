"""The gitlab plugin: files committed into bare repositories (deleted by a commit), variables in the
CI store, GitLab's masking rule, look-ups of numeric ids; and what a CI runner reads of both
platforms (GitHub's side is the real provider against the API stand-in: test_github_api.py)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime.proto import provider_pb2

from localcloud import gitlab_api, platform, wire
from localcloud.github_server import call
from localcloud.kit.stack import service_account_key
from localcloud.plugins import gitlab
from localcloud.state import LocalCloud

from .conftest import REPOSITORY, PluginClient, PluginError, journal_for, unique

pytestmark = pytest.mark.localcloud

PROJECT_VARIABLE = "gitlab:index/projectVariable:ProjectVariable"
GITLAB_FILE = "gitlab:index/repositoryFile:RepositoryFile"
GET_VARIABLE = "gitlab:index/getProjectVariable:getProjectVariable"


def generated_key_json() -> str:
    """A service-account key file with a fresh RSA key, minified as GitHub receives it."""
    key_file, _ = service_account_key("ci@acme-ml-test.iam.gserviceaccount.com", "acme-ml-test", "http://127.0.0.1/token")
    return json.dumps(key_file, separators=(",", ":"))


KEY_JSON = generated_key_json()
ROTATED_KEY_JSON = generated_key_json()


def git_log(repo: Path, branch: str) -> list[str]:
    out = subprocess.run(
        ["git", "--git-dir", str(repo), "log", "--format=%s", branch], capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


@pytest.fixture
def repository(cloud: LocalCloud) -> dict[str, Any]:
    return platform.create_repository(cloud, "github", f"acme/{unique('vision')}", ["main"])


@pytest.fixture
def project(cloud: LocalCloud) -> dict[str, Any]:
    return platform.create_repository(cloud, "gitlab", f"acme/research/{unique('nlp')}", ["main"])


@pytest.fixture
def lab(plugins: Any) -> PluginClient:
    client: PluginClient = plugins(gitlab.PROVIDER, {"token": wire.secret("glpat-local"), "version": gitlab.VERSION})
    return client


def test_gitlab_refuses_to_mask_an_unmaskable_value_with_400(
    lab: PluginClient, project: dict[str, Any], cloud: LocalCloud
) -> None:
    props = {"project": project["path"], "key": "GOOGLE_SERVICE_ACCOUNT_KEY", "masked": True, "raw": False}
    with pytest.raises(PluginError, match=r"400 \{message: \{value: \[is invalid\]\}\}"):
        lab.create(PROJECT_VARIABLE, "raw-json", {**props, "value": wire.secret(KEY_JSON)})

    assert platform.ci_variables(cloud, "gitlab", project["path"]) == {}
    error = journal_for(cloud, f"{PROJECT_VARIABLE}::raw-json")[0]["error"]
    assert "PRIVATE KEY" not in error


def test_gitlab_masked_variable_is_stored_and_redacted_even_unmarked(
    lab: PluginClient, project: dict[str, Any], cloud: LocalCloud
) -> None:
    encoded = base64.b64encode(KEY_JSON.encode()).decode()
    props = {"project": project["path"], "key": "GOOGLE_SERVICE_ACCOUNT_KEY", "masked": True, "raw": True, "value": encoded}
    created = lab.create(PROJECT_VARIABLE, "key", props)

    assert platform.ci_environment(cloud, "gitlab", project["path"]) == {"GOOGLE_SERVICE_ACCOUNT_KEY": encoded}
    assert journal_for(cloud, f"{PROJECT_VARIABLE}::key")[0]["inputs"]["value"] == "[secret]"
    assert encoded not in cloud.journal.path.read_text()
    with pytest.raises(PluginError, match="has already been taken"):
        lab.create(PROJECT_VARIABLE, "key-again", props)
    lab.delete(PROJECT_VARIABLE, "key", created)
    assert platform.ci_environment(cloud, "gitlab", project["path"]) == {}


def test_gitlab_protected_variable_reaches_protected_refs_only(
    lab: PluginClient, project: dict[str, Any], cloud: LocalCloud
) -> None:
    lab.create(PROJECT_VARIABLE, "protected", {"project": project["path"], "key": "P", "value": "plain-value", "protected": True})
    assert platform.ci_environment(cloud, "gitlab", project["path"]) == {}
    assert platform.ci_environment(cloud, "gitlab", project["path"], protected_ref=True) == {"P": "plain-value"}


def test_gitlab_variable_diff(lab: PluginClient, project: dict[str, Any]) -> None:
    props = {"project": project["path"], "key": "K", "value": "v1-value", "masked": False}
    created = lab.create(PROJECT_VARIABLE, "diffed", props)
    assert list(lab.diff(PROJECT_VARIABLE, "diffed", created, {**props, "key": "K2"}).replaces) == ["key"]
    changed = lab.diff(PROJECT_VARIABLE, "diffed", created, {**props, "value": "v2-value"})
    assert (changed.changes, list(changed.replaces)) == (provider_pb2.DiffResponse.DIFF_SOME, [])


def test_gitlab_file_commit_delete_and_missing_branch(lab: PluginClient, project: dict[str, Any]) -> None:
    repo = Path(project["gitDir"])
    props = {
        "project": project["path"],
        "branch": "main",
        "filePath": ".gitlab-ci.yml",
        "content": "train:\n  script: [dvc repro --pull]\n",
        "encoding": "text",
        "createCommitMessage": "mlops-ci: add",
        "deleteCommitMessage": "mlops-ci: remove",
    }
    created = lab.create(GITLAB_FILE, "ci-file", props)
    assert platform.file_content(repo, "main", ".gitlab-ci.yml") == props["content"].encode()
    assert created.plain("commitId") == platform.branch_head(repo, "main")
    lab.delete(GITLAB_FILE, "ci-file", created)

    assert git_log(repo, "main")[:2] == ["mlops-ci: remove", "mlops-ci: add"]
    with pytest.raises(PluginError, match=r"400 .*on a branch"):
        lab.create(GITLAB_FILE, "lost", {**props, "branch": "develop"})


def test_gitlab_file_edited_or_deleted_by_hand(lab: PluginClient, project: dict[str, Any]) -> None:
    """Upstream reads the file before an update or delete (a fresh `last_commit_id`): a hand edit
    never conflicts, a hand deletion stops both (the read's 404, not retried); a refresh drops it."""
    repo = Path(project["gitDir"])
    props = {"project": project["path"], "branch": "main", "filePath": ".gitlab-ci.yml", "content": "a: 1\n", "encoding": "text"}
    created = lab.create(GITLAB_FILE, "ci-file", {**props, "deleteCommitMessage": "mlops-ci: remove"})
    platform.commit_file(repo, "main", ".gitlab-ci.yml", b"edited: by hand\n", "hand edit", platform.GIT_IDENTITY)

    updated = lab.update(GITLAB_FILE, "ci-file", created, {**props, "content": "a: 2\n"})
    assert platform.file_content(repo, "main", ".gitlab-ci.yml") == b"a: 2\n"
    platform.commit_file(repo, "main", ".gitlab-ci.yml", None, "hand deletion", platform.GIT_IDENTITY)

    with pytest.raises(PluginError, match=r"GET .*/repository/files/\.gitlab-ci\.yml\?ref=main: 404 .*File Not Found"):
        lab.update(GITLAB_FILE, "ci-file", updated, {**props, "content": "a: 3\n"})
    with pytest.raises(PluginError, match=r"404 .*File Not Found"):
        lab.delete(GITLAB_FILE, "ci-file", updated)
    assert lab.refresh(GITLAB_FILE, "ci-file", updated) is None


def test_gitlab_project_variable_lookup(lab: PluginClient, project: dict[str, Any]) -> None:
    props = {"project": project["path"], "key": "GCP_SERVICE_ACCOUNT", "value": "sa@p.iam.gserviceaccount.com", "raw": True}
    lab.create(PROJECT_VARIABLE, "setting", props)
    found = lab.invoke(GET_VARIABLE, {"project": project["path"], "key": "GCP_SERVICE_ACCOUNT"})
    assert (found["key"], found["value"], found["masked"]) == ("GCP_SERVICE_ACCOUNT", props["value"], False)
    with pytest.raises(PluginError, match="404 Variable Not Found"):
        lab.invoke(GET_VARIABLE, {"project": project["path"], "key": "NOT_THERE"})


def test_gitlab_project_lookup(lab: PluginClient, project: dict[str, Any]) -> None:
    found = lab.invoke("gitlab:index/getProject:getProject", {"pathWithNamespace": project["path"]})
    assert found["id"] == str(project["id"])
    assert found["namespaces"][0]["id"] == project["namespaceId"]
    with pytest.raises(PluginError, match="404 Project Not Found"):
        lab.invoke("gitlab:index/getProject:getProject", {"pathWithNamespace": "acme/missing"})


def test_a_ci_runner_reads_the_delivered_variables_and_clones_the_remote(
    repository: dict[str, Any], cloud: LocalCloud, tmp_path: Path
) -> None:
    path, urls = repository["path"], cloud.urls()
    assert (
        call(urls, "POST", f"/repos/{path}/actions/variables", "ghp_local", {"name": "GCP_SERVICE_ACCOUNT", "value": "sa@p.iam"})[
            0
        ]
        == 201
    )
    committed = {"message": "ci", "content": base64.b64encode(b"on: push\n").decode(), "branch": "main"}
    assert call(urls, "PUT", f"/repos/{path}/contents/ci.yaml", "ghp_local", committed)[0] == 201

    def cli(*args: str) -> str:
        command = [sys.executable, "-m", "localcloud", "--state-dir", str(cloud.root), *args]
        return subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPOSITORY).stdout.strip()

    assert cli("ci-env", "github", repository["path"], "--dotenv") == "GCP_SERVICE_ACCOUNT=sa@p.iam"
    subprocess.run(["git", "clone", "-q", cli("clone-url", "github", repository["path"]), str(tmp_path / "clone")], check=True)
    assert (tmp_path / "clone" / "ci.yaml").read_text() == "on: push\n"


# --- pre-flight look-ups ---

LAB_BRANCH = "gitlab:index/getBranch:getBranch"
LAB_FILE = "gitlab:index/getRepositoryFile:getRepositoryFile"
SEED = {"dvc.yaml": b"stages: {}\n", "requirements-freeze.txt": b"dvc==3.0\n"}


def test_gitlab_branch_lookup_push_rights_and_absent(lab: PluginClient, project: dict[str, Any], cloud: LocalCloud) -> None:
    found = lab.invoke(LAB_BRANCH, {"project": project["path"], "name": "main"})
    assert (found["canPush"], found["protected"]) == (True, False)
    assert found["commits"][0]["id"] == platform.branch_head(Path(project["gitDir"]), "main")

    platform.protect_branch(cloud, "gitlab", project["path"], "main", can_push=False)
    refused = lab.invoke(LAB_BRANCH, {"project": project["path"], "name": "main"})

    assert (refused["canPush"], refused["protected"]) == (False, True)
    props = {"project": project["path"], "branch": "main", "filePath": ".gitlab-ci.yml", "content": "x", "encoding": "text"}
    with pytest.raises(PluginError, match=r"403 .*not allowed to push"):
        lab.create(GITLAB_FILE, "ci-file", props)
    platform.protect_branch(cloud, "gitlab", project["path"], "main", can_push=True)
    assert lab.invoke(LAB_BRANCH, {"project": project["path"], "name": "main"})["canPush"] is True
    with pytest.raises(PluginError, match="404 Branch Not Found"):  # data.gitlab_branch fails on a 404
        lab.invoke(LAB_BRANCH, {"project": project["path"], "name": "develop"})
    with pytest.raises(PluginError, match="404 Project Not Found"):
        lab.invoke(LAB_BRANCH, {"project": "acme/missing", "name": "main"})


def test_gitlab_file_lookup_found_and_absent(lab: PluginClient, cloud: LocalCloud) -> None:
    entry = platform.create_repository(cloud, "gitlab", f"acme/research/{unique('seeded')}", ["main"], SEED)

    found = lab.invoke(LAB_FILE, {"project": entry["path"], "filePath": "requirements-freeze.txt", "ref": "main"})

    assert base64.b64decode(found["content"]) == SEED["requirements-freeze.txt"]
    assert found["encoding"] == "base64"
    assert found["blobId"] == platform.file_blob(Path(entry["gitDir"]), "main", "requirements-freeze.txt")
    with pytest.raises(PluginError, match="404 File Not Found"):
        lab.invoke(LAB_FILE, {"project": entry["path"], "filePath": "requirements.txt", "ref": "main"})


def test_gitlab_hidden_is_set_at_creation_only_so_a_change_replaces(lab: PluginClient, project: dict[str, Any]) -> None:
    encoded = base64.b64encode(KEY_JSON.encode()).decode()
    props = {"project": project["path"], "key": "HIDDEN_KEY", "value": encoded, "masked": True, "raw": True, "hidden": True}
    created = lab.create(PROJECT_VARIABLE, "hidden", props)

    shown = lab.diff(PROJECT_VARIABLE, "hidden", created, {**props, "hidden": False})

    assert list(shown.replaces) == ["hidden"]
    with pytest.raises(PluginError, match="must be true when hidden"):
        lab.create(PROJECT_VARIABLE, "hidden-unmasked", {**props, "key": "OTHER", "masked": False})


ACCESS_TOKEN = "gitlab:index/projectAccessToken:ProjectAccessToken"


def report_token(project: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The program's report token (mlops_ci/platforms/gitlab.py), as its SDK sends it."""
    return {
        "project": project["path"],
        "name": "mlops-ci report (nlp-team)",
        "description": "Managed by mlops-ci: posts the experiment report on merge requests",
        "accessLevel": "reporter",
        "scopes": ["api"],
        "rotationConfiguration": {"expirationDays": 365, "rotateBeforeDays": 30},
        **changes,
    }


@pytest.fixture
def clock(cloud: LocalCloud) -> Any:
    """`clock(days)` moves the shared cloud's clock; moved back when the test ends."""
    moved: list[float] = []

    def advance(days: float) -> None:
        cloud.advance_clock(days)
        moved.append(days)

    yield advance
    cloud.advance_clock(-sum(moved))


def test_gitlab_access_token_is_created_as_a_secret_and_revoked_on_delete(
    lab: PluginClient, project: dict[str, Any], cloud: LocalCloud
) -> None:
    created = lab.create(ACCESS_TOKEN, "report-token", report_token(project))

    value = created.plain("token")
    assert wire.is_secret(created.outputs["token"])  # additional secret output: encrypted in the state
    [stored] = gitlab_api.access_tokens(cloud, project["path"])
    assert created.id == f"{project['path']}:{stored['id']}"
    assert stored["digest"] == hashlib.sha256(value.encode()).hexdigest()  # the live token is the one returned
    assert (stored["access_level"], stored["scopes"], stored["revoked"]) == (20, ["api"], False)
    expected = (cloud.clock().date() + datetime.timedelta(days=365)).isoformat()  # from rotationConfiguration
    assert created.plain("expiresAt") == stored["expires_at"] == expected
    assert (created.plain("active"), created.plain("revoked"), created.plain("userId")) == (True, False, stored["user_id"])
    refreshed = lab.refresh(ACCESS_TOKEN, "report-token", created)
    assert refreshed is not None
    assert refreshed.plain("token") == value  # GitLab never shows it again: the recorded one is kept
    assert wire.is_secret(refreshed.outputs["token"])

    lab.delete(ACCESS_TOKEN, "report-token", created)

    assert gitlab_api.access_tokens(cloud, project["path"])[0]["revoked"] is True
    status, _ = gitlab_api.call(cloud.urls()["gitlab"], "GET", f"/projects/{project['id']}", value)
    assert status == 401
    assert value not in cloud.journal.path.read_text()
    lab.delete(ACCESS_TOKEN, "report-token", created)  # already revoked: nothing to do, no error


def test_gitlab_access_token_replaces_on_what_upstream_marks_requires_replace(lab: PluginClient, project: dict[str, Any]) -> None:
    props = report_token(project)
    created = lab.create(ACCESS_TOKEN, "replaced", props)

    for change in ({"name": "other"}, {"description": "rotation 2026-12"}, {"scopes": ["read_api"]}, {"accessLevel": "guest"}):
        assert list(lab.diff(ACCESS_TOKEN, "replaced", created, {**props, **change}).replaces) == list(change)
    assert lab.diff(ACCESS_TOKEN, "replaced", created, props).changes == provider_pb2.DiffResponse.DIFF_NONE
    shorter = {"rotationConfiguration": {"expirationDays": 90, "rotateBeforeDays": 7}}
    longer = lab.diff(ACCESS_TOKEN, "replaced", created, {**props, **shorter})
    assert (longer.changes, list(longer.replaces)) == (provider_pb2.DiffResponse.DIFF_SOME, [])


def test_gitlab_access_token_rotates_on_an_up_within_rotate_before_days(
    lab: PluginClient, project: dict[str, Any], cloud: LocalCloud, clock: Any
) -> None:
    props = report_token(project)
    created = lab.create(ACCESS_TOKEN, "rotated", props)
    clock(334)  # 31 days before expiry: not yet
    assert lab.diff(ACCESS_TOKEN, "rotated", created, props).changes == provider_pb2.DiffResponse.DIFF_NONE

    clock(2)  # 29 days before expiry
    due = lab.diff(ACCESS_TOKEN, "rotated", created, props)

    assert (due.changes, list(due.replaces), list(due.diffs)) == (provider_pb2.DiffResponse.DIFF_SOME, [], ["expiresAt"])
    rotated = lab.update(ACCESS_TOKEN, "rotated", created, props)
    old, new = gitlab_api.access_tokens(cloud, project["path"])
    assert (old["revoked"], new["revoked"]) == (True, False)
    assert rotated.plain("tokenId") == new["id"]
    assert rotated.plain("token") != created.plain("token")
    assert new["digest"] == hashlib.sha256(rotated.plain("token").encode()).hexdigest()
    assert wire.is_secret(rotated.outputs["token"])
    assert rotated.plain("expiresAt") == (cloud.clock().date() + datetime.timedelta(days=365)).isoformat()
    assert lab.diff(ACCESS_TOKEN, "rotated", rotated, props).changes == provider_pb2.DiffResponse.DIFF_NONE
    assert lab.refresh(ACCESS_TOKEN, "rotated", rotated) is not None  # Read follows the rotation (tokenId)
    lab.delete(ACCESS_TOKEN, "rotated", rotated)
    assert all(t["revoked"] for t in gitlab_api.access_tokens(cloud, project["path"]))


def test_gitlab_access_token_revoked_outside_pulumi_is_replaced(
    lab: PluginClient, project: dict[str, Any], cloud: LocalCloud
) -> None:
    props = report_token(project)
    created = lab.create(ACCESS_TOKEN, "revoked", props)
    where = f"/projects/{project['id']}/access_tokens/{int(created.plain('tokenId'))}"
    status, _ = gitlab_api.call(cloud.urls()["gitlab"], "DELETE", where, "glpat-local")
    assert status == 204

    refreshed = lab.refresh(ACCESS_TOKEN, "revoked", created)

    assert refreshed is not None
    assert refreshed.plain("revoked") is True
    assert list(lab.diff(ACCESS_TOKEN, "revoked", refreshed, props).replaces) == ["revoked"]


def test_gitlab_access_token_arguments_are_checked(lab: PluginClient, project: dict[str, Any]) -> None:
    _, failures = lab.check(ACCESS_TOKEN, "checked", report_token(project, scopes=["api", "sudo"], accessLevel="boss"))
    assert [f.split(":")[0] for f in failures] == ["scopes", "accessLevel"]
    _, failures = lab.check(ACCESS_TOKEN, "checked", report_token(project, expiresAt="2027-01-31"))
    assert failures == ['expiresAt: Attribute "expires_at" cannot be specified when "rotation_configuration" is specified']
    inputs, failures = lab.check(ACCESS_TOKEN, "checked", {"project": project["path"], "name": "n", "scopes": ["api"]})
    assert (failures, inputs["accessLevel"]) == ([], "maintainer")  # upstream's default


def test_the_journal_redacts_a_gitlab_token_even_unmarked_and_unmasked(
    lab: PluginClient, project: dict[str, Any], cloud: LocalCloud
) -> None:
    value = gitlab_api.new_token_value()
    lab.create(PROJECT_VARIABLE, "careless", {"project": project["path"], "key": "CARELESS", "value": value, "masked": False})

    assert journal_for(cloud, f"{PROJECT_VARIABLE}::careless")[0]["inputs"]["value"] == "[secret]"
    assert value not in cloud.journal.path.read_text()


LAB_TOKENS = "gitlab:index/getProjectAccessTokens:getProjectAccessTokens"


def test_gitlab_access_tokens_lookup_lists_without_values_and_needs_a_maintainer(
    lab: PluginClient, plugins: Any, project: dict[str, Any], cloud: LocalCloud
) -> None:
    assert lab.invoke(LAB_TOKENS, {"project": project["path"]})["accessTokens"] == []
    created = lab.create(ACCESS_TOKEN, "listed", report_token(project))

    [listed] = lab.invoke(LAB_TOKENS, {"project": project["path"]})["accessTokens"]

    assert (listed["id"], listed["accessLevel"], listed["scopes"], listed["active"]) == (
        str(int(created.plain("tokenId"))),
        "reporter",
        ["api"],
        True,
    )
    assert "token" not in listed
    assert lab.invoke(LAB_TOKENS, {"project": project["path"], "state": "inactive"})["accessTokens"] == []
    # the pre-flight's question: may the provider's token manage them? A reporter's may not (403), nor anyone a missing project's
    reporter = plugins(gitlab.PROVIDER, {"token": wire.secret(created.plain("token")), "version": gitlab.VERSION})
    with pytest.raises(PluginError, match="403"):
        reporter.invoke(LAB_TOKENS, {"project": project["path"]})
    with pytest.raises(PluginError, match="404 Project Not Found"):
        lab.invoke(LAB_TOKENS, {"project": "acme/missing"})
