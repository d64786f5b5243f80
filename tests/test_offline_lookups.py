"""The offline runtime answers a look-up only as the real provider would: through the program's
explicit provider of the look-up's package (never a default provider, which reads the stack's own
`gcp:`/`github:` keys), with arguments that provider accepts (mlops_ci/offline/answers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_ci.offline.runtime import LookupRefusedError, evaluate
from tests.helpers import config_for

GITHUB_PROVIDER = 'github.Provider("github-provider", owner="acme-ml", token="t")'
GCP_PROVIDER = 'gcp.Provider("gcp-provider", project="acme-ml-test")'


def refused(tmp_path: Path, lines: str) -> list[str]:
    """The refusals of a program made of `lines` (after the SDK imports)."""
    program = tmp_path / "__main__.py"
    imports = "import pulumi\nimport pulumi_gcp as gcp\nimport pulumi_github as github\nimport pulumi_gitlab as gitlab\n"
    program.write_text(f"{imports}{lines}\n")
    try:
        evaluate("lookups", config_for("github"), program=program)
    except LookupRefusedError as error:
        return error.refused
    return []


def test_a_lookup_through_the_default_provider_is_refused(tmp_path: Path) -> None:
    [refusal] = refused(tmp_path, 'gcp.storage.get_buckets(project="acme-ml-test", prefix="x")')
    assert refusal.startswith("gcp:storage/getBuckets:getBuckets: not through the program's explicit gcp provider")


def test_a_lookup_through_another_packages_provider_is_refused(tmp_path: Path) -> None:
    [refusal] = refused(
        tmp_path,
        f"p = {GITHUB_PROVIDER}\n"
        'gcp.storage.get_buckets(project="acme-ml-test", prefix="x", opts=pulumi.InvokeOptions(provider=p))',
    )
    assert "not through the program's explicit gcp provider" in refusal


@pytest.mark.parametrize(
    ("call", "rule"),
    [
        ('gcp.storage.get_buckets(project="other", prefix="x", opts=on)', "project 'other' is not the provider's project"),
        (
            'gcp.projects.get_organization_policy(project="other", constraint="c", opts=on)',
            "project 'other' is not the provider's project",
        ),
        ('gcp.projects.get_organization_policy(project="acme-ml-test", constraint="", opts=on)', "no constraint named"),
    ],
)
def test_a_google_lookup_names_the_providers_project(tmp_path: Path, call: str, rule: str) -> None:
    [refusal] = refused(tmp_path, f"on = pulumi.InvokeOptions(provider={GCP_PROVIDER})\n{call}")
    assert rule in refusal


@pytest.mark.parametrize(
    ("call", "rule"),
    [
        ('github.get_branch(repository="acme-ml/churn", branch="main", opts=on)', "is not a bare repository name"),
        ('github.get_branch_protection_rules(repository="acme-ml/churn", opts=on)', "is not a bare repository name"),
        ('github.get_repository_file(repository="", branch="main", file="f", opts=on)', "is not a bare repository name"),
        ('github.get_repository(full_name="other/churn", opts=on)', "is not a repository of the provider's owner"),
        ('github.get_repository(full_name="acme-ml", opts=on)', "is not a repository of the provider's owner"),
        ('github.get_user(username="other", opts=on)', "is not the provider's owner"),
    ],
)
def test_a_github_lookup_is_refused_where_the_provider_would_refuse_it(tmp_path: Path, call: str, rule: str) -> None:
    [refusal] = refused(tmp_path, f"on = pulumi.InvokeOptions(provider={GITHUB_PROVIDER})\n{call}")
    assert rule in refusal


def test_lookups_the_real_provider_accepts_pass(tmp_path: Path) -> None:
    assert not refused(
        tmp_path,
        f"on = pulumi.InvokeOptions(provider={GITHUB_PROVIDER})\n"
        'github.get_branch(repository="churn", branch="main", opts=on)\n'
        'github.get_repository(full_name="acme-ml/churn", opts=on)\n'
        'github.get_user(username="acme-ml", opts=on)\n'
        f"g = pulumi.InvokeOptions(provider={GCP_PROVIDER})\n"
        'gcp.storage.get_buckets(project="acme-ml-test", prefix="x", opts=g)',
    )


@pytest.mark.parametrize(
    "call",
    [
        'gitlab.get_branch(project="churn", name="main", opts=on)',
        'gitlab.get_project(path_with_namespace="churn", opts=on)',
        'gitlab.get_repository_file(project="/churn/", file_path="f", ref="main", opts=on)',
    ],
)
def test_a_gitlab_lookup_names_the_projects_full_path(tmp_path: Path, call: str) -> None:
    [refusal] = refused(tmp_path, f'on = pulumi.InvokeOptions(provider=gitlab.Provider("gitlab-provider", token="t"))\n{call}')
    assert "is not a project's full path (group/name)" in refusal
