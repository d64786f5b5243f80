"""The chapter's whole lifecycle under the real engine, per key stack: up (with the policy pack) →
the team's nextSteps → the committed pipeline green → key rotation → destroy → the same pipeline
red → up again, adopting the kept bucket."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from google.auth.exceptions import RefreshError

from localcloud import chapter, platform, services
from localcloud.engine import Workspace, find_cli
from localcloud.state import LocalCloud, open_cloud
from mlops_ci.ci.files import job_script_path
from mlops_ci.settings.rules import REPORT_TOKEN_VARIABLE

from .conftest import github_writes, sign_in, storage_get

pytestmark = pytest.mark.localcloud

CLI = find_cli()
if CLI is None:
    pytest.skip("no Pulumi CLI (set PULUMI_CLI or build ~/.cache/mlops-ci/pulumi-3.274.1)", allow_module_level=True)
if not chapter.ci_runners.NODE_BIN.joinpath("gitlab-ci-local").exists():
    pytest.skip("needs node_modules (gitlab-ci-local): make node_modules/.installed", allow_module_level=True)

CREDENTIAL = {"github": "ActionsSecret", "gitlab": "ProjectVariable"}


def labelled(entry: dict[str, Any]) -> str:
    """A journaled resource's kind, GitLab variables named by their key (the key's and the report token's)."""
    kind = str(entry["type"]).rsplit(":", 1)[-1]
    return f"{kind} {entry['inputs']['key']}" if kind == "ProjectVariable" else kind


def changes(cloud: LocalCloud) -> list[tuple[str, str]]:
    """(op, kind) of the changes that succeeded, in order: the plugins' journal (Google, GitLab) and
    the GitHub API's writes (the real GitHub provider's)."""
    changed = ("create", "update", "delete")  # not the reads of every up's refresh (Pulumi.yaml)
    journaled = [(e["time"], e["op"], labelled(e)) for e in cloud.journal.entries() if e["op"] in changed and "error" not in e]
    github = [write for write in github_writes(cloud) if not write[1].endswith("failed")]
    return [(op, kind) for _, op, kind in sorted(journaled + github)]


def report_token(cloud: LocalCloud, stack: chapter.Stack) -> str | None:
    """The report's project access token CI got (GitLab with mlops-ci:report), else None."""
    return platform.ci_environment(cloud, stack.platform, stack.repository).get(REPORT_TOKEN_VARIABLE)


def delivered(cloud: LocalCloud, stack: chapter.Stack) -> str:
    return platform.ci_environment(cloud, stack.platform, stack.repository)[stack.secret_name]


def key_file_of(stack: chapter.Stack, value: str) -> dict[str, Any]:
    """The key file in what CI got: GitHub the minified JSON, GitLab its base64."""
    return dict(json.loads(value if stack.platform == "github" else base64.b64decode(value)))


def needles(stack: chapter.Stack, value: str) -> list[str]:
    """Fragments any copy of the key contains: PEM lines from the middle, a slice of the value."""
    pem = key_file_of(stack, value)["private_key"].splitlines()
    middle = len(value) // 2
    return [pem[len(pem) // 2], pem[len(pem) // 2 + 1], value[middle : middle + 48]]


def state_files(space: Workspace) -> str:
    """Every file of the state: the backend (checkpoints, history, backups) and the stack file."""
    files = [p for p in space.backend.rglob("*") if p.is_file()]
    files += [space.project / "stacks" / f"Pulumi.{space.stack}.yaml"]
    return "".join(p.read_text(errors="replace") for p in files)


def granted_key_ids(cloud: LocalCloud, email: str) -> set[str]:
    lines = (cloud.root / "token-exchanges.jsonl").read_text().splitlines()
    exchanges = [json.loads(line) for line in lines]
    return {str(e.get("keyId") or e.get("kid")) for e in exchanges if e["granted"] and e["issuer"] == email}


def git_subjects(repo: Path, branch: str) -> list[str]:
    out = subprocess.run(["git", "--git-dir", str(repo), "log", "--format=%s", branch], capture_output=True, text=True)
    return out.stdout.splitlines()


@pytest.mark.parametrize("stack_name", ["vision-team", "nlp-team"])
def test_key_stack_lifecycle(tmp_path: Path, stack_name: str) -> None:
    assert CLI is not None
    space = Workspace(tmp_path, stack_name, CLI, cloud_dir=tmp_path / "cloud")
    cloud = open_cloud(space.cloud_dir)
    try:
        _lifecycle(space, cloud)
    finally:
        services.stop(space.cloud_dir)


def _lifecycle(space: Workspace, cloud: LocalCloud) -> None:
    stack = chapter.Stack.from_config(space.stack, space.config)
    assert space.ensure_repository()
    space.init()
    repo = Path(platform.find_repository(cloud, stack.platform, stack.repository)["gitDir"])  # type: ignore[index]
    # what holds the key: GitLab's variables are told apart by their key (the report's token has one too)
    credential = f"{CREDENTIAL[stack.platform]} {stack.secret_name}" if stack.platform == "gitlab" else CREDENTIAL[stack.platform]

    # --- up, with the policy pack: the journal follows the dependency graph ---
    space.pulumi("up", "--yes", "--skip-preview", "--policy-pack", "policy", "--stack", space.stack)
    outputs = space.outputs()
    created = changes(cloud)
    order = [kind for _, kind in created]
    ci_file_at = order.index("RepositoryFile")
    assert all(op == "create" for op, _ in created)
    for before in ("Key", credential, "BucketIAMMember", "Account", "Bucket"):
        assert order.index(before) < ci_file_at, f"{before} created after the CI file: {order}"
    assert order.index("Key") < order.index(credential)

    # --- the team's nextSteps, then the committed pipeline is green, signed in with the stack's key ---
    chapter.push_data(cloud, stack, str(space.config["gcp:project"]), outputs["dvcRemoteUrl"])
    first = delivered(cloud, stack)
    green = chapter.run_ci(cloud, stack)
    assert green.returncode == 0, green.log
    assert green.ci_file_present
    assert "Data and pipelines are up to date." in green.log
    first_key = key_file_of(stack, first)
    assert first_key["client_email"] == outputs["serviceAccountEmail"]
    assert first_key["private_key_id"] in granted_key_ids(cloud, outputs["serviceAccountEmail"])

    # --- no plaintext key byte, nor the report's token, in `pulumi stack export`, any file of the state, the journal ---
    report = report_token(cloud, stack)
    reports = str(space.config.get("mlops-ci:report", False)).lower() == "true"
    assert (report is not None) == (reports and stack.platform == "gitlab")  # GitHub's report needs no token
    exported = space.pulumi("stack", "export", "--stack", space.stack).stdout
    for needle in [*needles(stack, first), *([report] if report else [])]:
        assert needle not in exported
        assert needle not in state_files(space)
        assert needle not in cloud.journal.path.read_text()

    # --- key rotation: the new key before the old one goes, the credential updated in place ---
    before_rotation = len(changes(cloud))
    space.pulumi("config", "set", "mlops-ci:keyRotation", "2026-12", "--stack", space.stack)
    space.pulumi("up", "--yes", "--skip-preview", "--policy-pack", "policy", "--stack", space.stack)
    rotated = changes(cloud)[before_rotation:]
    key_steps = [step for step in rotated if step[1] in ("Key", credential)]
    assert key_steps == [("create", "Key"), ("update", credential), ("delete", "Key")]
    # the report's token rotates with the key (keyRotation): a new one, its variable updated, the old one revoked
    token_steps = [step for step in rotated if step not in key_steps]
    if report:
        assert token_steps == [
            ("create", "ProjectAccessToken"),
            ("update", f"ProjectVariable {REPORT_TOKEN_VARIABLE}"),
            ("delete", "ProjectAccessToken"),
        ]
        assert report_token(cloud, stack) not in (None, report)
    else:
        assert token_steps == []
    second = delivered(cloud, stack)
    assert key_file_of(stack, second)["private_key_id"] != first_key["private_key_id"]
    with pytest.raises(RefreshError, match="invalid_grant"):
        sign_in(first_key)
    assert chapter.run_ci(cloud, stack).returncode == 0
    for needle in [*needles(stack, second), *([str(report_token(cloud, stack))] if report else [])]:
        assert needle not in state_files(space)

    # --- destroy: credential, grants, account gone; CI file removed by a commit; bucket and data kept ---
    before_destroy = len(changes(cloud))
    space.destroy()
    deleted = {kind for op, kind in changes(cloud)[before_destroy:] if op == "delete"}
    assert {"Key", credential, "BucketIAMMember", "Account", "RepositoryFile"} <= deleted
    assert "Bucket" not in deleted
    assert platform.file_content(repo, stack.branch, stack.ci_file) is None
    removed = subprocess.run(
        ["git", "--git-dir", str(repo), "log", "-2", "--name-status", "--format=", stack.branch], capture_output=True, text=True
    )
    # The branch's last two commits: the CI file deleted, then the job script it called.
    assert removed.stdout.split() == ["D", job_script_path(stack.name), "D", stack.ci_file]
    subjects = git_subjects(repo, stack.branch)  # GitHub: the stack's messages; GitLab: its delete messages
    assert job_script_path(stack.name) in subjects[0]
    assert stack.ci_file in subjects[1]
    assert stack.secret_name not in platform.ci_environment(cloud, stack.platform, stack.repository)
    assert report_token(cloud, stack) is None
    assert ("ProjectAccessToken" in deleted) == bool(report)
    assert cloud.gcp.read()["serviceAccounts"].get(outputs["serviceAccountEmail"]) is None
    objects = storage_get(cloud, f"/storage/v1/b/{outputs['bucketName']}/o?prefix=dvcstore/")[1]
    assert objects.get("items"), "the bucket's data is gone"
    red = chapter.run_ci(cloud, stack, credential=second)  # the same pipeline, with the credential CI had
    assert red.returncode != 0
    assert "invalid_grant" in red.log

    # --- up again: the kept bucket is adopted (imported), not a 409; pulumi-gcp imports its labels
    # into effectiveLabels only, so the engine then updates them to the program's ---
    before_again = len(cloud.journal.entries())
    space.pulumi("up", "--yes", "--skip-preview", "--policy-pack", "policy", "--stack", space.stack)
    again = cloud.journal.entries()[before_again:]
    bucket_ops = [(e["op"], "error" in e) for e in again if e["type"].endswith("Bucket")]
    assert bucket_ops == [("read", False), ("update", False)]
    assert sign_in(key_file_of(stack, delivered(cloud, stack)))  # a working credential again (no third CI run: time)
    space.destroy()


@pytest.mark.parametrize("stack_name", ["recsys-team"])
def test_keyless_stack_up_then_destroy(tmp_path: Path, stack_name: str) -> None:
    assert CLI is not None
    space = Workspace(tmp_path, stack_name, CLI, cloud_dir=tmp_path / "cloud")
    cloud = open_cloud(space.cloud_dir)
    try:
        space.ensure_repository(seed=False)
        _seed_minimal(cloud, space)
        space.init()
        space.pulumi("up", "--yes", "--skip-preview", "--policy-pack", "policy", "--stack", space.stack)
        created = [kind for _, kind in changes(cloud)]
        # Direct (the default): the bucket grants go to the repository's principal set, no account.
        assert not {"Key", "Account", "IAMMember"} & set(created)
        assert {"WorkloadIdentityPool", "WorkloadIdentityPoolProvider", "BucketIAMMember"} <= set(created)
        assert created.index("WorkloadIdentityPoolProvider") < created.index("RepositoryFile")
        assert created.index("BucketIAMMember") < created.index("RepositoryFile")
        space.destroy()
        deleted = {kind for op, kind in changes(cloud) if op == "delete"}
        assert {"WorkloadIdentityPool", "WorkloadIdentityPoolProvider", "BucketIAMMember", "RepositoryFile"} <= deleted
    finally:
        services.stop(space.cloud_dir)


def _seed_minimal(cloud: LocalCloud, space: Workspace) -> None:
    """The files the CI file's pre-flight asks for, on the branch."""
    stack = chapter.Stack.from_config(space.stack, space.config)
    entry = platform.find_repository(cloud, stack.platform, stack.repository)
    assert entry is not None
    repo = Path(entry["gitDir"])
    for name in ("dvc.yaml", chapter.REQUIREMENTS_FILE):
        platform.commit_file(
            repo, stack.branch, name, b"stages: {}\n" if name == "dvc.yaml" else b"dvc[gs]\n", "seed", platform.GIT_IDENTITY
        )


def test_a_stack_that_breaks_a_policy_is_refused(tmp_path: Path) -> None:
    assert CLI is not None
    space = Workspace(tmp_path, "vision-team", CLI, cloud_dir=tmp_path / "cloud")
    cloud = open_cloud(space.cloud_dir)
    try:
        space.ensure_repository(seed=False)
        _seed_minimal(cloud, space)
        space.init()
        storage = space.project / "mlops_ci" / "components" / "storage.py"
        text = storage.read_text()
        assert 'public_access_prevention="enforced"' in text
        storage.write_text(text.replace('public_access_prevention="enforced"', 'public_access_prevention="inherited"'))

        refused = space.pulumi("up", "--yes", "--skip-preview", "--policy-pack", "policy", "--stack", space.stack, check=False)

        assert refused.returncode != 0
        assert "mandatory" in refused.stdout
        assert not [e for e in cloud.journal.entries() if e["op"] == "create" and e["type"].endswith("Bucket")]
    finally:
        services.stop(space.cloud_dir)


def test_github_key_secret_in_an_environment_up_then_destroy(tmp_path: Path) -> None:
    assert CLI is not None
    config = {"mlops-ci:githubEnvironment": "dvc-ci"}
    space = Workspace(tmp_path, "vision-team", CLI, config, cloud_dir=tmp_path / "cloud")
    cloud = open_cloud(space.cloud_dir)
    try:
        space.ensure_repository(seed=False)
        _seed_minimal(cloud, space)
        space.init()
        space.pulumi("up", "--yes", "--skip-preview", "--policy-pack", "policy", "--stack", space.stack)
        stack = chapter.Stack.from_config(space.stack, space.config)
        stored = platform.ci_variables(cloud, "github", stack.repository)

        assert "secrets" not in stored or stack.secret_name not in stored["secrets"]  # not a repository secret
        environment = stored["environments"]["dvc-ci"]
        assert [(p["name"], p["type"]) for p in environment["branchPolicies"].values()] == [(stack.branch, "branch")]
        assert list(environment["secrets"]) == [stack.secret_name]
        assert key_file_of(stack, delivered(cloud, stack))["type"] == "service_account"
        order = [kind for _, kind in changes(cloud)]
        assert order.index("ActionsEnvironmentSecret") < order.index("RepositoryFile")
        assert order.index("RepositoryEnvironmentDeploymentPolicy") < order.index("RepositoryFile")

        space.destroy()
        assert platform.ci_variables(cloud, "github", stack.repository).get("environments") == {}
    finally:
        services.stop(space.cloud_dir)
