"""The components as a Python program that builds them itself reads them: a resource the stack does
not create (the team's existing bucket, a shared pool's grant on no account, a keyless delivery's
secret) is None, as typed; the options it gives a component reach the component."""

# The SDK leaves `pulumi.runtime.test` untyped:
# pyright: reportUnknownMemberType=false
from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pulumi
import pulumi_github as github

from mlops_ci.components.storage import DvcRemote
from mlops_ci.components.workload_identity import OidcTrust, WorkloadIdentity
from mlops_ci.offline.runtime import OfflineMocks, evaluate
from mlops_ci.platforms.github import GithubDelivery
from tests.helpers import config_for

SHARED = "projects/123456789012/locations/global/workloadIdentityPools/platform-ci/providers/github"


def built(build: Callable[[], pulumi.ComponentResource]) -> pulumi.ComponentResource:
    """The component `build()` makes under the offline mocks, once every registration is done."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_mocks(OfflineMocks(), project="mlops-ci", stack="team-a", preview=False)
    made: list[pulumi.ComponentResource] = []

    @pulumi.runtime.test
    def register() -> None:
        made.append(build())

    try:
        register()
    finally:
        loop.close()
    return made[0]


def test_the_teams_existing_bucket_is_no_bucket_of_the_component() -> None:
    remote = built(
        lambda: DvcRemote(
            "dvc-remote",
            {
                "project": "acme-ml-test",
                "bucket_name": "acme-ml-data",
                "existing": True,
                "adopt": False,
                "location": "europe-west6",
                "remote_path": "dvcstore",
                "labels": {},
                "protect": True,
                "after": [],
            },
        )
    )
    assert isinstance(remote, DvcRemote)
    assert remote.bucket is None


def github_trust() -> OidcTrust:
    """A trust of one GitHub repository (id 1), as `GitHub.oidc_trust` gives it."""
    return OidcTrust(
        issuer_uri="https://token.actions.githubusercontent.com",
        allowed_audiences=(),
        attribute_mapping={"google.subject": "assertion.sub"},
        attribute_condition=pulumi.Output.from_input('assertion.repository_id == "1"'),
        principal_attribute="repository_id",
        principal_value=pulumi.Output.from_input("1"),
    )


def test_a_shared_pool_without_an_account_has_no_pool_provider_or_grant_of_the_component() -> None:
    federation = built(
        lambda: WorkloadIdentity(
            "workload-identity",
            {
                "project": "acme-ml-test",
                "stack": "team-a",
                "service_account": None,
                "existing_provider": SHARED,
                "trust": github_trust(),
                "after": [],
            },
        )
    )
    assert isinstance(federation, WorkloadIdentity)
    assert (federation.pool, federation.provider, federation.binding) == (None, None, None)


def test_a_keyless_github_delivery_has_no_secret() -> None:
    delivery = built(
        lambda: GithubDelivery(
            "github",
            {
                "provider": github.Provider("github-provider", owner="acme-ml", token="t"),
                "repository": "acme-ml/churn-model",
                "branch": "main",
                "secret_name": "GCP_SA_KEY",
                "environment": "",
                "secret_value": None,
                "variables": {"GCP_WORKLOAD_IDENTITY_PROVIDER": SHARED},
                "ci_file": ".github/workflows/mlops.yaml",
                "ci_content": "on: push\n",
                "job_script_path": ".mlops-ci/team-a.py",
                "job_script": "print()\n",
                "after": [],
            },
        )
    )
    assert isinstance(delivery, GithubDelivery)
    assert delivery.secret is None
    assert len(delivery.variables) == 1


# A platform team's program that keeps each team's chapter under a component of its own.
TEAMS_PROGRAM = """\
import pulumi
import pulumi_gcp as gcp
from mlops_ci.components.team import TeamCi
from mlops_ci.preflight import preflight
from mlops_ci.settings.loader import load_settings

settings = load_settings()
platform_provider = settings.platform.provider(settings)
google = gcp.Provider("gcp-provider", project=settings.gcp_project)
found = preflight(settings, platform_provider, google)
teams = pulumi.ComponentResource("acme:index:Teams", "teams")
args = {"settings": settings, "preflight": found, "platform_provider": platform_provider, "google_provider": google}
TeamCi(settings.stack, args, opts=pulumi.ResourceOptions(parent=teams, protect=True))
"""


def test_the_team_component_takes_the_options_its_program_gives(tmp_path: Path) -> None:
    """`TeamCi(..., opts=...)`: the parent and the protection a program gives reach the component."""
    program = tmp_path / "__main__.py"
    program.write_text(TEAMS_PROGRAM)

    evaluation = evaluate("team-a", config_for("github"), program=program)

    teams = evaluation.one("acme:index:Teams")
    team = evaluation.one("mlops-ci:index:TeamCi")
    assert (team.parent, team.protect) == (teams.urn, True)
