"""The CI files the tests lint and the benchmarks measure: each platform's file for a set of
settings variants (auth mode x the options that reach the file's text)."""

from __future__ import annotations

import dataclasses
from typing import Any

from mlops_ci.ci.files import render_ci_file
from mlops_ci.platforms import PLATFORMS as PLATFORM_REGISTRY
from mlops_ci.settings.loader import Settings

EXAMPLE_REPOSITORIES = {"github": "acme-ml/churn-model", "gitlab": "acme-ml/research/churn-model"}


def make_settings(base: str = "github", **fields: Any) -> Settings:
    """Settings as `load_settings` resolves `config_for(base)` for stack team-a, with `fields` replaced."""
    repository = EXAMPLE_REPOSITORIES[base]
    defaults = Settings(
        gcp_project="acme-ml-test",
        stack="team-a",
        platform=PLATFORM_REGISTRY[base],
        platform_url=None,
        repository=repository,
        branch="main",
        existing_bucket="",
        bucket_name="acme-ml-test-team-a-dvc",
        bucket_location="europe-west6",
        dvc_remote_path="dvcstore",
        service_account_id="dvc-ci-team-a",
        access="pull",
        auth="key",
        keyless_mode="direct",
        workload_identity_provider="",
        secret_name="GOOGLE_SERVICE_ACCOUNT_KEY",
        ci_file=PLATFORM_REGISTRY[base].default_ci_file,
        python_version="3.13",
        requirements_file="requirements-freeze.txt",
        key_rotation="",
        protect_bucket=True,
        protected_variable=False,
        hidden_variable=True,
        github_environment="",
        trust_branch_only=False,
        report=False,
    )
    return dataclasses.replace(defaults, **fields)


PLATFORMS = ["github", "gitlab"]
# The generated variants: auth mode x the options that reach the file's text.
VARIANTS = {
    "key": {},
    "key-options": {
        "branch": "release/2026.11",
        "python_version": "3.11",
        "requirements_file": "ci/requirements-ci.txt",
        "secret_name": "GCP_DVC_KEY",
        "stack": "Team.A",
    },
    "keyless": {"auth": "workload-identity"},  # direct: no service account
    "keyless-impersonation": {"auth": "workload-identity", "keyless_mode": "impersonation"},
    "keyless-options": {
        "auth": "workload-identity",
        "branch": "release/2026.11",
        "python_version": "3.12",
        "requirements_file": ".ci/requirements_ci.txt",
        "stack": "team.b_2",
        "gcp_project": "acme-ml-prod",
    },
    "key-environment": {"github_environment": "dvc-ci"},
    # The job pushes to the bucket on the branch.
    "push": {"access": "push", "branch": "release/2026.11"},
    "admin-keyless": {"access": "admin", "auth": "workload-identity"},
    # The report on pull and merge requests, in both auth modes.
    "report": {"report": True},
    "report-keyless-push": {"report": True, "auth": "workload-identity", "access": "push", "branch": "release/2026.11"},
    "shared-pool": {
        "auth": "workload-identity",
        "workload_identity_provider": "projects/123/locations/global/workloadIdentityPools/platform-ci/providers/gitlab",
    },
}


def rendered(platform: str, variant: str) -> str:
    return render_ci_file(make_settings(platform, **VARIANTS[variant]))
