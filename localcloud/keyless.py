"""What a keyless stack's CI job gets from the local cloud, as the platform gives it: the ID token
(GitHub: ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN for a job with `id-token: write`; GitLab: the
variable its `id_tokens:` section names, minted for its `aud`), issued by the local OIDC issuer
(localcloud/oidc_issuer.py) as the platform issues it (GitHub's issuer; GitLab: the project's instance
URL, whatever issuer the stack's provider trusts), with the repository's ids in the local platform; and
the route to Google's STS and IAM Credentials (localcloud/sts.py). A job runs keyless when its CI variables
name a provider."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, cast

import yaml

from localcloud import platform, sts
from localcloud.oidc_issuer import Forgery, GithubRun, GitlabJob, SigningKey, github_request_variables
from localcloud.state import LocalCloud

PROVIDER_VARIABLE = "GCP_WORKLOAD_IDENTITY_PROVIDER"


@dataclasses.dataclass(frozen=True)
class JobIdentity:
    """What the job gets beside the stored CI variables."""

    env: dict[str, str]
    """For every process of the job: Google's STS and IAM Credentials reached here."""
    github_request: dict[str, str]
    """GitHub: ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN."""
    gitlab_variables: dict[str, str]
    """GitLab: the `id_tokens:` variables."""


def id_token_requests(ci_file: Path) -> dict[str, str | list[str]]:
    """GitLab: variable → audience of each job's `id_tokens:` (a string, or a list of them: the token's
    `aud` is then that array; docs.gitlab.com CI/CD YAML syntax reference, `id_tokens`)."""
    document = cast(dict[str, Any], yaml.safe_load(ci_file.read_text()) or {})
    found: dict[str, str | list[str]] = {}
    for job in document.values():
        spec = cast(dict[str, Any], job) if isinstance(job, dict) else {}
        tokens = cast(dict[str, dict[str, Any]], spec.get("id_tokens") or {})
        for name, token in tokens.items():
            audience = token.get("aud", "")
            found[str(name)] = [str(a) for a in cast(list[Any], audience)] if isinstance(audience, list) else str(audience)
    return found


@dataclasses.dataclass(frozen=True)
class Impostor:
    """A run whose ID token is not the repository's own: other claims (`GithubRun`'s or `GitlabJob`'s
    fields: another repository, ids, ref), another audience, or an old token."""

    claims: dict[str, str] = dataclasses.field(default_factory=dict[str, str])
    forged: Forgery = dataclasses.field(default_factory=Forgery)


def job_identity(
    cloud: LocalCloud,
    kind: str,
    repository: str,
    branch: str,
    ci_file: Path,
    variables: dict[str, str],
    impostor: Impostor | None = None,
) -> JobIdentity | None:
    """The ID token of a run on `branch` of `repository` (or `impostor`'s), and the routes; None for a key
    stack (no provider variable). The platform issues the token whether or not Google still has the
    provider: a job run after `pulumi destroy` with the variables a runner kept is refused by STS."""
    entry = platform.find_repository(cloud, kind, repository)
    if not variables.get(PROVIDER_VARIABLE) or entry is None:
        return None
    urls = cloud.urls()
    key = SigningKey(cloud.root / "oidc")
    env = sts.client_environment(urls)
    impostor = impostor or Impostor()
    if kind == "github":
        owner = repository.split("/")[0]
        owner_id = str(cloud.platform.read()["github"]["users"][owner]["id"])
        run = GithubRun(repository, str(entry["id"]), owner_id, ref=f"refs/heads/{branch}")
        run = dataclasses.replace(run, **impostor.claims)
        return JobIdentity(env, github_request_variables(str(urls["oidcIssuer"]), key, run, impostor.forged), {})
    job = dataclasses.replace(GitlabJob(repository, str(entry["id"]), str(entry["namespaceId"]), ref=branch), **impostor.claims)
    forged = impostor.forged
    # GitLab's `iss`: the instance's URL (docs.gitlab.com, "OpenID Connect (OIDC) Authentication Using ID
    # Tokens", token payload), the one the project was created on; a provider trusting another is refused.
    issuer = str(entry.get("instanceUrl") or platform.gitlab_instance(None))
    minted = {
        name: key.mint(issuer, job.claims(), forged.audience or audience, issued=forged.issued)
        for name, audience in id_token_requests(ci_file).items()
    }
    return JobIdentity(env, {}, minted)
