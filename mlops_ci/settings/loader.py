"""Typed, validated stack settings, driven by the schema Pulumi.yaml declares (`mlops_ci.settings.schema`).

`load_settings()` reads the configuration the Pulumi CLI hands the program (declared defaults
already merged in), checks every rule, and raises one `ConfigError` listing every problem before
the program registers any resource.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import re
from typing import Any, Literal

import pulumi
from pulumi.runtime import config as runtime_config

from mlops_ci.platforms import PLATFORMS, Platform
from mlops_ci.platforms.base import PLATFORM_KEYS
from mlops_ci.settings.rules import (
    Rule,
    base_url_problem,
    branch_problem,
    bucket_name_problem,
    gcp_project_problem,
    matches,
    one_of,
    relative_path_problem,
    service_account_id_problem,
)
from mlops_ci.settings.schema import SCHEMA
from mlops_ci.settings.stack_file import quote_it_problems, stack_file

PROJECT = SCHEMA.project

Access = Literal["pull", "push", "admin"]
Auth = Literal["key", "workload-identity"]
# Bucket roles per access preset. Each is granted on the bucket only, never on the project.
ACCESS_ROLES: dict[Access, tuple[str, ...]] = {
    "pull": ("roles/storage.objectViewer",),
    "push": ("roles/storage.objectViewer", "roles/storage.objectCreator"),
    "admin": ("roles/storage.objectAdmin",),
}
ACCESS_PRESETS: tuple[Access, ...] = tuple(ACCESS_ROLES)
# The labels the stack puts on its Google Cloud resources: who manages them, for which stack.
MANAGED_BY_LABEL, STACK_LABEL = "managed-by", "stack"
AUTH_MODES: tuple[Auth, ...] = ("key", "workload-identity")

# The rule of each `mlops-ci:` key that has one, whatever the platform. Keys in DERIVED_WHEN_EMPTY
# are checked only when set: empty means a name derived from the stack, valid by construction.
RULES: dict[str, Rule] = {
    "platform": one_of(tuple(PLATFORMS)),
    "branch": branch_problem,
    "existingBucket": bucket_name_problem,
    "bucketName": bucket_name_problem,
    "bucketLocation": matches(r"[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]", "a location such as europe-west6, EU or nam4"),
    "dvcRemotePath": relative_path_problem,
    "serviceAccountId": service_account_id_problem,
    "access": one_of(ACCESS_PRESETS),
    "auth": one_of(AUTH_MODES),
    "pythonVersion": matches(r"3\.[0-9]{1,2}", "a Python 3 minor version such as 3.13"),
    "requirementsFile": relative_path_problem,
    "githubEnvironment": matches(r"[A-Za-z0-9_.-]{1,255}", "an environment name of letters, digits, '_', '.', '-'"),
}
DERIVED_WHEN_EMPTY = ("existingBucket", "bucketName", "serviceAccountId", "ciFile", "githubEnvironment")
# Keys about the stack's own bucket: an existing bucket is the team's, not the stack's to shape.
OWN_BUCKET_ONLY = ("bucketName", "bucketLocation", "protectBucket")
# Longest value of a string key: GitLab's limit for paths, branch names and variable keys; for the
# remote path, GCS's 1024-byte object names less what DVC appends (`files/md5/xx/<30 hex>`).
MAX_LENGTH = 255
MAX_LENGTHS = {"dvcRemotePath": 960}
# Keys about the service-account key: refused in keyless mode, where no key exists.
KEY_ONLY = ("secretName", "keyRotation", "protectedVariable", "hiddenVariable", "githubEnvironment")


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
        """Google APIs the stack's resources need; keyless CI also exchanges tokens (STS) and
        impersonates the service account (IAM Credentials)."""
        apis = ("storage.googleapis.com", "iam.googleapis.com")
        if self.keyless:
            apis += ("sts.googleapis.com", "iamcredentials.googleapis.com")
        return apis

    @property
    def oidc_audience(self) -> str:
        """Audience of the GitLab ID token; the federation accepts only this one."""
        return f"mlops-ci/{self.gcp_project}/{self.stack}"

    @property
    def labels(self) -> dict[str, str]:
        """Labels for Google Cloud resources (values: lowercase, digits, '-', '_', <= 63)."""
        return {MANAGED_BY_LABEL: PROJECT, STACK_LABEL: re.sub(r"[^a-z0-9_-]", "-", self.stack.lower())[:63]}


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


# --- Derived names: always valid under the rules, whatever the stack name. ---


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _fit(prefix: str, stack: str, suffix: str, limit: int) -> str:
    """`prefix + slug(stack) + suffix`, shortened to `limit`; a hash of the exact stack name
    is added whenever the slug is not the stack name itself, so distinct stacks never collide."""
    slug = _slug(stack).replace("google", "ggl")
    candidate = f"{prefix}{slug}{suffix}"
    if slug == stack and len(candidate) <= limit:
        return candidate
    digest = hashlib.sha256(stack.encode()).hexdigest()[:8]
    room = limit - len(prefix) - len(suffix) - len(digest) - 1
    head = slug[: max(room, 0)].rstrip("-")
    return f"{prefix}{head}-{digest}{suffix}" if head else f"{prefix}{digest}{suffix}"


def derive_bucket_name(gcp_project: str, stack: str) -> str:
    name = _fit(f"{gcp_project}-", stack, "-dvc", 63)
    return f"dvc-{name}"[:63] if name.startswith("goog") else name


def derive_service_account_id(stack: str) -> str:
    return _fit("dvc-ci-", stack, "", 30)


# --- Loading ---


def _present_keys() -> set[str]:
    # Pulumi offers no public listing of config keys; the runtime keeps them in these two places.
    return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())


def _unknown(present: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(present.partition(":")[2], list(known), n=1)
    return f"{present}: unknown key" + (f" (did you mean {close[0]}?)" if close else "")


def _namespace_problems(platform: Platform | None) -> list[str]:
    """Unknown keys of the project's namespace and of the platforms' (whose explicit providers read
    nothing by themselves), keys of another platform, plain-text tokens, needless `secure:`."""
    problems: list[str] = []
    for present in sorted(_present_keys()):
        namespace, _, name = present.partition(":")
        secret = runtime_config.is_config_secret(present)
        if namespace == PROJECT:
            if name not in SCHEMA.names:
                problems.append(_unknown(present, SCHEMA.names))
            elif secret:
                problems.append(f"{present}: not a secret: write it in plain text (`secure:` hides it from review)")
        elif namespace in PLATFORMS and platform and namespace != platform.name:
            problems.append(f"{present}: not used: the stack's platform is {platform.name}")
        elif namespace in PLATFORMS and name not in PLATFORM_KEYS:
            problems.append(_unknown(present, PLATFORM_KEYS))
        elif namespace in PLATFORMS and name == "token" and not secret:
            # Never quoted: the value is the credential.
            problems.append(
                f"{present}: must be encrypted: `pulumi config set --secret {present}` (or the platform's token variable"
                " in the environment); a plain-text token in a committed stack file is readable by everyone who can read it"
            )
    return problems


def load_settings() -> Settings:
    """Read and validate the stack's configuration; raise `ConfigError` with every problem."""
    stack = pulumi.get_stack()
    config = pulumi.Config(PROJECT)
    problems: list[str] = []

    texts: dict[str, str] = {}
    flags: dict[str, bool] = {}
    set_keys: set[str] = set()
    for key in SCHEMA.keys:
        # Under the CLI a key with a declared default is always present (merged in).
        text = config.get(key.name)
        text = key.default_text or "" if text is None else text
        texts[key.name] = text
        if text != key.default_text:
            set_keys.add(key.name)
        if key.default is None and not text:
            problems.append(f"{PROJECT}:{key.name}: required ({key.description})")
        limit = MAX_LENGTHS.get(key.name, MAX_LENGTH)
        if len(text) > limit:
            problems.append(f"{PROJECT}:{key.name} = {text[:40]!r}...: {len(text)} characters, at most {limit}")
            text = texts[key.name] = key.default_text or ""
        if key.type == "boolean":
            if text.lower() not in ("true", "false"):
                problems.append(f"{PROJECT}:{key.name} = {text!r}: must be true or false")
            flags[key.name] = text.lower() == "true"

    for name, rule in RULES.items():
        value = texts[name]
        if not value and (name in DERIVED_WHEN_EMPTY or SCHEMA.key(name).default is None):
            continue  # derived from the stack, or reported as required above
        if broken := rule(value):
            problems.append(f"{PROJECT}:{name} = {value!r}: {broken}")

    gcp_project = pulumi.Config("gcp").get("project") or ""
    if not gcp_project:
        problems.append("gcp:project: required (the Google Cloud project id)")
    elif broken := gcp_project_problem(gcp_project):
        problems.append(f"gcp:project = {gcp_project!r}: {broken}")

    if texts["existingBucket"]:
        problems += [
            f"{PROJECT}:existingBucket: cannot be combined with {PROJECT}:{name}, which shapes a bucket the stack creates"
            for name in OWN_BUCKET_ONLY
            if name in set_keys
        ]
    keyless = texts["auth"] == "workload-identity"
    platform = PLATFORMS.get(texts["platform"])
    if keyless:
        # Keys that also shape the platform's report token (GitLab's) still apply when it has one.
        token_keys = platform.report_token_keys if platform else ()
        # The CLI merges every declared default into the config: "set" means "not the default".
        problems += [
            f"{PROJECT}:{name}: applies to auth key only; workload-identity creates no key"
            + (f" (and to the report token, with {PROJECT}:report true)" if name in token_keys else "")
            for name in KEY_ONLY
            if name in set_keys and not (name in token_keys and flags["report"])
        ]

    problems += _namespace_problems(platform)
    # Where the stack file says 3.10 and the CLI hands over 3.1, the author must quote it.
    string_keys = [f"{PROJECT}:{key.name}" for key in SCHEMA.keys if key.type == "string"]
    string_keys += ["gcp:project", *(f"{name}:baseUrl" for name in PLATFORMS)]
    problems += quote_it_problems(stack_file(stack), string_keys)
    platform_url: str | None = None
    if platform:
        platform_url = pulumi.Config(platform.name).get("baseUrl") or None
        if platform_url and (broken := base_url_problem(platform_url)):
            problems.append(f"{platform.name}:baseUrl: {broken}")
        texts["ciFile"] = texts["ciFile"] or platform.default_ci_file
        if texts["repository"]:
            problems += platform.config_problems(texts["repository"], texts["secretName"], texts["ciFile"], keyless, platform_url)
        for other in PLATFORMS.values():
            if other is not platform:
                owned = [name for name in other.own_keys if name in set_keys]
                problems += [f"{PROJECT}:{name} = {texts[name]!r}: applies to platform {other.name} only" for name in owned]

    if problems:
        raise ConfigError(stack, problems)
    assert platform is not None  # a missing or unknown platform is a problem above

    if texts["existingBucket"]:
        texts["bucketName"] = texts["existingBucket"]
    elif not texts["bucketName"]:
        texts["bucketName"] = derive_bucket_name(gcp_project, stack)
    if not texts["serviceAccountId"]:
        texts["serviceAccountId"] = derive_service_account_id(stack)
    fields: dict[str, Any] = {field_name(name): flags.get(name, text) for name, text in texts.items()}
    fields["platform"] = platform
    # The rules above checked each value against its field's type (enums included).
    return Settings(gcp_project=gcp_project, stack=stack, platform_url=platform_url, **fields)
