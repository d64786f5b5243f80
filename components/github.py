"""GitHub: the provider, the repository's OIDC trust, and delivery of the credential and workflow."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypedDict

import pulumi
import pulumi_github as github

from components.workload_identity import OidcTrust

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def github_provider(name: str, repository: str, token: pulumi.Input[str] | None, base_url: str | None) -> github.Provider:
    """A provider for the repository's owner. An explicit provider does not read the stack's
    `github:*` config itself: token and base URL are passed through (None: GITHUB_TOKEN, github.com)."""
    return github.Provider(name, owner=repository.split("/")[0], token=token, base_url=base_url)


def github_oidc_trust(provider: github.Provider, repository: str) -> OidcTrust:
    """Trust GitHub Actions tokens of `repository` only, pinned to its numeric id and its owner's."""
    lookup = pulumi.InvokeOutputOptions(provider=provider)
    owner = repository.split("/")[0]
    repository_id = github.get_repository_output(full_name=repository, opts=lookup).repo_id.apply(str)
    owner_id = github.get_user_output(username=owner, opts=lookup).id.apply(str)
    return OidcTrust(
        issuer_uri=GITHUB_ISSUER,
        allowed_audiences=(),
        attribute_mapping={
            "google.subject": "assertion.sub",
            "attribute.repository": "assertion.repository",
            "attribute.repository_id": "assertion.repository_id",
            "attribute.repository_owner_id": "assertion.repository_owner_id",
            "attribute.ref": "assertion.ref",
        },
        attribute_condition=pulumi.Output.format(
            'assertion.repository_id == "{0}" && assertion.repository_owner_id == "{1}"', repository_id, owner_id
        ),
        principal_attribute="repository_id",
        principal_value=repository_id,
    )


class GithubDeliveryArgs(TypedDict):
    provider: github.Provider
    """Provider of the repository's owner (`github_provider`)."""
    repository: str
    """`owner/name`; resources get the bare name, the provider has the owner."""
    branch: str
    """Existing branch the workflow is committed to."""
    secret_name: str
    """Actions secret holding the key (auth mode `key`)."""
    secret_value: pulumi.Input[str] | None
    """The key file JSON on one line, or None when there is no key (keyless mode)."""
    variables: Mapping[str, pulumi.Input[str]]
    """Non-secret Actions variables the workflow reads (keyless mode)."""
    ci_file: str
    """Workflow path, under `.github/workflows/`."""
    ci_content: str
    """Workflow content."""
    after: Sequence[pulumi.Resource]
    """Resources the first workflow run needs (the bucket grants, the federation binding)."""


class GithubDelivery(pulumi.ComponentResource):
    """The workflow is committed last, so the run it triggers already has its credential."""

    secret: github.ActionsSecret | None
    variables: list[github.ActionsVariable]
    ci_file: github.RepositoryFile

    def __init__(self, name: str, args: GithubDeliveryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops-ci:github:GithubDelivery", name, {}, opts)
        repository = args["repository"].split("/")[1]
        on_github = pulumi.ResourceOptions(parent=self, provider=args["provider"])
        self.secret = None
        if args["secret_value"] is not None:
            self.secret = github.ActionsSecret(
                f"{name}-secret",
                repository=repository,
                secret_name=args["secret_name"],
                value=pulumi.Output.secret(args["secret_value"]),
                opts=on_github,
            )
        self.variables = [
            github.ActionsVariable(
                f"{name}-variable-{variable.lower().replace('_', '-')}",
                repository=repository,
                variable_name=variable,
                value=value,
                opts=on_github,
            )
            for variable, value in args["variables"].items()
        ]
        credentials: list[pulumi.Resource] = [*([self.secret] if self.secret else []), *self.variables]
        self.ci_file = github.RepositoryFile(
            f"{name}-ci-file",
            repository=repository,
            branch=args["branch"],
            file=args["ci_file"],
            content=args["ci_content"],
            commit_message=f"mlops-ci: reproduce the experiment in CI ({args['ci_file']})",
            overwrite_on_create=True,
            opts=pulumi.ResourceOptions.merge(on_github, pulumi.ResourceOptions(depends_on=[*credentials, *args["after"]])),
        )
        self.register_outputs({"ci_file": args["ci_file"]})
