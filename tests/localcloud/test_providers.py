"""The real Pulumi engine and the real program against the Google Cloud the local cloud plays as
the upstream providers and Google answer (tests/localcloud/test_gcp.py proves the plugin's side):
every stack file up, previewed and up again; `auth` switched three times; a key an organization
forbids; the first CI run against Google's propagation delays; APIs enabled moments ago; Cloud
Resource Manager off in the deployer's project."""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from localcloud import chapter, github_api, gitlab_api, iam, platform, services, state
from localcloud.engine import Workspace, find_cli
from localcloud.state import LocalCloud, open_cloud
from mlops_ci.offline.stacks import load_stack_file, stack_files

from .conftest import github_answers_within_description, operations, sign_in
from .test_lifecycle import _seed_minimal  # pyright: ignore[reportPrivateUsage]

pytestmark = pytest.mark.localcloud

CLI = find_cli()
if CLI is None:
    pytest.skip("no Pulumi CLI (set PULUMI_CLI or build ~/.cache/mlops-ci/pulumi-3.274.1)", allow_module_level=True)

SEED = {"dvc.yaml": b"stages: {}\n", "requirements-freeze.txt": b"dvc[gs]\n"}
"""What the pre-flight asks for on the branch (not a whole DVC project: fast)."""


@pytest.fixture
def space(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """`space(stack, config)`: a workspace of the stack with its repository (seeded as the
    pre-flight wants); its services stopped at the end."""
    made: list[Workspace] = []

    def make(stack: str, config: dict[str, str] | None = None) -> Workspace:
        assert CLI is not None
        workspace = Workspace(tmp_path, stack, CLI, config)
        kind, path = str(workspace.config["mlops-ci:platform"]), str(workspace.config["mlops-ci:repository"])
        branch = str(workspace.config.get("mlops-ci:branch", "main"))
        platform.create_repository(open_cloud(workspace.cloud_dir), kind, path, [branch], SEED)
        workspace.init()
        made.append(workspace)
        return workspace

    yield make
    for workspace in made:
        services.stop(workspace.cloud_dir)
        github_answers_within_description(workspace.cloud_dir)


def changed(cloud: LocalCloud, since: str = "") -> list[tuple[str, str]]:
    """(op, type) of the resource operations after time `since`, failed ones too: the plugins'
    journal and the GitHub API's writes."""
    return operations(cloud, since)


def now() -> str:
    return state.now()


def output_of(result: Any) -> str:
    return str(result.stdout) + str(result.stderr)


# --- 1. every stack file: up, a preview that finds nothing, up again ---


@pytest.mark.parametrize("path", stack_files(), ids=lambda p: p.name)
def test_every_stack_file_goes_up_twice_and_previews_no_change(space: Any, path: Path) -> None:
    """pulumi-gcp labels the bucket it creates `goog-pulumi-provisioned` and getBuckets answers
    it: the second `pulumi up` must still take the bucket for the stack's own."""
    workspace = space(load_stack_file(path).stack)
    cloud = open_cloud(workspace.cloud_dir)

    workspace.up()
    bucket = workspace.outputs()["bucketName"]
    assert cloud.gcp.read()["buckets"][bucket]["labels"]["goog-pulumi-provisioned"] == "true"
    workspace.preview()  # --expect-no-changes
    before = now()
    workspace.pulumi("up", "--yes", "--skip-preview", "--expect-no-changes", "--stack", workspace.stack)

    assert changed(cloud, before) == []


def test_another_stacks_bucket_is_refused_as_an_existing_bucket(tmp_path: Path) -> None:
    """getBucket answers the labels in effectiveLabels (its `labels` are {} for a look-up): the
    bucket vision-team created is not readme-team's to grant on, even where the platform's
    Pulumi.yaml allows its name (a pattern too wide, as `acme-*-dvc` was)."""
    assert CLI is not None
    cloud_dir = tmp_path / "cloud"
    owner = Workspace(tmp_path / "vision", "vision-team", CLI, cloud_dir=cloud_dir)
    bucket = f"{owner.config['gcp:project']}-vision-team-dvc"
    other = Workspace(tmp_path / "readme", "readme-team", CLI, {"mlops-ci:existingBucket": bucket}, cloud_dir=cloud_dir)
    cloud = open_cloud(cloud_dir)
    try:
        project_file = other.project / "Pulumi.yaml"
        allowed = project_file.read_text().replace("  existingBuckets:\n", f"  existingBuckets:\n    - {bucket}\n", 1)
        project_file.write_text(allowed)
        for workspace in (owner, other):
            kind, path = str(workspace.config["mlops-ci:platform"]), str(workspace.config["mlops-ci:repository"])
            platform.create_repository(cloud, kind, path, ["main"], SEED)
            workspace.init()
        owner.up()
        before = now()

        refused = other.pulumi("up", "--yes", "--skip-preview", "--stack", other.stack, check=False)

        assert refused.returncode != 0
        assert f"mlops-ci:existingBucket = '{bucket}': the bucket of another stack ('vision-team')" in output_of(refused)
        assert changed(cloud, before) == []
    finally:
        services.stop(cloud_dir)


# --- 6. auth switched key -> keyless -> key -> keyless, no destroy in between ---


def test_auth_switched_three_times_without_destroy(space: Any) -> None:
    """Pools and providers deleted by the switch to key stay soft-deleted for 30 days: the next
    keyless federation needs new ids although the service account (and its unique id) stayed."""
    workspace = space("vision-team")
    cloud = open_cloud(workspace.cloud_dir)
    repository = str(workspace.config["mlops-ci:repository"])
    providers: list[str] = []

    for auth in ("key", "workload-identity", "key", "workload-identity"):
        workspace.pulumi("config", "set", "mlops-ci:auth", auth, "--stack", workspace.stack)
        # Keyless through the account the key had (the switch names its mode: never a silent one).
        if auth == "key":
            workspace.pulumi("config", "rm", "mlops-ci:keylessMode", "--stack", workspace.stack)
        else:
            workspace.pulumi("config", "set", "mlops-ci:keylessMode", "impersonation", "--stack", workspace.stack)
        workspace.up()
        delivered = platform.ci_environment(cloud, "github", repository)
        if auth == "key":
            assert json.loads(delivered["GOOGLE_SERVICE_ACCOUNT_KEY"])["type"] == "service_account"
        else:
            providers.append(workspace.outputs()["workloadIdentityProvider"])
            assert delivered["GCP_WORKLOAD_IDENTITY_PROVIDER"] == providers[-1]
            assert "GOOGLE_SERVICE_ACCOUNT_KEY" not in delivered

    assert providers[0] != providers[1]
    assert len({e["inputs"]["accountId"] for e in cloud.journal.entries() if e["type"].endswith("account:Account")}) == 1
    # a refresh reads the ids the federation was created with; the next run's nonce changes nothing
    workspace.pulumi("refresh", "--yes", "--skip-preview", "--stack", workspace.stack)
    workspace.preview()
    assert workspace.outputs()["workloadIdentityProvider"] == providers[1]
    workspace.destroy()


# --- 2. key creation forbidden above the project ---


def test_a_key_forbidden_by_the_organization_is_one_clear_error_then_keyless_goes_up(space: Any) -> None:
    workspace = space("vision-team")
    cloud = open_cloud(workspace.cloud_dir)
    iam.block_key_creation(cloud, str(workspace.config["gcp:project"]), where="organization")

    refused = workspace.pulumi("up", "--yes", "--skip-preview", "--stack", workspace.stack, check=False)

    assert refused.returncode != 0
    diagnostics = output_of(refused).split("Diagnostics:", 1)[1]
    assert diagnostics.count("Set mlops-ci:auth to workload-identity") == 1, diagnostics
    assert "Key creation is not allowed" not in diagnostics, diagnostics  # Google's words, replaced by what to do
    created = {kind for op, kind in changed(cloud) if op == "create"}
    assert created <= {"Service", "Bucket", "Account"}, created  # the key first: no grant, no secret, no CI file
    # what stayed is taken over: keyless through the account goes up on it, and destroy removes it
    assert diagnostics.count("mlops-ci:keylessMode direct") == 1, diagnostics  # the choice the next up asks for
    workspace.pulumi("config", "set", "mlops-ci:auth", "workload-identity", "--stack", workspace.stack)
    workspace.pulumi("config", "set", "mlops-ci:keylessMode", "impersonation", "--stack", workspace.stack)
    workspace.up()
    assert changed(cloud).count(("create", "Account")) == 1
    workspace.destroy()
    assert cloud.gcp.read()["serviceAccounts"] == {}


# --- 3. the first CI run against Google's propagation delays ---

PROPAGATION_DELAY = 20.0
"""Seconds before a new key or grant takes effect in these tests (Google: a key 60 s or more,
grants typically 2 minutes, up to 7 or longer)."""


def delivered_key(cloud: LocalCloud, stack: chapter.Stack) -> dict[str, Any]:
    """The key file CI got: GitHub's secret holds its JSON, GitLab's variable its base64."""
    value = platform.ci_environment(cloud, stack.platform, stack.repository)[stack.secret_name]
    return dict(json.loads(value if stack.platform == "github" else base64.b64decode(value)))


def accepted_at_once(cloud: LocalCloud, stack: chapter.Stack, bucket: str) -> None:
    """What CI got works the moment `pulumi up` returns: Google accepts the key and the grant."""
    token = sign_in(delivered_key(cloud, stack))
    url = cloud.urls()["storageProxy"] + f"/storage/v1/b/{bucket}/iam/testPermissions?permissions=storage.objects.list"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read()).get("permissions") == ["storage.objects.list"]


@pytest.mark.parametrize("stack", ["vision-team", "nlp-team"])
def test_the_credential_works_the_moment_up_returns(space: Any, stack: str) -> None:
    workspace = space(stack)
    cloud = open_cloud(workspace.cloud_dir)
    iam.set_propagation_delay(cloud, PROPAGATION_DELAY)

    workspace.up()

    accepted_at_once(cloud, chapter.Stack.from_config(workspace.stack, workspace.config), workspace.outputs()["bucketName"])
    exchanges = [json.loads(line) for line in (cloud.root / "token-exchanges.jsonl").read_text().splitlines()]
    assert any("not yet propagated" in e["reason"] for e in exchanges)  # `pulumi up` met the delay, and waited


def test_the_first_ci_run_is_green_under_propagation_delays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert CLI is not None
    workspace = Workspace(tmp_path, "vision-team", CLI, cloud_dir=tmp_path / "cloud")
    cloud = open_cloud(workspace.cloud_dir)
    stack = chapter.Stack.from_config(workspace.stack, workspace.config)
    try:
        assert workspace.ensure_repository()
        workspace.init()
        iam.set_propagation_delay(cloud, PROPAGATION_DELAY)
        started = time.monotonic()
        workspace.up()
        chapter.push_data(cloud, stack, str(workspace.config["gcp:project"]), workspace.outputs()["dvcRemoteUrl"])
        green = chapter.run_ci(cloud, stack)
        to_green = time.monotonic() - started
        assert green.returncode == 0, green.log

        # a rotation: the new key reaches CI once Google accepts it; the old one is refused at once
        first = platform.ci_environment(cloud, stack.platform, stack.repository)[stack.secret_name]
        workspace.pulumi("config", "set", "mlops-ci:keyRotation", "2026-12", "--stack", workspace.stack)
        workspace.up()
        accepted_at_once(cloud, stack, workspace.outputs()["bucketName"])
        assert chapter.run_ci(cloud, stack).returncode == 0
        started = time.monotonic()
        red = chapter.run_ci(cloud, stack, credential=first)
        wrong_key_fails = time.monotonic() - started
        assert red.returncode != 0
        assert "invalid_grant" in red.log
        with capsys.disabled():
            print(
                f"\n[figures] propagation delay {PROPAGATION_DELAY:.0f} s: pulumi up -> first green CI run {to_green:.1f} s;"
                f" the CI run with a revoked key fails after {wrong_key_fails:.1f} s"
            )
    finally:
        services.stop(workspace.cloud_dir)


def test_a_key_deleted_outside_pulumi_is_replaced_by_up_and_stops_an_unrefreshed_up_at_once(
    space: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pulumi up` refreshes first (Pulumi.yaml `refresh: always`): the refresh drops the deleted
    key (upstream Read: 404 or 403 is gone) and the up creates a new one that works at once.
    Without the refresh the state still holds the key, so `pulumi up` checks it again: Google
    refusing a key it created long ago is no propagation delay, and waiting ten minutes for it
    would tell nothing. The key's age is its validAfter (set here as an old key's would be)."""
    workspace = space("vision-team")
    cloud = open_cloud(workspace.cloud_dir)
    stack = chapter.Stack.from_config(workspace.stack, workspace.config)
    workspace.up()
    state = json.loads(workspace.pulumi("stack", "export", "--stack", workspace.stack).stdout)
    key = next(r for r in state["deployment"]["resources"] if r["type"] == "gcp:serviceaccount/key:Key")
    key["outputs"]["validAfter"] = "2026-01-01T00:00:00Z"
    exported = workspace.root / "state.json"
    exported.write_text(json.dumps(state))
    workspace.pulumi("stack", "import", "--file", str(exported), "--stack", workspace.stack)
    with cloud.gcp.edit() as gcp:
        gcp["keys"][key["id"].rsplit("/", 1)[1]]["state"] = "DELETED"

    started = time.monotonic()
    refused = workspace.pulumi("up", "--yes", "--skip-preview", "--refresh=false", "--stack", workspace.stack, check=False)
    revoked_key_fails = time.monotonic() - started

    assert refused.returncode != 0
    assert "the key was deleted or disabled outside Pulumi" in output_of(refused)
    assert "Traceback" not in output_of(refused)
    assert revoked_key_fails < 60
    workspace.up()  # refresh: always
    accepted_at_once(cloud, stack, workspace.outputs()["bucketName"])
    with capsys.disabled():
        figure = f"pulumi up --refresh=false with the state's key deleted outside Pulumi fails after {revoked_key_fails:.1f} s"
        print(f"\n[figures] {figure}")


# --- 9. Google APIs not usable yet, or not at all ---


def test_apis_enabled_moments_ago_are_waited_for(space: Any) -> None:
    """The waits are error hooks, recorded in the state with each resource; `pulumi destroy` runs
    without the program, and a delete Google refuses (here a bucket holding data) still shows
    Google's own answer."""
    workspace = space("recsys-team", {"mlops-ci:protectBucket": "false"})
    cloud = open_cloud(workspace.cloud_dir)
    iam.set_service_enable_delay(cloud, 8)

    up = workspace.up()

    assert "not usable yet" in output_of(up)
    assert ("create failed", "WorkloadIdentityPool") in changed(cloud)  # keyless, direct: the IAM API's first resource
    assert workspace.outputs()["workloadIdentityProvider"]
    bucket = workspace.outputs()["bucketName"]
    upload = f"{cloud.urls()['storage']}/upload/storage/v1/b/{bucket}/o?uploadType=media&name=dvcstore/data"
    urllib.request.urlopen(urllib.request.Request(upload, data=b"data", method="POST"), timeout=10).close()
    refused = workspace.pulumi("destroy", "--yes", "--skip-preview", "--stack", workspace.stack, check=False)
    assert f"Error trying to delete bucket {bucket} without `force_destroy` set to true" in output_of(refused)
    assert "hook" not in output_of(refused).split("Diagnostics:", 1)[1]


@pytest.mark.parametrize("stack", ["vision-team", "recsys-team"])
def test_cloud_resource_manager_off_in_the_deployers_project_says_so(space: Any, stack: str) -> None:
    """Key mode: the pre-flight's policy look-up needs it, so nothing is created; keyless: the
    first Service's read fails, with the same remedy."""
    workspace = space(stack)
    cloud = open_cloud(workspace.cloud_dir)
    iam.disable_caller_api(cloud, iam.CRM_API)

    refused = workspace.pulumi("up", "--yes", "--skip-preview", "--stack", workspace.stack, check=False)

    assert refused.returncode != 0
    shown = output_of(refused)
    assert f"`gcloud services enable {iam.CRM_API} --project {iam.CALLER_PROJECT_NUMBER}`" in shown, shown
    if stack == "vision-team":
        assert [kind for op, kind in changed(cloud) if op == "create"] == []


def test_service_usage_off_in_the_deployers_project_is_not_waited_for(space: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The provider lists the project's services through Service Usage, billed to the deployer's
    project: Google's SERVICE_DISABLED names that project, not one the stack enabled anything in,
    so the stack says where to enable it instead of waiting five minutes for it."""
    workspace = space("vision-team")
    cloud = open_cloud(workspace.cloud_dir)
    iam.disable_caller_api(cloud, iam.SERVICE_USAGE_API)

    started = time.monotonic()
    refused = workspace.pulumi("up", "--yes", "--skip-preview", "--stack", workspace.stack, check=False)

    assert refused.returncode != 0
    shown = output_of(refused)
    assert f"`gcloud services enable {iam.SERVICE_USAGE_API} --project {iam.CALLER_PROJECT_NUMBER}`" in shown, shown
    assert "not usable yet" not in shown
    refused_after = time.monotonic() - started
    assert refused_after < 60
    with capsys.disabled():
        print(f"\n[figures] Service Usage off in the deployer's project: pulumi up stops after {refused_after:.1f} s")
    assert [kind for op, kind in changed(cloud) if op == "create"] == []


# --- 8. the report on gitlab.com's Free plan ---


def test_a_report_on_gitlabs_free_plan_is_refused_before_any_resource(
    space: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitLab lists a Free project's access tokens to a Maintainer (the look-up passes) and refuses
    to create one: the pre-flight asks the group's plan. The local GitLab over HTTPS plays the
    instance (`gitlab:baseUrl`, its certificate trusted through SSL_CERT_FILE)."""
    urls = services.start(open_cloud(tmp_path / "cloud").root)  # the workspace's: its URLs go into the config
    monkeypatch.setenv("SSL_CERT_FILE", urls["gitlabCertificate"])
    workspace = space("nlp-team", {"gitlab:baseUrl": urls["gitlabTls"] + "/"})
    # The platform lets stack files use this instance, as its Pulumi.yaml would (platform.baseUrls).
    project_file = workspace.project / "Pulumi.yaml"
    project_file.write_text(project_file.read_text().replace("  baseUrls:\n", f"  baseUrls:\n    - {urls['gitlabTls']}/\n", 1))
    cloud = open_cloud(workspace.cloud_dir)
    project = str(workspace.config["mlops-ci:repository"])
    gitlab_api.set_plan(cloud, project.split("/", 1)[0], gitlab_api.FREE_PLAN)

    refused = workspace.pulumi("preview", "--stack", workspace.stack, check=False)

    assert refused.returncode != 0
    assert "mlops-ci:report = true: acme-ml/research is on GitLab's Free plan" in output_of(refused)
    assert [e for e in cloud.journal.entries() if e["op"] != "invoke"] == []
    gitlab_api.set_plan(cloud, project.split("/", 1)[0], "premium")
    workspace.up()
    assert gitlab_api.access_tokens(cloud, project)


# --- 7. the CI file edited, then deleted, by hand (GitLab) ---


def test_a_gitlab_ci_file_edited_then_deleted_by_hand(space: Any) -> None:
    """GitLab's provider sees neither without a refresh and reads the file before deleting it: every
    up and destroy refreshes first (Pulumi.yaml `options: refresh: always`), so `pulumi up` puts the
    file back and `pulumi destroy` succeeds; the pre-flight says what it found, and what to do where
    the refresh is turned off."""
    workspace = space("speech-team")
    cloud = open_cloud(workspace.cloud_dir)
    project = platform.find_repository(cloud, "gitlab", str(workspace.config["mlops-ci:repository"]))
    assert project is not None
    repo, branch = Path(project["gitDir"]), str(workspace.config["mlops-ci:branch"])
    workspace.up()
    stacks_file = platform.file_content(repo, branch, ".gitlab-ci.yml")
    platform.commit_file(repo, branch, ".gitlab-ci.yml", b"# ours now\n", "edit by hand", platform.GIT_IDENTITY)

    unrefreshed = workspace.pulumi("up", "--yes", "--skip-preview", "--refresh=false", "--stack", workspace.stack)
    warning = ".gitlab-ci.yml on branch develop of ml/speech/asr-experiments differs from what this configuration commits"
    assert warning in output_of(unrefreshed)
    assert platform.file_content(repo, branch, ".gitlab-ci.yml") == b"# ours now\n"
    workspace.up()
    assert platform.file_content(repo, branch, ".gitlab-ci.yml") == stacks_file

    platform.commit_file(repo, branch, ".gitlab-ci.yml", None, "delete by hand", platform.GIT_IDENTITY)
    unrefreshed = workspace.pulumi("up", "--yes", "--skip-preview", "--refresh=false", "--stack", workspace.stack)
    assert "is missing from branch develop" in output_of(unrefreshed)
    assert "run `pulumi refresh`" in output_of(unrefreshed)
    workspace.destroy()
    assert platform.file_content(repo, branch, ".gitlab-ci.yml") is None
    assert platform.ci_variables(cloud, "gitlab", project["path"])["variables"] == {}


# --- 4. a GitHub token that may not commit workflows; 5. rulesets on the branch; GITHUB_OWNER ---


def test_a_classic_token_without_the_workflow_scope_is_refused_before_any_resource(space: Any) -> None:
    """GitHub refuses the workflow's commit to such a token (404), after the secret exists; a
    classic token's scopes are in every answer's `X-OAuth-Scopes`: the pre-flight reads them."""
    workspace = space("vision-team")
    cloud = open_cloud(workspace.cloud_dir)
    github_api.register_token(cloud, workspace.env["GITHUB_TOKEN"], "classic", ("repo",))

    refused = workspace.pulumi("up", "--yes", "--skip-preview", "--stack", workspace.stack, check=False)

    assert refused.returncode != 0
    assert "github:token: a classic token without the `workflow` scope (it has repo)" in output_of(refused)
    assert changed(cloud) == []
    github_api.register_token(cloud, workspace.env["GITHUB_TOKEN"], "classic", ("repo", "workflow"))
    workspace.up()


def test_a_fine_grained_token_is_told_the_permission_it_needs(space: Any) -> None:
    """GitHub does not tell a fine-grained token's permissions: the pre-flight names the one the
    commit needs, which GitHub refuses with a 404 when the token lacks it."""
    workspace = space("vision-team")
    cloud = open_cloud(workspace.cloud_dir)
    github_api.register_token(cloud, workspace.env["GITHUB_TOKEN"], "fine-grained", ("contents", "secrets"))

    failed = workspace.pulumi("up", "--yes", "--skip-preview", "--stack", workspace.stack, check=False)

    assert failed.returncode != 0
    assert "the commit of .github/workflows/mlops.yaml needs Workflows: write" in output_of(failed)
    assert ("create failed", "RepositoryFile") in changed(cloud)


def test_a_ruleset_on_the_branch_is_refused_before_any_resource_unless_bypassed(space: Any) -> None:
    """Rulesets are invisible to getBranchProtectionRules (classic protection only): the pre-flight
    reads the rules that apply to the branch and whether the token's user may bypass them."""
    workspace = space("vision-team")
    cloud = open_cloud(workspace.cloud_dir)
    repository = str(workspace.config["mlops-ci:repository"])
    ruleset = github_api.add_ruleset(cloud, repository, "reviews on main", ["main"], ["pull_request", "deletion"])

    refused = workspace.pulumi("preview", "--stack", workspace.stack, check=False)

    assert refused.returncode != 0
    assert "mlops-ci:branch = 'main': the rulesets 'reviews on main' (pull_request) of acme-ml/vision-experiments" in output_of(
        refused
    )
    assert changed(cloud) == []
    with cloud.github.edit() as document:  # the token's user added to the ruleset's bypass list
        next(r for r in document["rulesets"][repository] if r["id"] == ruleset)["bypass"] = True
    workspace.up()


def test_github_owner_in_the_environment_is_refused(space: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider takes GITHUB_OWNER (and GITHUB_ORGANIZATION) before the owner the program gives
    it (upstream `configureProvider`): every resource would land in that owner's repository."""
    workspace = space("vision-team")
    monkeypatch.setenv("GITHUB_OWNER", "someone-else")

    refused = workspace.pulumi("preview", "--stack", workspace.stack, check=False)

    assert refused.returncode != 0
    assert "GITHUB_OWNER = 'someone-else' in the environment" in output_of(refused)
    monkeypatch.setenv("GITHUB_OWNER", "acme-ml")  # the repository's own owner: harmless
    workspace.pulumi("preview", "--stack", workspace.stack)


def test_github_owner_at_destroy_spares_another_owners_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Destroy runs no program, so no pre-flight refuses GITHUB_OWNER there: the program also passes
    `organization`, which upstream v6.13.0 provider.go `configureProvider` reads before GITHUB_OWNER
    (red team rt18: without it the provider deleted another owner's variable of the same name)."""
    assert CLI is not None
    workspace = Workspace(tmp_path, "recsys-team", CLI, cloud_dir=tmp_path / "cloud")
    cloud = open_cloud(workspace.cloud_dir)
    try:
        workspace.ensure_repository(seed=False)
        _seed_minimal(cloud, workspace)
        workspace.init()
        workspace.pulumi("up", "--yes", "--skip-preview", "--stack", workspace.stack)
        ours = platform.ci_environment(cloud, "github", "acme-ml/recsys")
        name = next(n for n in ours if n.startswith("GCP_"))
        platform.create_repository(cloud, "github", "other-team/recsys", ["main"], {"README.md": b"theirs\n"})
        body = json.dumps({"name": name, "value": "theirs"}).encode()
        status, _, _ = github_api.Api(cloud).handle(
            "POST", "/repos/other-team/recsys/actions/variables", {"authorization": "Bearer t"}, body
        )
        assert status == 201
        monkeypatch.setenv("GITHUB_OWNER", "other-team")
        workspace.pulumi("destroy", "--yes", "--skip-preview", "--stack", workspace.stack, check=False)
        assert platform.ci_environment(cloud, "github", "other-team/recsys").get(name) == "theirs"
        assert name not in platform.ci_environment(cloud, "github", "acme-ml/recsys")
    finally:
        services.stop(workspace.cloud_dir)


# --- 7. the GitHub CI file edited or deleted by hand ---


def test_a_github_ci_file_edited_or_deleted_by_hand_then_up_and_destroy(space: Any) -> None:
    """The provider sends the `sha` it last read (upstream `resourceGithubRepositoryFileUpdate`/
    `Delete`): a hand edit makes GitHub answer 409, a hand deletion 404. Every up, preview and
    destroy refreshes first (Pulumi.yaml `options: refresh: always`), so both succeed."""
    workspace = space("vision-team")
    cloud = open_cloud(workspace.cloud_dir)
    entry = platform.find_repository(cloud, "github", str(workspace.config["mlops-ci:repository"]))
    assert entry is not None
    repo, path = Path(entry["gitDir"]), ".github/workflows/mlops.yaml"
    workspace.up()
    stacks_file = platform.file_content(repo, "main", path)

    platform.commit_file(repo, "main", path, b"# ours now\n", "edit by hand", platform.GIT_IDENTITY)
    workspace.up()
    assert platform.file_content(repo, "main", path) == stacks_file

    platform.commit_file(repo, "main", path, None, "delete by hand", platform.GIT_IDENTITY)
    workspace.up()
    assert platform.file_content(repo, "main", path) == stacks_file

    platform.commit_file(repo, "main", path, b"# ours again\n", "edit by hand", platform.GIT_IDENTITY)
    workspace.destroy()
    assert platform.file_content(repo, "main", path) is None
    assert platform.ci_environment(cloud, "github", entry["path"]) == {}
