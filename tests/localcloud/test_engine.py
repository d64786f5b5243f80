"""The real Pulumi engine runs the real program against the local cloud: `pulumi up`, a preview
that finds nothing to change, then `pulumi destroy` — and what landed in the local components."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.auth.exceptions import RefreshError

from localcloud import github_api, gitlab_api, platform, services
from localcloud.engine import Workspace, find_cli
from localcloud.state import LocalCloud, open_cloud
from mlops_ci.ci.files import REPORT_DIRECTORY, job_script_path
from mlops_ci.settings.rules import REPORT_TOKEN_VARIABLE

from .conftest import REPOSITORY, github_answers_within_description, local_cloud, operations, sign_in, storage_get

pytestmark = pytest.mark.localcloud

AUTHOR = {"name": "a data scientist", "email": "scientist@example.com"}

CLI = find_cli()
if CLI is None:
    pytest.skip("no Pulumi CLI (set PULUMI_CLI or build ~/.cache/mlops-ci/pulumi-3.272.0)", allow_module_level=True)


def workspace(tmp_path: Path, stack: str, config: dict[str, str] | None = None, discovery: str = "path") -> Workspace:
    assert CLI is not None
    space = Workspace(tmp_path, stack, CLI, config, discovery)
    cloud = open_cloud(space.cloud_dir)
    kind = space.config["mlops-ci:platform"]
    # The files the CI file's pre-flight asks for on the branch (not a whole DVC project: fast).
    seed = {"dvc.yaml": b"stages: {}\n", "requirements-freeze.txt": b"dvc[gs]\n"}
    branch = [space.config.get("mlops-ci:branch", "main")]
    platform.create_repository(cloud, kind, space.config["mlops-ci:repository"], branch, seed)
    space.init()
    return space


def ops(space: Workspace) -> list[tuple[str, str]]:
    return operations(open_cloud(space.cloud_dir))


@pytest.fixture
def stopped_services(tmp_path: Path) -> Any:
    with local_cloud(tmp_path / "cloud"):
        yield
    github_answers_within_description(tmp_path / "cloud")


@pytest.mark.usefixtures("stopped_services")
def test_github_key_stack_up_then_destroy(tmp_path: Path) -> None:
    space = workspace(tmp_path, "vision-team")
    cloud = open_cloud(space.cloud_dir)
    repository = space.config["mlops-ci:repository"]
    repo = Path(platform.find_repository(cloud, "github", repository)["gitDir"])  # type: ignore[index]

    preview = space.pulumi("preview", "--stack", space.stack)  # Check and Create with unknowns, no side effect
    assert "+ 17 to create" in preview.stdout  # with the explicit Google provider, the TeamCi component and the job script
    assert ops(space) == []
    up = space.up()
    outputs = space.outputs()

    assert "+ 17 created" in up.stdout  # with the explicit Google provider, the TeamCi component and the job script
    assert outputs["dvcRemoteUrl"] == f"gs://{outputs['bucketName']}/dvcstore"
    assert storage_get(cloud, f"/storage/v1/b/{outputs['bucketName']}")[0] == 200
    workflow = platform.file_content(repo, "main", ".github/workflows/mlops.yaml")
    assert workflow is not None
    assert b"run: python3 .mlops-ci/vision-team.py repro\n" in workflow
    job_script = platform.file_content(repo, "main", ".mlops-ci/vision-team.py")
    assert job_script is not None
    assert b'dvc("repro", "--pull", "--allow-missing")' in job_script
    # What CI receives: the secret, a key file the token endpoint honours for the stack's account.
    key_json = platform.ci_environment(cloud, "github", repository)["GOOGLE_SERVICE_ACCOUNT_KEY"]
    assert "\n" not in key_json
    assert json.loads(key_json)["client_email"] == outputs["serviceAccountEmail"]
    assert sign_in(json.loads(key_json))
    # The key travelled as a secret: not in the state, not in the journal.
    assert "PRIVATE KEY" not in space.state_text()
    assert base64.b64encode(key_json.encode()).decode()[:64] not in space.state_text()
    assert "PRIVATE KEY" not in cloud.journal.path.read_text()
    created = [kind for op, kind in ops(space) if op == "create"]
    assert created[-1] == "RepositoryFile"  # the CI file last: its first run has credential and access
    assert {e["principal"] for e in github_api.requests_log(cloud)} == {"classic"}  # the real provider, with the token
    assert sorted(created) == [
        "Account",
        "ActionsSecret",
        "Bucket",
        "BucketIAMMember",
        "Key",
        "RepositoryFile",
        "RepositoryFile",  # the job script, before the CI file that calls it
        "Service",
        "Service",
    ]

    space.preview()  # --expect-no-changes: the plugins' diffs agree with their own outputs
    space.pulumi("refresh", "--yes", "--skip-preview", "--expect-no-changes", "--stack", space.stack)  # Read agrees too

    space.pulumi("config", "set", "mlops-ci:keyRotation", "2026-11", "--stack", space.stack)
    space.up()  # rotation: the new key first, the secret updated, then the old key deleted

    assert ops(space)[-3:] == [("create", "Key"), ("update", "ActionsSecret"), ("delete", "Key")]
    with pytest.raises(RefreshError, match="invalid_grant"):
        sign_in(json.loads(key_json))
    key_json = platform.ci_environment(cloud, "github", repository)["GOOGLE_SERVICE_ACCOUNT_KEY"]
    assert sign_in(json.loads(key_json))

    space.destroy()

    assert platform.file_content(repo, "main", ".github/workflows/mlops.yaml") is None
    assert platform.file_content(repo, "main", ".mlops-ci/vision-team.py") is None, "destroy removes the job script too"
    assert platform.ci_environment(cloud, "github", repository) == {}
    with pytest.raises(RefreshError, match="invalid_grant"):
        sign_in(json.loads(key_json))
    assert storage_get(cloud, f"/storage/v1/b/{outputs['bucketName']}")[0] == 200  # protectBucket: retained
    deleted = {kind for op, kind in ops(space) if op == "delete"}
    assert {"Key", "ActionsSecret", "RepositoryFile", "BucketIAMMember", "Account"} <= deleted
    assert "Bucket" not in deleted


@pytest.mark.usefixtures("stopped_services")
def test_gitlab_key_stack_up_then_destroy_with_installed_plugins(tmp_path: Path) -> None:
    space = workspace(tmp_path, "nlp-team", discovery="installed")
    cloud = open_cloud(space.cloud_dir)
    project = space.config["mlops-ci:repository"]
    installed = json.loads(space.pulumi("plugin", "ls", "--json").stdout)
    assert {(p["name"], p["version"]) for p in installed} >= {("gcp", "10.2.0"), ("gitlab", "10.4.0")}

    up = space.up()

    assert "from $PATH" not in up.stdout + up.stderr  # the plugin cache, not ambient plugins

    variables = platform.ci_variables(cloud, "gitlab", project)["variables"]
    key = variables["GOOGLE_SERVICE_ACCOUNT_KEY:*"]
    assert (key["masked"], key["raw"], key["protected"]) == (True, True, False)
    assert json.loads(base64.b64decode(key["value"]))["type"] == "service_account"
    assert key["value"][:80] not in space.state_text()
    assert key["value"][:80] not in cloud.journal.path.read_text()

    space.destroy()

    assert platform.ci_variables(cloud, "gitlab", project)["variables"] == {}
    repo = Path(platform.find_repository(cloud, "gitlab", project)["gitDir"])  # type: ignore[index]
    assert platform.file_content(repo, "main", ".gitlab-ci.yml") is None


@pytest.mark.usefixtures("stopped_services")
def test_keyless_stack_destroy_then_up_again_gets_new_federation_ids(tmp_path: Path) -> None:
    space = workspace(tmp_path, "recsys-team", {"mlops-ci:protectBucket": "false"})
    cloud = open_cloud(space.cloud_dir)
    repository = space.config["mlops-ci:repository"]

    space.up()
    first = space.outputs()["workloadIdentityProvider"]
    found = platform.find_repository(cloud, "github", repository)
    assert found is not None
    condition = next(e for e in cloud.journal.entries() if e["type"].endswith("WorkloadIdentityPoolProvider"))["inputs"]
    assert f'assertion.repository_id == "{found["id"]}"' in condition["attributeCondition"]
    assert platform.ci_environment(cloud, "github", repository)["GCP_WORKLOAD_IDENTITY_PROVIDER"] == first

    space.destroy()
    space.up()  # soft-deleted pools keep their ids for 30 days: the program must pick new ones

    second = space.outputs()["workloadIdentityProvider"]
    assert second != first
    space.destroy()


@pytest.mark.usefixtures("stopped_services")
def test_the_policy_pack_runs_in_the_real_engine(tmp_path: Path) -> None:
    space = workspace(tmp_path, "vision-team")
    assert (space.project / "policy" / "PulumiPolicy.yaml").exists()  # the workspace copies the pack with the program

    preview = space.pulumi("preview", "--policy-pack", "policy", "--stack", space.stack)

    assert "mlops-ci@v0.1.0 (local: policy)" in preview.stdout
    assert "+ 17 to create" in preview.stdout  # with the explicit Google provider, the TeamCi component and the job script


DVC = REPOSITORY / ".venv-e2e" / "bin" / "dvc"


@pytest.mark.skipif(not DVC.exists(), reason="needs .venv-e2e (dvc)")
@pytest.mark.usefixtures("stopped_services")
def test_up_then_ci_then_destroy_as_separate_commands(tmp_path: Path) -> None:
    """`pulumi up`; CI with what was delivered (`dvc push` through google-auth, the token endpoint
    and the emulator); `pulumi destroy`; the same CI credential is then refused."""
    space = workspace(tmp_path, "vision-team")
    cloud = open_cloud(space.cloud_dir)
    space.up()
    outputs = space.outputs()
    key_file = tmp_path / "gha-creds.json"  # what google-github-actions/auth writes from the secret
    key_file.write_text(
        platform.ci_environment(cloud, "github", space.config["mlops-ci:repository"])["GOOGLE_SERVICE_ACCOUNT_KEY"]
    )
    project = tmp_path / "dvc-project"
    project.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "STORAGE_EMULATOR_HOST": cloud.urls()["storage"],
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "DVC_NO_ANALYTICS": "1",
    }

    def dvc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(DVC), *args], cwd=project, env=env, capture_output=True, text=True, timeout=180, check=check)

    dvc("init", "--no-scm")
    (project / "data.csv").write_text("x,y\n" + "".join(f"{i},{i * i}\n" for i in range(200)))
    dvc("add", "data.csv")
    dvc("remote", "add", "-d", "storage", outputs["dvcRemoteUrl"])
    dvc("push")

    stored = storage_get(cloud, f"/storage/v1/b/{outputs['bucketName']}/o?prefix=dvcstore/")[1]
    assert len(stored.get("items", [])) == 1
    exchanges = [json.loads(line) for line in (space.cloud_dir / "token-exchanges.jsonl").read_text().splitlines()]
    assert {e["issuer"] for e in exchanges if e["granted"]} == {outputs["serviceAccountEmail"]}

    space.destroy()
    shutil.rmtree(project / ".dvc" / "cache")
    pulled = dvc("pull", check=False)

    assert pulled.returncode != 0
    assert "invalid_grant" in pulled.stdout + pulled.stderr


# --- mlops-ci:report on GitLab: the project access token and its variable ---


def changes(cloud: LocalCloud, since: int = 0) -> list[tuple[str, str]]:
    """(op, type) of the resource changes journaled since entry `since`; GitLab variables by key."""
    found: list[tuple[str, str]] = []
    for entry in cloud.journal.entries()[since:]:
        if entry["op"] not in ("create", "update", "delete") or "error" in entry:
            continue
        kind = entry["type"].rsplit(":", 1)[-1]
        found.append((entry["op"], f"{kind} {entry['inputs']['key']}" if kind == "ProjectVariable" else kind))
    return found


def report_variable(cloud: LocalCloud, project: str) -> dict[str, Any] | None:
    found = platform.ci_variables(cloud, "gitlab", project).get("variables", {}).get(f"{REPORT_TOKEN_VARIABLE}:*")
    return dict(found) if found else None


def live_token(cloud: LocalCloud, project: str, value: str) -> dict[str, Any]:
    """The project's access token whose value is `value` (the stand-in keeps digests)."""
    [token] = [t for t in gitlab_api.access_tokens(cloud, project) if t["digest"] == hashlib.sha256(value.encode()).hexdigest()]
    return token


def run_report_job(cloud: LocalCloud, project: dict[str, Any], iid: int, work: Path, body: str) -> str:
    """The committed CI file's job `report` (its script, by sh) against the local GitLab API, with
    the variables a merge-request pipeline gets and the report the job `reproduce` leaves."""
    committed = platform.file_content(Path(project["gitDir"]), "main", ".gitlab-ci.yml")
    assert committed is not None
    script = "\n".join(yaml.safe_load(committed)["report"]["script"])
    (work / REPORT_DIRECTORY).mkdir(parents=True, exist_ok=True)
    (work / REPORT_DIRECTORY / "report.md").write_text("<!-- mlops-ci report: stack nlp-team -->\n\n" + body)
    env = {
        **platform.ci_environment(cloud, "gitlab", project["path"]),  # a merge request's ref is not protected
        "PATH": os.environ["PATH"],
        "CI_API_V4_URL": cloud.urls()["gitlab"],
        "CI_PROJECT_ID": str(project["id"]),
        "CI_MERGE_REQUEST_IID": str(iid),
    }
    ran = subprocess.run(["sh", "-e", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return ran.stdout


@pytest.mark.usefixtures("stopped_services")
def test_gitlab_report_token_up_rotate_replace_destroy(tmp_path: Path) -> None:
    """nlp-team (report on): one reporter/api token, its value in a masked, hidden, unprotected
    variable created before the CI file; the token posts the committed job's note; never in plain
    text in the state, the engine's logs, the journal or the stand-in's files; rotated in place
    within rotateBeforeDays, replaced by keyRotation, revoked by destroy."""
    space = workspace(tmp_path, "nlp-team")
    cloud = open_cloud(space.cloud_dir)
    project = platform.find_repository(cloud, "gitlab", space.config["mlops-ci:repository"])
    assert project is not None
    path = str(project["path"])

    up = space.pulumi("up", "--yes", "--skip-preview", "--stack", space.stack, "--logtostderr", "--logflow", "-v=9")

    [token] = gitlab_api.access_tokens(cloud, path)
    assert (token["access_level"], token["scopes"], token["revoked"]) == (gitlab_api.ACCESS_LEVELS["reporter"], ["api"], False)
    assert token["expires_at"] == (cloud.clock().date() + datetime.timedelta(days=365)).isoformat()
    variable = report_variable(cloud, path)
    assert variable is not None
    value = str(variable["value"])
    assert live_token(cloud, path, value)["id"] == token["id"]  # exactly the live token's value
    assert (variable["masked"], variable["hidden"], variable["protected"]) == (True, True, False)
    # the order the engine ran: the token, then its variable, then the CI file
    created = [kind for op, kind in changes(cloud) if op == "create"]
    assert created.index("ProjectAccessToken") < created.index(f"ProjectVariable {REPORT_TOKEN_VARIABLE}")
    assert created.index(f"ProjectVariable {REPORT_TOKEN_VARIABLE}") < created.index("RepositoryFile")
    minted = next(e for e in gitlab_api.requests_log(cloud) if e["method"] == "POST" and e["path"].endswith("/access_tokens"))
    journaled = {
        kind: e["time"]
        for e in cloud.journal.entries()
        if e["op"] == "create"
        for kind in [f"{e['type'].rsplit(':', 1)[-1]} {e['inputs'].get('key', '')}".strip()]
    }
    assert minted["time"] < journaled[f"ProjectVariable {REPORT_TOKEN_VARIABLE}"] < journaled["RepositoryFile"]
    # ... because the engine was told so: the CI file depends on the variable, the variable on the token
    deployed = json.loads(space.pulumi("stack", "export", "--stack", space.stack).stdout)["deployment"]["resources"]
    urns = {r["urn"].rsplit("::", 1)[-1]: r for r in deployed}
    assert urns["gitlab-report-token-variable"]["urn"] in urns["gitlab-ci-file"]["dependencies"]
    assert urns["gitlab-report-token"]["urn"] in urns["gitlab-report-token-variable"]["dependencies"]
    assert urns["gitlab-report-token"]["additionalSecretOutputs"] == ["token"]

    # what the token is for: the committed job `report` posts one note, then updates it in place
    iid = gitlab_api.open_merge_request(cloud, path, "tune", "main", "Tune the learning rate")
    assert "Report posted" in run_report_job(cloud, project, iid, tmp_path / "job", "accuracy 0.91")
    assert "Report updated" in run_report_job(cloud, project, iid, tmp_path / "job", "accuracy 0.93")
    [note] = gitlab_api.notes(cloud, path, iid)
    assert note["body"].endswith("accuracy 0.93")
    assert note["author"]["username"] == token["username"]  # the token's bot user, not the local user

    # never in plain text: export, every state file, the engine's verbose log, journal, stand-in's files
    assert value in space.pulumi("stack", "export", "--show-secrets", "--stack", space.stack).stdout  # the state has it
    places = {
        "stack export": space.pulumi("stack", "export", "--stack", space.stack).stdout,
        "state files": "".join(p.read_text(errors="replace") for p in space.backend.rglob("*") if p.is_file()),
        "engine log": up.stdout + up.stderr,
        "journal": cloud.journal.path.read_text(),
        "stand-in requests": (cloud.root / "gitlab-requests.jsonl").read_text(),
        "stand-in store": cloud.gitlab.path.read_text(),
    }
    assert len(up.stderr) > 100_000  # -v=9 did log the run
    assert [where for where, text in places.items() if value in text] == []

    space.preview()  # --expect-no-changes
    space.pulumi("refresh", "--yes", "--skip-preview", "--expect-no-changes", "--stack", space.stack)

    # 336 days on, an up falls within rotateBeforeDays (30) of the expiry: rotated in place
    cloud.advance_clock(336)
    before = len(cloud.journal.entries())
    space.up()
    assert changes(cloud, before) == [("update", "ProjectAccessToken"), ("update", f"ProjectVariable {REPORT_TOKEN_VARIABLE}")]
    rotated = str((report_variable(cloud, path) or {})["value"])
    first, second = gitlab_api.access_tokens(cloud, path)
    assert (first["revoked"], live_token(cloud, path, rotated)["id"]) == (True, second["id"])
    assert second["expires_at"] == (cloud.clock().date() + datetime.timedelta(days=365)).isoformat()
    assert gitlab_api.call(cloud.urls()["gitlab"], "GET", f"/projects/{project['id']}", value)[0] == 401
    assert rotated not in "".join(p.read_text(errors="replace") for p in space.backend.rglob("*") if p.is_file())

    # keyRotation: a new token first (its description carries it), the variable updated, the old one revoked
    space.pulumi("config", "set", "mlops-ci:keyRotation", "2027-12", "--stack", space.stack)
    before = len(cloud.journal.entries())
    space.up()
    token_steps = [step for step in changes(cloud, before) if REPORT_TOKEN_VARIABLE in step[1] or "AccessToken" in step[1]]
    assert token_steps == [
        ("create", "ProjectAccessToken"),
        ("update", f"ProjectVariable {REPORT_TOKEN_VARIABLE}"),
        ("delete", "ProjectAccessToken"),
    ]
    replaced = str((report_variable(cloud, path) or {})["value"])
    third = live_token(cloud, path, replaced)
    assert [t["revoked"] for t in gitlab_api.access_tokens(cloud, path)] == [True, True, False]
    assert "rotation 2027-12" in third["description"]

    space.destroy()

    assert all(t["revoked"] for t in gitlab_api.access_tokens(cloud, path))
    assert report_variable(cloud, path) is None
    assert gitlab_api.call(cloud.urls()["gitlab"], "GET", f"/projects/{project['id']}", replaced)[0] == 401
    assert ("delete", "ProjectAccessToken") in changes(cloud)


@pytest.mark.usefixtures("stopped_services")
def test_gitlab_stack_without_report_creates_no_token(tmp_path: Path) -> None:
    space = workspace(tmp_path, "nlp-team", {"mlops-ci:report": "false"})
    cloud = open_cloud(space.cloud_dir)
    project = str(space.config["mlops-ci:repository"])

    space.up()

    assert [kind for _, kind in changes(cloud) if "AccessToken" in kind] == []
    assert gitlab_api.access_tokens(cloud, project) == []
    assert not [e for e in gitlab_api.requests_log(cloud) if "/access_tokens" in e["path"]]
    assert report_variable(cloud, project) is None
    assert "GOOGLE_SERVICE_ACCOUNT_KEY" in platform.ci_environment(cloud, "gitlab", project)  # the stack did deliver


@pytest.mark.usefixtures("stopped_services")
def test_gitlab_report_is_refused_before_any_resource_when_the_token_cannot_manage_access_tokens(tmp_path: Path) -> None:
    """The pre-flight's look-up (`getProjectAccessTokens`) against the local GitLab API: a
    Reporter's token may not list a project's access tokens (403), so the report cannot be set up."""
    space = workspace(tmp_path, "nlp-team")
    cloud = open_cloud(space.cloud_dir)
    project = platform.find_repository(cloud, "gitlab", space.config["mlops-ci:repository"])
    assert project is not None
    body = {"name": "a reporter", "scopes": ["api"], "access_level": gitlab_api.ACCESS_LEVELS["reporter"]}
    status, reporter = gitlab_api.call(
        services.start(space.cloud_dir)["gitlab"], "POST", f"/projects/{project['id']}/access_tokens", "glpat-localcloud", body
    )
    assert status == 201
    space.pulumi("config", "set", "--secret", "gitlab:token", reporter["token"], "--stack", space.stack)

    refused = space.pulumi("preview", "--stack", space.stack, check=False)

    assert refused.returncode != 0
    assert "the token cannot manage the project access tokens" in refused.stdout + refused.stderr
    assert [e for e in cloud.journal.entries() if e["op"] != "invoke"] == []
    assert [t["name"] for t in gitlab_api.access_tokens(cloud, str(project["path"]))] == ["a reporter"]


@pytest.mark.usefixtures("stopped_services")
@pytest.mark.parametrize("stack", ["vision-team", "nlp-team"])
def test_a_team_file_at_the_job_script_path_stops_the_stack_before_any_resource(tmp_path: Path, stack: str) -> None:
    """The pre-flight's repository-file look-up, through the GitHub provider built from upstream and
    the GitLab plugin: `pulumi up` would overwrite the team's file (`overwrite_on_create`) and
    `pulumi destroy` delete it."""
    space = workspace(tmp_path, stack)
    cloud = open_cloud(space.cloud_dir)
    kind, path = space.config["mlops-ci:platform"], job_script_path(stack)
    repo = Path(platform.find_repository(cloud, kind, space.config["mlops-ci:repository"])["gitDir"])  # type: ignore[index]
    platform.commit_file(repo, "main", path, b"# The team's own script\n", "a script of the team's", AUTHOR)

    refused = space.pulumi("preview", "--stack", space.stack, check=False)

    assert refused.returncode != 0
    assert (
        f"{path} on it in {space.config['mlops-ci:repository']} is not the job script mlops-ci wrote for the stack {stack}"
        in (refused.stdout + refused.stderr)
    )
    assert [e for e in cloud.journal.entries() if e["op"] != "invoke"] == []
    assert platform.file_content(repo, "main", path) == b"# The team's own script\n"
