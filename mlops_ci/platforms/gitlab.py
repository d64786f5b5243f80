"""GitLab CI: the rules, the provider, the project's OIDC trust, and delivery of the credential and
`.gitlab-ci.yml`."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

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
from mlops_ci.settings.rules import (
    REPORT_TOKEN_VARIABLE,
    VARIABLE_NAME,
    inside_git_directory,
    relative_path_problem,
    reserved_variable_problem,
)

if TYPE_CHECKING:
    import pulumi_gitlab as gitlab

    from mlops_ci.settings.loader import Settings

GITLAB_COM = "https://gitlab.com"
# How each description of what the stack creates begins: a CI variable without it is the team's.
MANAGED = "Managed by mlops-ci"
# GitLab masks a value only if it is one line of at least 8 characters from this alphabet.
_MASKABLE = re.compile(r"[A-Za-z0-9_+=/@:.~-]{8,}")
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# The report's project access token: the least that can post a merge-request note (a Guest cannot
# see merge requests of a private project; `read_api` cannot write). GitLab caps a token's life at
# a year; `pulumi up` in its last month replaces it.
REPORT_TOKEN_ROLE = "reporter"
REPORT_TOKEN_SCOPES = ("api",)
REPORT_TOKEN_DAYS = 365
REPORT_TOKEN_RENEWED_DAYS_BEFORE = 30


def project_problem(value: str) -> str | None:
    segments = value.split("/")
    if (
        len(segments) < 2
        or not all(_SEGMENT.fullmatch(s) and len(s) <= 255 for s in segments)
        or any(s.endswith((".git", ".atom")) for s in segments)
    ):
        return (
            "a GitLab project path is group[/subgroup...]/project: each part letters, digits, '_', '-', '.',"
            " not starting with '-' or '.', not ending in .git or .atom"
        )
    return None


def variable_key_problem(value: str) -> str | None:
    if not VARIABLE_NAME.fullmatch(value):
        return "GitLab variable keys have 1-255 letters, digits and '_'"
    return reserved_variable_problem(value)


def ci_file_problem(value: str) -> str | None:
    if relative_path_problem(value) or not value.endswith((".yml", ".yaml")) or inside_git_directory(value):
        return "a relative path of the repository ending in .yml or .yaml, outside .git/"
    return None


def maskable(variable: str, value: str) -> str:
    """`value` unchanged, or an error naming the `variable` (what sets it, and its key) if GitLab
    would refuse to mask it."""
    if not _MASKABLE.fullmatch(value):
        raise ValueError(
            f"{variable}: the value cannot be masked by GitLab "
            "(one line, >= 8 characters of a-z A-Z 0-9 _ + = / @ : . ~ -); the variable was not created"
        )
    return value


def gitlab_issuer(base_url: str | None) -> str:
    """The instance's OIDC issuer: its root URL (`gitlab:baseUrl` may end in /api/v4/)."""
    if not base_url:
        return GITLAB_COM
    return re.sub(r"/api/v4/?$", "", base_url.rstrip("/")).rstrip("/")


class GitlabDeliveryArgs(TypedDict):
    provider: pulumi.ProviderResource
    """Provider of the GitLab instance (`GitLab.provider`)."""
    project: str
    """Project path `group[/subgroup...]/project`."""
    branch: str
    """Existing branch the CI file is committed to."""
    variable_key: str
    """CI/CD variable holding the key (auth mode `key`)."""
    variable_value: pulumi.Input[str] | None
    """The key file, base64 (one line, maskable), or None when there is no key (keyless mode)."""
    protected: bool
    """Protected key variable: invisible to merge-request and unprotected-branch pipelines."""
    hidden: bool
    """Hidden key and report-token variables: masked, and never revealed in the UI (GitLab 17.4+,
    set at creation only)."""
    report: bool
    """Create the report's project access token and its variable (`mlops-ci:report`)."""
    report_token_name: str
    """Name of the report's token, as the project's access tokens list it."""
    rotation: str
    """`mlops-ci:keyRotation`: a new value replaces the report's token."""
    variables: Mapping[str, pulumi.Input[str]]
    """Non-secret, unmasked variables the job reads (keyless mode)."""
    ci_file: str
    """Path of the CI file."""
    ci_content: str
    """CI file content."""
    job_script_path: str
    """Where the job script goes: one file per stack (`job_script_path`)."""
    job_script: str
    """The job script the CI file calls."""
    after: Sequence[pulumi.Resource]
    """Resources the first pipeline needs (the bucket grants, the federation binding)."""


class GitlabDelivery(pulumi.ComponentResource):
    """The CI file is committed last, so the pipeline it triggers already has its credential."""

    def __init__(self, name: str, args: GitlabDeliveryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-ci:gitlab:GitlabDelivery", name, {}, opts)
        on_gitlab = pulumi.ResourceOptions(parent=self, provider=args["provider"])
        self.variable = self._key_variable(name, args, on_gitlab)
        self.variables = self._keyless_variables(name, args, on_gitlab)
        self.report_token, self.report_variable = self._report_token(name, args, on_gitlab)
        credentials: list[pulumi.Resource] = [
            *([self.variable] if self.variable else []),
            *self.variables,
            *([self.report_variable] if self.report_variable else []),
        ]
        self.job_script, self.ci_file = self._commit_files(name, args, on_gitlab, [*credentials, *args["after"]])
        self.register_outputs({"ci_file": args["ci_file"]})

    @staticmethod
    def _variable(
        args: GitlabDeliveryArgs,
        on_gitlab: pulumi.ResourceOptions,
        resource_name: str,
        setting: tuple[str, pulumi.Input[str]],
        credential: bool,
        protected: bool,
        what: str,
    ) -> gitlab.ProjectVariable:
        """A raw CI/CD variable (`setting`: its key and value); a credential's masked (and hidden per
        `hidden`), and secret: the SDK does not mark `value` secret, the wrapper is what keeps it out of state."""
        import pulumi_gitlab as gitlab

        key, value = setting
        return gitlab.ProjectVariable(
            resource_name,
            project=args["project"],
            key=key,
            value=pulumi.Output.secret(value) if credential else value,
            masked=credential,
            hidden=args["hidden"] if credential else None,
            raw=True,
            protected=protected,
            variable_type="env_var",
            environment_scope="*",
            description=f"{MANAGED}: {what}",
            opts=on_gitlab,
        )

    def _key_variable(
        self, name: str, args: GitlabDeliveryArgs, on_gitlab: pulumi.ResourceOptions
    ) -> gitlab.ProjectVariable | None:
        """The service-account key's variable (auth mode `key`), checked maskable; None without a key."""
        if args["variable_value"] is None:
            return None
        key = args["variable_key"]
        checked = pulumi.Output.from_input(args["variable_value"]).apply(lambda v: maskable(f"mlops-ci:secretName {key!r}", v))
        return self._variable(
            args, on_gitlab, f"{name}-variable", (key, checked), True, args["protected"], "service-account key file, base64"
        )

    def _keyless_variables(
        self, name: str, args: GitlabDeliveryArgs, on_gitlab: pulumi.ResourceOptions
    ) -> list[gitlab.ProjectVariable]:
        """The keyless mode's settings: plain, unmasked, unprotected variables."""
        return [
            self._variable(
                args,
                on_gitlab,
                f"{name}-variable-{setting.lower().replace('_', '-')}",
                (setting, value),
                False,
                False,
                "keyless CI setting (not a secret)",
            )
            for setting, value in args["variables"].items()
        ]

    def _report_token(
        self, name: str, args: GitlabDeliveryArgs, on_gitlab: pulumi.ResourceOptions
    ) -> tuple[gitlab.ProjectAccessToken | None, gitlab.ProjectVariable | None]:
        """The report's project access token and its variable (`mlops-ci:report`); (None, None) without a report."""
        import pulumi_gitlab as gitlab

        if not args["report"]:
            return None, None
        report_token = gitlab.ProjectAccessToken(
            f"{name}-report-token",
            project=args["project"],
            name=args["report_token_name"],
            description=f"{MANAGED}: posts the experiment report on merge requests"
            + (f" (rotation {args['rotation']})" if args["rotation"] else ""),
            access_level=REPORT_TOKEN_ROLE,
            scopes=list(REPORT_TOKEN_SCOPES),
            rotation_configuration=gitlab.ProjectAccessTokenRotationConfigurationArgs(
                expiration_days=REPORT_TOKEN_DAYS, rotate_before_days=REPORT_TOKEN_RENEWED_DAYS_BEFORE
            ),
            # The description carries mlops-ci:keyRotation: a new value is a new token.
            opts=pulumi.ResourceOptions.merge(on_gitlab, pulumi.ResourceOptions(replace_on_changes=["description"])),
        )
        token = report_token.token.apply(lambda v: maskable(f"mlops-ci:report ({REPORT_TOKEN_VARIABLE})", v))
        # Not protected: merge-request pipelines run on unprotected source branches.
        report_variable = self._variable(
            args, on_gitlab, f"{name}-report-token-variable", (REPORT_TOKEN_VARIABLE, token), True, False,
            "project access token that posts the experiment report",
        )  # fmt: skip
        return report_token, report_variable

    @staticmethod
    def _commit_files(
        name: str, args: GitlabDeliveryArgs, on_gitlab: pulumi.ResourceOptions, after: Sequence[pulumi.Resource]
    ) -> tuple[pulumi.Resource, pulumi.Resource]:
        """The job script's commit, then the CI file's, each after `after` (the credentials, then `args["after"]`)."""
        import pulumi_gitlab as gitlab

        def commit(suffix: str, path: str, content: str, message: str, after: Sequence[pulumi.Resource]) -> pulumi.Resource:
            return gitlab.RepositoryFile(
                f"{name}-{suffix}",
                project=args["project"],
                branch=args["branch"],
                file_path=path,
                content=content,
                encoding="text",
                create_commit_message=message,
                update_commit_message=message,
                delete_commit_message=f"mlops-ci: remove {path} (stack destroyed)",
                overwrite_on_create=True,
                opts=pulumi.ResourceOptions.merge(on_gitlab, pulumi.ResourceOptions(depends_on=list(after))),
            )

        return commit_job_script_then_ci_file(
            commit, (args["ci_file"], args["ci_content"]), (args["job_script_path"], args["job_script"]), after
        )


def report_tier_problems(settings: Settings, namespace: Any) -> list[str]:
    """The report's project access token on gitlab.com's Free plan: GitLab lists the project's
    tokens to a Maintainer (the look-up passes) and refuses to create one (docs: "On GitLab.com,
    project access tokens require a Premium or Ultimate subscription"). `free` is gitlab.com's
    plan only; unknown on gitlab.com (the token's user does not own the group), a warning."""
    # No provider data source reads the plan (pulumi-gitlab 10.4.0 has none): a request of the program's own.
    base = settings.platform_url or GitLab.default_base_url
    token = runtime_config.get_config("gitlab:token") or os.environ.get("GITLAB_TOKEN", "")
    plan = direct_calls.current().gitlab_plan(base, token, int(namespace.id)) if namespace is not None else None
    where = namespace.full_path if namespace is not None else settings.repository
    if plan == "free":
        return [
            f"mlops-ci:report = true: {where} is on GitLab's Free plan, where gitlab.com creates no project access token,"
            " and the report needs one: set mlops-ci:report to false, or move the project to a Premium group"
        ]
    if plan is None and gitlab_issuer(settings.platform_url) == GITLAB_COM:
        pulumi.log.warn(
            f"mlops-ci:report = true: the plan of {where} cannot be read with this token (only the group's owners can):"
            " on gitlab.com's Free plan, pulumi up stops when it creates the report's project access token"
        )
    return []


def warn_about_hand_changes(settings: Settings, on: pulumi.InvokeOptions) -> None:
    """Once the stack delivered its CI variables, its CI file or job script edited or deleted by hand:
    GitLab's provider sees neither without a refresh, and deletes or updates a file only after
    reading it (a deleted one stops `pulumi destroy`: upstream `resourceGitlabRepositoryFileDelete`
    fails on the read's 404). Pulumi.yaml refreshes every up and destroy first (`options: refresh:
    always`), which puts it right; say so, and what to do where the refresh was turned off
    (`--refresh=false`)."""
    import pulumi_gitlab as gitlab

    from mlops_ci.ci.files import job_script_path, render_ci_file, render_job_script
    from mlops_ci.settings.rules import PROVIDER_VARIABLE

    project, branch = settings.repository, settings.branch
    # Both keyless modes deliver the provider's variable; only impersonation the service account's.
    delivered_key = PROVIDER_VARIABLE if settings.keyless else settings.secret_name
    delivered = looked_up(lambda: gitlab.get_project_variable(project=project, key=delivered_key, opts=on))
    if delivered is None or not (delivered.description or "").startswith(MANAGED):
        # Nothing delivered yet, or a variable the team set by hand: the files are not the stack's yet either. A GitLab
        # whose variables API has no description (before 16.2) never warns: the refresh of every up and destroy stays.
        return
    for path, rendered in (
        (settings.ci_file, render_ci_file(settings)),
        (job_script_path(settings.stack), render_job_script(settings)),
    ):
        found = looked_up(lambda path=path: gitlab.get_repository_file(project=project, file_path=path, ref=branch, opts=on))
        if found is None:
            pulumi.log.warn(
                f"{path} is missing from branch {branch} of {project} although the stack delivered its CI variables"
                f" (deleted by hand?): `pulumi up` commits it again after its refresh; with `--refresh=false`, run"
                " `pulumi refresh` first, or `pulumi destroy` stops at it"
            )
        elif base64.b64decode(found.content or "").decode(errors="replace") != rendered:
            # The stack's version of an earlier configuration looks the same from here (the state is the engine's).
            pulumi.log.warn(
                f"{path} on branch {branch} of {project} differs from what this configuration commits: if the"
                " configuration changed, this pulumi up commits the new version; if it was edited by hand, `pulumi up`"
                " puts the stack's version back after its refresh (with `--refresh=false` it leaves it until the"
                " stack's version changes)"
            )


class GitLab:
    """GitLab CI on gitlab.com, or a self-managed instance with `gitlab:baseUrl`."""

    name = "gitlab"
    default_base_url = "https://gitlab.com/api/v4/"
    default_ci_file = ".gitlab-ci.yml"
    template = "gitlab-ci.yml.j2"
    ci_schema = "gitlab-ci"
    own_keys: tuple[str, ...] = ("protectedVariable", "hiddenVariable")
    # The job token cannot write notes: the report's project access token rotates with the key and
    # its variable is hidden like the key's.
    report_token_keys: tuple[str, ...] = ("keyRotation", "hiddenVariable")

    @property
    def ci_file_resource(self) -> tuple[str, str]:
        import pulumi_gitlab as gitlab

        return type_token(gitlab.RepositoryFile), "filePath"

    def config_problems(self, repository: str, secret_name: str, ci_file: str, keyless: bool, base_url: str | None) -> list[str]:
        checks = {
            "mlops-ci:repository": (repository, project_problem),
            "mlops-ci:secretName": (secret_name, variable_key_problem),
            "mlops-ci:ciFile": (ci_file, ci_file_problem),
        }
        return [f"{key} = {value!a}: {broken}" for key, (value, rule) in checks.items() if (broken := rule(value))]

    def provider(
        self, settings: Settings, name: str = "gitlab-provider", opts: pulumi.ResourceOptions | None = None
    ) -> pulumi.ProviderResource:
        import pulumi_gitlab as gitlab

        return gitlab.Provider(
            name,
            token=pulumi.Config("gitlab").get_secret("token"),
            base_url=settings.platform_url or self.default_base_url,
            opts=opts,
        )

    def oidc_issuer(self, base_url: str | None) -> tuple[str, str]:
        return gitlab_issuer(base_url), "project_id"

    def branch_subject(self, repository: str, branch: str) -> str:
        # docs.gitlab.com "OpenID Connect (OIDC) Authentication Using ID Tokens", token payload `sub`:
        # `project_path:<path>:ref_type:branch:ref:<branch>` (a merge request pipeline: its source branch).
        return f"project_path:{repository}:ref_type:branch:ref:{branch}"

    def oidc_trust(self, provider: pulumi.ProviderResource, settings: Settings) -> OidcTrust:
        """Trust GitLab CI tokens of the project only, pinned to its numeric project and namespace ids."""
        import pulumi_gitlab as gitlab

        found = gitlab.get_project_output(
            path_with_namespace=settings.repository, opts=pulumi.InvokeOutputOptions(provider=provider)
        )
        project_id = found.id.apply(str)
        namespace_id = found.namespaces.apply(lambda namespaces: str(namespaces[0].id))
        return OidcTrust(
            issuer_uri=self.oidc_issuer(settings.platform_url)[0],
            allowed_audiences=(settings.oidc_audience,),
            attribute_mapping={
                "google.subject": "assertion.sub",
                "attribute.project_path": "assertion.project_path",
                "attribute.project_id": "assertion.project_id",
                "attribute.namespace_id": "assertion.namespace_id",
                "attribute.ref": "assertion.ref",
            },
            attribute_condition=pulumi.Output.format(
                'assertion.project_id == "{0}" && assertion.namespace_id == "{1}"{2}',
                project_id,
                namespace_id,
                f' && assertion.ref_type == "branch" && assertion.ref == "{settings.branch}"'
                if settings.trust_branch_only
                else "",
            ),
            principal_attribute="project_id",
            principal_value=project_id,
        )

    def deliver(self, name: str, args: DeliveryArgs, opts: pulumi.ResourceOptions | None = None) -> pulumi.ComponentResource:
        from mlops_ci.ci.files import job_script_path

        settings = args["settings"]
        return GitlabDelivery(
            name,
            {
                "provider": args["provider"],
                "project": settings.repository,
                "branch": settings.branch,
                "variable_key": settings.secret_name,
                "variable_value": args["key_base64"],
                "protected": settings.protected_variable,
                "hidden": settings.hidden_variable,
                "report": settings.report,
                "report_token_name": f"mlops-ci report ({settings.stack})",
                "rotation": settings.key_rotation,
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
        return f"{gitlab_issuer(settings.platform_url)}/{settings.repository}/-/pipelines"

    def ci_file_setting(self, ci_file: str) -> str | None:
        if ci_file == self.default_ci_file:
            return None
        # GitLab reads .gitlab-ci.yml unless the project names another file (its `ci_config_path`).
        return (
            f"GitLab runs {ci_file} only once the project's CI/CD configuration file"
            f" (Settings > CI/CD > General pipelines) is {ci_file}"
        )

    def preflight_problems(self, provider: pulumi.ProviderResource, settings: Settings) -> list[str]:
        import pulumi_gitlab as gitlab

        from mlops_ci.ci.files import job_script_path

        on = pulumi.InvokeOptions(provider=provider)
        project = settings.repository
        found = looked_up(lambda: gitlab.get_project(path_with_namespace=project, opts=on))
        if found is None:
            return [f"mlops-ci:repository = {project!r}: not found, or the token cannot read it"]
        branch = looked_up(lambda: gitlab.get_branch(project=project, name=settings.branch, opts=on))
        if branch is None:
            return [f"mlops-ci:branch = {settings.branch!r}: no such branch in {project} (the CI file is committed to it)"]
        problems: list[str] = []
        if not branch.can_push:
            problems.append(
                f"mlops-ci:branch = {settings.branch!r}: the token's user may not push to it (protected branch): the CI file"
                " cannot be committed; allow the token's role to push, or choose another branch"
            )

        if settings.report and looked_up(lambda: gitlab.get_project_access_tokens(project=project, opts=on)) is None:
            problems.append(
                f"mlops-ci:report = true: the token cannot manage the project access tokens of {project}, and the report"
                " needs one: a Maintainer's token (on gitlab.com, project access tokens need Premium or Ultimate)"
            )
        elif settings.report:
            problems += report_tier_problems(settings, found.namespaces[0] if found.namespaces else None)

        def first_line(path: str) -> str | None:
            """The file's first line; None: no such file (GitLab answers 404)."""
            found = looked_up(lambda: gitlab.get_repository_file(project=project, file_path=path, ref=settings.branch, opts=on))
            return None if found is None else base64.b64decode(found.content or "").decode(errors="replace").partition("\n")[0]

        warn_about_hand_changes(settings, on)
        script = first_line(job_script_path(settings.stack))
        return [
            *problems,
            *job_script_problems(settings, script, project),
            *missing_files_problems(settings, lambda path: first_line(path) is not None, project),
        ]


GITLAB = GitLab()
