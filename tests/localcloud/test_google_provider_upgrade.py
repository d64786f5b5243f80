"""Under the real engine: a stack brought up by the program before the Google provider became
explicit keeps every resource when the program with the explicit provider runs `pulumi up`.

The engine (pulumi/pulumi pkg/resource/deploy/step_generator.go, `providerChanged`, v3.274.1) asks
the *new* provider's DiffConfig whether the old (default) provider's config against the new one
needs a replacement; only then are the provider's resources replaced. The bridged pulumi-gcp
answers replace only for a config field marked ForcesProviderReplace
(pulumi-terraform-bridge pkg/tfbridge/provider.go, `configDiffer.DiffConfig`); the local cloud's
gcp plugin answers from the changed keys, never replace (localcloud/server.py `DiffConfig`).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from localcloud import services
from localcloud.engine import Workspace, find_cli
from localcloud.state import open_cloud

from .test_lifecycle import _seed_minimal  # pyright: ignore[reportPrivateUsage] - the same seeding as the lifecycle

pytestmark = pytest.mark.localcloud

REPOSITORY = Path(__file__).resolve().parents[2]
# The last program whose Google resources used the default provider (the commit before the switch).
BEFORE_EXPLICIT_PROVIDER = "0cd395e4870fda1478e82b507cea70a58e92f763"
CLI = find_cli()
if CLI is None:
    pytest.skip("no Pulumi CLI (set PULUMI_CLI or build ~/.cache/mlops-ci/pulumi-3.274.1)", allow_module_level=True)


def program_at(commit: str, project: Path) -> None:
    """The program's files as `commit` had them, in place of the workspace's."""
    shutil.rmtree(project / "mlops_ci")
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", commit, "__main__.py", "mlops_ci"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as files:
        files.extractall(project, filter="data")


def google_resources(space: Workspace) -> dict[str, dict[str, Any]]:
    state = json.loads(space.pulumi("stack", "export", "--stack", space.stack).stdout)
    return {r["urn"]: r for r in state["deployment"]["resources"] if r["type"].startswith("gcp:")}


def test_the_explicit_google_provider_replaces_nothing_of_an_existing_stack(tmp_path: Path) -> None:
    assert CLI is not None
    space = Workspace(tmp_path, "vision-team", CLI, cloud_dir=tmp_path / "cloud")
    cloud = open_cloud(space.cloud_dir)
    try:
        space.ensure_repository(seed=False)
        _seed_minimal(cloud, space)
        space.init()
        program_at(BEFORE_EXPLICIT_PROVIDER, space.project)
        space.up()
        before = google_resources(space)
        assert {r["provider"].split("::")[3] for r in before.values()} == {"default_10_2_0"}

        shutil.rmtree(space.project / "mlops_ci")
        shutil.copytree(REPOSITORY / "mlops_ci", space.project / "mlops_ci", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(REPOSITORY / "__main__.py", space.project / "__main__.py")
        journal_before = len(cloud.journal.entries())
        preview = space.pulumi("preview", "--stack", space.stack, "--json")
        space.up()

        steps = json.loads(preview.stdout)["steps"]
        assert not [s for s in steps if s["op"] in ("replace", "create-replacement", "delete-replaced", "delete")]
        after = google_resources(space)
        assert set(after) == set(before)
        assert {urn: r["id"] for urn, r in after.items()} == {urn: r["id"] for urn, r in before.items()}
        assert {r["provider"].split("::")[3] for r in after.values()} == {"gcp-provider"}
        touched = [(e["op"], e["type"]) for e in cloud.journal.entries()[journal_before:] if e["op"] in ("create", "delete")]
        assert touched == []
        space.destroy()
    finally:
        services.stop(space.cloud_dir)
