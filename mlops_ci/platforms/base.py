"""What a CI platform is to the program: one interface, one module per platform.

The program and the settings hold a `Platform`, never a platform name to test. A platform module
imports its provider SDK inside its functions: the SDKs load eagerly (~0.5 s each), and the
settings consult every registered platform's rules while only one platform's resources are built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypedDict, TypeVar

import pulumi

if TYPE_CHECKING:
    from mlops_ci.components.workload_identity import OidcTrust
    from mlops_ci.settings.loader import Settings


def type_token(resource_class: type) -> str:
    """The Pulumi type token an SDK class registers with (`gcp:storage/bucket:Bucket`)."""
    token = pulumi.get_type_token(resource_class)
    if token is None:
        raise TypeError(f"{resource_class.__qualname__} carries no Pulumi type token")
    return token


# The keys of a platform's own config namespace (`github:token`) the program reads.
PLATFORM_KEYS = ("token", "baseUrl")
# The one key of a stack file that is a secret: the platform's token (every other is refused under `secure:`).
PLATFORM_SECRET_KEY = "token"


T = TypeVar("T")
# What the CI job needs on the branch besides the requirements file.
PIPELINE_FILE = "dvc.yaml"
# Where the guide's readers keep their requirements, most likely first.
REQUIREMENTS_CANDIDATES = ("requirements-freeze.txt", "requirements.txt")


def looked_up(lookup: Callable[[], T]) -> T | None:
    """The answer of a blocking look-up, or None when the platform or the cloud has none for these
    credentials: not found and not readable are one answer to the user (and the API's own words
    are passed over: they can quote request details)."""
    try:
        return lookup()
    except Exception:  # noqa: BLE001 - every failure of a look-up means "cannot be read with these credentials"
        return None


def missing_files_problems(settings: Settings, exists: Callable[[str], bool], where: str) -> list[str]:
    """The pipeline file and the requirements file on the branch, with a hint when the branch has
    the requirements under another of the usual names."""
    problems: list[str] = []
    if not exists(PIPELINE_FILE):
        problems.append(
            f"mlops-ci:branch = {settings.branch!r}: no {PIPELINE_FILE} on it in {where}: the CI job reproduces a DVC"
            " pipeline (`dvc stage add`, the guide's chapter 2.1); push it first"
        )
    if not exists(settings.requirements_file):
        others = [name for name in REQUIREMENTS_CANDIDATES if name != settings.requirements_file and exists(name)]
        hint = f"; the branch has {others[0]}: set mlops-ci:requirementsFile to it" if others else ""
        problems.append(
            f"mlops-ci:requirementsFile = {settings.requirements_file!r}: not on branch {settings.branch} in {where}{hint}"
        )
    return problems


def job_script_problems(settings: Settings, first_line: str | None, where: str) -> list[str]:
    """A file at the stack's job-script path that mlops-ci did not write for this stack (`first_line`
    its first line; None: no file): `pulumi up` would overwrite it and `pulumi destroy` delete it."""
    from mlops_ci.ci.files import is_job_script_of, job_script_path

    if first_line is None or is_job_script_of(first_line, settings.stack):
        return []
    return [
        f"mlops-ci:branch = {settings.branch!r}: {job_script_path(settings.stack)} on it in {where} is not the job script"
        f" mlops-ci wrote for the stack {settings.stack} (its first line: {first_line[:80]!r}); the stack commits its job"
        " script there and `pulumi destroy` deletes it: move that file, or use another stack name"
    ]


# Commits a file to the branch: (resource name suffix, path, content, commit message, what it waits for).
CommitFile = Callable[[str, str, str, str, Sequence[pulumi.Resource]], pulumi.Resource]


def commit_job_script_then_ci_file(
    commit: CommitFile, ci_file: tuple[str, str], job_script: tuple[str, str], after: Sequence[pulumi.Resource]
) -> tuple[pulumi.Resource, pulumi.Resource]:
    """The job script, then the CI file that calls it, last: the first run finds both, with its
    credential and access (`after`); `pulumi destroy` deletes the CI file first, then the script.
    The script's commit asks the platform not to run CI (`[skip ci]`): the CI file's commit does."""
    (path, content), (ci_path, ci_content) = job_script, ci_file
    # GitHub's provider commits a deletion with the same message: each reads right for both.
    script_message = f"mlops-ci: {path}, the CI job's script, managed by the stack [skip ci]"
    script = commit("job-script", path, content, script_message, after)
    ci_message = f"mlops-ci: {ci_path}, managed by the stack (pulumi up, pulumi destroy)"
    ci = commit("ci-file", ci_path, ci_content, ci_message, [*after, script])
    return script, ci


class DeliveryArgs(TypedDict):
    provider: pulumi.ProviderResource
    """The platform's provider (`Platform.provider`)."""
    settings: Settings
    """The stack's settings: repository, branch, secret name, CI file."""
    key_base64: pulumi.Output[str] | None
    """The service-account key file, base64 and secret; None in keyless mode."""
    variables: Mapping[str, pulumi.Input[str]]
    """Non-secret CI variables the job reads (keyless mode)."""
    ci_content: str
    """The rendered CI file."""
    job_script: str
    """The rendered job script the CI file calls (at `job_script_path(stack)`)."""
    after: Sequence[pulumi.Resource]
    """Resources the first CI run needs (the bucket grants, the federation binding)."""


class Platform(Protocol):
    """A CI platform: its rules, its CI file, its provider, its OIDC trust and its delivery."""

    @property
    def name(self) -> str:
        """Registry name, value of `mlops-ci:platform`, and its provider's config namespace."""
        ...

    @property
    def default_base_url(self) -> str:
        """The API the provider talks to without `<platform>:baseUrl`. Always passed explicitly:
        the SDKs would otherwise read GITHUB_BASE_URL / GITLAB_BASE_URL from the environment."""
        ...

    @property
    def default_ci_file(self) -> str:
        """Where the CI file goes when `mlops-ci:ciFile` is empty."""
        ...

    @property
    def template(self) -> str:
        """File name of the CI file's template in `mlops_ci/ci/templates/`."""
        ...

    @property
    def ci_file_resource(self) -> tuple[str, str]:
        """The type token of the resource that commits the CI file, and its path input."""
        ...

    @property
    def ci_schema(self) -> str:
        """The published JSON schema of its CI file: a schema vendored by check-jsonschema."""
        ...

    @property
    def own_keys(self) -> tuple[str, ...]:
        """`mlops-ci:` keys that mean something on this platform only."""
        ...

    @property
    def report_token_keys(self) -> tuple[str, ...]:
        """Key-mode keys that also shape the token the platform's report needs (`mlops-ci:report`),
        so apply in keyless mode too when the report is on; none where the CI's own token posts it."""
        ...

    def config_problems(self, repository: str, secret_name: str, ci_file: str, keyless: bool, base_url: str | None) -> list[str]:
        """Every broken platform rule, each naming its key."""
        ...

    def provider(
        self, settings: Settings, name: str = ..., opts: pulumi.ResourceOptions | None = None
    ) -> pulumi.ProviderResource:
        """An explicit provider: token and base URL passed through, never read from elsewhere; `name`
        defaults to `<platform>-provider`, the name this repository's own stack gave it."""
        ...

    def oidc_issuer(self, base_url: str | None) -> tuple[str, str]:
        """The issuer of the CI tokens of the instance at `base_url` (None: github.com, gitlab.com),
        and the claim holding the repository's numeric id (mapped to the attribute of the same name,
        which the principal set names)."""
        ...

    def branch_subject(self, repository: str, branch: str) -> str:
        """The `sub` claim of the CI token of a run on `branch` of `repository`, which the stack's own
        provider maps to google.subject."""
        ...

    def oidc_trust(self, provider: pulumi.ProviderResource, settings: Settings) -> OidcTrust:
        """The issuer and the condition that trusts this repository's CI tokens only."""
        ...

    def deliver(self, name: str, args: DeliveryArgs, opts: pulumi.ResourceOptions | None = None) -> pulumi.ComponentResource:
        """The delivery component `name`: the credential (or keyless settings) first, then the CI file
        that uses it; `opts` are the delivery component's own (its parent)."""
        ...

    def runs_url(self, settings: Settings) -> str:
        """The page where the team sees the CI runs."""
        ...

    def ci_file_setting(self, ci_file: str) -> str | None:
        """What the team must set on the platform for the CI file at `ci_file` to run; None: nothing."""
        ...

    def preflight_problems(self, provider: pulumi.ProviderResource, settings: Settings) -> list[str]:
        """Blocking look-ups before any cloud resource: the repository, the branch (and whether the
        stack may commit to it), the pipeline and requirements files on it."""
        ...
