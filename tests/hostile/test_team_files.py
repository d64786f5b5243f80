"""Items 4 and 6, what the refusals leave: a custom GitLab CI file says which project setting it
needs (the platform's default and GitHub's workflows need none); the longest keyRotation still
makes a valid report token."""

from __future__ import annotations

import pytest

from tests.helpers import run


def test_a_custom_gitlab_ci_file_names_the_project_setting_first() -> None:
    first = run("gitlab", ciFile="ci/mlops.yml").exports["nextSteps"].splitlines()[0]
    assert first == (
        "# First: GitLab runs ci/mlops.yml only once the project's CI/CD configuration file"
        " (Settings > CI/CD > General pipelines) is ci/mlops.yml."
    )


@pytest.mark.parametrize(("platform", "ci_file"), [("gitlab", ".gitlab-ci.yml"), ("github", ".github/workflows/repro.yml")])
def test_a_ci_file_the_platform_runs_as_it_is_needs_no_setting(platform: str, ci_file: str) -> None:
    assert "First:" not in run(platform, ciFile=ci_file).exports["nextSteps"]


def test_the_longest_key_rotation_keeps_the_report_token_valid() -> None:
    # GitLab takes a project access token's description up to 255 characters; keyRotation is part of it.
    token = run("gitlab", report="true", keyRotation="r" * 64).one("gitlab:index/projectAccessToken:ProjectAccessToken")
    assert len(token.plain("description")) <= 255
