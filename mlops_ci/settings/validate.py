"""Validate: every rule over the parsed configuration, each problem naming its key and the rule.

A key's own rule is a row of `RULES`; a rule across keys is a named function of `CROSS_KEY_RULES`.
`validate` runs them all, so a stack hears of every problem at once.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable

from mlops_ci.platforms import PLATFORMS
from mlops_ci.settings.model import ACCESS_PRESETS, AUTH_MODES, KEYLESS_MODES, stack_label
from mlops_ci.settings.namespaces import environment_problems, namespace_problems, tags_written_as_text
from mlops_ci.settings.parse import PROJECT, Parsed
from mlops_ci.settings.rules import (
    Rule,
    base_url_problem,
    branch_problem,
    bucket_location_problem,
    bucket_name_problem,
    gcp_project_problem,
    github_environment_problem,
    key_rotation_problem,
    matches,
    one_of,
    pipeline_file_problem,
    printable_problem,
    relative_path_problem,
    service_account_id_problem,
    shown,
    workload_identity_provider_problem,
)
from mlops_ci.settings.schema import SCHEMA
from mlops_ci.settings.stack_file import config_entries, quote_it_problems, stack_file

# The rule of each `mlops-ci:` key that has one, whatever the platform. Keys in DERIVED_WHEN_EMPTY
# are checked only when set: empty means a name derived from the stack, valid by construction.
RULES: dict[str, Rule] = {
    "platform": one_of(tuple(PLATFORMS)),
    "branch": branch_problem,
    "existingBucket": bucket_name_problem,
    "bucketName": bucket_name_problem,
    "bucketLocation": bucket_location_problem,
    "dvcRemotePath": relative_path_problem,
    "serviceAccountId": service_account_id_problem,
    "access": one_of(ACCESS_PRESETS),
    "auth": one_of(AUTH_MODES),
    "keylessMode": one_of(KEYLESS_MODES),
    "workloadIdentityProvider": workload_identity_provider_problem,
    "pythonVersion": matches(r"3\.[0-9]{1,2}", "a Python 3 minor version such as 3.13"),
    "requirementsFile": relative_path_problem,
    "keyRotation": key_rotation_problem,
    "githubEnvironment": github_environment_problem,
}
DERIVED_WHEN_EMPTY = (
    "existingBucket", "bucketName", "serviceAccountId", "githubEnvironment", "keyRotation", "workloadIdentityProvider"
)  # fmt: skip
# Keys about the stack's own bucket: an existing bucket is the team's, not the stack's to shape.
OWN_BUCKET_ONLY = ("bucketName", "bucketLocation", "protectBucket")
# In a pattern of Pulumi.yaml's `platform` section: the stack's label.
PATTERN_STACK = "{stack}"
# Keys about the service-account key: refused in keyless mode, where no key exists.
KEY_ONLY = ("secretName", "keyRotation", "protectedVariable", "hiddenVariable", "githubEnvironment")
# Keys about the federation: refused in key mode, where there is none.
KEYLESS_ONLY = ("trustBranchOnly", "keylessMode", "workloadIdentityProvider")
# Keys about the service account: refused in direct keyless mode, which creates none.
SERVICE_ACCOUNT_ONLY = ("serviceAccountId",)


def value_problems(parsed: Parsed) -> list[str]:
    """Each key against its own rule."""
    problems: list[str] = []
    for name, rule in RULES.items():
        value = parsed.texts[name]
        if not value and (name in DERIVED_WHEN_EMPTY or SCHEMA.key(name).default is None):
            continue  # derived from the stack, or reported as required while parsing
        if broken := rule(value):
            problems.append(f"{PROJECT}:{name} = {shown(value)}: {broken}")
    return problems


def for_this_stack(parsed: Parsed, declared: tuple[str, ...]) -> tuple[list[str], str]:
    """Patterns of Pulumi.yaml's `platform` section with `{stack}` made this stack's label, and how a
    refusal names them: as declared and, where they differ, for this stack."""
    patterns = [pattern.replace(PATTERN_STACK, stack_label(parsed.stack)) for pattern in declared]
    here = f", for this stack {', '.join(patterns)}" if patterns != list(declared) else ""
    return patterns, f"{', '.join(declared) or 'none'}{here}"


def gcp_project_problems(parsed: Parsed) -> list[str]:
    """The project's own rules, and (`platform.projects`; none listed: any) a project the platform lets
    stacks use with its credentials: never its own, where the state or other teams' resources live."""
    project = parsed.gcp_project
    if not project:
        return ["gcp:project: required (the Google Cloud project id)"]
    broken = printable_problem(project) or gcp_project_problem(project)
    if broken:
        return [f"gcp:project = {shown(project)}: {broken}"]
    patterns, named = for_this_stack(parsed, SCHEMA.projects)
    if not patterns or any(fnmatch.fnmatchcase(project, pattern) for pattern in patterns):
        return []
    return [
        f"gcp:project = {shown(project)}: not a project the platform lets this stack use (Pulumi.yaml platform.projects:"
        f" {named}); ask whoever runs `pulumi up` to add it"
    ]


def existing_bucket_excludes_own_bucket_keys(parsed: Parsed) -> list[str]:
    if not parsed.texts["existingBucket"]:
        return []
    return [
        f"{PROJECT}:existingBucket: cannot be combined with {PROJECT}:{name}, which shapes a bucket the stack creates"
        for name in OWN_BUCKET_ONLY
        if name in parsed.set_keys
    ]


def repository_allowed(parsed: Parsed) -> list[str]:
    """Where `pulumi up` commits the CI file and writes the credential with the platform's token: a
    repository the platform allows (`platform.repositories`; none listed: any), never another team's
    or the platform's own. Compared regardless of case, as GitHub and GitLab compare paths."""
    repository = parsed.texts["repository"]
    patterns, named = for_this_stack(parsed, SCHEMA.repositories)
    if not repository or not patterns or any(fnmatch.fnmatchcase(repository.lower(), p.lower()) for p in patterns):
        return []
    return [
        f"{PROJECT}:repository = {shown(repository)}: not a repository the platform lets this stack commit to (Pulumi.yaml"
        f" platform.repositories: {named}); ask whoever runs `pulumi up` to add it"
    ]


def existing_bucket_allowed(parsed: Parsed) -> list[str]:
    """A stack may grant its CI only on its own bucket or on a bucket the platform allows: never on
    the platform's state bucket or another team's, whatever the credentials of `pulumi up` can reach.
    `{stack}` in a pattern stands for the stack's label (its name, or that name made a valid label),
    so `acme-{stack}-dvc` lets each stack use its own bucket only."""
    bucket = parsed.texts["existingBucket"]
    backend = os.environ.get("PULUMI_BACKEND_URL", "")
    if bucket and backend.startswith("gs://") and backend[len("gs://") :].partition("/")[0] == bucket:
        return [
            f"{PROJECT}:existingBucket = {shown(bucket)}: the bucket of Pulumi's state (PULUMI_BACKEND_URL {shown(backend)}):"
            " never a DVC remote, whatever Pulumi.yaml platform.existingBuckets allows"
            " (its CI would read or rewrite every stack's state)"
        ]
    patterns, named = for_this_stack(parsed, SCHEMA.existing_buckets)
    if not bucket or any(fnmatch.fnmatchcase(bucket, pattern) for pattern in patterns):
        return []
    return [
        f"{PROJECT}:existingBucket = {shown(bucket)}: not a bucket the platform lets this stack use (Pulumi.yaml"
        f" platform.existingBuckets: {named}); ask whoever runs `pulumi up` to add it"
    ]


def key_only_keys_need_a_key(parsed: Parsed) -> list[str]:
    if not parsed.keyless:
        return []
    # Keys that also shape the platform's report token (GitLab's) still apply when it has one.
    platform = parsed.platform
    token_keys = platform.report_token_keys if platform else ()
    return [
        f"{PROJECT}:{name}: applies to auth key only; workload-identity creates no key"
        + (f" (and to the report token, with {PROJECT}:report true)" if name in token_keys else "")
        for name in KEY_ONLY
        if name in parsed.set_keys and not (name in token_keys and parsed.flags["report"])
    ]


def keyless_only_keys_need_keyless(parsed: Parsed) -> list[str]:
    if parsed.keyless:
        return []
    return [
        f"{PROJECT}:{name}: applies to auth workload-identity only; auth key has no federation to restrict"
        for name in KEYLESS_ONLY
        if name in parsed.set_keys
    ]


def service_account_keys_need_one(parsed: Parsed) -> list[str]:
    """A service account's keys under direct keyless mode; with `auth` left to its default, a stack
    file that names its account was most likely deployed with a key (the earlier default): say auth."""
    named = [name for name in SERVICE_ACCOUNT_ONLY if name in parsed.set_keys]
    if not parsed.direct or not named:
        return []
    problems = [
        f"{PROJECT}:{name}: applies to a service account; keylessMode direct creates none (keylessMode impersonation does)"
        for name in named
    ]
    if "auth" in parsed.defaulted:
        problems.insert(
            0,
            f"{PROJECT}:auth: not set, and the stack file names a service account ({', '.join(named)}), which this"
            " release's default (keyless, direct) deletes: a stack deployed with a key keeps it with"
            f" `{PROJECT}:auth: key`; to switch, set `{PROJECT}:auth: workload-identity` with `{PROJECT}:keylessMode`"
            " impersonation (keeps the account) or direct (without the account's keys)",
        )
    return problems


def workload_identity_provider_allowed(parsed: Parsed) -> list[str]:
    """A shared pool the platform team lists (`platform.workloadIdentityProviders`; none listed: none):
    the stack grants this repository on it, so only a pool whose provider the platform vouches for."""
    provider = parsed.texts["workloadIdentityProvider"]
    patterns, named = for_this_stack(parsed, SCHEMA.workload_identity_providers)
    if not provider or not parsed.keyless or any(fnmatch.fnmatchcase(provider, pattern) for pattern in patterns):
        return []
    return [
        f"{PROJECT}:workloadIdentityProvider = {shown(provider)}: not a provider the platform lets this stack share"
        f" (Pulumi.yaml platform.workloadIdentityProviders: {named}); ask whoever runs `pulumi up` to add it"
    ]


def shared_provider_keeps_its_condition(parsed: Parsed) -> list[str]:
    """The branch restriction is a condition of the stack's own provider: a shared one's is the platform team's."""
    if not (parsed.texts["workloadIdentityProvider"] and parsed.flags["trustBranchOnly"]):
        return []
    return [
        f"{PROJECT}:trustBranchOnly: cannot be combined with {PROJECT}:workloadIdentityProvider: the branch is checked by"
        " the condition of the stack's own provider, and a shared provider's condition is the platform team's"
    ]


# Google refuses a mapped google.subject over 127 bytes (iam v1 REST reference, WorkloadIdentityPoolProvider
# attributeMapping: "Cannot exceed 127 bytes"); the stack's own provider maps it to the token's `sub`.
SUBJECT_LIMIT = 127


def branch_subject_fits(parsed: Parsed) -> list[str]:
    """A keyless stack's own provider: the subject of its branch's runs fits Google's limit, or every
    such run is refused its token (a shared provider's mapping is the platform team's)."""
    platform, repository, branch = parsed.platform, parsed.texts["repository"], parsed.texts["branch"]
    if not parsed.keyless or platform is None or not repository or parsed.texts["workloadIdentityProvider"]:
        return []
    subject = platform.branch_subject(repository, branch)
    size = len(subject.encode())
    if size <= SUBJECT_LIMIT:
        return []
    return [
        f"{PROJECT}:branch = {shown(branch)}: the CI token of its runs in {repository} has the subject {subject!r},"
        f" {size} bytes; Google refuses a google.subject (mapped from it) over {SUBJECT_LIMIT} bytes, so keyless CI"
        " would get no credentials: choose a shorter branch (or repository path), or auth key"
    ]


def stack_file_quoting(parsed: Parsed) -> list[str]:
    """Where the stack file says 3.10 and the CLI hands over 3.1, the author must quote it; where it quotes the
    tags' object, not; and the stack file is a file of its own (a link can point at any file of the machine
    running the CLI)."""
    path = stack_file(parsed.stack)
    if path.is_symlink():
        return [f"{path.name}: a symbolic link: a stack file is a file of its own, in the stacks folder"]
    string_keys = [f"{PROJECT}:{key.name}" for key in SCHEMA.keys if key.type == "string"]
    string_keys += ["gcp:project", *(f"{name}:baseUrl" for name in PLATFORMS)]
    entries = config_entries(path)  # the file read once for both checks
    return quote_it_problems(entries, string_keys) + tags_written_as_text(entries)


def base_url_problems(parsed: Parsed) -> list[str]:
    """The platform's API: `pulumi up` sends the platform's token there, so only github.com's or
    gitlab.com's, or one the platform allows (Pulumi.yaml `platform.baseUrls`)."""
    platform, url = parsed.platform, parsed.platform_url
    key = f"{platform.name}:baseUrl" if platform else ""
    if platform is None or url is None or parsed.present.get(key):
        return []  # no platform, the default API, or a secret base URL (refused as such)
    if broken := base_url_problem(url):
        return [f"{key}: {broken}"]
    allowed = {platform.default_base_url, *SCHEMA.base_urls}
    if url.rstrip("/") in {allowed_url.rstrip("/") for allowed_url in allowed}:
        return []
    return [
        f"{key} = {shown(url)}: not an API the platform lets stack files send its token to (Pulumi.yaml"
        f" platform.baseUrls: {', '.join(SCHEMA.base_urls) or 'none'}); ask whoever runs `pulumi up` to add it"
    ]


def platform_rules(parsed: Parsed) -> list[str]:
    """The platform's own rules for the repository, the secret and the CI file."""
    platform = parsed.platform
    if platform is None:
        return []  # a missing or unknown platform is reported by its own rule
    problems: list[str] = []
    texts = parsed.texts
    if texts["repository"]:
        problems += platform.config_problems(
            texts["repository"], texts["secretName"], parsed.ci_file, parsed.keyless, parsed.platform_url
        )
    return problems


def other_platforms_keys(parsed: Parsed) -> list[str]:
    platform = parsed.platform
    others = [other for other in PLATFORMS.values() if platform and other is not platform]
    return [
        f"{PROJECT}:{name} = {shown(parsed.texts[name])}: applies to platform {other.name} only"
        for other in others
        for name in other.own_keys
        if name in parsed.set_keys
    ]


def team_files_stay_the_teams(parsed: Parsed) -> list[str]:
    """The CI file the stack commits (and `pulumi destroy` deletes) and the requirements file the job
    installs are neither a file of the team's pipeline nor each other."""
    files = {"ciFile": parsed.ci_file, "requirementsFile": parsed.texts["requirementsFile"]}
    problems = [
        f"{PROJECT}:{name} = {shown(path)}: {broken}"
        for name, path in files.items()
        if path and (broken := pipeline_file_problem(path))
    ]
    if files["ciFile"] and files["ciFile"].lower() == files["requirementsFile"].lower():
        problems.append(f"{PROJECT}:ciFile = {shown(files['ciFile'])}: the same file as {PROJECT}:requirementsFile")
    return problems


CROSS_KEY_RULES: tuple[Callable[[Parsed], list[str]], ...] = (
    gcp_project_problems,
    existing_bucket_excludes_own_bucket_keys,
    existing_bucket_allowed,
    repository_allowed,
    key_only_keys_need_a_key,
    keyless_only_keys_need_keyless,
    service_account_keys_need_one,
    workload_identity_provider_allowed,
    shared_provider_keeps_its_condition,
    branch_subject_fits,
    namespace_problems,
    environment_problems,
    stack_file_quoting,
    base_url_problems,
    platform_rules,
    other_platforms_keys,
    team_files_stay_the_teams,
)


def validate(parsed: Parsed) -> list[str]:
    """Every problem of the stack's configuration, in a stable order."""
    return [*parsed.problems, *value_problems(parsed), *(problem for rule in CROSS_KEY_RULES for problem in rule(parsed))]
