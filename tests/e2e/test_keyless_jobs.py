"""The keyless CI job end to end, per platform: the example keyless stack up through the real engine
against the local cloud (impersonation: the program on main), the team's next steps, then the
committed CI file run as the platform runs it (GitHub by act with the auth action's stand-in, GitLab
by gitlab-ci-local) with an ID token of the local OIDC issuer, exchanged by the job's own google-auth at
the local STS, the account impersonated at the local IAM Credentials: green, signed in as the stack's
service account. Impostors (another repository with the same name, another of the same owner, another
branch under trustBranchOnly, an expired token, another audience) each get a red job naming the STS's
reason, and no token."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud import chapter, services
from localcloud.engine import find_cli
from localcloud.keyless import Impostor
from localcloud.kit.deployed import Deployed, deploy_stack
from localcloud.oidc_issuer import Forgery
from localcloud.state import LocalCloud

pytestmark = pytest.mark.e2e

CLI = find_cli()
if CLI is None:
    pytest.skip("no Pulumi CLI (set PULUMI_CLI or build ~/.cache/mlops-ci/pulumi-3.274.1)", allow_module_level=True)

REFUSED_BY_CONDITION = "The given credential is rejected by the attribute condition."


def deploy(root: Path, stack_name: str, config: dict[str, str]) -> Deployed:
    assert CLI is not None
    return deploy_stack(CLI, root, stack_name, config)


@pytest.fixture(scope="module")
def github(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """recsys-team (GitHub, keyless) impersonating its service account, with trustBranchOnly: its
    runs of main only get Google credentials."""
    root = tmp_path_factory.mktemp("keyless-github")
    try:
        yield deploy(root, "recsys-team", {"mlops-ci:trustBranchOnly": "true", "mlops-ci:keylessMode": "impersonation"})
    finally:
        services.stop(root / "cloud")


@pytest.fixture(scope="module")
def gitlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """speech-team (self-managed GitLab, keyless) as the example stack sets it."""
    root = tmp_path_factory.mktemp("keyless-gitlab")
    try:
        yield deploy(root, "speech-team", {})
    finally:
        services.stop(root / "cloud")


def exchanges(cloud: LocalCloud) -> list[dict[str, Any]]:
    path = cloud.root / "federation-exchanges.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run(deployed: Deployed, impostor: Impostor | None = None) -> tuple[chapter.CiRun, list[dict[str, Any]], float]:
    """The committed CI file run; the STS and IAM Credentials decisions it caused; its wall time."""
    before = len(exchanges(deployed.cloud))
    start = time.monotonic()
    result = chapter.run_ci(deployed.cloud, deployed.stack, impostor=impostor)
    return result, exchanges(deployed.cloud)[before:], time.monotonic() - start


@pytest.mark.parametrize("platform", ["github", "gitlab"])
def test_keyless_job_is_green_as_the_stack_account(platform: str, request: pytest.FixtureRequest) -> None:
    deployed: Deployed = request.getfixturevalue(platform)

    result, decisions, seconds = run(deployed)

    assert result.returncode == 0, result.log
    assert "Data and pipelines are up to date." in result.log
    account = deployed.outputs["serviceAccountEmail"]
    impersonations = [d for d in decisions if d["target"] == f"serviceAccounts/{account}"]
    assert impersonations, decisions
    assert all(d["granted"] for d in decisions), decisions
    print(f"keyless {platform} job: {seconds:.1f} s (up {deployed.seconds['up']:.1f} s)")


def github_impostors(deployed: Deployed) -> dict[str, Impostor]:
    repository = deployed.stack.repository
    return {
        # the repository deleted and re-created under the same name (or a rename onto it): other ids
        "same-name-other-ids": Impostor({"repository_id": "1000000001", "repository_owner_id": "1000000002"}),
        "same-owner-other-repository": Impostor(
            {"repository": f"{repository.split('/')[0]}/other", "repository_id": "1000000003"}
        ),
        "another-branch": Impostor({"ref": "refs/heads/experiment"}),
        "expired": Impostor(forged=Forgery(issued=time.time() - 3600)),
        "another-audience": Impostor(
            forged=Forgery(audience="https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/p")
        ),
    }


REASONS = {
    "same-name-other-ids": REFUSED_BY_CONDITION,
    "same-owner-other-repository": REFUSED_BY_CONDITION,
    "another-branch": REFUSED_BY_CONDITION,
    "expired": "The ID Token has expired.",
    "another-audience": "The audience in ID Token does not match the expected audience",
}


@pytest.mark.parametrize("impostor", sorted(REASONS))
def test_github_impostor_job_is_red_with_the_reason(github: Deployed, impostor: str) -> None:
    result, decisions, _ = run(github, github_impostors(github)[impostor])

    assert result.returncode != 0, result.log
    # the auth step fails at the exchange, with the STS's answer in its message
    assert "google-github-actions/auth failed with: Failed to generate Google Cloud federated token for" in result.log, result.log
    assert REASONS[impostor] in result.log, result.log
    assert decisions, "the STS was never asked"
    assert not any(d["granted"] for d in decisions), decisions
    assert "Train model" not in result.log.split("google-github-actions/auth failed with")[1]


@pytest.mark.parametrize(
    ("impostor", "reason"),
    [
        (Impostor({"project_id": "1000000001", "namespace_id": "1000000002"}), REFUSED_BY_CONDITION),
        (
            Impostor(forged=Forgery(audience="https://gitlab.com")),
            "The audience in ID Token does not match the expected audience",
        ),
    ],
    ids=["same-path-other-ids", "another-audience"],
)
def test_gitlab_impostor_job_is_red_with_the_reason(gitlab: Deployed, impostor: Impostor, reason: str) -> None:
    result, decisions, _ = run(gitlab, impostor)

    assert result.returncode != 0, result.log
    assert "ERROR: no Google Cloud token for the workload identity of this job:" in result.log, result.log
    assert reason in result.log, result.log
    assert decisions, "the STS was never asked"
    assert not any(d["granted"] for d in decisions), decisions


@pytest.mark.parametrize("stack_name", ["recsys-team", "speech-team"])
def test_direct_keyless_job_is_green_without_a_service_account(stack_name: str, tmp_path: Path) -> None:
    deployed = deploy(tmp_path, stack_name, {"mlops-ci:keylessMode": "direct"})
    try:
        result, decisions, _ = run(deployed)
    finally:
        services.stop(tmp_path / "cloud")

    assert result.returncode == 0, result.log
    assert "Data and pipelines are up to date." in result.log
    assert decisions, "the STS was never asked"
    # federated tokens only: no impersonation asked of IAM Credentials
    assert not [d for d in decisions if d["target"].startswith("serviceAccounts/")], decisions
