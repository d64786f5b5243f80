"""GitLab: the provider, the project's OIDC trust, and delivery of the credential and `.gitlab-ci.yml`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TypedDict

import pulumi
import pulumi_gitlab as gitlab

from components.workload_identity import OidcTrust

GITLAB_COM = "https://gitlab.com"
# GitLab masks a value only if it is one line of at least 8 characters from this alphabet.
_MASKABLE = re.compile(r"[A-Za-z0-9_+=/@:.~-]{8,}")


def maskable(key: str, value: str) -> str:
    """`value` unchanged, or an error naming `key` if GitLab would refuse to mask it."""
    if not _MASKABLE.fullmatch(value):
        raise ValueError(
            f"mlops-ci:secretName {key!r}: the value cannot be masked by GitLab "
            "(one line, >= 8 characters of a-z A-Z 0-9 _ + = / @ : . ~ -); the variable was not created"
        )
    return value


def gitlab_issuer(base_url: str | None) -> str:
    """The instance's OIDC issuer: its root URL (`gitlab:baseUrl` may end in /api/v4/)."""
    if not base_url:
        return GITLAB_COM
    return re.sub(r"/api/v4/?$", "", base_url.rstrip("/")).rstrip("/")


def gitlab_provider(name: str, token: pulumi.Input[str] | None, base_url: str | None) -> gitlab.Provider:
    """An explicit provider does not read the stack's `gitlab:*` config itself: token and base
    URL are passed through (None: GITLAB_TOKEN, gitlab.com)."""
    return gitlab.Provider(name, token=token, base_url=base_url)


def gitlab_oidc_trust(provider: gitlab.Provider, project: str, issuer: str, audience: str) -> OidcTrust:
    """Trust GitLab CI tokens of `project` only, pinned to its numeric project and namespace ids."""
    found = gitlab.get_project_output(path_with_namespace=project, opts=pulumi.InvokeOutputOptions(provider=provider))
    project_id = found.id.apply(str)
    namespace_id = found.namespaces.apply(lambda namespaces: str(namespaces[0].id))
    return OidcTrust(
        issuer_uri=issuer,
        allowed_audiences=(audience,),
        attribute_mapping={
            "google.subject": "assertion.sub",
            "attribute.project_path": "assertion.project_path",
            "attribute.project_id": "assertion.project_id",
            "attribute.namespace_id": "assertion.namespace_id",
            "attribute.ref": "assertion.ref",
        },
        attribute_condition=pulumi.Output.format(
            'assertion.project_id == "{0}" && assertion.namespace_id == "{1}"', project_id, namespace_id
        ),
        principal_attribute="project_id",
        principal_value=project_id,
    )


class GitlabDeliveryArgs(TypedDict):
    provider: gitlab.Provider
    """Provider of the GitLab instance (`gitlab_provider`)."""
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
    variables: Mapping[str, pulumi.Input[str]]
    """Non-secret, unmasked variables the job reads (keyless mode)."""
    ci_file: str
    """Path of the CI file."""
    ci_content: str
    """CI file content."""
    after: Sequence[pulumi.Resource]
    """Resources the first pipeline needs (the bucket grants, the federation binding)."""


class GitlabDelivery(pulumi.ComponentResource):
    """The CI file is committed last, so the pipeline it triggers already has its credential."""

    variable: gitlab.ProjectVariable | None
    variables: list[gitlab.ProjectVariable]
    ci_file: gitlab.RepositoryFile

    def __init__(self, name: str, args: GitlabDeliveryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-ci:gitlab:GitlabDelivery", name, {}, opts)
        on_gitlab = pulumi.ResourceOptions(parent=self, provider=args["provider"])
        key = args["variable_key"]
        self.variable = None
        if args["variable_value"] is not None:
            self.variable = gitlab.ProjectVariable(
                f"{name}-variable",
                project=args["project"],
                key=key,
                # The SDK does not mark `value` secret: the wrapper is what keeps it out of state.
                value=pulumi.Output.secret(pulumi.Output.from_input(args["variable_value"]).apply(lambda v: maskable(key, v))),
                masked=True,
                raw=True,
                protected=args["protected"],
                variable_type="env_var",
                environment_scope="*",
                description="Managed by mlops-ci: service-account key file, base64",
                opts=on_gitlab,
            )
        self.variables = [
            gitlab.ProjectVariable(
                f"{name}-variable-{variable.lower().replace('_', '-')}",
                project=args["project"],
                key=variable,
                value=value,
                masked=False,
                raw=True,
                protected=False,
                variable_type="env_var",
                environment_scope="*",
                description="Managed by mlops-ci: keyless CI setting (not a secret)",
                opts=on_gitlab,
            )
            for variable, value in args["variables"].items()
        ]
        credentials: list[pulumi.Resource] = [*([self.variable] if self.variable else []), *self.variables]
        message = f"mlops-ci: reproduce the experiment in CI ({args['ci_file']})"
        self.ci_file = gitlab.RepositoryFile(
            f"{name}-ci-file",
            project=args["project"],
            branch=args["branch"],
            file_path=args["ci_file"],
            content=args["ci_content"],
            encoding="text",
            create_commit_message=message,
            update_commit_message=message,
            delete_commit_message=f"mlops-ci: remove {args['ci_file']} (stack destroyed)",
            overwrite_on_create=True,
            opts=pulumi.ResourceOptions.merge(on_gitlab, pulumi.ResourceOptions(depends_on=[*credentials, *args["after"]])),
        )
        self.register_outputs({"ci_file": args["ci_file"]})
