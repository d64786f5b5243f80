"""Validation: every rule rejects a bad value before any resource is registered, all at once."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops_ci.offline.runtime import Evaluation, reveal
from mlops_ci.platforms.gitlab import GITLAB
from mlops_ci.settings import derive as s
from mlops_ci.settings import rules, validate
from mlops_ci.settings.loader import ConfigError, load_settings
from mlops_ci.settings.model import digest, stack_label
from mlops_ci.settings.schema import load_schema
from tests.helpers import BUCKET, GITLAB_VARIABLE, CountingMocks, config_for, run

# (platform, overrides, key named in the error, words of the rule)
BAD_VALUES = [
    ("github", {"gcp__project": "Acme"}, "gcp:project", "6-30 characters"),
    ("github", {"gcp__project": None}, "gcp:project", "required"),
    ("github", {"platform": ""}, "mlops-ci:platform", "required"),
    ("github", {"repository": ""}, "mlops-ci:repository", "required"),
    ("github", {"platform": "bitbucket"}, "mlops-ci:platform", "one of github, gitlab"),
    ("github", {"repository": "just-a-name"}, "mlops-ci:repository", "owner/name"),
    ("github", {"repository": "acme/ml/deep"}, "mlops-ci:repository", "owner/name"),
    ("github", {"repository": "-acme/ml"}, "mlops-ci:repository", "owner/name"),
    ("gitlab", {"repository": "project-only"}, "mlops-ci:repository", "group[/subgroup...]/project"),
    ("gitlab", {"repository": "group/-bad"}, "mlops-ci:repository", "group[/subgroup...]/project"),
    ("gitlab", {"repository": "group/repo.git"}, "mlops-ci:repository", "not ending in .git"),
    ("github", {"branch": "feature..x"}, "mlops-ci:branch", "no '..'"),
    ("github", {"branch": "bad branch"}, "mlops-ci:branch", "a branch name"),
    ("github", {"branch": "release.lock"}, "mlops-ci:branch", ".lock"),
    ("github", {"branch": 'x"y'}, "mlops-ci:branch", "a branch name"),
    ("github", {"bucketName": "UPPER"}, "mlops-ci:bucketName", "lowercase letters"),
    ("github", {"bucketName": "ab"}, "mlops-ci:bucketName", "3-63 characters"),
    ("github", {"bucketName": "x" * 64}, "mlops-ci:bucketName", "3-63 characters"),
    ("github", {"bucketName": "192.168.5.4"}, "mlops-ci:bucketName", "not an IP address"),
    ("github", {"bucketName": "goog-data"}, "mlops-ci:bucketName", "no 'goog' prefix"),
    ("github", {"bucketName": "my-google-data"}, "mlops-ci:bucketName", "no 'google'"),
    ("github", {"bucketName": "-data"}, "mlops-ci:bucketName", "starting and ending"),
    ("github", {"bucketName": "a." + "b" * 64}, "mlops-ci:bucketName", "each dot-separated part 1-63"),
    ("github", {"bucketLocation": "europe west6"}, "mlops-ci:bucketLocation", "a Cloud Storage location"),
    ("github", {"dvcRemotePath": "../escape"}, "mlops-ci:dvcRemotePath", "relative path"),
    ("github", {"dvcRemotePath": "/abs"}, "mlops-ci:dvcRemotePath", "relative path"),
    ("github", {"serviceAccountId": "ci"}, "mlops-ci:serviceAccountId", "6-30 characters"),
    ("github", {"serviceAccountId": "1-ci-account"}, "mlops-ci:serviceAccountId", "[a-z][a-z0-9-]*[a-z0-9]"),
    ("github", {"serviceAccountId": "ci-account-"}, "mlops-ci:serviceAccountId", "[a-z][a-z0-9-]*[a-z0-9]"),
    ("github", {"serviceAccountId": "a" * 31}, "mlops-ci:serviceAccountId", "6-30 characters"),
    ("github", {"access": "write"}, "mlops-ci:access", "one of pull, push, admin"),
    ("github", {"auth": "password"}, "mlops-ci:auth", "one of key, workload-identity"),
    ("github", {"secretName": "GITHUB_KEY"}, "mlops-ci:secretName", "GITHUB_"),
    ("github", {"secretName": "1KEY"}, "mlops-ci:secretName", "do not start with a digit"),
    ("github", {"secretName": "MY-KEY"}, "mlops-ci:secretName", "letters, digits and '_'"),
    ("gitlab", {"secretName": "MY-KEY"}, "mlops-ci:secretName", "GitLab variable keys"),
    ("gitlab", {"secretName": "K" * 256}, "mlops-ci:secretName", "256 characters, at most 255"),
    ("github", {"branch": "b" * 256}, "mlops-ci:branch", "at most 255"),
    ("github", {"dvcRemotePath": "d" * 961}, "mlops-ci:dvcRemotePath", "at most 960"),
    ("gitlab", {"secretName": "9KEY"}, "mlops-ci:secretName", "must not start with a digit"),
    ("gitlab", {"secretName": "PATH"}, "mlops-ci:secretName", "shadow a name the job or the platform uses"),
    ("gitlab", {"secretName": "GOOGLE_APPLICATION_CREDENTIALS"}, "mlops-ci:secretName", "shadow a name"),
    ("gitlab", {"secretName": "CI_JOB_TOKEN"}, "mlops-ci:secretName", "shadow a name"),
    ("github", {"secretName": "RUNNER_TEMP"}, "mlops-ci:secretName", "shadow a name"),
    ("gitlab", {"ciFile": ".git/hooks/x.yml"}, "mlops-ci:ciFile", "outside .git/"),
    ("github", {"github__token": "ghp_plaintext"}, "github:token", "must be encrypted"),
    ("gitlab", {"gitlab__token": "glpat-plaintext"}, "gitlab:token", "must be encrypted"),
    ("gitlab", {"gitlab__baseURL": "https://gitlab.acme.example"}, "gitlab:baseURL", "unknown key (did you mean baseUrl?)"),
    ("github", {"github__owner": "acme"}, "github:owner", "unknown key"),
    ("github", {"gitlab__baseUrl": "https://gitlab.acme.example"}, "gitlab:baseUrl", "not used: the stack's platform is github"),
    ("gitlab", {"gitlab__baseUrl": "https://ci:hunter2@gitlab.acme.example/"}, "gitlab:baseUrl", "must not carry credentials"),
    ("gitlab", {"gitlab__baseUrl": "https://gitlab.acme.example/../api/v4/"}, "gitlab:baseUrl", "no '..'"),
    ("github", {"ciFile": ".github/mlops.yaml"}, "mlops-ci:ciFile", ".github/workflows/"),
    ("github", {"ciFile": ".github/workflows/mlops.txt"}, "mlops-ci:ciFile", ".yml or .yaml"),
    ("gitlab", {"ciFile": "../ci.yml"}, "mlops-ci:ciFile", "relative path"),
    ("gitlab", {"ciFile": "ci/pipeline.json"}, "mlops-ci:ciFile", ".yml or .yaml"),
    ("github", {"pythonVersion": "python3.13"}, "mlops-ci:pythonVersion", ": a Python 3 minor version such as 3.13"),
    ("github", {"pythonVersion": "2.7"}, "mlops-ci:pythonVersion", "such as 3.13"),
    ("github", {"requirementsFile": "req uirements.txt"}, "mlops-ci:requirementsFile", "relative path"),
    ("github", {"requirementsFile": ".mlops-ci/requirements.txt"}, "mlops-ci:requirementsFile", "not under .mlops-ci/"),
    ("gitlab", {"ciFile": ".mlops-ci/ci.yml"}, "mlops-ci:ciFile", "not under .mlops-ci/: the stack commits its job script"),
    ("github", {"protectedVariable": "true"}, "mlops-ci:protectedVariable", "gitlab only"),
    ("github", {"keyRotation": "2026 11"}, "mlops-ci:keyRotation", "= '2026 11': a label such as 2026-11"),
    ("github", {"githubEnvironment": "github-pages"}, "mlops-ci:githubEnvironment", "not an environment GitHub manages"),
    ("github", {"bucketname": "x-data"}, "mlops-ci:bucketname", "unknown key (did you mean bucketName?)"),
]


@pytest.mark.parametrize(
    ("platform", "overrides", "key", "rule"), BAD_VALUES, ids=[f"{c[2]}={next(iter(c[1].values()))!r}"[:60] for c in BAD_VALUES]
)
def test_bad_value_is_rejected_before_any_resource(platform: str, overrides: dict[str, str], key: str, rule: str) -> None:
    mocks = CountingMocks()
    with pytest.raises(ConfigError) as raised:
        run(platform, overrides, mocks=mocks)
    assert len(raised.value.problems) == 1, raised.value.problems
    problem = raised.value.problems[0]
    assert problem.startswith(key), problem
    assert rule in problem
    assert mocks.created == []


def test_a_keyless_stack_of_an_unknown_platform_is_told_of_both_not_a_traceback() -> None:
    # No platform to ask which keys shape its report token: the key-only rule still applies.
    with pytest.raises(ConfigError) as raised:
        run("github", {"platform": "bitbucket", "auth": "workload-identity", "secretName": "MY_KEY"})
    assert [p.split(" ")[0] for p in raised.value.problems] == ["mlops-ci:platform", "mlops-ci:secretName:"]


def test_a_secret_base_url_is_told_to_be_plain_text_only() -> None:
    # Its value is hidden from review: the one problem is that it is a secret, not where it points.
    with pytest.raises(ConfigError) as raised:
        run("github", {"github__baseUrl": "https://ghe.acme.example/api/v3/"}, secret_keys=("github:baseUrl",))
    assert raised.value.problems == [
        "github:baseUrl: not a secret: write it in plain text (`secure:` hides from review where the platform's token goes)"
    ]


def test_every_problem_is_reported_at_once() -> None:
    mocks = CountingMocks()
    with pytest.raises(ConfigError) as raised:
        run("github", mocks=mocks, bucketName="UP", access="all", secretName="GITHUB_X", gcp__project=None)
    keys = sorted(p.split(" ")[0].rstrip(":") for p in raised.value.problems)
    assert keys == ["gcp:project", "mlops-ci:access", "mlops-ci:bucketName", "mlops-ci:secretName"]
    message = str(raised.value)
    assert "stack 'team-a' has 4 configuration problems; nothing was created" in message
    assert mocks.created == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"branch": "release/2026.11"},
        {"bucketName": "team.data.example"},
        {"bucketName": "a_b-c"},
        {"serviceAccountId": "ml-ci-runner"},
        {"dvcRemotePath": "teams/vision/dvc"},
        {"requirementsFile": "ci/requirements-ci.txt"},
        {"pythonVersion": "3.11"},
        {"ciFile": ".github/workflows/repro.yml"},
        {"secretName": "GCP_KEY_2"},
        {"repository": "a/b.c_d-e"},
        {"access": "admin", "protectBucket": "false", "keyRotation": "2026-11"},
        {"branch": "b" * 255},
    ],
)
def test_valid_values_are_accepted(overrides: dict[str, str]) -> None:
    evaluation = run("github", overrides)
    assert_values_reach_the_resources(evaluation, overrides)


def test_gitlab_accepts_deep_paths_and_custom_ci_file() -> None:
    overrides = {"repository": "a/b/c/d.e_f-g", "ciFile": "ci/mlops.yml", "protectedVariable": "true"}
    evaluation = run("gitlab", overrides)
    assert_values_reach_the_resources(evaluation, overrides)


def assert_values_reach_the_resources(evaluation: Evaluation, overrides: dict[str, str]) -> None:
    """Each accepted value shows in what the program registered or exported (booleans: in their effect)."""
    sent = json.dumps([reveal(r.inputs) for r in evaluation.registrations] + [evaluation.exports]).lower()
    for key, value in overrides.items():
        if value in ("true", "false"):
            continue
        assert value.lower() in sent, key
    if "protectBucket" in overrides:
        bucket = evaluation.one(BUCKET)
        assert bucket.retain_on_delete == (overrides["protectBucket"] == "true")
    if "protectedVariable" in overrides:
        variable = evaluation.one(GITLAB_VARIABLE)
        assert variable.plain("protected") == (overrides["protectedVariable"] == "true")


stack_names = st.from_regex(r"[A-Za-z0-9_.-]{1,100}", fullmatch=True)
project_ids = st.from_regex(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", fullmatch=True)


@given(project=project_ids, stack=stack_names)
def test_derived_names_always_satisfy_the_rules(project: str, stack: str) -> None:
    assert rules.bucket_name_problem(s.derive_bucket_name(project, stack)) is None
    assert rules.service_account_id_problem(s.derive_service_account_id(stack)) is None


@given(first=stack_names, second=stack_names)
def test_distinct_stacks_get_distinct_derived_names(first: str, second: str) -> None:
    if first != second:
        assert s.derive_service_account_id(first) != s.derive_service_account_id(second)
        assert s.derive_bucket_name("acme-ml", first) != s.derive_bucket_name("acme-ml", second)


@given(first=stack_names, second=stack_names)
def test_distinct_stacks_get_distinct_valid_stack_labels(first: str, second: str) -> None:
    """The stack label is how pre-flight knows the stack's bucket: `Team-A`, `team.a` and a name
    past 63 characters must not read as another stack's (Google's label values: lowercase
    letters, digits, `_`, `-`, at most 63)."""
    label = stack_label(first)
    assert re.fullmatch(r"[a-z0-9_-]{1,63}", label), label
    if first != second:
        assert label != stack_label(second)


def test_the_stack_label_is_the_stack_name_when_it_can_be() -> None:
    assert [stack_label(name) for name in ("vision-team", "team_a", "a" * 63)] == ["vision-team", "team_a", "a" * 63]
    # Otherwise lower case, '-' for the rest, a hash of the exact name: pinned, as the labels of deployed buckets are.
    assert (stack_label("Team-A"), stack_label("team.a")) == ("team-a-5ee609b6", f"team-a-{digest('team.a')}")
    assert digest("Team-A") == "5ee609b6"
    # Too long: cut so that the label, its '-' and the hash are exactly Google's 63.
    assert stack_label("T" * 100) == f"{'t' * 54}-{digest('T' * 100)}"


def test_derived_names_are_readable_for_plain_stack_names() -> None:
    assert s.derive_bucket_name("acme-ml", "vision") == "acme-ml-vision-dvc"
    assert s.derive_service_account_id("vision") == "dvc-ci-vision"


def test_odd_stack_names_still_evaluate() -> None:
    evaluation = run("github", stack="Team.Google_Research-2026-with-a-very-long-stack-name-indeed")
    assert rules.bucket_name_problem(evaluation.exports["bucketName"]) is None


# What a CI job reads from its environment, or its platform reserves: a secret or variable of the same name
# would shadow it. Written out here, the rules' own table is what is tested (more names may join it).
RESERVED_NAMES = [
    "PATH", "HOME", "SHELL", "PWD", "USER", "TMPDIR", "LANG", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GCP_WORKLOAD_IDENTITY_PROVIDER", "GCP_SERVICE_ACCOUNT", "GCP_ID_TOKEN", "MLOPS_CI_REPORT_TOKEN",
]  # fmt: skip
RESERVED_PREFIXES = ["CI_", "GITLAB_", "GITHUB_", "RUNNER_", "ACTIONS_", "FF_", "DOCKER_", "LD_", "PIP_", "DVC_", "GIT_"]


@pytest.mark.parametrize(
    "name", [*RESERVED_NAMES, *(n.lower() for n in RESERVED_NAMES), *(f"{p}X" for p in RESERVED_PREFIXES), "ld_preload"]
)
def test_every_name_the_job_or_the_platform_uses_is_reserved(name: str) -> None:
    problem = rules.reserved_variable_problem(name)
    assert problem is not None
    assert "shadow a name the job or the platform uses" in problem


@pytest.mark.parametrize("name", ["GCP_KEY", "PATHS", "MY_PATH", "LDX", "GITX", "XCI_KEY", "DVC", "GOOGLE_KEY"])
def test_names_that_only_resemble_a_reserved_one_are_free(name: str) -> None:
    assert rules.reserved_variable_problem(name) is None


@pytest.mark.parametrize(
    ("rule", "valid", "invalid"),
    [
        (rules.gcp_project_problem, ["a" * 5 + "1", "a" * 30], ["a" * 4 + "1", "a" * 31, "1abcdef", "abcdef-"]),
        (rules.service_account_id_problem, ["a" * 5 + "1", "a" * 30], ["a" * 4 + "1", "a" * 31, "1abcdef", "abcdef-"]),
        (rules.bucket_name_problem, ["ab1", "a" * 63], ["ab", "a" * 64, "-abc", "abc-", "Abc"]),
        # With dots: 222 characters at most, each part 1-63.
        (
            rules.bucket_name_problem,
            [".".join(["a" * 63] * 3) + "." + "a" * 30, "a.b", "a" * 63 + ".b"],
            [".".join(["a" * 63] * 3) + "." + "a" * 31, "a" * 64 + ".b", "a..b"],
        ),
        (rules.bucket_name_problem, ["gooo-team", "team-goog", "1.2.3.4a"], ["goog-team", "team-g00gle-x", "1.2.3.4"]),
    ],
)
def test_the_rules_bounds_are_exact(rule: Any, valid: list[str], invalid: list[str]) -> None:
    assert [v for v in valid if rule(v)] == []
    assert [v for v in invalid if not rule(v)] == []


def test_a_derived_name_is_readable_when_it_can_be_and_hashed_to_its_limit_when_not() -> None:
    assert s.derive_service_account_id("team-a") == "dvc-ci-team-a"
    assert s.derive_bucket_name("acme-ml", "team-a") == "acme-ml-team-a-dvc"
    # Changed (capitals, '_'): the slug and a hash of the exact stack name, '-' between.
    assert s.derive_service_account_id("Team_A") == f"dvc-ci-team-a-{digest('Team_A')}"
    # Too long: cut to exactly the limit, the hash kept whole, no '-' before it doubled.
    long = "a" * 40
    assert s.derive_service_account_id(long) == f"dvc-ci-{'a' * 14}-{digest(long)}"
    assert s.derive_bucket_name("acme-ml", long + "b" * 30) == f"acme-ml-{'a' * 40}{'b' * 2}-{digest(long + 'b' * 30)}-dvc"
    assert s.derive_service_account_id("x" * 23) == "dvc-ci-" + "x" * 23
    assert s.derive_service_account_id("x" * 24) == f"dvc-ci-{'x' * 14}-{digest('x' * 24)}"
    # Only odd characters: the hash alone.
    assert s.derive_service_account_id("___") == f"dvc-ci-{digest('___')}"
    # Odd characters at the ends leave no '-' there, and a cut that ends on '-' does not double it.
    assert s.derive_service_account_id("_a_") == f"dvc-ci-a-{digest('_a_')}"
    cut = "abcdefghijklm-nopqrstuvwxyz"
    assert s.derive_service_account_id(cut) == f"dvc-ci-abcdefghijklm-{digest(cut)}"


def test_a_derived_bucket_name_never_carries_google() -> None:
    # A project starting with 'goog': the readable name, prefixed.
    assert s.derive_bucket_name("goog-ml", "team-a") == "dvc-goog-ml-team-a-dvc"
    # A long one: the readable name, prefixed and cut to the bucket limit (its '-dvc' goes first).
    readable = s.derive_bucket_name("acme-" + "a" * 25, "x" * 40).replace("acme-", "goog-", 1)
    assert s.derive_bucket_name("goog-" + "a" * 25, "x" * 40) == f"dvc-{readable}"[:63]
    # A stack that spells Google: hashes in place of the names, the first valid one.
    named = s.derive_bucket_name("acme-ml", "google")
    assert named == f"dvc-{digest('acme-ml/google/0')}{digest('google')}"


@pytest.mark.parametrize(
    ("rule", "refused"),
    [
        # Google's restricted words in a project id, each on its own.
        (rules.gcp_project_problem, ["my-google-1", "my-null-ml", "undefined-ml", "acme-ssl-ml"]),
        # 'google' and close misspellings in a bucket name: look-alike digits (each alone: "goog1e-x" would be the
        # 'goog' prefix), one letter dropped, doubled or swapped.
        (rules.bucket_name_problem, ["g00gle-x", "x-goog1e", "x-googl3", "x-goo6le", "x-goo9le", "x-gogle", "x-gooogle"]),
        (rules.bucket_name_problem, ["x-ogogle", "x-googel", "x-g-o-o-g-l-e", "x-googlle", "x-googlee", "x-goolge"]),
        # Every other one-letter slip of 'google': each dropped letter, each swap, each doubled letter.
        (rules.bucket_name_problem, ["x-goole", "x-googe", "x-gogole", "x-ggoogle", "x-googgle"]),
        # The team's pipeline files and the job scripts' folder.
        (rules.pipeline_file_problem, ["dvc.yaml", "sub/DVC.lock", "params.yaml", ".gitignore", ".dvcignore"]),
        (rules.pipeline_file_problem, ["data.dvc", ".dvc/config", ".mlops-ci/ci.yml"]),
        (rules.github_environment_problem, ["github-pages", "Copilot", "..", "a" * 256]),
        (rules.key_rotation_problem, ["", "a" * 65, "2026 11"]),
        (rules.branch_problem, ["main.", "release/v1.", "x.lock", "a..b"]),
    ],
)
def test_each_entry_of_a_rules_table_is_applied(rule: Any, refused: list[str]) -> None:
    assert [value for value in refused if rule(value) is None] == []


@pytest.mark.parametrize(
    ("rule", "accepted"),
    [
        (rules.gcp_project_problem, ["acme-ml-test", "nul-ssh-ml"]),
        (rules.bucket_name_problem, ["go-ogre", "gle-goo", "acme-goal"]),
        (rules.pipeline_file_problem, ["ci/dvc.yml", "params.yml", "mlops-ci/x.yml"]),
        (rules.github_environment_problem, ["a" * 255, "pages", "ci.prod", "XX", ".X."]),
        (rules.key_rotation_problem, ["a" * 64, "2026-11", "v1:a/b+c_d.e"]),
        # Google takes location codes in either case.
        (rules.bucket_location_problem, ["EU", "eur4", "Europe-West6"]),
        (rules.branch_problem, ["v1.2", "release/2026.11", "a.lockx"]),
    ],
)
def test_values_beside_a_rules_table_are_accepted(rule: Any, accepted: list[str]) -> None:
    assert [value for value in accepted if rule(value) is not None] == []


BUCKET_CHARS = "only lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
NO_GOOGLE = "no 'goog' prefix, and no 'google' or close misspelling of it (g00gle, gogle, googel) anywhere"
RESERVED = (
    "must not start with a digit nor shadow a name the job or the platform uses (GCP_ID_TOKEN, GCP_SERVICE_ACCOUNT,"
    " GCP_WORKLOAD_IDENTITY_PROVIDER, GOOGLE_APPLICATION_CREDENTIALS, HOME, LANG, MLOPS_CI_REPORT_TOKEN, PATH, PWD,"
    " PYTHONHOME, PYTHONPATH, SHELL, TMPDIR, USER, VIRTUAL_ENV, or CI_*, GITLAB_*, GITHUB_*, RUNNER_*, ACTIONS_*, FF_*,"
    " DOCKER_*, LD_*, PIP_*, DVC_*, GIT_*)"
)


@pytest.mark.parametrize(
    ("rule", "value", "refusal"),
    [
        (
            rules.stack_name_problem,
            "a b",
            "a stack name is 1 to 100 characters of [A-Za-z0-9_.-] (letters, digits, hyphens, underscores, periods)",
        ),
        (
            rules.printable_problem,
            "a\tb",
            "no control, format or other invisible characters (newline, tab, escape, bidirectional marks)",
        ),
        (
            rules.gcp_project_problem,
            "Acme-ml",
            "a project id has 6-30 characters: lowercase letters, digits and '-', starting with a letter, not ending with '-'",
        ),
        (
            rules.gcp_project_problem,
            "acme-null-ssl",
            "a project id cannot contain null, ssl (Google's restricted words: google, null, undefined, ssl)",
        ),
        (rules.bucket_name_problem, "-x", f"GCS bucket names: {BUCKET_CHARS}; 3-63 characters"),
        (rules.bucket_name_problem, "a..b", "GCS bucket names: 3-222 characters with dots, each dot-separated part 1-63"),
        (rules.bucket_name_problem, "10.0.0.1", "GCS bucket names: not an IP address in dotted-decimal form"),
        (rules.bucket_name_problem, "goog", f"GCS bucket names: {NO_GOOGLE}"),
        (rules.bucket_name_problem, "X-Google", f"GCS bucket names: {BUCKET_CHARS}; {NO_GOOGLE}"),
        (
            rules.bucket_location_problem,
            "Europe-West66",
            "a Cloud Storage location: a region (europe-west6), a dual-region (EUR4) or a multi-region (EU);"
            " the list is mlops_ci/settings/locations.py (did you mean europe-west6?)",
        ),
        (rules.service_account_id_problem, "ci", "service-account ids have 6-30 characters matching [a-z][a-z0-9-]*[a-z0-9]"),
        (
            rules.workload_identity_provider_problem,
            "projects/1/locations/global/workloadIdentityPools/gcp-pool/providers/ci-provider",
            "a provider's full name, projects/<project number>/locations/global/workloadIdentityPools/<pool>/providers/"
            "<provider> (`gcloud iam workload-identity-pools providers describe ... --format 'value(name)'`)",
        ),
        (
            rules.branch_problem,
            "release/.x",
            "a branch name is parts separated by '/', each of letters, digits, '_', '-', '.',"
            " not starting with '.' or '-', not ending with '.' or '.lock', no '..'",
        ),
        (
            rules.relative_path_problem,
            "a//b",
            "a relative path: parts of letters, digits, '_', '-', '.' joined by '/' (no '..', no leading '/', no spaces)",
        ),
        (
            rules.base_url_problem,
            "https://ci@gitlab.example.com/",
            "must not carry credentials (user:password@): put the token in the platform's token key, encrypted",
        ),
        (
            rules.base_url_problem,
            "https://gitlab.example.com/api/v4/?x=1",
            "an https:// URL such as https://gitlab.example.com/api/v4/ (no '..', query or fragment)",
        ),
        (rules.reserved_variable_problem, "Path", RESERVED),
        (rules.reserved_variable_problem, "2KEY", RESERVED),
        (
            rules.pipeline_file_problem,
            "ci/.dvc/x.yml",
            "not a file of the team's DVC pipeline (dvc.yaml, dvc.lock, params.yaml, .gitignore, .dvcignore, *.dvc, .dvc/...):"
            " the stack commits its CI file and `pulumi destroy` deletes it",
        ),
        (
            rules.pipeline_file_problem,
            ".mlops-ci/requirements.txt",
            "not under .mlops-ci/: the stack commits its job script there and `pulumi destroy` deletes it",
        ),
        (rules.key_rotation_problem, "2026/11?", "a label such as 2026-11: 1-64 letters, digits, '.', '_', ':', '/', '+', '-'"),
        (rules.github_environment_problem, "...", "an environment name of 1-255 letters, digits, '_', '.', '-', not only dots"),
        (rules.github_environment_problem, "COPILOT", "not an environment GitHub manages itself (github-pages, copilot)"),
    ],
)
def test_each_rule_says_word_for_word_what_it_wants(rule: Any, value: str, refusal: str) -> None:
    assert rule(value) == refusal


def test_a_rule_made_of_choices_or_a_pattern_accepts_those_and_names_them_otherwise() -> None:
    # Made here, not at collection: a rule made at import would not be the one under test.
    choices = rules.one_of(("pull", "push"))
    assert [choices(value) for value in ("pull", "push", "write", "")] == [None, None, "one of pull, push", "one of pull, push"]
    digits = rules.matches(r"[0-9]+", "digits only")
    assert [digits(value) for value in ("0", "123", "1a", "")] == [None, None, "digits only", "digits only"]


def test_what_is_shown_of_a_value_is_ascii_and_names_what_is_not() -> None:
    assert rules.escaped("team\u2010a\x1b[2J\u202e") == "team\\u2010a\\x1b[2J\\u202e"
    assert rules.terminal_text("a\x1b\nb\u00e9") == "a\\x1b\nb\\xe9"
    assert rules.shown("adm\u0131n") == "'adm\\u0131n'"
    assert rules.non_ascii("ab\u2010c\U000e0001") == "U+2010 HYPHEN at 2, U+E0001 LANGUAGE TAG at 4"
    assert rules.non_ascii("a\U0010fffe") == "U+10FFFE unnamed at 1"
    assert rules.did_you_mean("Bucketname", ["bucketName", "branch"]) == " (did you mean bucketName?)"
    assert rules.did_you_mean("\uff42ranch", ["branch"]) == " (did you mean branch?)"
    assert rules.did_you_mean("zzz", ["bucketName", "branch"]) == ""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


NONCE, TAG = b64(bytes(12)), b64(bytes(16))  # AES-256-GCM: a 12-byte nonce; the shortest ciphertext, the 16-byte tag
NOT_V1 = "neither v1:<nonce>:<ciphertext> nor base64"
BROKEN_V1 = "v1: but not a nonce and a ciphertext in base64"
PLAIN = "base64 of plain text, not ciphertext: anyone who decodes it reads it"


@pytest.mark.parametrize(
    ("value", "symmetric", "problem"),
    [
        # The shortest ciphertext, in both forms; bytes just outside printable ASCII are ciphertext.
        (f"v1:{NONCE}:{TAG}", True, None),
        (f"v1:{NONCE}:{TAG}", False, None),
        (TAG, False, None),
        (b64(b"\x1f" + b"~" * 15), False, None),
        (b64(b" " * 15 + b"\x7f"), False, None),
        # A byte short, a nonce of another size, a character outside base64, a fourth part.
        (f"v1:{NONCE}:{b64(bytes(15))}", True, BROKEN_V1),
        (f"v1:{b64(bytes(11))}:{TAG}", True, BROKEN_V1),
        (f"v1:{b64(bytes(13))}:{TAG}", True, BROKEN_V1),
        (f"v1:*{NONCE}:{TAG}", True, BROKEN_V1),
        (f"v1:{NONCE}:*{TAG}", True, BROKEN_V1),
        (f"v1:{NONCE}:{TAG}:{TAG}", False, NOT_V1),
        (f"v2:{NONCE}:{TAG}", False, NOT_V1),
        (b64(bytes(15)), False, NOT_V1),
        (f"*{TAG}", False, NOT_V1),
        (TAG, True, "the stack file has an encryptionsalt, so its secrets are v1:<nonce>:<ciphertext>"),
        # Printable ASCII from its first character (space) to its last (~): plain text.
        (b64(b" " * 8 + b"~" * 8), False, PLAIN),
        (f"v1:{NONCE}:{b64(b' ' * 8 + b'~' * 8)}", True, PLAIN),
    ],
)
def test_a_secure_value_is_ciphertext_at_the_exact_sizes_and_bytes(value: str, symmetric: bool, problem: str | None) -> None:
    assert rules.ciphertext_problem(value, symmetric) == problem


def test_in_a_project_not_named_mlops_ci_its_own_namespace_is_refused_naming_the_mlops_ci_key() -> None:
    # A project made by `pulumi new` (templates/python) is named by its team: `pulumi config set
    # platform gitlab` without a namespace lands in that project's, where mlops-ci reads nothing.
    pulumi.runtime.set_mocks(CountingMocks(), project="team", stack="team-a", preview=False)
    pulumi.runtime.set_all_config({**config_for("github"), "team:platform": "gitlab", "team:brnch": "dev"})
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert raised.value.problems == [
        "team:brnch: in this project's own namespace (team:), which mlops-ci does not read; its keys are"
        " mlops-ci:<key> (did you mean branch?)",
        "team:platform: in this project's own namespace (team:), which mlops-ci does not read: set mlops-ci:platform"
        " instead (`pulumi config rm team:platform; pulumi config set mlops-ci:platform …`)",
    ]


def test_the_clis_stack_tags_pass_and_no_other_pulumi_key_does() -> None:
    # `pulumi new` writes the template it used into Pulumi.yaml as pulumi:tags; the CLI reads it, not the program.
    tags = json.dumps({"pulumi:template": "templates/python"})
    with pytest.raises(ConfigError) as raised:
        run("github", {"pulumi__tags": tags, "pulumi__disable-default-providers": '["*"]'})
    assert [p.split(":", 2)[:2] for p in raised.value.problems] == [["pulumi", "disable-default-providers"]]


def test_a_secret_pulumi_tags_is_refused_as_every_other_key_that_is_not_a_secret() -> None:
    # Red team (tpl): `pulumi:tags` is let through before the `secure:` check, so a stack file can hide
    # what it writes into the stack's tags from review, which every other non-secret key refuses.
    tags = json.dumps({"pulumi:template": "templates/python"})
    with pytest.raises(ConfigError) as raised:
        run("github", {"pulumi__tags": tags}, secret_keys=("pulumi:tags",))
    assert any(p.startswith("pulumi:tags: not a secret") for p in raised.value.problems), raised.value.problems


@pytest.mark.parametrize(
    "cli_tag", ["pulumi:project", "pulumi:description", "vcs:owner", "vcs:repo", "github:owner", "gitlab:repo"]
)
def test_a_stack_file_may_not_rewrite_the_clis_own_stack_tags(cli_tag: str) -> None:
    # Red team (tpl): the CLI copies every entry of `pulumi:tags` over the tags it computes itself
    # (pulumi/pulumi pkg/backend/stack.go, GetEnvironmentTagsForCurrentStack, called by the Pulumi Cloud
    # backend's StartUpdate; the file backend ignores pulumi:tags, checked with the CLI 3.274.1): a stack file
    # can make Pulumi Cloud list the stack under another project or repository. Only pulumi:template is `pulumi new`'s.
    tags = json.dumps({"pulumi:template": "templates/python", cli_tag: "another-team"})
    with pytest.raises(ConfigError) as raised:
        run("github", {"pulumi__tags": tags})
    assert any(p.startswith("pulumi:tags") and cli_tag in p for p in raised.value.problems), raised.value.problems


@pytest.mark.parametrize("project", ["gcp", "github", "gitlab"])
def test_a_bare_key_in_a_project_named_like_a_namespace_names_the_mlops_ci_key(project: str) -> None:
    # Red team (tpl): `pulumi new --name gcp` is accepted by the CLI, and `pulumi config set branch dev`
    # then writes gcp:branch (checked with the CLI 3.274.1); the refusal must still say mlops-ci:branch,
    # as it does for any other project name, not only "unknown key".
    pulumi.runtime.set_mocks(CountingMocks(), project=project, stack="team-a", preview=False)
    pulumi.runtime.set_all_config({**config_for("github"), f"{project}:branch": "dev"})
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert any(p.startswith(f"{project}:branch") and "mlops-ci:branch" in p for p in raised.value.problems), raised.value.problems


def test_the_template_never_lets_a_stack_grant_its_ci_on_the_pulumi_state_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    # Red team (tpl): templates/python ships platform.existingBuckets ['*']; with the state in
    # gs://acme-pulumi-state (PULUMI_BACKEND_URL), mlops-ci:existingBucket acme-pulumi-state with access
    # admin grants CI objectAdmin on every stack's state: what issue 22 item 9 refuses, and no team expects.
    template = load_schema(Path(__file__).parent.parent / "templates" / "python" / "Pulumi.yaml")
    monkeypatch.setattr(validate, "SCHEMA", template)
    monkeypatch.setenv("PULUMI_BACKEND_URL", "gs://acme-pulumi-state")
    with pytest.raises(ConfigError) as raised:
        run("github", existingBucket="acme-pulumi-state", access="admin")
    assert any(p.startswith("mlops-ci:existingBucket") for p in raised.value.problems), raised.value.problems


def test_an_existing_bucket_the_platform_allows_is_still_held_to_googles_bucket_names(monkeypatch: pytest.MonkeyPatch) -> None:
    # templates/python allows any existing bucket (platform.existingBuckets ['*']): the name's own rule still applies.
    monkeypatch.setattr(validate, "SCHEMA", load_schema(Path(__file__).parent.parent / "templates" / "python" / "Pulumi.yaml"))
    with pytest.raises(ConfigError) as raised:
        run("github", existingBucket="Team-Data")
    assert raised.value.problems == [
        "mlops-ci:existingBucket = 'Team-Data': GCS bucket names: only lowercase letters, digits, '-', '_' and '.',"
        " starting and ending with a letter or digit"
    ]


@pytest.mark.parametrize("tags", ["just a string", "", '["a", "b"]', '{"team": {"nested": "x"}}', '{"team": 1}'])
def test_a_pulumi_tags_the_cli_refuses_is_refused_offline_too(tags: str) -> None:
    # Red team (tpl): the CLI refuses a pulumi:tags that is not an object of strings ("pulumi:tags must be an
    # object of strings", pulumi/pulumi pkg/backend/stack.go) when a Pulumi Cloud backend starts an update,
    # after `make check` said OK (the file backend ignores pulumi:tags); the program lets any value through.
    # An empty value too: the CLI reads it as the string "" (sdk/go/common/resource/config/value.go, ToObject), not {}.
    with pytest.raises(ConfigError) as raised:
        run("github", {"pulumi__tags": tags})
    assert any(p.startswith("pulumi:tags") for p in raised.value.problems), raised.value.problems


@pytest.mark.parametrize(
    ("name", "meant"), [("token", "github:token"), ("project", "gcp:project"), ("baseUrl", "github:baseUrl")]
)
def test_a_bare_key_of_another_namespace_in_a_template_project_names_that_key(name: str, meant: str) -> None:
    # Red team (tpl): `pulumi config set --secret token …` in a project made by `pulumi new` lands in the
    # project's namespace; the refusal says "its keys are mlops-ci:<key>", where there is no token, instead
    # of the key the template's own questions name (github:token, gcp:project).
    pulumi.runtime.set_mocks(CountingMocks(), project="vision-ml", stack="dev", preview=False)
    pulumi.runtime.set_all_config({**config_for("github"), f"vision-ml:{name}": "x"}, [f"vision-ml:{name}"])
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert any(p.startswith(f"vision-ml:{name}") and meant in p for p in raised.value.problems), raised.value.problems


def test_two_template_projects_stacks_of_one_name_derive_two_service_accounts_and_mlops_ci_keeps_its_own() -> None:
    # Service accounts carry no labels: vision-ml's and nlp-ml's stacks `dev` in one Google Cloud project
    # would both create dvc-ci-dev (the second's pulumi up failing on Google's 409, or worse, sharing it).
    ours, theirs = s.derive_service_account_id("dev", "vision-ml"), s.derive_service_account_id("dev", "nlp-ml")
    assert ours != theirs
    assert rules.service_account_id_problem(ours) is None
    assert rules.service_account_id_problem(theirs) is None
    assert s.derive_service_account_id("dev", "mlops-ci") == s.derive_service_account_id("dev") == "dvc-ci-dev"
    pulumi.runtime.set_mocks(CountingMocks(), project="vision-ml", stack="dev", preview=False)
    pulumi.runtime.set_all_config(config_for("github"), [])
    settings = load_settings()
    assert settings.service_account_id == ours
    # The bucket's labels say which Pulumi project too: pre-flight reads them back by these names.
    assert settings.labels == {"managed-by": "mlops-ci", "stack": "dev", "pulumi-project": "vision-ml"}


def test_gitlab_rules_name_the_key_the_value_and_the_whole_rule() -> None:
    assert GITLAB.config_problems("group/feed.atom", "MY-KEY", "ci/pipeline.json", False, None) == [
        "mlops-ci:repository = 'group/feed.atom': a GitLab project path is group[/subgroup...]/project: each part"
        " letters, digits, '_', '-', '.', not starting with '-' or '.', not ending in .git or .atom",
        "mlops-ci:secretName = 'MY-KEY': GitLab variable keys have 1-255 letters, digits and '_'",
        "mlops-ci:ciFile = 'ci/pipeline.json': a relative path of the repository ending in .yml or .yaml, outside .git/",
    ]


@pytest.mark.parametrize(
    ("repository", "ci_file", "refused"),
    [
        ("group/project", ".gitlab-ci.yml", []),
        ("group/" + "p" * 255, "ci/mlops.yaml", []),
        ("group/" + "p" * 256, "ci/mlops.yaml", ["mlops-ci:repository"]),
    ],
)
def test_gitlab_paths_of_two_parts_up_to_255_characters_each_and_yaml_files_are_accepted(
    repository: str, ci_file: str, refused: list[str]
) -> None:
    problems = GITLAB.config_problems(repository, "GOOGLE_SERVICE_ACCOUNT_KEY", ci_file, False, None)
    assert [problem.split(" = ")[0] for problem in problems] == refused


def test_an_explicit_stack_name_is_the_settings_stack_not_the_running_stacks() -> None:
    # The component (components/package.py) loads the settings of the stack its name stands for, inside
    # another stack: its labels, derived names and refusals are that stack's.
    pulumi.runtime.set_mocks(CountingMocks(), project="mlops-ci", stack="team-a", preview=False)
    pulumi.runtime.set_all_config(config_for("github"), [])
    settings = load_settings("vision")
    assert (settings.stack, settings.service_account_id) == ("vision", "dvc-ci-vision")
    pulumi.runtime.set_all_config(config_for("github", access="all"), [])
    with pytest.raises(ConfigError) as raised:
        load_settings("vision")
    assert str(raised.value) == (
        "stack 'vision' has 1 configuration problem; nothing was created:\n  - mlops-ci:access = 'all': one of pull, push, admin"
    )
    pulumi.runtime.set_all_config(config_for("github", access="all", branch="a..b"), [])
    with pytest.raises(ConfigError) as raised:
        load_settings("vision")
    assert str(raised.value).splitlines() == [
        "stack 'vision' has 2 configuration problems; nothing was created:",
        f"  - mlops-ci:branch = 'a..b': {rules.branch_problem('a..b')}",
        "  - mlops-ci:access = 'all': one of pull, push, admin",
    ]


def test_an_unreadable_pulumi_config_is_the_one_problem_of_the_stack_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key can be read (Pulumi's SDK parses PULUMI_CONFIG on every read), so that one problem, for the stack
    the settings are for: the running one, or the one a component stands for."""
    pulumi.runtime.set_mocks(CountingMocks(), project="mlops-ci", stack="team-a", preview=False)
    pulumi.runtime.set_all_config(config_for("github"), [])
    monkeypatch.setenv("PULUMI_CONFIG", "[]")
    for asked, named in [(None, "team-a"), ("vision", "vision")]:
        with pytest.raises(ConfigError) as raised:
            load_settings(asked)
        assert str(raised.value).splitlines() == [
            f"stack '{named}' has 1 configuration problem; nothing was created:",
            "  - PULUMI_CONFIG (environment): refused: not a JSON object of config keys, so Pulumi's SDK cannot read"
            " any key; configuration comes from the stack file only: unset it",
        ]


SHARED_PROVIDER = "projects/123/locations/global/workloadIdentityPools/platform-ci/providers/github"
ASK = "ask whoever runs `pulumi up` to add it"
LONG_BRANCH = "b" * 100
ENVIRONMENT_RULE = "when the stack file lacks the key; configuration comes from the stack file only: unset it"


@pytest.mark.parametrize(
    ("platform_section", "environment", "overrides", "refusals"),
    [
        (
            {"existing_buckets": ("*",)},
            {"PULUMI_BACKEND_URL": "gs://acme-pulumi-state/pulumi/stacks"},
            {"existingBucket": "acme-pulumi-state"},
            [
                "mlops-ci:existingBucket = 'acme-pulumi-state': the bucket of Pulumi's state (PULUMI_BACKEND_URL"
                " 'gs://acme-pulumi-state/pulumi/stacks'): never a DVC remote, whatever Pulumi.yaml platform.existingBuckets"
                " allows (its CI would read or rewrite every stack's state)"
            ],
        ),
        (
            {},
            {},
            {"auth": None, "serviceAccountId": "ml-ci-runner"},
            [
                "mlops-ci:auth: not set, and the stack file names a service account (serviceAccountId), which this"
                " release's default (keyless, direct) deletes: a stack deployed with a key keeps it with"
                " `mlops-ci:auth: key`; to switch, set `mlops-ci:auth: workload-identity` with `mlops-ci:keylessMode`"
                " impersonation (keeps the account) or direct (without the account's keys)",
                "mlops-ci:serviceAccountId: applies to a service account; keylessMode direct creates none"
                " (keylessMode impersonation does)",
            ],
        ),
        (
            {"workload_identity_providers": (SHARED_PROVIDER,)},
            {},
            {"auth": "workload-identity", "workloadIdentityProvider": SHARED_PROVIDER, "trustBranchOnly": "true"},
            [
                "mlops-ci:trustBranchOnly: cannot be combined with mlops-ci:workloadIdentityProvider: the branch is"
                " checked by the condition of the stack's own provider, and a shared provider's condition is the"
                " platform team's"
            ],
        ),
        (
            {},
            {},
            {"auth": "workload-identity", "branch": LONG_BRANCH},
            [
                f"mlops-ci:branch = '{LONG_BRANCH}': the CI token of its runs in acme-ml/churn-model has the subject"
                f" 'repo:acme-ml/churn-model:ref:refs/heads/{LONG_BRANCH}', 140 bytes; Google refuses a google.subject"
                " (mapped from it) over 127 bytes, so keyless CI would get no credentials: choose a shorter branch"
                " (or repository path), or auth key"
            ],
        ),
        (
            {"base_urls": ()},
            {},
            {"github__baseUrl": "https://github.acme.example/api/v3/"},
            [
                "github:baseUrl = 'https://github.acme.example/api/v3/': not an API the platform lets stack files send"
                f" its token to (Pulumi.yaml platform.baseUrls: none); {ASK}"
            ],
        ),
        (
            {"base_urls": ("https://ghe.acme.example/api/v3", "https://ghe.acme.example/api/v4")},
            {},
            {"github__baseUrl": "https://github.acme.example/api/v3/"},
            [
                "github:baseUrl = 'https://github.acme.example/api/v3/': not an API the platform lets stack files send"
                " its token to (Pulumi.yaml platform.baseUrls: https://ghe.acme.example/api/v3,"
                f" https://ghe.acme.example/api/v4); {ASK}"
            ],
        ),
        (
            {"existing_buckets": ("acme-{stack}-dvc", "shared-*")},
            {},
            {"existingBucket": "other-dvc"},
            [
                "mlops-ci:existingBucket = 'other-dvc': not a bucket the platform lets this stack use (Pulumi.yaml"
                " platform.existingBuckets: acme-{stack}-dvc, shared-*, for this stack acme-team-a-dvc, shared-*);"
                f" {ASK}"
            ],
        ),
        (
            {"existing_buckets": ()},
            {},
            {"existingBucket": "other-dvc"},
            [
                "mlops-ci:existingBucket = 'other-dvc': not a bucket the platform lets this stack use (Pulumi.yaml"
                f" platform.existingBuckets: none); {ASK}"
            ],
        ),
        (
            {"projects": ("acme-ml-*", "acme-lab-*")},
            {},
            {"gcp__project": "other-ml-test"},
            [
                "gcp:project = 'other-ml-test': not a project the platform lets this stack use (Pulumi.yaml"
                f" platform.projects: acme-ml-*, acme-lab-*); {ASK}"
            ],
        ),
        (
            {},
            # The CLI's own variables pass: which keys are secret, the passphrase and its file.
            {
                "PULUMI_CONFIG_ANYTHING": "x",
                "PULUMI_CONFIG_GCP_PROJECT": "y",
                "PULUMI_CONFIG_SECRET_KEYS": "[]",
                "PULUMI_CONFIG_PASSPHRASE": "p",
                "PULUMI_CONFIG_PASSPHRASE_FILE": "/dev/null",
            },
            {},
            [
                f"PULUMI_CONFIG_ANYTHING (environment): refused: Pulumi's SDK reads it as config {ENVIRONMENT_RULE}",
                f"PULUMI_CONFIG_GCP_PROJECT (environment): refused: Pulumi's SDK reads it as gcp:project {ENVIRONMENT_RULE}",
            ],
        ),
        (
            {},
            {},
            {"gcp__credentials": "{}", "gcp__storageCustomEndpoint": "http://x/", "gcp__region": "eu"},
            [
                "gcp:credentials: refused: the credentials of `pulumi up` are those of whoever runs it (their"
                " environment), never a stack file's",
                "gcp:region: unknown key: the Google provider gets gcp:project only (bucketLocation is mlops-ci:bucketLocation)",
                "gcp:storageCustomEndpoint: refused: it would send the Google API calls of `pulumi up`, with its"
                " credentials, to another host",
            ],
        ),
        ({}, {}, {"gcp__project": None}, ["gcp:project: required (the Google Cloud project id)"]),
        ({}, {}, {"protectBucket": "yes"}, ["mlops-ci:protectBucket = 'yes': must be true or false"]),
        (
            {},
            {},
            {"branch": "main\t"},
            [
                "mlops-ci:branch = 'main\\t': no control, format or other invisible characters (newline, tab, escape,"
                " bidirectional marks)"
            ],
        ),
        (
            {},
            {},
            {"gcp__project": "Acme-ml"},
            [
                "gcp:project = 'Acme-ml': a project id has 6-30 characters: lowercase letters, digits and '-', starting"
                " with a letter, not ending with '-'"
            ],
        ),
        (
            {},
            {},
            {"bucketLocation": ""},
            [
                "mlops-ci:bucketLocation = '': a Cloud Storage location: a region (europe-west6), a dual-region (EUR4) or"
                " a multi-region (EU); the list is mlops_ci/settings/locations.py"
            ],
        ),
        (
            {},
            {},
            {"auth": "workload-identity", "secretName": "MY_KEY"},
            ["mlops-ci:secretName: applies to auth key only; workload-identity creates no key"],
        ),
        (
            {},
            {},
            {"acme__thing": "x"},
            ["acme:thing: unknown namespace 'acme'; mlops-ci reads mlops-ci:, gcp:, github:, gitlab: keys only"],
        ),
        (
            {},
            {},
            {"g\u0441p__project": "x"},
            [
                "g\\u0441p:project: unknown namespace 'g\\u0441p' (did you mean gcp?); it has non-ASCII characters"
                " (U+0441 CYRILLIC SMALL LETTER ES at 1); mlops-ci reads mlops-ci:, gcp:, github:, gitlab: keys only"
            ],
        ),
        (
            {},
            {},
            {"github__token": "ghp_x"},
            [
                "github:token: must be encrypted: `pulumi config set --secret github:token` (or the platform's token"
                " variable in the environment); a plain-text token in a committed stack file is readable by everyone"
                " who can read it"
            ],
        ),
        (
            {},
            {},
            {"pulumi__tags": '{"vcs:repo": "a", "pulumi:project": "b", "team": "c"}'},
            [
                "pulumi:tags: pulumi:project, vcs:repo: tags the CLI sets itself (the project, its repository); only"
                " pulumi:template and tags of your own"
            ],
        ),
        (
            {},
            {},
            {"repository": "acme/" + "r" * 300},
            [f"mlops-ci:repository = 'acme/{'r' * 35}'...: 305 characters, at most 255"],
        ),
        (
            {},
            {},
            {"repository": None},
            ["mlops-ci:repository: required (GitHub owner/name, or GitLab group[/subgroup...]/project.)"],
        ),
    ],
)
def test_each_refusal_says_word_for_word_what_it_wants(
    platform_section: dict[str, Any],
    environment: dict[str, str],
    overrides: dict[str, str | None],
    refusals: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The refusals of a key beside the others (cross-key rules, namespaces, the environment) and of reading a value.
    monkeypatch.setattr(validate, "SCHEMA", dataclasses.replace(validate.SCHEMA, **platform_section))
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    pulumi.runtime.set_mocks(CountingMocks(), project="mlops-ci", stack="team-a", preview=False)
    pulumi.runtime.set_all_config(config_for("github", **overrides), [])
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert raised.value.problems == refusals


def test_a_bare_platform_key_beside_an_unknown_platform_names_the_platform_to_choose() -> None:
    pulumi.runtime.set_mocks(CountingMocks(), project="vision-ml", stack="dev", preview=False)
    pulumi.runtime.set_all_config({**config_for("github", platform="bitbucket"), "vision-ml:token": "x"}, ["vision-ml:token"])
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert (
        "vision-ml:token: in this project's own namespace (vision-ml:), which mlops-ci does not read: set <platform>:token"
        " instead (`pulumi config rm vision-ml:token; pulumi config set <platform>:token …`)"
    ) in raised.value.problems


def test_the_keys_left_unchecked_when_empty_each_have_a_rule() -> None:
    # An entry without a row in RULES is never read: it would say a key is derived when nothing derives it here.
    assert set(validate.DERIVED_WHEN_EMPTY) <= set(validate.RULES)
