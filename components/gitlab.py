"""GitLab delivery: the key as a masked CI/CD variable, and `.gitlab-ci.yml` committed after it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypedDict

import pulumi
import pulumi_gitlab as gitlab

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


class GitlabDeliveryArgs(TypedDict):
    project: str
    """Project path `group[/subgroup...]/project`."""
    branch: str
    """Existing branch the CI file is committed to."""
    token: pulumi.Input[str] | None
    """GitLab token (secret); None lets the provider read GITLAB_TOKEN."""
    base_url: str | None
    """Self-managed GitLab API URL; None lets the provider use GITLAB_BASE_URL or gitlab.com."""
    variable_key: str
    """CI/CD variable holding the credential."""
    variable_value: pulumi.Input[str]
    """The key file, base64 (one line, maskable); wrapped as a Pulumi secret here too."""
    protected: bool
    """Protected variable: invisible to merge-request and unprotected-branch pipelines."""
    ci_file: str
    """Path of the CI file."""
    ci_content: str
    """CI file content."""
    after: Sequence[pulumi.Resource]
    """Resources the first pipeline needs (the bucket grants)."""


class GitlabDelivery(pulumi.ComponentResource):
    """The CI file is committed last, so the pipeline it triggers already has its credential."""

    provider: gitlab.Provider
    variable: gitlab.ProjectVariable
    ci_file: gitlab.RepositoryFile

    def __init__(self, name: str, args: GitlabDeliveryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-ci:gitlab:GitlabDelivery", name, {}, opts)
        self.provider = gitlab.Provider(
            f"{name}-provider",
            token=args["token"],
            base_url=args["base_url"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_gitlab = pulumi.ResourceOptions(parent=self, provider=self.provider)
        key = args["variable_key"]
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
            opts=pulumi.ResourceOptions.merge(on_gitlab, pulumi.ResourceOptions(depends_on=[self.variable, *args["after"]])),
        )
        self.register_outputs({"variable_key": key, "ci_file": args["ci_file"]})
