"""GitHub delivery: the key as an Actions secret, and the workflow committed after it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import pulumi
import pulumi_github as github


class GithubDeliveryArgs(TypedDict):
    repository: str
    """`owner/name`; resources get the bare name, the provider gets the owner."""
    branch: str
    """Existing branch the workflow is committed to."""
    token: pulumi.Input[str] | None
    """GitHub token (secret); None lets the provider read GITHUB_TOKEN."""
    base_url: str | None
    """GitHub Enterprise API URL; None for github.com."""
    secret_name: str
    """Actions secret holding the credential."""
    secret_value: pulumi.Input[str]
    """The key file JSON on one line; wrapped as a Pulumi secret here too."""
    ci_file: str
    """Workflow path, under `.github/workflows/`."""
    ci_content: str
    """Workflow content."""
    after: Sequence[pulumi.Resource]
    """Resources the first workflow run needs (the bucket grants)."""


class GithubDelivery(pulumi.ComponentResource):
    """The workflow is committed last, so the run it triggers already has its credential."""

    provider: github.Provider
    secret: github.ActionsSecret
    ci_file: github.RepositoryFile

    def __init__(self, name: str, args: GithubDeliveryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-ci:github:GithubDelivery", name, {}, opts)
        owner, repository = args["repository"].split("/")
        self.provider = github.Provider(
            f"{name}-provider",
            owner=owner,
            token=args["token"],
            base_url=args["base_url"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_github = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.secret = github.ActionsSecret(
            f"{name}-secret",
            repository=repository,
            secret_name=args["secret_name"],
            value=pulumi.Output.secret(args["secret_value"]),
            opts=on_github,
        )
        self.ci_file = github.RepositoryFile(
            f"{name}-ci-file",
            repository=repository,
            branch=args["branch"],
            file=args["ci_file"],
            content=args["ci_content"],
            commit_message=f"mlops-ci: reproduce the experiment in CI ({args['ci_file']})",
            overwrite_on_create=True,
            opts=pulumi.ResourceOptions.merge(on_github, pulumi.ResourceOptions(depends_on=[self.secret, *args["after"]])),
        )
        self.register_outputs({"secret_name": args["secret_name"], "ci_file": args["ci_file"]})
