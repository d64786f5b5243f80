"""Red-team (rt18): GITHUB_OWNER in the environment of `pulumi destroy`. Upstream v6.13.0
provider.go `configureProvider` reads `os.LookupEnv("GITHUB_OWNER")` before the `owner` argument;
destroy does not run the program, so the pre-flight's `owner_problems` cannot refuse it, and the
provider deletes what the state names in another owner's repository of the same name. Fails on
ghprovider 8f08c35 (suggested fix: also pass `organization=<owner>` to github.Provider: upstream
reads the `organization` argument first, and an explicit argument beats its env default)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localcloud import github_api, platform, services
from localcloud.engine import Workspace, find_cli
from localcloud.state import open_cloud

from .test_lifecycle import _seed_minimal  # pyright: ignore[reportPrivateUsage]

pytestmark = pytest.mark.localcloud
CLI = find_cli()


def test_github_owner_at_destroy_spares_another_owners_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert CLI is not None
    space = Workspace(tmp_path, "recsys-team", CLI, cloud_dir=tmp_path / "cloud")
    cloud = open_cloud(space.cloud_dir)
    try:
        space.ensure_repository(seed=False)
        _seed_minimal(cloud, space)
        space.init()
        space.pulumi("up", "--yes", "--skip-preview", "--stack", space.stack)
        ours = platform.ci_environment(cloud, "github", "acme-ml/recsys")
        name = next(n for n in ours if n.startswith("GCP_"))
        platform.create_repository(cloud, "github", "other-team/recsys", ["main"], {"README.md": b"theirs\n"})
        body = json.dumps({"name": name, "value": "theirs"}).encode()
        status, _, _ = github_api.Api(cloud).handle(
            "POST", "/repos/other-team/recsys/actions/variables", {"authorization": "Bearer t"}, body
        )
        assert status == 201
        monkeypatch.setenv("GITHUB_OWNER", "other-team")
        space.pulumi("destroy", "--yes", "--skip-preview", "--stack", space.stack, check=False)
        assert platform.ci_environment(cloud, "github", "other-team/recsys").get(name) == "theirs"
        assert name not in platform.ci_environment(cloud, "github", "acme-ml/recsys")
    finally:
        services.stop(space.cloud_dir)
