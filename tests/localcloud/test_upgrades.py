"""Under the real engine: a stack brought up by an earlier program keeps every resource when
today's program runs `pulumi up` (a version bump must never replace a team's bucket, identity or CI file).

The explicit Google provider: a stack brought up by the program before the Google provider became
explicit keeps every resource when the program with the explicit provider runs `pulumi up`.

The engine (pulumi/pulumi pkg/resource/deploy/step_generator.go, `providerChanged`, v3.274.1) asks
the *new* provider's DiffConfig whether the old (default) provider's config against the new one
needs a replacement; only then are the provider's resources replaced. The bridged pulumi-gcp
answers replace only for a config field marked ForcesProviderReplace
(pulumi-terraform-bridge pkg/tfbridge/provider.go, `configDiffer.DiffConfig`); the local cloud's
gcp plugin answers from the changed keys, never replace (localcloud/server.py `DiffConfig`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcloud import state
from localcloud.engine import Workspace, find_cli
from localcloud.state import LocalCloud

from .conftest import local_cloud, operations
from .test_lifecycle import _seed_minimal  # pyright: ignore[reportPrivateUsage] - the same seeding as the lifecycle

pytestmark = pytest.mark.localcloud

REPOSITORY = Path(__file__).resolve().parents[2]
# The last program whose Google resources used the default provider (the commit before the switch).
BEFORE_EXPLICIT_PROVIDER = "0cd395e4870fda1478e82b507cea70a58e92f763"
# The last program whose resources were the stack's own children, before the `TeamCi` component.
BEFORE_TEAM_COMPONENT = "c74658d071f9a1c69359495dc7493aaf87d259a4"
CLI = find_cli()
if CLI is None:
    pytest.skip("no Pulumi CLI (set PULUMI_CLI or build ~/.cache/mlops-ci/pulumi-3.274.1)", allow_module_level=True)


def program_at(commit: str, project: Path) -> None:
    """The program's files as `commit` had them, in place of the workspace's: its Pulumi.yaml too,
    whose config declarations are the keys and defaults the CLI handed that program."""
    shutil.rmtree(project / "mlops_ci")
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", commit, "__main__.py", "mlops_ci", "Pulumi.yaml"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as files:
        files.extractall(project, filter="data")


def todays_program(project: Path) -> None:
    shutil.rmtree(project / "mlops_ci")
    shutil.copytree(REPOSITORY / "mlops_ci", project / "mlops_ci", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPOSITORY / "__main__.py", project / "__main__.py")
    shutil.copy2(REPOSITORY / "Pulumi.yaml", project / "Pulumi.yaml")


def declared_keys(project: Path) -> set[str]:
    return {f"mlops-ci:{name}" for name in yaml.safe_load((project / "Pulumi.yaml").read_text())["config"]}


def without_keys_unknown_then(space: Workspace) -> dict[str, str]:
    """The stack file as a team had it for the earlier program: keys that program did not declare
    (set since, such as `keylessMode`) removed; returned to be set again for today's."""
    removed = {
        key: str(value)
        for key, value in space.config.items()
        if key.startswith("mlops-ci:") and key not in declared_keys(space.project)
    }
    for key in removed:
        space.pulumi("config", "rm", "--stack", space.stack, key)
    return removed


def resources(space: Workspace) -> list[dict[str, Any]]:
    return json.loads(space.pulumi("stack", "export", "--stack", space.stack).stdout)["deployment"]["resources"]


CHANGES = ("replace", "create-replacement", "delete-replaced", "delete", "create")


@dataclasses.dataclass
class Upgrade:
    """A stack brought up by an earlier program, then `pulumi up` with today's."""

    space: Workspace
    before: list[dict[str, Any]]
    """The state's resources after the earlier program's up."""
    steps: list[dict[str, Any]]
    """Today's program's preview steps."""
    touched: list[tuple[str, str]]
    """What today's up created or deleted in the cloud (op, type): the plugins' journal and the
    GitHub API's writes."""


@contextlib.contextmanager
def deployed_by(
    tmp_path: Path, stack: str, earlier: str, prepare: Callable[[Workspace], object] = lambda space: None
) -> Generator[tuple[Workspace, LocalCloud, dict[str, str]], None, None]:
    """A workspace of `stack` brought up by the program at commit `earlier`, its stack file as a team
    had it then (`prepare` edits it; keys declared since are set again after, for today's program:
    the third value); the local cloud's services stopped at the end."""
    assert CLI is not None
    space = Workspace(tmp_path, stack, CLI, cloud_dir=tmp_path / "cloud")
    with local_cloud(space.cloud_dir) as cloud:
        space.ensure_repository(seed=False)
        _seed_minimal(cloud, space)
        space.init()
        prepare(space)
        program_at(earlier, space.project)
        later_keys = without_keys_unknown_then(space)
        space.up()
        yield space, cloud, later_keys


def upgraded(tmp_path: Path, stack: str, earlier: str, check: Callable[[Upgrade], None]) -> None:
    """Up with the program at commit `earlier`, then preview and up with today's; `check` it; destroy."""
    with deployed_by(tmp_path, stack, earlier) as (space, cloud, later_keys):
        before = resources(space)
        todays_program(space.project)
        for key, value in later_keys.items():
            space.pulumi("config", "set", "--stack", space.stack, key, value)
        since = state.now()
        preview = space.pulumi("preview", "--stack", space.stack, "--json")
        space.up()
        touched = [(op, kind) for op, kind in operations(cloud, since) if op.split()[0] in ("create", "delete")]
        check(Upgrade(space, before, json.loads(preview.stdout)["steps"], touched))
        space.destroy()


def by_name(state: list[dict[str, Any]], google_only: bool = False) -> dict[tuple[str, str], dict[str, Any]]:
    """Custom resources by type and name (a URN's last part: URNs changed since, by alias)."""
    return {
        (r["type"], r["urn"].rsplit("::", 1)[1]): r
        for r in state
        if r.get("custom") and "id" in r and (r["type"].startswith("gcp:") or not google_only)
    }


def test_the_explicit_google_provider_replaces_nothing_of_an_existing_stack(tmp_path: Path) -> None:
    def check(upgrade: Upgrade) -> None:
        before, after = by_name(upgrade.before, google_only=True), by_name(resources(upgrade.space), google_only=True)
        assert {r["provider"].split("::")[3] for r in before.values()} == {"default_10_2_0"}
        assert not [s for s in upgrade.steps if s["op"] in CHANGES[:4]]
        assert {name: r["id"] for name, r in after.items()} == {name: r["id"] for name, r in before.items()}
        assert {r["provider"].split("::")[3] for r in after.values()} == {"gcp-provider"}
        assert upgrade.touched == [("create", "RepositoryFile")]  # only the job script, new since (issue 19)

    upgraded(tmp_path, "vision-team", BEFORE_EXPLICIT_PROVIDER, check)


@pytest.mark.parametrize("stack", ["vision-team", "speech-team"])
def test_the_team_component_adopts_the_stacks_resources_by_alias(tmp_path: Path, stack: str) -> None:
    # GitHub with a key, GitLab keyless: every kind of child the component has. Since that program,
    # the stack also commits its job script (issue 19): the one resource the upgrade may create.
    def check(upgrade: Upgrade) -> None:
        assert not [r for r in upgrade.before if "TeamCi" in r["urn"]]
        platform_name = "github" if stack == "vision-team" else "gitlab"
        delivery = f"mlops-ci:{platform_name}:{platform_name.capitalize()}Delivery"
        file_type = f"{platform_name}:index/repositoryFile:RepositoryFile"
        team = f"urn:pulumi:{stack}::mlops-ci::mlops-ci:index:TeamCi"
        assert [(s["op"], s["urn"]) for s in upgrade.steps if s["op"] in CHANGES] == [
            ("create", f"{team}::{stack}"),
            ("create", f"{team}${delivery}${file_type}::{platform_name}-job-script"),
        ]
        after = resources(upgrade.space)
        kept = {k: r["id"] for k, r in by_name(after).items() if k[1] != f"{platform_name}-job-script"}
        assert kept == {k: r["id"] for k, r in by_name(upgrade.before).items()}
        moved = [r["urn"] for r in after if r.get("custom") and not r["type"].startswith("pulumi:providers:")]
        assert moved
        assert all("mlops-ci:index:TeamCi$" in urn for urn in moved)
        assert upgrade.touched == [("create", "RepositoryFile")]

    upgraded(tmp_path, stack, BEFORE_TEAM_COMPONENT, check)


# The last program whose `mlops-ci:auth` defaulted to key, before keyless became the default (issue 21).
BEFORE_KEYLESS_DEFAULT = "23e54d6d26509bc7529c8481f8c786fab656f928"


@pytest.mark.parametrize(
    ("stack", "unset", "keep"),
    [
        # nlp-team without mlops-ci:auth, as its file was: a key, the default then.
        ("nlp-team", "mlops-ci:auth and mlops-ci:keylessMode", ("mlops-ci:auth", "key")),
        # recsys-team, keyless: through its service account, the only keyless mode then.
        ("recsys-team", "mlops-ci:keylessMode", ("mlops-ci:keylessMode", "impersonation")),
    ],
)
def test_a_stack_deployed_with_the_old_default_credential_stops_until_its_file_says_which(
    tmp_path: Path, stack: str, unset: str, keep: tuple[str, str]
) -> None:
    # Today's defaults are keyless, direct: the next up stops, naming the keys and the choices, and
    # changes nothing; once the stack file keeps the credential, up goes on and keeps every resource.
    def as_then(space: Workspace) -> object:
        return space.pulumi("config", "rm", "--stack", stack, "mlops-ci:auth") if stack == "nlp-team" else None

    with deployed_by(tmp_path, stack, BEFORE_KEYLESS_DEFAULT, as_then) as (space, cloud, _):
        before = by_name(resources(space))
        assert [name for kind, name in before if kind == "gcp:serviceaccount/account:Account"] == ["ci-identity-account"]
        todays_program(space.project)
        since = state.now()
        for operation in (("preview",), ("up", "--yes", "--skip-preview")):
            result = space.pulumi(*operation, "--stack", stack, check=False)
            shown = result.stdout + result.stderr
            assert result.returncode != 0
            assert f"{unset}: not set, and this release's default (keyless, direct: no service account)" in shown, shown
            assert f"keep it with `{keep[0]}: {keep[1]}`" in shown
            assert "Traceback" not in shown
        assert operations(cloud, since) == [], "the refused up changed nothing"
        assert {k: r["id"] for k, r in by_name(resources(space)).items()} == {k: r["id"] for k, r in before.items()}
        space.pulumi("config", "set", "--stack", stack, *keep)
        space.up()
        assert {k: r["id"] for k, r in by_name(resources(space)).items()} == {k: r["id"] for k, r in before.items()}
        space.destroy()
