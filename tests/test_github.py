"""GitHub delivery: the key secret where only the branch's runs can read it, when asked."""

from __future__ import annotations

import pulumi_github as github
import yaml
from pulumi.runtime import rpc

from mlops_ci.offline.runtime import type_token
from tests.helpers import GITHUB_FILE, GITHUB_SECRET, committed_file, run


def test_github_environment_holds_the_key_secret_for_the_branch_only() -> None:
    evaluation = run("github", githubEnvironment="dvc-ci", branch="main")
    environment = evaluation.one(type_token(github.RepositoryEnvironment))
    assert environment.plain("environment") == "dvc-ci"
    assert environment.plain("deploymentBranchPolicy") == {"protectedBranches": False, "customBranchPolicies": True}
    policy = evaluation.one(type_token(github.RepositoryEnvironmentDeploymentPolicy))
    assert (policy.plain("environment"), policy.plain("branchPattern")) == ("dvc-ci", "main")
    secret = evaluation.one(type_token(github.ActionsEnvironmentSecret))
    assert secret.plain("environment") == "dvc-ci"
    assert rpc.is_rpc_secret(secret.inputs["value"])
    assert evaluation.find(GITHUB_SECRET) == []
    ci_file = committed_file(evaluation, GITHUB_FILE)
    assert {secret.urn, policy.urn} <= set(ci_file.dependencies)
    assert yaml.safe_load(ci_file.plain("content"))["jobs"]["reproduce"]["environment"] == "dvc-ci"


def test_without_an_environment_the_key_is_a_repository_secret_and_the_job_names_none() -> None:
    evaluation = run("github")
    assert evaluation.find(type_token(github.ActionsEnvironmentSecret)) == []
    assert "environment" not in yaml.safe_load(committed_file(evaluation, GITHUB_FILE).plain("content"))["jobs"]["reproduce"]
