"""Naming rules of Google Cloud and the CI platforms. Each rule returns the broken rule as text,
or None when the value is valid."""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Callable

Rule = Callable[[str], "str | None"]

_GCP_RESOURCE_ID = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")
_BUCKET_CHARS = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
_SAFE_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_BRANCH_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_BASE_URL = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?")
VARIABLE_NAME = re.compile(r"[A-Za-z0-9_]+")


def one_of(choices: tuple[str, ...]) -> Rule:
    def problem(value: str) -> str | None:
        return None if value in choices else "one of " + ", ".join(choices)

    return problem


def matches(pattern: str, rule: str) -> Rule:
    compiled = re.compile(pattern)

    def problem(value: str) -> str | None:
        return None if compiled.fullmatch(value) else rule

    return problem


def gcp_project_problem(value: str) -> str | None:
    if not 6 <= len(value) <= 30 or not _GCP_RESOURCE_ID.fullmatch(value):
        return "a project id has 6-30 characters: lowercase letters, digits and '-', starting with a letter, not ending with '-'"
    return None


def bucket_name_problem(value: str) -> str | None:
    rules: list[str] = []
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


def base_url_problem(value: str) -> str | None:
    """Never quotes `value`: a URL with credentials must not reach a log."""
    parsed = urllib.parse.urlsplit(value)
    if parsed.username is not None or parsed.password is not None:
        return "must not carry credentials (user:password@): put the token in the platform's token key, encrypted"
    if not _BASE_URL.fullmatch(value) or ".." in parsed.path.split("/") or parsed.query or parsed.fragment:
        return "an https:// URL such as https://gitlab.example.com/api/v4/ (no '..', query or fragment)"
    return None


# The CI variables the committed jobs read, besides the key's own (`mlops-ci:secretName`): the
# keyless settings (auth mode `workload-identity`), GitLab's ID token, and the report's token.
PROVIDER_VARIABLE = "GCP_WORKLOAD_IDENTITY_PROVIDER"
SERVICE_ACCOUNT_VARIABLE = "GCP_SERVICE_ACCOUNT"
ID_TOKEN_VARIABLE = "GCP_ID_TOKEN"
REPORT_TOKEN_VARIABLE = "MLOPS_CI_REPORT_TOKEN"

# Names a CI job reads from its environment (or the platform reserves): a secret or variable of
# the same name would shadow it and break or subvert the job.
_RESERVED_VARIABLES = frozenset(
    {
        "PATH", "HOME", "SHELL", "PWD", "USER", "TMPDIR", "LANG", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
        "GOOGLE_APPLICATION_CREDENTIALS",
        PROVIDER_VARIABLE, SERVICE_ACCOUNT_VARIABLE, ID_TOKEN_VARIABLE, REPORT_TOKEN_VARIABLE,
    }
)  # fmt: skip
_RESERVED_PREFIXES = ("CI_", "GITLAB_", "GITHUB_", "RUNNER_", "ACTIONS_", "FF_", "DOCKER_", "LD_", "PIP_", "DVC_", "GIT_")


def reserved_variable_problem(value: str) -> str | None:
    upper = value.upper()
    if upper in _RESERVED_VARIABLES or upper.startswith(_RESERVED_PREFIXES) or value[:1].isdigit():
        return (
            "must not start with a digit nor shadow a name the job or the platform uses"
            f" ({', '.join(sorted(_RESERVED_VARIABLES))}, or {'*, '.join(_RESERVED_PREFIXES)}*)"
        )
    return None


def inside_git_directory(value: str) -> bool:
    return ".git" in value.split("/")
