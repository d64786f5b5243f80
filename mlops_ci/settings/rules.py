"""Naming rules of Google Cloud and the CI platforms. Each rule returns the broken rule as text,
or None when the value is valid."""

from __future__ import annotations

import base64
import binascii
import difflib
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterable

from mlops_ci.settings.locations import LOCATIONS

Rule = Callable[[str], "str | None"]

_GCP_RESOURCE_ID = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")
_BUCKET_CHARS = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
_SAFE_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_BRANCH_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_BASE_URL = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?")
VARIABLE_NAME = re.compile(r"[A-Za-z0-9_]+")
# The CLI's rule for stack names (`validateStackName` of its backends).
STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def stack_name_problem(value: str) -> str | None:
    """The CLI's stack-name rule: 1 to 100 characters of [A-Za-z0-9_.-]."""
    if STACK_NAME.fullmatch(value):
        return None
    return "a stack name is 1 to 100 characters of [A-Za-z0-9_.-] (letters, digits, hyphens, underscores, periods)"


def escaped(text: str) -> str:
    """`text` safe to print, in ASCII: every character a terminal would act on (newline, escape
    sequences, C1 and bidirectional controls) and every other non-ASCII one (look-alike letters,
    combining marks, blank letters such as U+3164) shown as its Python escape, the rest as is."""
    return "".join(
        char if char.isascii() and char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text
    )


def terminal_text(text: str) -> str:
    """Lines of `text` for a terminal: each line `escaped`, the line breaks kept."""
    return "\n".join(escaped(line) for line in text.split("\n"))


def shown(value: str) -> str:
    """A value quoted for a message, in ASCII (Python's `ascii`: quotes, and every unprintable or
    non-ASCII character escaped), so what looks like `admin` is `admin`."""
    return ascii(value)


def did_you_mean(text: str, known: Iterable[str]) -> str:
    """` (did you mean X?)` for the closest of `known`, compared as the ASCII it looks like."""
    candidates = {unicodedata.normalize("NFKC", k).casefold(): k for k in known}
    close = difflib.get_close_matches(unicodedata.normalize("NFKC", text).casefold(), list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {candidates[close[0]]}?)" if close else ""


def non_ascii(text: str) -> str:
    """What is not ASCII in `text`, by name (`U+2010 HYPHEN at 6`), for look-alikes."""
    return ", ".join(
        f"U+{ord(char):04X} {unicodedata.name(char, 'unnamed')} at {index}"
        for index, char in enumerate(text)
        if not char.isascii()
    )


def printable_problem(value: str) -> str | None:
    """Control and invisible characters break the resources a value shapes (descriptions, files, URLs)."""
    if value.isprintable():
        return None
    return "no control, format or other invisible characters (newline, tab, escape, bidirectional marks)"


def one_of(choices: tuple[str, ...]) -> Rule:
    def problem(value: str) -> str | None:
        return None if value in choices else "one of " + ", ".join(choices)

    return problem


def matches(pattern: str, rule: str) -> Rule:
    compiled = re.compile(pattern)

    def problem(value: str) -> str | None:
        return None if compiled.fullmatch(value) else rule

    return problem


# Words Google refuses in a project id (https://cloud.google.com/resource-manager/docs/creating-managing-projects:
# "cannot contain restricted strings, such as google, null, undefined, and ssl").
RESTRICTED_PROJECT_WORDS = ("google", "null", "undefined", "ssl")


def gcp_project_problem(value: str) -> str | None:
    if not 6 <= len(value) <= 30 or not _GCP_RESOURCE_ID.fullmatch(value):
        return "a project id has 6-30 characters: lowercase letters, digits and '-', starting with a letter, not ending with '-'"
    if restricted := [word for word in RESTRICTED_PROJECT_WORDS if word in value]:
        words = ", ".join(RESTRICTED_PROJECT_WORDS)
        return f"a project id cannot contain {', '.join(restricted)} (Google's restricted words: {words})"
    return None


# Bucket names may not contain "google" or close misspellings such as "g00gle"
# (https://cloud.google.com/storage/docs/buckets#naming): digits that look like letters read as
# those letters, separators dropped, then "google" with one letter dropped, doubled or swapped.
_LOOKALIKE_LETTERS = str.maketrans({"0": "o", "1": "l", "3": "e", "6": "g", "9": "g"})
_GOOGLE = "google"
_GOOGLE_MISSPELLINGS = frozenset(
    {_GOOGLE}
    | {_GOOGLE[:i] + _GOOGLE[i + 1 :] for i in range(1, len(_GOOGLE) - 1)}
    | {_GOOGLE[:i] + _GOOGLE[i] + _GOOGLE[i:] for i in range(len(_GOOGLE))}
    | {_GOOGLE[:i] + _GOOGLE[i + 1] + _GOOGLE[i] + _GOOGLE[i + 2 :] for i in range(len(_GOOGLE) - 1)}
)
_IP_LIKE = re.compile(r"[0-9]+(\.[0-9]+){3}")


def spells_google(value: str) -> bool:
    squashed = re.sub(r"[-_.]", "", value.lower()).translate(_LOOKALIKE_LETTERS)
    return any(spelling in squashed for spelling in _GOOGLE_MISSPELLINGS)


def _bucket_length_problem(value: str) -> str | None:
    if "." in value:
        if len(value) > 222 or any(not 1 <= len(part) <= 63 for part in value.split(".")):
            return "3-222 characters with dots, each dot-separated part 1-63"
    elif not 3 <= len(value) <= 63:
        return "3-63 characters"
    return None


def bucket_name_problem(value: str) -> str | None:
    rules = [
        "only lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        if not _BUCKET_CHARS.fullmatch(value)
        else None,
        _bucket_length_problem(value),
        "not an IP address in dotted-decimal form" if _IP_LIKE.fullmatch(value) else None,
        "no 'goog' prefix, and no 'google' or close misspelling of it (g00gle, gogle, googel) anywhere"
        if value.startswith("goog") or spells_google(value)
        else None,
    ]
    broken = [rule for rule in rules if rule]
    return "GCS bucket names: " + "; ".join(broken) if broken else None


def bucket_location_problem(value: str) -> str | None:
    if value.lower() in LOCATIONS:
        return None
    return (
        "a Cloud Storage location: a region (europe-west6), a dual-region (EUR4) or a multi-region (EU);"
        f" the list is mlops_ci/settings/locations.py{did_you_mean(value.lower(), LOCATIONS)}"
    )


def service_account_id_problem(value: str) -> str | None:
    if not 6 <= len(value) <= 30 or not _GCP_RESOURCE_ID.fullmatch(value):
        return "service-account ids have 6-30 characters matching [a-z][a-z0-9-]*[a-z0-9]"
    return None


# A provider's full resource name (IAM API `projects.locations.workloadIdentityPools.providers`): pool and
# provider ids of 4-32 lowercase letters, digits and '-' (a pool id never starts with gcp-).
_PROVIDER_NAME = re.compile(
    r"projects/[0-9]{1,20}/locations/global/workloadIdentityPools/(?!gcp-)[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32}"
)


def workload_identity_provider_problem(value: str) -> str | None:
    if not _PROVIDER_NAME.fullmatch(value):
        return (
            "a provider's full name, projects/<project number>/locations/global/workloadIdentityPools/<pool>/providers/"
            "<provider> (`gcloud iam workload-identity-pools providers describe ... --format 'value(name)'`)"
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


def base_url_problem(value: str) -> str | None:
    """Never quotes `value`: a URL with credentials must not reach a log."""
    url_rule = "an https:// URL such as https://gitlab.example.com/api/v4/ (no '..', query or fragment)"
    try:
        parsed = urllib.parse.urlsplit(value)
    except ValueError:  # urlsplit refuses an unclosed '[' or characters NFKC normalisation changes
        return url_rule
    if parsed.username is not None or parsed.password is not None:
        return "must not carry credentials (user:password@): put the token in the platform's token key, encrypted"
    # The pattern admits no '?' or '#': no query or fragment.
    if not _BASE_URL.fullmatch(value) or ".." in parsed.path.split("/"):
        return url_rule
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


# The files of the team's DVC pipeline: a CI file there would overwrite one (and `pulumi destroy`
# delete it), and a requirements file there is no requirements file.
PIPELINE_FILES = ("dvc.yaml", "dvc.lock", "params.yaml", ".gitignore", ".dvcignore")
# The folder of the job scripts stacks commit beside their CI files (mlops_ci/ci/files.py job_script_path).
JOB_SCRIPT_FOLDER = ".mlops-ci"


def pipeline_file_problem(value: str) -> str | None:
    parts = value.lower().split("/")
    if parts[-1] in PIPELINE_FILES or parts[-1].endswith(".dvc") or ".dvc" in parts[:-1]:
        return (
            "not a file of the team's DVC pipeline (dvc.yaml, dvc.lock, params.yaml, .gitignore, .dvcignore, *.dvc, .dvc/...):"
            " the stack commits its CI file and `pulumi destroy` deletes it"
        )
    if parts[0] == JOB_SCRIPT_FOLDER:
        return f"not under {JOB_SCRIPT_FOLDER}/: the stack commits its job script there and `pulumi destroy` deletes it"
    return None


KEY_ROTATION = re.compile(r"[A-Za-z0-9._:/+-]{1,64}")


def key_rotation_problem(value: str) -> str | None:
    # The value lands in the key's keepers and in the GitLab report token's description (at most
    # 255 characters with its text): a short label such as a month.
    if not KEY_ROTATION.fullmatch(value):
        return "a label such as 2026-11: 1-64 letters, digits, '.', '_', ':', '/', '+', '-'"
    return None


# Environments GitHub creates and runs itself: the stack would take one over, and delete it on destroy.
GITHUB_MANAGED_ENVIRONMENTS = ("github-pages", "copilot")


def github_environment_problem(value: str) -> str | None:
    """GitHub: at most 255 characters, unique regardless of case; the name is a path segment of the
    API (`/repos/{owner}/{repo}/environments/{name}`), so `.` and `..` would name another resource."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,255}", value) or not value.strip("."):
        return "an environment name of 1-255 letters, digits, '_', '.', '-', not only dots"
    if value.lower() in GITHUB_MANAGED_ENVIRONMENTS:
        return f"not an environment GitHub manages itself ({', '.join(GITHUB_MANAGED_ENVIRONMENTS)})"
    return None


# Pulumi's ciphertext of a `secure:` value (sdk/go/common/resource/config/crypt.go): the passphrase
# and cloud-KMS providers write `v1:<base64 nonce>:<base64 AES-256-GCM ciphertext>` (a 12-byte
# nonce, at least the 16-byte tag); Pulumi Cloud's own provider an opaque base64 text.
_GCM_NONCE_BYTES, _GCM_TAG_BYTES = 12, 16


def _base64_bytes(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _plain_text(sealed: bytes) -> bool:
    """Whether base64 `sealed` is text: ciphertext is random bytes, which are all printable ASCII
    once in 10 million for the shortest (16 bytes), and never for a token's (40 bytes and more)."""
    return all(0x20 <= byte < 0x7F for byte in sealed)


PLAIN_TEXT_IN_BASE64 = "base64 of plain text, not ciphertext: anyone who decodes it reads it"


def ciphertext_problem(value: str, symmetric: bool) -> str | None:
    """Why `value` cannot be what `pulumi config set --secret` wrote, or None. `symmetric`: the
    stack file has an `encryptionsalt` (or `encryptedkey`), so only the `v1:` form decrypts."""
    parts = value.split(":")
    if len(parts) == 3 and parts[0] == "v1":
        nonce, sealed = _base64_bytes(parts[1]), _base64_bytes(parts[2])
        if nonce is None or len(nonce) != _GCM_NONCE_BYTES or sealed is None or len(sealed) < _GCM_TAG_BYTES:
            return "v1: but not a nonce and a ciphertext in base64"
        return PLAIN_TEXT_IN_BASE64 if _plain_text(sealed) else None
    if symmetric:
        return "the stack file has an encryptionsalt, so its secrets are v1:<nonce>:<ciphertext>"
    decoded = _base64_bytes(value)
    if decoded is None or len(decoded) < _GCM_TAG_BYTES:
        return "neither v1:<nonce>:<ciphertext> nor base64"
    return PLAIN_TEXT_IN_BASE64 if _plain_text(decoded) else None
