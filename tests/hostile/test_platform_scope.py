"""Where `pulumi up` acts with the platform's token and credentials: with `platform.repositories` and
`platform.projects` in Pulumi.yaml, only a repository or Google Cloud project it lists (`{stack}` the
stack's label), never another team's or the platform's own (whose check-stacks workflow a stack's CI
file would replace, whose project holds the state). The helpers' stack is team-a."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mlops_ci.offline import check, plan
from mlops_ci.settings import validate
from mlops_ci.settings.loader import ConfigError
from mlops_ci.settings.schema import SCHEMA
from tests.helpers import CountingMocks, run

HEAD = "config:\n  gcp:project: acme-ml-test\n  mlops-ci:platform: github\n  mlops-ci:repository: {repository}\n"


@pytest.fixture
def allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """The platform lists each team's repositories: acme-ml/<stack>-*."""
    monkeypatch.setattr(validate, "SCHEMA", dataclasses.replace(SCHEMA, repositories=("acme-ml/{stack}-*",)))


@pytest.mark.usefixtures("allow_list")
@pytest.mark.parametrize(
    "repository", ["acme-ml/nlp-team-experiments", "acme-platform/mlops-ci", "acme-ml/team-a", "evil/team-a-x"]
)
def test_a_repository_the_platform_did_not_allow_is_refused_before_any_resource(repository: str) -> None:
    mocks = CountingMocks()
    with pytest.raises(ConfigError) as raised:
        run("github", mocks=mocks, repository=repository)
    assert raised.value.problems == [
        f"mlops-ci:repository = {repository!r}: not a repository the platform lets this stack commit to (Pulumi.yaml"
        " platform.repositories: acme-ml/{stack}-*, for this stack acme-ml/team-a-*); ask whoever runs `pulumi up` to add it"
    ]
    assert mocks.created == []


@pytest.mark.usefixtures("allow_list")
@pytest.mark.parametrize("repository", ["acme-ml/team-a-churn", "ACME-ML/Team-A-Churn"])
def test_an_allowed_repository_is_its_own_whatever_the_case(repository: str) -> None:
    assert run("github", repository=repository).find("github:index/repositoryFile:RepositoryFile")


def test_without_a_list_any_repository_the_token_reaches() -> None:
    assert SCHEMA.repositories == ()
    assert run("github", repository="acme-ml/nlp-team-experiments").find("github:index/repositoryFile:RepositoryFile")


@pytest.mark.usefixtures("allow_list")
def test_make_plan_and_make_check_refuse_another_teams_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Pulumi.team-a.yaml").write_text(HEAD.format(repository="acme-ml/nlp-team-experiments"))
    refused = "mlops-ci:repository = 'acme-ml/nlp-team-experiments': not a repository the platform lets this stack commit to"
    assert plan.main(["--stacks", str(tmp_path), "--out", str(tmp_path / "out"), "team-a"]) == 2
    assert refused in capsys.readouterr().err
    assert check.main(["--jobs", "1", "--stacks", str(tmp_path)]) == 1
    assert f"FAIL  team-a  [config]  Pulumi.team-a.yaml: {refused}" in capsys.readouterr().out


@pytest.mark.parametrize("project", ["acme-platform", "acme-ml-nlp", "acme-ml-team-ab"])
def test_a_project_the_platform_did_not_allow_is_refused_before_any_resource(
    project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validate, "SCHEMA", dataclasses.replace(SCHEMA, projects=("acme-ml-{stack}", "acme-ml-shared")))
    mocks = CountingMocks()
    with pytest.raises(ConfigError) as raised:
        run("github", mocks=mocks, gcp__project=project)
    assert raised.value.problems == [
        f"gcp:project = {project!r}: not a project the platform lets this stack use (Pulumi.yaml platform.projects:"
        " acme-ml-{stack}, acme-ml-shared, for this stack acme-ml-team-a, acme-ml-shared); ask whoever runs `pulumi up` to add it"
    ]
    assert mocks.created == []
    assert run("github", gcp__project="acme-ml-team-a").one("gcp:storage/bucket:Bucket")
