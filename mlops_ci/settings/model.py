"""What the settings are once validated: the `Settings` the program reads, and the one error that
lists every problem of a stack's configuration."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Literal

import pulumi

from mlops_ci.components.google_errors import DIRECT_APIS, KEY_APIS, KEYLESS_APIS
from mlops_ci.platforms import Platform
from mlops_ci.settings.schema import SCHEMA

PROJECT = SCHEMA.project

Access = Literal["pull", "push", "admin"]
Auth = Literal["key", "workload-identity"]
KeylessMode = Literal["direct", "impersonation"]
# Bucket roles per access preset. Each is granted on the bucket only, never on the project.
ACCESS_ROLES: dict[Access, tuple[str, ...]] = {
    "pull": ("roles/storage.objectViewer",),
    "push": ("roles/storage.objectViewer", "roles/storage.objectCreator"),
    "admin": ("roles/storage.objectAdmin",),
}
ACCESS_PRESETS: tuple[Access, ...] = tuple(ACCESS_ROLES)
AUTH_MODES: tuple[Auth, ...] = ("key", "workload-identity")
KEYLESS_MODES: tuple[KeylessMode, ...] = ("direct", "impersonation")
# The keys whose default depends on the platform's host (`auth`) or chose the credential of a stack
# deployed by an earlier release otherwise (`keylessMode`): pre-flight stops a deployed stack whose
# credential would change through them (preflight.py `_credential_change_problems`).
CREDENTIAL_KEYS = ("auth", "keylessMode")
# The labels the stack puts on its Google Cloud resources: who manages them, for which stack.
MANAGED_BY_LABEL, STACK_LABEL = "managed-by", "stack"
# And, in a project not named mlops-ci (made by `pulumi new`), which Pulumi project: two projects' stacks
# named alike (`dev`) in one Google Cloud project are two teams. mlops-ci's own stacks carry none.
PULUMI_PROJECT_LABEL = "pulumi-project"
# A label value Google takes as it is: lowercase letters, digits, '_' and '-', at most 63.
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{1,63}")


def digest(text: str) -> str:
    """A short hash of `text`: what keeps two names apart once they had to be changed."""
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def stack_label(stack: str) -> str:
    """The value of the `stack` label: the stack's name where Google takes it as it is; otherwise its
    lowercase form with other characters as '-', shortened, and a hash of the exact name, so that
    `Team-A` and `team.a` are not `team-a` (the label is how pre-flight tells a stack's bucket from
    another's). A stack named like that hashed form on purpose is a clash `make check` reports."""
    if _LABEL_VALUE.fullmatch(stack):
        return stack
    hashed = digest(stack)
    return f"{re.sub(r'[^a-z0-9_-]', '-', stack.lower())[: 63 - len(hashed) - 1]}-{hashed}"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the program needs, validated, derived names resolved. One field per key of the
    schema (`mlops-ci:bucketName` is `bucket_name`; a test keeps them in step), plus the context."""

    gcp_project: str
    """`gcp:project`."""
    stack: str
    """Pulumi stack name: one team."""
    platform: Platform
    """`mlops-ci:platform`, resolved in the registry."""
    platform_url: str | None
    """`<platform>:baseUrl`; None for github.com / gitlab.com."""
    repository: str
    branch: str
    existing_bucket: str
    bucket_name: str
    bucket_location: str
    dvc_remote_path: str
    service_account_id: str
    access: Access
    auth: Auth
    keyless_mode: KeylessMode
    workload_identity_provider: str
    secret_name: str
    ci_file: str
    python_version: str
    requirements_file: str
    key_rotation: str
    protect_bucket: bool
    protected_variable: bool
    hidden_variable: bool
    github_environment: str
    trust_branch_only: bool
    report: bool
    defaulted: frozenset[str] = frozenset()
    """Of `CREDENTIAL_KEYS`, those the stack file leaves to their default (resolved here)."""
    pulumi_project: str = PROJECT
    """The running Pulumi project's name (Pulumi.yaml `name:`): mlops-ci, or a project made by `pulumi new`."""

    @property
    def direct(self) -> bool:
        """Keyless without a service account: the bucket roles go to the repository's principal set."""
        return self.keyless and self.keyless_mode == "direct"

    @property
    def uses_existing_bucket(self) -> bool:
        return bool(self.existing_bucket)

    @property
    def keyless(self) -> bool:
        return self.auth == "workload-identity"

    @property
    def dvc_remote_url(self) -> str:
        return f"gs://{self.bucket_name}/{self.dvc_remote_path}"

    @property
    def google_apis(self) -> tuple[str, ...]:
        """Google APIs the stack's resources need; keyless CI also exchanges tokens (STS) and, with
        impersonation, acts as the service account (IAM Credentials)."""
        if self.direct:
            return DIRECT_APIS
        return KEYLESS_APIS if self.keyless else KEY_APIS

    @property
    def oidc_audience(self) -> str:
        """Audience of the GitLab ID token; the federation accepts only this one. A shared provider
        accepts its default one (its full name as a URL), which GitHub's auth action asks for too."""
        if self.workload_identity_provider:
            return f"https://iam.googleapis.com/{self.workload_identity_provider}"
        return f"mlops-ci/{self.gcp_project}/{self.stack}"

    @property
    def labels(self) -> dict[str, str]:
        """Labels for Google Cloud resources (values: lowercase, digits, '-', '_', <= 63)."""
        labels = {MANAGED_BY_LABEL: PROJECT, STACK_LABEL: stack_label(self.stack)}
        if self.pulumi_project != PROJECT:
            labels[PULUMI_PROJECT_LABEL] = stack_label(self.pulumi_project)
        return labels


def field_name(key: str) -> str:
    """The Settings field of a config key: `bucketName` -> `bucket_name`."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


class ConfigError(pulumi.RunError):
    """Every configuration problem of a stack, reported at once."""

    def __init__(self, stack: str, problems: list[str], kind: str = "configuration") -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"stack {stack!r} has {len(problems)} {kind} {noun}; nothing was created:\n{lines}")
