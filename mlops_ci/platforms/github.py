"""GitHub Actions: the rules, the provider, the repository's OIDC trust, and delivery of the
credential and the workflow."""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypedDict

import pulumi
from pulumi.runtime import config as runtime_config

from mlops_ci import direct_calls
from mlops_ci.components.workload_identity import OidcTrust
from mlops_ci.platforms.base import (
    DeliveryArgs,
    commit_job_script_then_ci_file,
    job_script_problems,
    looked_up,
    missing_files_problems,
    type_token,
)
from mlops_ci.settings.rules import VARIABLE_NAME, reserved_variable_problem

if TYPE_CHECKING:
    import pulumi_github as github

    from mlops_ci.direct_calls import GithubAccess
    from mlops_ci.settings.loader import Settings

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
_REPOSITORY = re.compile(r"[A-Za-z0-9._-]{1,100}")
_WORKFLOW_FILE = re.compile(r"\.github/workflows/[A-Za-z0-9_.-]+\.ya?ml")


def repository_problem(value: str) -> str | None:
    owner, _, name = value.partition("/")
    if not _OWNER.fullmatch(owner) or not _REPOSITORY.fullmatch(name) or name in (".", "..") or name.endswith(".git"):
        return (
            "a GitHub repository is owner/name: owner 1-39 letters, digits or single inner '-';"
            " name 1-100 letters, digits, '.', '_', '-', not ending in .git"
        )
    return None


def secret_name_problem(value: str) -> str | None:
    if not VARIABLE_NAME.fullmatch(value) or value[0].isdigit() or value.upper().startswith("GITHUB_"):
        return "GitHub secret names use letters, digits and '_', do not start with a digit or with GITHUB_"
    return reserved_variable_problem(value)


def workflow_file_problem(value: str) -> str | None:
    if not _WORKFLOW_FILE.fullmatch(value):
        return "a GitHub workflow lives directly in .github/workflows/ and ends in .yml or .yaml"
    return None


def minified_key_json(key_base64: str) -> str:
    """The key file JSON on one line: GitHub redacts secrets line by line."""
    return json.dumps(json.loads(base64.b64decode(key_base64)), separators=(",", ":"))


OWNER_VARIABLES = ("GITHUB_OWNER", "GITHUB_ORGANIZATION")
"""Read by the provider before its `owner` argument (upstream v6.13.0 github/provider.go `configureProvider`:
the `organization` argument, whose default is GITHUB_ORGANIZATION, then GITHUB_OWNER, then `owner`): set, they
redirect every resource. `GitHub.provider` passes `organization` too, so at `pulumi destroy` (no program, no
pre-flight) the stack's owner still wins."""
APP_VARIABLES = ("GITHUB_APP_ID", "GITHUB_APP_INSTALLATION_ID", "GITHUB_APP_PEM_FILE")
"""All three set, the provider authenticates as that GitHub App instead of with the stack's token (upstream
v6.13.0 github/provider.go `getAppAuth`, `validateAppAuth`; `token` is read only `if config.AppID == nil`)."""
_GHEC_API_HOST = re.compile(r"api\.[a-zA-Z0-9-]+\.ghe\.com")


def rest_url(base_url: str | None) -> str:
    """Where the provider calls GitHub's REST API for `github:baseUrl` (upstream v6.13.0 github/config.go
    `getBaseURL` and `NewRESTClient`): github.com and api.github.com: https://api.github.com/; a GitHub
    Enterprise Cloud host `<x>.ghe.com`: `api.<x>.ghe.com/`; any other host is a GitHub Enterprise
    Server: its path without `api/v3/`, then `api/v3/`."""
    url = urllib.parse.urlsplit(base_url or GitHub.default_base_url)
    host = url.netloc
    if host == "github.com":
        host = "api.github.com"
    elif host.endswith(".ghe.com") and not _GHEC_API_HOST.fullmatch(host):
        host = f"api.{host}"
    if host == "api.github.com" or host.endswith(".ghe.com"):
        return f"{url.scheme}://{host}/"
    path = url.path.rstrip("/") + "/"
    return f"{url.scheme}://{host}{path.removesuffix('api/v3/')}api/v3/"


def owner_problems(settings: Settings) -> list[str]:
    """What in the environment makes the provider act as someone else, or on another owner."""
    owner = settings.repository.split("/")[0]
    problems = [
        f"{variable} = {os.environ[variable]!r} in the environment: the GitHub provider manages that owner's repositories"
        f" instead of {owner!r} (it reads the variable before the owner the stack gives it); unset {variable}"
        for variable in OWNER_VARIABLES
        if os.environ.get(variable) and os.environ[variable] != owner
    ]
    if all(os.environ.get(variable) for variable in APP_VARIABLES):
        problems.append(
            f"{', '.join(APP_VARIABLES)} in the environment: the GitHub provider authenticates as that GitHub App"
            f" (GITHUB_APP_ID = {os.environ['GITHUB_APP_ID']!r}) instead of with github:token; unset them"
        )
    return problems


def access_problems(settings: Settings) -> list[str]:
    """The token's permission to commit a workflow, and the rulesets on the branch: what GitHub
    would refuse only at the CI file's commit, after the secret exists."""
    # No provider data source reads them (pulumi-github 6.15.0): requests of the program's own.
    token = runtime_config.get_config("github:token") or os.environ.get("GITHUB_TOKEN", "")
    url = rest_url(settings.platform_url)
    access = direct_calls.current().github_access(url, token, settings.repository, settings.branch)
    if access is None:
        pulumi.log.warn(
            f"github: {url} cannot be reached: the token's permission to commit {settings.ci_file} and the rulesets on"
            f" {settings.branch!r} are not checked before the resources"
        )
        return []
    for refusal in access.refusals:
        pulumi.log.warn(f"github:token: {refusal}")
    return _workflow_scope_problems(access, settings) + _ruleset_problems(access, settings)


def _workflow_scope_problems(access: GithubAccess, settings: Settings) -> list[str]:
    """A classic token without the `workflow` scope; a warning for a fine-grained one (GitHub does not tell)."""
    if access.scopes is not None and "workflow" not in access.scopes:
        return [
            f"github:token: a classic token without the `workflow` scope (it has {', '.join(access.scopes) or 'none'}):"
            f" GitHub refuses the commit of {settings.ci_file}; add the `workflow` scope, or use a fine-grained token"
            " with Contents and Workflows: write"
        ]
    if access.scopes is None:
        pulumi.log.warn(
            f"github:token: GitHub does not tell what a fine-grained token may do: the commit of {settings.ci_file} needs"
            f" Workflows: write (and Contents: write) on {settings.repository}; without it GitHub answers that commit"
            " with 404 Not Found, after the secret exists"
        )
    return []


def _ruleset_problems(access: GithubAccess, settings: Settings) -> list[str]:
    """The rulesets on the branch that forbid the token's direct commit; a warning for those it cannot tell."""
    problems: list[str] = []
    if access.blocking_rulesets:
        problems.append(
            f"mlops-ci:branch = {settings.branch!r}: the rulesets {', '.join(access.blocking_rulesets)} of {settings.repository}"
            " apply to it, forbid a direct commit and the token's user may not bypass them (GitHub: GH013 Repository rule"
            " violations): choose another branch, or add the token's user to the rulesets' bypass list"
        )
    if access.unsure_rulesets:
        pulumi.log.warn(
            f"mlops-ci:branch = {settings.branch!r}: the rulesets {', '.join(access.unsure_rulesets)} of {settings.repository}"
            " forbid a direct commit and this token cannot read whether its user may bypass them: the commit of"
            f" {settings.ci_file} fails unless it may"
        )
    return problems


class GithubDeliveryArgs(TypedDict):
    provider: pulumi.ProviderResource
    """Provider of the repository's owner (`GitHub.provider`)."""
    repository: str
    """`owner/name`; resources get the bare name, the provider has the owner."""
    branch: str
    """Existing branch the workflow is committed to."""
    secret_name: str
    """Actions secret holding the key (auth mode `key`)."""
    environment: str
    """Deployment environment that holds the secret, open to `branch` only; empty: a repository secret."""
    secret_value: pulumi.Input[str] | None
    """The key file JSON on one line, or None when there is no key (keyless mode)."""
    variables: Mapping[str, pulumi.Input[str]]
    """Non-secret Actions variables the workflow reads (keyless mode)."""
    ci_file: str
    """Workflow path, under `.github/workflows/`."""
    ci_content: str
    """Workflow content."""
    job_script_path: str
    """Where the job script goes: one file per stack (`job_script_path`)."""
    job_script: str
    """The job script the workflow calls."""
    after: Sequence[pulumi.Resource]
    """Resources the first workflow run needs (the bucket grants, the federation binding)."""


class GithubDelivery(pulumi.ComponentResource):
    """The workflow is committed last, so the run it triggers already has its credential."""

    def __init__(self, name: str, args: GithubDeliveryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-ci:github:GithubDelivery", name, {}, opts)
        repository = args["repository"].split("/")[1]
        on_github = pulumi.ResourceOptions(parent=self, provider=args["provider"])
        self.secret: github.ActionsSecret | github.ActionsEnvironmentSecret | None = None
        gates: list[pulumi.Resource] = []
        if args["secret_value"] is not None and args["environment"]:
            self.secret, gates = self._environment_secret(name, args, repository, on_github)
        elif args["secret_value"] is not None:
            self.secret = self._repository_secret(name, args, repository, on_github)
        self.variables = self._variables(name, args, repository, on_github)
        credentials: list[pulumi.Resource] = [*([self.secret] if self.secret else []), *gates, *self.variables]
        self.job_script, self.ci_file = self._commit_files(name, args, repository, on_github, [*credentials, *args["after"]])
        self.register_outputs({"ci_file": args["ci_file"]})

    @staticmethod
    def _environment_secret(
        name: str, args: GithubDeliveryArgs, repository: str, on_github: pulumi.ResourceOptions
    ) -> tuple[github.ActionsEnvironmentSecret, list[pulumi.Resource]]:
        """The deployment environment open to the branch only (its policy is the gate a run waits
        for), and the key's secret in it."""
        import pulumi_github as github

        environment = github.RepositoryEnvironment(
            f"{name}-environment",
            repository=repository,
            environment=args["environment"],
            deployment_branch_policy=github.RepositoryEnvironmentDeploymentBranchPolicyArgs(
                protected_branches=False, custom_branch_policies=True
            ),
            opts=on_github,
        )
        gate = github.RepositoryEnvironmentDeploymentPolicy(
            f"{name}-environment-branch",
            repository=repository,
            environment=environment.environment,
            branch_pattern=args["branch"],
            opts=on_github,
        )
        secret = github.ActionsEnvironmentSecret(
            f"{name}-secret",
            repository=repository,
            environment=environment.environment,
            secret_name=args["secret_name"],
            value=pulumi.Output.secret(args["secret_value"]),
            opts=on_github,
        )
        return secret, [gate]

    @staticmethod
    def _repository_secret(
        name: str, args: GithubDeliveryArgs, repository: str, on_github: pulumi.ResourceOptions
    ) -> github.ActionsSecret:
        """The key's repository secret (no `githubEnvironment`)."""
        import pulumi_github as github

        return github.ActionsSecret(
            f"{name}-secret",
            repository=repository,
            secret_name=args["secret_name"],
            value=pulumi.Output.secret(args["secret_value"]),
            opts=on_github,
        )

    @staticmethod
    def _variables(
        name: str, args: GithubDeliveryArgs, repository: str, on_github: pulumi.ResourceOptions
    ) -> list[github.ActionsVariable]:
        """The keyless mode's settings, as Actions variables."""
        import pulumi_github as github

        return [
            github.ActionsVariable(
                f"{name}-variable-{variable.lower().replace('_', '-')}",
                repository=repository,
                variable_name=variable,
                value=value,
                opts=on_github,
            )
            for variable, value in args["variables"].items()
        ]

    @staticmethod
    def _commit_files(
        name: str,
        args: GithubDeliveryArgs,
        repository: str,
        on_github: pulumi.ResourceOptions,
        after: Sequence[pulumi.Resource],
    ) -> tuple[pulumi.Resource, pulumi.Resource]:
        """The job script's commit, then the workflow's, each after `after` (the credentials, then `args["after"]`)."""
        import pulumi_github as github

        # The provider commits a file's deletion on destroy with its commit_message too (upstream
        # resourceGithubRepositoryFileDelete has no message of its own): base's messages read right for both.
        def commit(suffix: str, path: str, content: str, message: str, after: Sequence[pulumi.Resource]) -> pulumi.Resource:
            return github.RepositoryFile(
                f"{name}-{suffix}",
                repository=repository,
                branch=args["branch"],
                file=path,
                content=content,
                commit_message=message,
                overwrite_on_create=True,
                opts=pulumi.ResourceOptions.merge(on_github, pulumi.ResourceOptions(depends_on=list(after))),
            )

        return commit_job_script_then_ci_file(
            commit, (args["ci_file"], args["ci_content"]), (args["job_script_path"], args["job_script"]), after
        )


class GitHub:
    """GitHub Actions on github.com, or GitHub Enterprise Server with `github:baseUrl` (key mode)."""

    name = "github"
    default_base_url = "https://api.github.com/"
    default_ci_file = ".github/workflows/mlops.yaml"
    template = "github-workflow.yaml.j2"
    ci_schema = "github-workflows"
    own_keys: tuple[str, ...] = ("githubEnvironment",)
    # The report job posts with the workflow's own GITHUB_TOKEN: the stack creates no token.
    report_token_keys: tuple[str, ...] = ()

    @property
    def ci_file_resource(self) -> tuple[str, str]:
        import pulumi_github as github

        return type_token(github.RepositoryFile), "file"

    def config_problems(self, repository: str, secret_name: str, ci_file: str, keyless: bool, base_url: str | None) -> list[str]:
        checks = {
            "mlops-ci:repository": (repository, repository_problem),
            "mlops-ci:secretName": (secret_name, secret_name_problem),
            "mlops-ci:ciFile": (ci_file, workflow_file_problem),
        }
        problems = [f"{key} = {value!a}: {broken}" for key, (value, rule) in checks.items() if (broken := rule(value))]
        if keyless and base_url and base_url.rstrip("/") != self.default_base_url.rstrip("/"):
            problems.append(
                "github:baseUrl: workload-identity trusts github.com's OIDC issuer only;"
                " use auth key with GitHub Enterprise Server"
            )
        return problems

    def provider(
        self, settings: Settings, name: str = "github-provider", opts: pulumi.ResourceOptions | None = None
    ) -> pulumi.ProviderResource:
        import pulumi_github as github

        return github.Provider(
            name,
            owner=settings.repository.split("/")[0],
            # Also `organization` (deprecated, hence a warning): the provider reads it before GITHUB_OWNER, which
            # would otherwise redirect `pulumi destroy`, where no pre-flight runs (upstream v6.13.0 provider.go
            # `configureProvider`).
            organization=settings.repository.split("/")[0],
            token=pulumi.Config("github").get_secret("token"),
            base_url=settings.platform_url or self.default_base_url,
            opts=opts,
        )

    def oidc_issuer(self, base_url: str | None) -> tuple[str, str]:
        return GITHUB_ISSUER, "repository_id"

    def branch_subject(self, repository: str, branch: str) -> str:
        # docs.github.com "About security hardening with OpenID Connect", example subject claims:
        # `repo:<owner>/<repo>:ref:refs/heads/<branch>` (a job without an environment; pull requests: `:pull_request`).
        return f"repo:{repository}:ref:refs/heads/{branch}"

    def oidc_trust(self, provider: pulumi.ProviderResource, settings: Settings) -> OidcTrust:
        """Trust GitHub Actions tokens of the repository only, pinned to its numeric id and its owner's."""
        import pulumi_github as github

        lookup = pulumi.InvokeOutputOptions(provider=provider)
        owner = settings.repository.split("/")[0]
        repository_id = github.get_repository_output(full_name=settings.repository, opts=lookup).repo_id.apply(str)
        owner_id = github.get_user_output(username=owner, opts=lookup).id.apply(str)
        return OidcTrust(
            issuer_uri=self.oidc_issuer(settings.platform_url)[0],
            allowed_audiences=(),
            attribute_mapping={
                "google.subject": "assertion.sub",
                "attribute.repository": "assertion.repository",
                "attribute.repository_id": "assertion.repository_id",
                "attribute.repository_owner_id": "assertion.repository_owner_id",
                "attribute.ref": "assertion.ref",
            },
            attribute_condition=pulumi.Output.format(
                'assertion.repository_id == "{0}" && assertion.repository_owner_id == "{1}"{2}',
                repository_id,
                owner_id,
                f' && assertion.ref == "refs/heads/{settings.branch}"' if settings.trust_branch_only else "",
            ),
            principal_attribute="repository_id",
            principal_value=repository_id,
        )

    def deliver(self, name: str, args: DeliveryArgs, opts: pulumi.ResourceOptions | None = None) -> pulumi.ComponentResource:
        from mlops_ci.ci.files import job_script_path

        settings = args["settings"]
        key = args["key_base64"]
        return GithubDelivery(
            name,
            {
                "provider": args["provider"],
                "repository": settings.repository,
                "branch": settings.branch,
                "secret_name": settings.secret_name,
                "environment": settings.github_environment,
                "secret_value": pulumi.Output.secret(key.apply(minified_key_json)) if key is not None else None,
                "variables": args["variables"],
                "ci_file": settings.ci_file,
                "ci_content": args["ci_content"],
                "job_script_path": job_script_path(settings.stack),
                "job_script": args["job_script"],
                "after": args["after"],
            },
            opts,
        )

    def runs_url(self, settings: Settings) -> str:
        web = settings.platform_url.rstrip("/").removesuffix("/api/v3") if settings.platform_url else "https://github.com"
        return f"{web}/{settings.repository}/actions/workflows/{settings.ci_file.rsplit('/', 1)[1]}"

    def ci_file_setting(self, ci_file: str) -> str | None:
        return None  # GitHub runs every workflow under .github/workflows/

    def preflight_problems(self, provider: pulumi.ProviderResource, settings: Settings) -> list[str]:
        import pulumi_github as github

        from mlops_ci.ci.files import job_script_path

        on = pulumi.InvokeOptions(provider=provider)
        name = settings.repository.split("/")[1]
        if owner_problems(settings):
            return owner_problems(settings)  # every look-up would ask about another owner's repository
        # The provider answers an absent repository, branch or file with empty fields, not an error.
        repository = looked_up(lambda: github.get_repository(full_name=settings.repository, opts=on))
        if repository is None or not repository.repo_id:
            return [f"mlops-ci:repository = {settings.repository!r}: not found, or the token cannot read it"]
        branch = looked_up(lambda: github.get_branch(repository=name, branch=settings.branch, opts=on))
        if branch is None or not branch.sha:
            return [
                f"mlops-ci:branch = {settings.branch!r}: no such branch in {settings.repository} (the CI file is committed to it)"
            ]
        protection = looked_up(lambda: github.get_branch_protection_rules(repository=name, opts=on))
        for rule in protection.rules if protection else ():
            if fnmatch.fnmatchcase(settings.branch, rule.pattern):
                # Whether the token's user may bypass the rule is not visible here: a warning, not an error.
                pulumi.log.warn(
                    f"mlops-ci:branch = {settings.branch!r}: protected by the rule {rule.pattern!a}; the commit of the CI"
                    " file is refused unless the token's user may bypass it"
                )

        def first_line(path: str) -> str | None:
            """The file's first line; None: no such file."""
            found = looked_up(lambda: github.get_repository_file(repository=name, branch=settings.branch, file=path, opts=on))
            return (found.content or "").partition("\n")[0] if found is not None and found.sha else None

        script = first_line(job_script_path(settings.stack))
        return (
            access_problems(settings)
            + job_script_problems(settings, script, settings.repository)
            + missing_files_problems(settings, lambda path: first_line(path) is not None, settings.repository)
        )


GITHUB = GitHub()
