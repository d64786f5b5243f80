"""Typed, validated stack settings.

`load_settings()` reads the stack's configuration, checks every rule, and raises one
`ConfigError` listing every problem before the program registers any resource.
`CONFIG_KEYS` is the single source of the project's configuration schema: Pulumi.yaml
declares the same keys, types and defaults (a test keeps the two equal).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import ipaddress
import re
from collections.abc import Callable
from typing import Literal

import pulumi
from pulumi.runtime import config as runtime_config

PROJECT = "mlops-ci"

Platform = Literal["github", "gitlab"]
Access = Literal["pull", "push", "admin"]
Auth = Literal["key", "workload-identity"]

PLATFORMS: tuple[Platform, ...] = ("github", "gitlab")
ACCESS_PRESETS: tuple[Access, ...] = ("pull", "push", "admin")
AUTH_MODES: tuple[Auth, ...] = ("key", "workload-identity")
DEFAULT_CI_FILES: dict[Platform, str] = {
    "github": ".github/workflows/mlops.yaml",
    "gitlab": ".gitlab-ci.yml",
}


@dataclasses.dataclass(frozen=True)
class ConfigKey:
    """One key of the `mlops-ci:` namespace, as declared in Pulumi.yaml."""

    name: str
    """Key without the namespace, as written in a stack file."""
    type: Literal["string", "boolean"]
    """Pulumi config type."""
    description: str
    """What the key means; Pulumi.yaml carries the same text."""
    default: str | bool | None = None
    """Default when the stack does not set it; None means required. An empty string means
    'derived' (from the stack, project or platform)."""


CONFIG_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("platform", "string", "CI platform: github or gitlab."),
    ConfigKey(
        "repository",
        "string",
        "GitHub owner/name, or GitLab group[/subgroup...]/project.",
    ),
    ConfigKey("branch", "string", "Branch the CI file is committed to and that triggers the run.", "main"),
    ConfigKey(
        "bucketName",
        "string",
        "DVC remote bucket; empty derives <gcp project>-<stack>-dvc.",
        "",
    ),
    ConfigKey("bucketLocation", "string", "Bucket location.", "europe-west6"),
    ConfigKey("dvcRemotePath", "string", "Path inside the bucket: the remote is gs://<bucket>/<path>.", "dvcstore"),
    ConfigKey(
        "serviceAccountId",
        "string",
        "CI service account id; empty derives dvc-ci-<stack>.",
        "",
    ),
    ConfigKey(
        "access",
        "string",
        "Bucket access of CI: pull (objectViewer), push (pull + objectCreator) or admin (objectAdmin).",
        "pull",
    ),
    ConfigKey(
        "auth",
        "string",
        "Credential: key (service-account key in a secret) or workload-identity (keyless).",
        "key",
    ),
    ConfigKey(
        "secretName",
        "string",
        "Name of the GitHub Actions secret / GitLab CI/CD variable holding the key.",
        "GOOGLE_SERVICE_ACCOUNT_KEY",
    ),
    ConfigKey(
        "ciFile",
        "string",
        "Path of the committed CI file; empty means .github/workflows/mlops.yaml (GitHub) or .gitlab-ci.yml (GitLab).",
        "",
    ),
    ConfigKey("pythonVersion", "string", "Python version used by the CI job.", "3.13"),
    ConfigKey(
        "requirementsFile",
        "string",
        "Requirements file the CI job installs; it must bring dvc[gs].",
        "requirements.txt",
    ),
    ConfigKey("keyRotation", "string", "Change the value to rotate the service-account key.", ""),
    ConfigKey(
        "protectBucket",
        "boolean",
        "Keep the bucket and its data when the stack is destroyed.",
        True,
    ),
    ConfigKey(
        "protectedVariable",
        "boolean",
        "GitLab only: make the key variable protected (visible to protected branches and tags only).",
        False,
    ),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the program needs, validated; derived defaults already resolved."""

    gcp_project: str
    """Google Cloud project id (`gcp:project`)."""
    stack: str
    """Pulumi stack name: one team."""
    platform: Platform
    """CI platform."""
    repository: str
    """GitHub `owner/name` or GitLab `group[/subgroup...]/project`."""
    branch: str
    """Branch the CI file is committed to and that triggers the run."""
    bucket_name: str
    """DVC remote bucket."""
    bucket_location: str
    """Bucket location."""
    dvc_remote_path: str
    """Path inside the bucket used as DVC remote."""
    service_account_id: str
    """CI service-account id (the part before `@`)."""
    access: Access
    """Bucket access preset."""
    auth: Auth
    """Credential mode."""
    secret_name: str
    """GitHub secret / GitLab variable holding the key."""
    ci_file: str
    """Path of the committed CI file in the repository."""
    python_version: str
    """Python version of the CI job."""
    requirements_file: str
    """Requirements file the CI job installs."""
    key_rotation: str
    """Keeper of the key: a new value rotates it."""
    protect_bucket: bool
    """Retain the bucket on `pulumi destroy`."""
    protected_variable: bool
    """GitLab: protected variable."""
    platform_url: str | None
    """`github:baseUrl` / `gitlab:baseUrl` of the platform in use; None for github.com / gitlab.com."""

    @property
    def dvc_remote_url(self) -> str:
        return f"gs://{self.bucket_name}/{self.dvc_remote_path}"

    @property
    def google_apis(self) -> tuple[str, ...]:
        """Google APIs the stack's resources need; keyless CI also exchanges tokens (STS) and
        impersonates the service account (IAM Credentials)."""
        apis = ("storage.googleapis.com", "iam.googleapis.com")
        if self.auth == "workload-identity":
            apis += ("sts.googleapis.com", "iamcredentials.googleapis.com")
        return apis

    @property
    def oidc_audience(self) -> str:
        """Audience of the GitLab ID token; the federation accepts only this one."""
        return f"mlops-ci/{self.gcp_project}/{self.stack}"

    @property
    def labels(self) -> dict[str, str]:
        """Labels for Google Cloud resources (values: lowercase, digits, '-', '_', <= 63)."""
        return {"managed-by": PROJECT, "stack": re.sub(r"[^a-z0-9_-]", "-", self.stack.lower())[:63]}


class ConfigError(pulumi.RunError):
    """Every configuration problem of a stack, reported at once."""

    def __init__(self, stack: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"stack {stack!r} has {len(problems)} configuration {noun}; nothing was created:\n{lines}")


# --- Rules: each returns the broken rule as text, or None when the value is valid. ---

_GCP_RESOURCE_ID = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")
_BUCKET_CHARS = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
_GITHUB_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
_GITHUB_REPO = re.compile(r"[A-Za-z0-9._-]{1,100}")
_GITLAB_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_SAFE_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_BRANCH_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_LOCATION = re.compile(r"[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]")
_PYTHON_VERSION = re.compile(r"3\.[0-9]{1,2}")
_VARIABLE_NAME = re.compile(r"[A-Za-z0-9_]+")
_BASE_URL = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?")


def gcp_project_problem(value: str) -> str | None:
    if not 6 <= len(value) <= 30 or not _GCP_RESOURCE_ID.fullmatch(value):
        return "a project id has 6-30 characters: lowercase letters, digits and '-', starting with a letter, not ending with '-'"
    return None


def bucket_name_problem(value: str) -> str | None:
    rules = []
    if not _BUCKET_CHARS.fullmatch(value):
        rules.append("only lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit")
    if "." in value:
        if len(value) > 222 or any(not 1 <= len(part) <= 63 for part in value.split(".")):
            rules.append("3-222 characters with dots, each dot-separated part 1-63")
    elif not 3 <= len(value) <= 63:
        rules.append("3-63 characters")
    try:
        ipaddress.ip_address(value)
        rules.append("not an IP address")
    except ValueError:
        pass
    if value.startswith("goog") or "google" in value:
        rules.append("no 'goog' prefix and no 'google' anywhere")
    return "GCS bucket names: " + "; ".join(rules) if rules else None


def service_account_id_problem(value: str) -> str | None:
    if not 6 <= len(value) <= 30 or not _GCP_RESOURCE_ID.fullmatch(value):
        return "service-account ids have 6-30 characters matching [a-z][a-z0-9-]*[a-z0-9]"
    return None


def github_repository_problem(value: str) -> str | None:
    owner, _, name = value.partition("/")
    if not _GITHUB_OWNER.fullmatch(owner) or not _GITHUB_REPO.fullmatch(name) or name in (".", "..") or name.endswith(".git"):
        return (
            "a GitHub repository is owner/name: owner 1-39 letters, digits or single inner '-';"
            " name 1-100 letters, digits, '.', '_', '-', not ending in .git"
        )
    return None


def gitlab_project_problem(value: str) -> str | None:
    segments = value.split("/")
    if (
        len(segments) < 2
        or not all(_GITLAB_SEGMENT.fullmatch(s) and len(s) <= 255 for s in segments)
        or any(s.endswith((".git", ".atom")) for s in segments)
    ):
        return (
            "a GitLab project path is group[/subgroup...]/project: each part letters, digits, '_', '-', '.',"
            " not starting with '-' or '.', not ending in .git or .atom"
        )
    return None


def branch_problem(value: str) -> str | None:
    segments = value.split("/")
    if not all(_BRANCH_SEGMENT.fullmatch(s) and not s.endswith((".", ".lock")) for s in segments) or ".." in value:
        return (
            "a branch name is parts separated by '/', each of letters, digits, '_', '-', '.',"
            " not starting with '.' or '-', not ending with '.' or '.lock', no '..'"
        )
    return None


def relative_path_problem(value: str) -> str | None:
    segments = value.split("/")
    # A part may start with one dot (`.github`), never be `.` or `..`.
    if not all(_SAFE_PATH_SEGMENT.fullmatch(s.removeprefix(".")) for s in segments):
        return "a relative path: parts of letters, digits, '_', '-', '.' joined by '/' (no '..', no leading '/', no spaces)"
    return None


def github_secret_name_problem(value: str) -> str | None:
    if not _VARIABLE_NAME.fullmatch(value) or value[0].isdigit() or value.upper().startswith("GITHUB_"):
        return "GitHub secret names use letters, digits and '_', do not start with a digit or with GITHUB_"
    return None


def gitlab_variable_key_problem(value: str) -> str | None:
    if not _VARIABLE_NAME.fullmatch(value) or len(value) > 255:
        return "GitLab variable keys have 1-255 letters, digits and '_'"
    return None


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str | None]:
    def problem(value: str) -> str | None:
        return None if value in choices else "one of " + ", ".join(choices)

    return problem


def _matches(pattern: re.Pattern[str], rule: str) -> Callable[[str], str | None]:
    def problem(value: str) -> str | None:
        return None if pattern.fullmatch(value) else rule

    return problem


def github_ci_file_problem(value: str) -> str | None:
    if not re.fullmatch(r"\.github/workflows/[A-Za-z0-9_.-]+\.ya?ml", value):
        return "a GitHub workflow lives directly in .github/workflows/ and ends in .yml or .yaml"
    return None


def gitlab_ci_file_problem(value: str) -> str | None:
    if relative_path_problem(value) or not value.endswith((".yml", ".yaml")):
        return "a relative path of the repository ending in .yml or .yaml"
    return None


# --- Derived defaults: always valid under the rules above, whatever the stack name. ---


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

_KEYS_BY_NAME = {key.name: key for key in CONFIG_KEYS}


def _default_text(name: str) -> str:
    """The declared default as the CLI hands it to the program (`true`, `''`)."""
    default = _KEYS_BY_NAME[name].default
    return str(default).lower() if isinstance(default, bool) else str(default)


def _present_keys() -> set[str]:
    # Pulumi offers no public listing of config keys; the runtime keeps them in these two places.
    return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())


def load_settings() -> Settings:
    """Read and validate the stack's configuration; raise `ConfigError` with every problem."""
    stack = pulumi.get_stack()
    config = pulumi.Config(PROJECT)
    problems: list[str] = []

    def text(name: str) -> str:
        value = config.get(name)
        if value is None:
            default = _KEYS_BY_NAME[name].default
            return default if isinstance(default, str) else ""
        return value

    def flag(name: str) -> bool:
        raw = config.get(name)
        if raw is None:
            return bool(_KEYS_BY_NAME[name].default)
        if raw.lower() not in ("true", "false"):
            problems.append(f"{PROJECT}:{name} = {raw!r}: must be true or false")
            return False
        return raw.lower() == "true"

    def check(key: str, value: str, rule: Callable[[str], str | None]) -> None:
        broken = rule(value)
        if broken:
            problems.append(f"{key} = {value!r}: {broken}")

    for present in sorted(_present_keys()):
        namespace, _, name = present.partition(":")
        if namespace == PROJECT and name not in _KEYS_BY_NAME:
            close = difflib.get_close_matches(name, list(_KEYS_BY_NAME), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{present}: unknown key{hint}")

    gcp_project = pulumi.Config("gcp").get("project") or ""
    if gcp_project:
        check("gcp:project", gcp_project, gcp_project_problem)
    else:
        problems.append("gcp:project: required (the Google Cloud project id)")

    for required in ("platform", "repository"):
        if not config.get(required):
            problems.append(f"{PROJECT}:{required}: required ({_KEYS_BY_NAME[required].description})")

    platform = text("platform")
    if platform:
        check(f"{PROJECT}:platform", platform, _one_of(PLATFORMS))
    repository = text("repository")
    if repository and platform == "github":
        check(f"{PROJECT}:repository", repository, github_repository_problem)
    elif repository and platform == "gitlab":
        check(f"{PROJECT}:repository", repository, gitlab_project_problem)

    branch = text("branch")
    check(f"{PROJECT}:branch", branch, branch_problem)

    bucket_name = text("bucketName")
    if bucket_name:
        check(f"{PROJECT}:bucketName", bucket_name, bucket_name_problem)
    elif gcp_project and not gcp_project_problem(gcp_project):
        # Derived names satisfy the bucket rules by construction (a test proves it).
        bucket_name = derive_bucket_name(gcp_project, stack)
    bucket_location = text("bucketLocation")
    check(
        f"{PROJECT}:bucketLocation",
        bucket_location,
        _matches(_LOCATION, "a location such as europe-west6, EU or nam4"),
    )
    dvc_remote_path = text("dvcRemotePath")
    check(f"{PROJECT}:dvcRemotePath", dvc_remote_path, relative_path_problem)

    service_account_id = text("serviceAccountId")
    if service_account_id:
        check(f"{PROJECT}:serviceAccountId", service_account_id, service_account_id_problem)
    else:
        service_account_id = derive_service_account_id(stack)

    access = text("access")
    check(f"{PROJECT}:access", access, _one_of(ACCESS_PRESETS))
    auth = text("auth")
    check(f"{PROJECT}:auth", auth, _one_of(AUTH_MODES))
    platform_url = pulumi.Config(platform).get("baseUrl") if platform in PLATFORMS else None
    if platform_url:
        check(f"{platform}:baseUrl", platform_url, _matches(_BASE_URL, "an https:// URL such as https://gitlab.example.com"))
    if auth == "workload-identity":
        for key_only in ("secretName", "keyRotation", "protectedVariable"):
            # The CLI merges every declared default into the config: "set" means "not the default".
            if config.get(key_only) not in (None, _default_text(key_only)):
                problems.append(f"{PROJECT}:{key_only}: applies to auth key only; workload-identity creates no key")
        if platform == "github" and platform_url:
            problems.append(
                "github:baseUrl: workload-identity trusts github.com's OIDC issuer only;"
                " use auth key with GitHub Enterprise Server"
            )

    secret_name = text("secretName")
    ci_file = text("ciFile")
    if platform == "github":
        check(f"{PROJECT}:secretName", secret_name, github_secret_name_problem)
        ci_file = ci_file or DEFAULT_CI_FILES["github"]
        check(f"{PROJECT}:ciFile", ci_file, github_ci_file_problem)
    elif platform == "gitlab":
        check(f"{PROJECT}:secretName", secret_name, gitlab_variable_key_problem)
        ci_file = ci_file or DEFAULT_CI_FILES["gitlab"]
        check(f"{PROJECT}:ciFile", ci_file, gitlab_ci_file_problem)

    python_version = text("pythonVersion")
    check(
        f"{PROJECT}:pythonVersion",
        python_version,
        _matches(_PYTHON_VERSION, "a Python 3 minor version such as 3.13"),
    )
    requirements_file = text("requirementsFile")
    check(f"{PROJECT}:requirementsFile", requirements_file, relative_path_problem)

    protect_bucket = flag("protectBucket")
    protected_variable = flag("protectedVariable")
    if protected_variable and platform == "github":
        problems.append(f"{PROJECT}:protectedVariable = 'true': applies to platform gitlab only")

    if problems:
        raise ConfigError(stack, problems)

    return Settings(
        gcp_project=gcp_project,
        stack=stack,
        platform=platform,  # type: ignore[arg-type]  # checked above
        repository=repository,
        branch=branch,
        bucket_name=bucket_name,
        bucket_location=bucket_location,
        dvc_remote_path=dvc_remote_path,
        service_account_id=service_account_id,
        access=access,  # type: ignore[arg-type]
        auth=auth,  # type: ignore[arg-type]
        secret_name=secret_name,
        ci_file=ci_file,
        python_version=python_version,
        requirements_file=requirements_file,
        key_rotation=text("keyRotation"),
        protect_bucket=protect_bucket,
        protected_variable=protected_variable,
        platform_url=platform_url or None,
    )
