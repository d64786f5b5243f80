"""Pre-flight: each look-up that answers "not found" (or "forbidden") stops the stack before any
cloud resource is registered, every problem in one error naming the key and the value."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator, Mapping
from typing import Any

import pulumi
import pulumi_gcp as gcp
import pytest

from mlops_ci import __version__
from mlops_ci.ci.files import job_script_header
from mlops_ci.offline import runtime
from mlops_ci.offline.answers import numeric_id
from mlops_ci.platforms.gitlab import MANAGED
from mlops_ci.preflight import PreflightError, preflight
from mlops_ci.settings.loader import ConfigError, load_settings
from mlops_ci.settings.model import Settings, stack_label
from mlops_ci.settings.rules import PROVIDER_VARIABLE
from tests.helpers import BUCKET, GITLAB_FILE, GITLAB_TOKEN, CountingMocks, committed_file, config_for, run

NOT_FOUND: tuple[dict[str, Any], list[tuple[str, str]]] = ({}, [("", "404 Not Found")])
"""A look-up the provider fails, as the engine reports it (an invoke failure)."""


class Answers(CountingMocks):
    """Offline answers, except for the look-ups in `answers` (token's last part -> answer)."""

    def __init__(self, answers: Mapping[str, Any]) -> None:
        super().__init__()
        self.answers = answers
        self.asked: list[str] = []

    def call(self, args: Any) -> Any:
        name = args.token.rsplit(":", 1)[1]
        self.asked.append(name)
        answer = self.answers.get(name)
        if callable(answer):
            return answer(args.args, super().call(args))
        return super().call(args) if answer is None else answer

    @property
    def cloud_resources(self) -> list[str]:
        return [created for created in self.created if not created.startswith("pulumi:providers:")]


def refused(
    base: str, answers: Mapping[str, Any], overrides: Mapping[str, str | None] | None = None
) -> tuple[list[str], Answers]:
    mocks = Answers(answers)
    with pytest.raises(PreflightError) as raised:
        run(base, overrides, mocks=mocks)
    assert mocks.cloud_resources == [], "nothing may be created when a pre-flight check fails"
    assert str(raised.value).startswith("stack 'team-a' has "), "the error names the stack"
    assert "pre-flight problem" in str(raised.value)
    return raised.value.problems, mocks


def no_file(*paths: str) -> Any:
    """Answers the repository-file look-up as absent for `paths` (GitLab: fails; GitHub: empty)."""

    def answer(args: Mapping[str, Any], found: dict[str, Any]) -> Any:
        path = args.get("filePath", args.get("file"))
        if path not in paths:
            return found
        return NOT_FOUND if "filePath" in args else found | {"sha": ""}

    return answer


FAILING_LOOK_UPS: list[tuple[str, dict[str, Any], str]] = [
    ("github", {"getRepository": {"fullName": "", "repoId": 0}}, "mlops-ci:repository = 'acme-ml/churn-model': not found"),
    ("gitlab", {"getProject": NOT_FOUND}, "mlops-ci:repository = 'acme-ml/research/churn-model': not found"),
    (
        "github",
        {"getBranch": {"branch": "main", "sha": ""}},
        "mlops-ci:branch = 'main': no such branch in acme-ml/churn-model",
    ),
    ("gitlab", {"getBranch": NOT_FOUND}, "mlops-ci:branch = 'main': no such branch in acme-ml/research/churn-model"),
    ("gitlab", {"getBranch": {"name": "main", "canPush": False}}, "mlops-ci:branch = 'main': the token's user may not push"),
    ("github", {"getRepositoryFile": no_file("dvc.yaml")}, "mlops-ci:branch = 'main': no dvc.yaml on it"),
    ("gitlab", {"getRepositoryFile": no_file("dvc.yaml")}, "mlops-ci:branch = 'main': no dvc.yaml on it"),
    (
        "github",
        {"getRepositoryFile": no_file("requirements-freeze.txt", "requirements.txt")},
        "mlops-ci:requirementsFile = 'requirements-freeze.txt': not on branch main in acme-ml/churn-model",
    ),
    (
        "github",
        {"getBuckets": {"buckets": [{"name": "acme-ml-test-team-a-dvc", "labels": {"owner": "someone"}}]}},
        "mlops-ci:bucketName = 'acme-ml-test-team-a-dvc': the bucket exists in acme-ml-test and is not this stack's",
    ),
    (
        "gitlab",
        {"getOrganizationPolicy": {"booleanPolicies": [{"enforced": True}]}},
        "mlops-ci:auth = 'key': the project acme-ml-test enforces constraints/iam.disableServiceAccountKeyCreation",
    ),
]


@pytest.mark.parametrize(("base", "answers", "expected"), FAILING_LOOK_UPS)
def test_a_failing_look_up_stops_the_stack_before_any_cloud_resource(base: str, answers: dict[str, Any], expected: str) -> None:
    problems, _ = refused(base, answers)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_a_missing_requirements_file_suggests_the_one_the_branch_has() -> None:
    problems, _ = refused("gitlab", {"getRepositoryFile": no_file("requirements-freeze.txt")})
    assert problems == [
        "mlops-ci:requirementsFile = 'requirements-freeze.txt': not on branch main in acme-ml/research/churn-model;"
        " the branch has requirements.txt: set mlops-ci:requirementsFile to it"
    ]


def test_every_problem_is_reported_at_once() -> None:
    answers = {
        "getRepositoryFile": no_file("dvc.yaml", "requirements-freeze.txt", "requirements.txt"),
        "getOrganizationPolicy": {"booleanPolicies": [{"enforced": True}]},
    }
    problems, _ = refused("github", answers)
    assert [problem.split(" = ")[0] for problem in problems] == ["mlops-ci:branch", "mlops-ci:requirementsFile", "mlops-ci:auth"]


def test_keyless_stacks_do_not_ask_about_key_creation() -> None:
    mocks = Answers({"getOrganizationPolicy": {"booleanPolicies": [{"enforced": True}]}})
    run("github", mocks=mocks, auth="workload-identity")
    assert "getOrganizationPolicy" not in mocks.asked


def test_an_existing_bucket_is_looked_up_and_never_managed() -> None:
    mocks = Answers({})
    evaluation = run("github", mocks=mocks, existingBucket="acme-team-a-dvc")
    assert "getBucket" in mocks.asked
    assert evaluation.find(BUCKET) == []
    grants = evaluation.find("gcp:storage/bucketIAMMember:BucketIAMMember")
    assert [grant.plain("bucket") for grant in grants] == ["acme-team-a-dvc"]
    assert evaluation.exports["dvcRemoteUrl"] == "gs://acme-team-a-dvc/dvcstore"
    assert "dvc data status --not-in-remote" in evaluation.exports["nextSteps"]


def test_a_missing_existing_bucket_is_refused() -> None:
    problems, _ = refused("gitlab", {"getBucket": NOT_FOUND}, {"existingBucket": "acme-team-a-dvc"})
    assert problems == [
        "mlops-ci:existingBucket = 'acme-team-a-dvc': no such bucket, or the credentials of `pulumi up` cannot read it"
    ]


def test_an_existing_bucket_without_uniform_access_or_prevention_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    # Under the mocks the engine's warnings go to Python's logging; under the CLI, to its output.
    answer = {"name": "acme-team-a-dvc", "uniformBucketLevelAccess": False, "publicAccessPrevention": "inherited"}
    evaluation = run("github", mocks=Answers({"getBucket": answer}), existingBucket="acme-team-a-dvc")
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert any("bucket acme-team-a-dvc: uniform bucket-level access is off" in w for w in warnings), warnings
    assert any("bucket acme-team-a-dvc: public access prevention is not enforced" in w for w in warnings), warnings
    assert evaluation.find("gcp:storage/bucketIAMMember:BucketIAMMember")


@pytest.mark.parametrize("key", ["bucketName", "bucketLocation", "protectBucket"])
def test_an_existing_bucket_refuses_the_keys_that_shape_an_own_bucket(key: str) -> None:
    value = {"bucketName": "other-dvc", "bucketLocation": "EU", "protectBucket": "false"}[key]
    with pytest.raises(ConfigError, match=f"mlops-ci:existingBucket: cannot be combined with mlops-ci:{key}"):
        run("github", {key: value}, existingBucket="acme-team-a-dvc")


def kept(labels: dict[str, str] | None) -> dict[str, Any]:
    """getBuckets' answer for the stack's bucket with `labels`, verbatim as Google lists them."""
    return {"getBuckets": {"buckets": [{"name": "acme-ml-test-team-a-dvc", "labels": labels}]}}


OWN_LABELS = {"managed-by": "mlops-ci", "stack": "team-a"}


@pytest.mark.parametrize(
    "labels",
    [OWN_LABELS, {**OWN_LABELS, "goog-pulumi-provisioned": "true"}, {**OWN_LABELS, "cost-center": "ml"}],
    ids=["own-labels", "with-pulumi-attribution", "with-a-team-label"],
)
def test_the_stacks_own_bucket_is_adopted_whatever_else_it_is_labelled(labels: dict[str, str]) -> None:
    """pulumi-gcp labels every bucket it creates `goog-pulumi-provisioned`, and getBuckets answers
    it: the second `pulumi up` of a stack must still know its own bucket."""
    bucket = run("github", mocks=Answers(kept(labels))).one(BUCKET)
    assert bucket.import_id == "acme-ml-test-team-a-dvc"
    assert run("github").one(BUCKET).import_id == ""


def test_next_steps_of_an_adopted_bucket_do_not_call_it_new_and_empty() -> None:
    adopted = run("github", mocks=Answers(kept(OWN_LABELS))).exports["nextSteps"]
    assert "new and empty" not in adopted
    assert "# The bucket is the one this stack kept on `pulumi destroy`, with the data pushed then:" in adopted
    assert "\ndvc push\n" in adopted, "what the bucket lacks, if anything, still goes up"
    assert "# The bucket is new and empty" in run("github").exports["nextSteps"]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (None, "is not this stack's (not labelled for it)"),
        (
            {"managed-by": "mlops-ci", "stack": "team-b", "goog-pulumi-provisioned": "true"},
            "is the bucket of the mlops-ci stack 'team-b'",
        ),
        ({"stack": "team-a"}, "is not this stack's (not labelled for it)"),
    ],
    ids=["no-labels", "another-stack", "half-labelled"],
)
def test_a_bucket_that_is_not_the_stacks_is_refused_by_whose_it_is(labels: dict[str, str] | None, expected: str) -> None:
    """Labels removed by hand from the stack's own bucket look the same: the error says how to
    label it again (the state's labels never reach Google while pre-flight stops the stack)."""
    problems, _ = refused("github", kept(labels))
    relabel = (
        "; if it is this stack's own bucket and its labels were changed by hand, label it again (`gcloud storage"
        " buckets update gs://acme-ml-test-team-a-dvc --update-labels=managed-by=mlops-ci,stack=team-a`)"
    )
    assert problems == [
        f"mlops-ci:bucketName = 'acme-ml-test-team-a-dvc': the bucket exists in acme-ml-test and {expected}; choose another"
        " mlops-ci:bucketName, or set mlops-ci:existingBucket to use it as the DVC remote without managing it"
        + ("" if "team-b" in expected else relabel)
    ]


def service_disabled(api: str, project: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A look-up Google refuses because `api` is off in `project` (its 403, as the provider reports it)."""
    message = (
        f"googleapi: Error 403: API has not been used in project {project} before or it is disabled. Enable it by visiting"
        f" https://console.developers.google.com/apis/api/{api}/overview?project={project} then retry., SERVICE_DISABLED"
    )
    return {}, [("", message)]


def test_a_look_up_google_refuses_for_a_disabled_api_says_so() -> None:
    """Cloud Resource Manager off in the deployer's project: the key-policy look-up fails; that is
    a problem to fix, never "no policy"."""
    problems, _ = refused("github", {"getOrganizationPolicy": service_disabled("cloudresourcemanager.googleapis.com", "1234")})
    assert problems == [
        "mlops-ci:auth = 'key': Google answers that cloudresourcemanager.googleapis.com is disabled in project 1234 (or was"
        " enabled minutes ago): enable it there (`gcloud services enable cloudresourcemanager.googleapis.com --project"
        " 1234`), wait a few minutes, and run pulumi up again"
    ]
    answers = {"getBucket": service_disabled("storage.googleapis.com", "4321")}
    problems, _ = refused("github", answers, {"existingBucket": "acme-team-a-dvc"})
    assert problems[0].startswith("mlops-ci:existingBucket = 'acme-team-a-dvc': Google answers that storage.googleapis.com is")


def test_the_storage_api_off_in_the_stacks_project_means_no_bucket_yet() -> None:
    """The stack enables the Storage API itself: before that, its project holds no bucket."""
    bucket = run("github", mocks=Answers({"getBuckets": service_disabled("storage.googleapis.com", "acme-ml-test")})).one(BUCKET)
    assert bucket.import_id == ""


def test_a_gitlab_report_needs_a_token_that_manages_project_access_tokens() -> None:
    problems, mocks = refused("gitlab", {"getProjectAccessTokens": NOT_FOUND}, {"report": "true"})
    assert problems == [
        "mlops-ci:report = true: the token cannot manage the project access tokens of acme-ml/research/churn-model,"
        " and the report needs one: a Maintainer's token (on gitlab.com, project access tokens need Premium or Ultimate)"
    ]
    assert "getProjectAccessTokens" in mocks.asked
    # Without the report, nobody asks.
    quiet = Answers({"getProjectAccessTokens": NOT_FOUND})
    run("gitlab", mocks=quiet)
    assert "getProjectAccessTokens" not in quiet.asked


def test_an_existing_bucket_of_another_stack_is_refused_by_the_labels_google_holds() -> None:
    """getBucket answers the bucket's labels in `effectiveLabels` only, `labels` being {} (upstream
    `data_source_google_storage_bucket.go` reads through `setStorageBucket`, whose
    `tpgresource.SetLabels` keeps only the labels the configuration sets: a data source sets none)."""
    theirs = {"managed-by": "mlops-ci", "stack": "team-b", "goog-pulumi-provisioned": "true"}
    answer = {"name": "acme-team-a-dvc", "labels": {}, "effectiveLabels": theirs, "publicAccessPrevention": "enforced"}
    problems, _ = refused("github", {"getBucket": answer}, {"existingBucket": "acme-team-a-dvc"})
    assert problems == [
        "mlops-ci:existingBucket = 'acme-team-a-dvc': the bucket of another stack ('team-b'): a stack grants on its own"
    ]
    # the stack's own bucket, or a team's bucket labelled by nobody, is granted on
    for labels in ({**theirs, "stack": "team-a"}, None):
        mocks = Answers({"getBucket": answer | {"effectiveLabels": labels}})
        assert run("github", mocks=mocks, existingBucket="acme-team-a-dvc").find("gcp:storage/bucketIAMMember:BucketIAMMember")


@pytest.mark.parametrize("stack", ["Team-A", "team.a"])
@pytest.mark.parametrize("key", ["bucketName", "existingBucket"])
def test_a_stack_whose_name_only_looks_like_anothers_never_takes_its_bucket(stack: str, key: str) -> None:
    """Label values are lowercase letters, digits, `_` and `-`: `Team-A` and `team.a` (stacks of
    their own) would both be written `team-a`, the label of the stack team-a, and take its bucket."""
    labels = {"managed-by": "mlops-ci", "stack": "team-a", "goog-pulumi-provisioned": "true"}
    # existingBucket: the one bucket Pulumi.yaml's acme-{stack}-dvc lets this stack name
    bucket = "acme-team-a-dvc" if key == "bucketName" else f"acme-{stack_label(stack)}-dvc"
    listed = {"buckets": [{"name": bucket, "labels": labels}]}
    looked_up = {"name": bucket, "labels": {}, "effectiveLabels": labels, "uniformBucketLevelAccess": True}
    mocks = Answers({"getBuckets": listed, "getBucket": looked_up | {"publicAccessPrevention": "enforced"}})
    with pytest.raises(PreflightError) as raised:
        run("github", {key: bucket}, mocks=mocks, stack=stack)
    assert mocks.cloud_resources == []
    assert raised.value.problems[0].startswith(f"mlops-ci:{key} = '{bucket}': ")
    assert "'team-a'" in raised.value.problems[0]


def test_a_gitlab_ci_file_of_an_earlier_configuration_is_not_called_a_hand_edit(caplog: pytest.LogCaptureFixture) -> None:
    """The pre-flight cannot tell a hand edit from the stack's own earlier version (the state is
    not the program's to read): after a configuration change, this `pulumi up` commits the new
    version, and the warning must not say the file stays as it is."""
    import base64

    from mlops_ci.ci.files import render_ci_file
    from tests.helpers import make_settings

    earlier = render_ci_file(make_settings("gitlab", python_version="3.12"))
    branch_file = {"filePath": ".gitlab-ci.yml", "ref": "main", "content": base64.b64encode(earlier.encode()).decode()}

    def answer(args: Mapping[str, Any], found: dict[str, Any]) -> Any:
        return branch_file if args.get("filePath") == ".gitlab-ci.yml" else found

    delivered = {"key": "GOOGLE_SERVICE_ACCOUNT_KEY", "project": "acme-ml/research/churn-model", "description": MANAGED}
    run("gitlab", mocks=Answers({"getProjectVariable": delivered, "getRepositoryFile": answer}), pythonVersion="3.13")
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert any(
        ".gitlab-ci.yml on branch main of acme-ml/research/churn-model differs from what this configuration commits:"
        " if the configuration changed, this pulumi up commits the new version; if it was edited by hand" in w
        for w in warnings
    ), warnings


def job_script_at_its_path(first_line: str) -> Any:
    """The repository-file look-up answering a file at the stack's job-script path that starts with `first_line`."""

    def answer(args: Mapping[str, Any], found: Any) -> Any:
        path = args.get("filePath", args.get("file"))
        if path != ".mlops-ci/team-a.py":
            return found
        text = f"{first_line}\nprint('a script')\n"
        if "filePath" in args:  # GitLab answers the content in base64
            return {
                "filePath": path,
                "ref": args["ref"],
                "content": base64.b64encode(text.encode()).decode(),
                "encoding": "base64",
            }
        return {"file": path, "branch": args["branch"], "sha": "f" * 40, "content": text}

    return answer


@pytest.mark.parametrize(("base", "where"), [("github", "acme-ml/churn-model"), ("gitlab", "acme-ml/research/churn-model")])
@pytest.mark.parametrize(
    "first_line",
    [
        "# The team's own script",
        # Another stack's job script: each stack has its own path, so this one was put there by hand.
        job_script_header("team-b"),
        "",
        "# " + "a first line longer than what the problem quotes of it " * 3,
    ],
)
def test_a_file_at_the_job_script_path_that_is_not_this_stacks_stops_the_stack(base: str, where: str, first_line: str) -> None:
    """`pulumi up` would overwrite it (`overwrite_on_create`) and `pulumi destroy` delete it."""
    problems, _ = refused(base, {"getRepositoryFile": job_script_at_its_path(first_line)})
    assert problems == [
        f"mlops-ci:branch = 'main': .mlops-ci/team-a.py on it in {where} is not the job script mlops-ci wrote for the stack"
        f" team-a (its first line: {first_line[:80]!r}); the stack commits its job script there and `pulumi destroy`"
        " deletes it: move that file, or use another stack name"
    ]


@pytest.mark.parametrize("base", ["github", "gitlab"])
@pytest.mark.parametrize("version", [__version__, "0.0.1"])
def test_the_stacks_own_job_script_of_any_version_is_its_to_overwrite(base: str, version: str) -> None:
    mocks = Answers({"getRepositoryFile": job_script_at_its_path(job_script_header("team-a", version))})
    run(base, mocks=mocks)
    assert [c for c in mocks.created if c.endswith("-job-script")] == [
        f"{base}:index/repositoryFile:RepositoryFile::{base}-job-script"
    ]


def test_an_existing_bucket_keeps_the_platforms_problems_beside_its_own() -> None:
    problems, _ = refused(
        "github", {"getRepositoryFile": no_file("dvc.yaml"), "getBucket": NOT_FOUND}, {"existingBucket": "acme-team-a-dvc"}
    )
    assert [problem.split(" = ")[0] for problem in problems] == ["mlops-ci:branch", "mlops-ci:existingBucket"]


@pytest.mark.parametrize(
    ("rules", "warned"),
    [
        ([{"pattern": "ma*"}], "mlops-ci:branch = 'main': protected by the rule 'ma*'; the commit of the CI file is refused"),
        ([{"pattern": "release/*"}, {"pattern": "main"}], "mlops-ci:branch = 'main': protected by the rule 'main';"),
        ([{"pattern": "mai"}, {"pattern": "Main"}], None),
        (NOT_FOUND, None),
    ],
)
def test_a_protected_branch_is_a_warning_naming_its_rule(
    caplog: pytest.LogCaptureFixture, rules: Any, warned: str | None
) -> None:
    """Whether the token's user may bypass a rule is not visible to the look-up: a warning, never a
    refusal; a rule look-up that fails is no protection seen."""
    answer = rules if rules is NOT_FOUND else {"repository": "churn-model", "rules": rules}
    evaluation = run("github", mocks=Answers({"getBranchProtectionRules": answer}))
    warnings = [record.getMessage() for record in caplog.records if "protected by the rule" in record.getMessage()]
    assert len(warnings) == (0 if warned is None else 1), warnings
    assert warned is None or warnings[0].startswith(warned), warnings
    assert evaluation.find("github:index/repositoryFile:RepositoryFile")


def test_a_bucket_whose_name_only_starts_like_the_stacks_is_neither_adopted_nor_refused() -> None:
    """The listing is by prefix: only the bucket of exactly the stack's name counts."""
    other = {"name": "acme-ml-test-team-a-dvc-old", "labels": {"owner": "someone"}}
    evaluation = run("github", mocks=Answers({"getBuckets": {"buckets": [other]}}))
    assert evaluation.one(BUCKET).import_id == ""


def test_an_existing_bucket_private_and_uniform_is_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    answer = {"name": "acme-team-a-dvc", "uniformBucketLevelAccess": True, "publicAccessPrevention": "enforced"}
    run("github", mocks=Answers({"getBucket": answer}), existingBucket="acme-team-a-dvc")
    assert not [record.getMessage() for record in caplog.records if "bucket acme-team-a-dvc" in record.getMessage()]


def test_the_bucket_listing_asks_for_the_stacks_bucket_by_prefix() -> None:
    """A whole project's listing pages through every bucket: the look-up names the bucket's own name."""
    asked: list[Mapping[str, Any]] = []

    def listing(args: Mapping[str, Any], found: dict[str, Any]) -> dict[str, Any]:
        asked.append(args)
        return found

    run("github", mocks=Answers({"getBuckets": listing}))
    assert [(args["project"], args.get("prefix")) for args in asked] == [("acme-ml-test", "acme-ml-test-team-a-dvc")]


def test_a_bucket_listing_refused_for_another_disabled_api_names_the_bucket_key() -> None:
    problems, _ = refused("github", {"getBuckets": service_disabled("cloudresourcemanager.googleapis.com", "1234")})
    assert problems == [
        "mlops-ci:bucketName = 'acme-ml-test-team-a-dvc': Google answers that cloudresourcemanager.googleapis.com is"
        " disabled in project 1234 (or was enabled minutes ago): enable it there (`gcloud services enable"
        " cloudresourcemanager.googleapis.com --project 1234`), wait a few minutes, and run pulumi up again"
    ]


def test_an_enforced_key_policy_says_what_to_use_instead() -> None:
    problems, _ = refused("github", {"getOrganizationPolicy": {"booleanPolicies": [{"enforced": True}]}})
    assert problems == [
        "mlops-ci:auth = 'key': the project acme-ml-test enforces constraints/iam.disableServiceAccountKeyCreation, so no"
        " service-account key can be created; use mlops-ci:auth workload-identity (keyless)"
    ]


@pytest.fixture
def fresh_loop() -> Iterator[None]:
    """An event loop of the test's own: the look-ups run on it (an earlier test's evaluation closed its loop)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.settings.reset_options()
    yield
    loop.close()


def settings_in(project: str, mocks: Answers) -> Settings:
    """The settings of stack `dev` (gcp:project acme-ml-test) in a project made by `pulumi new` named `project`."""
    pulumi.runtime.set_mocks(mocks, project=project, stack="dev", preview=False)
    pulumi.runtime.set_all_config(config_for("github"))
    return load_settings()


@pytest.mark.usefixtures("fresh_loop")
def test_a_template_project_never_adopts_the_bucket_of_another_projects_stack_of_the_same_name() -> None:
    # Red team (tpl): the template README has every team run `pulumi new … --stack dev`; two teams' projects
    # (vision-ml, nlp-ml) in one Google Cloud project derive the same bucket (acme-ml-test-dev-dvc) and
    # label it alike (managed-by mlops-ci, stack dev: no project), so nlp-ml's pre-flight takes vision-ml's
    # bucket, data and all, for its own: imported into nlp-ml's state, granted to nlp-ml's CI, and deleted
    # by nlp-ml's destroy with protectBucket false. Expected: refused (or another name), never adopted.
    theirs = settings_in("vision-ml", Answers({})).labels
    mocks = Answers({"getBuckets": {"buckets": [{"name": "acme-ml-test-dev-dvc", "labels": theirs}]}})
    settings = settings_in("nlp-ml", mocks)
    assert settings.bucket_name == "acme-ml-test-dev-dvc"
    google = gcp.Provider("gcp", project=settings.gcp_project)
    with pytest.raises(PreflightError) as raised:
        preflight(settings, settings.platform.provider(settings), google)
    refusal = "mlops-ci:bucketName = 'acme-ml-test-dev-dvc': the bucket exists in acme-ml-test and is the bucket of the"
    assert any(p.startswith(refusal) and "'vision-ml'" in p for p in raised.value.problems), raised.value.problems


def test_an_owner_variable_redirecting_the_github_provider_stops_the_stack_before_any_github_look_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every look-up would ask about the other owner's repository (upstream v6.13.0 provider.go `configureProvider`)."""
    monkeypatch.delenv("GITHUB_OWNER", raising=False)
    monkeypatch.delenv("GITHUB_APP_ID", raising=False)
    monkeypatch.setenv("GITHUB_ORGANIZATION", "someone-else")
    problems, mocks = refused("github", {})
    assert problems == [
        "GITHUB_ORGANIZATION = 'someone-else' in the environment: the GitHub provider manages that owner's repositories"
        " instead of 'acme-ml' (it reads the variable before the owner the stack gives it); unset GITHUB_ORGANIZATION"
    ]
    assert not {"getRepository", "getBranch", "getBranchProtectionRules", "getRepositoryFile"} & set(mocks.asked)


class GitlabPlan(runtime.OfflineCalls):
    """The offline world, with gitlab.com answering `plan` for the namespace (None: it does not say)."""

    def __init__(self, plan: str | None) -> None:
        self.plan = plan
        self.asked: list[tuple[str, str, int]] = []

    def gitlab_plan(self, base_url: str, token: str, namespace_id: int) -> str | None:
        self.asked.append((base_url, token, namespace_id))
        return self.plan


def report_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "mlops-ci:report" in r.getMessage()]


def test_a_gitlab_report_on_the_free_plan_stops_the_stack_naming_the_group(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = GitlabPlan("free")
    monkeypatch.setattr(runtime, "OFFLINE_CALLS", plan)
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-from-the-environment")
    mocks = Answers({})
    with pytest.raises(PreflightError) as raised:
        run("gitlab", mocks=mocks, report="true", gitlab__token="glpat-example", secret_keys=("gitlab:token",))
    assert mocks.cloud_resources == []
    assert raised.value.problems == [
        "mlops-ci:report = true: acme-ml/research is on GitLab's Free plan, where gitlab.com creates no project access"
        " token, and the report needs one: set mlops-ci:report to false, or move the project to a Premium group"
    ]
    # The plan of the project's namespace, asked of gitlab.com's API with the stack's token first.
    assert plan.asked == [("https://gitlab.com/api/v4/", "glpat-example", numeric_id("gitlab/acme-ml/research"))]


def test_a_gitlab_branch_closed_to_the_token_and_a_free_plan_are_told_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "OFFLINE_CALLS", GitlabPlan("free"))
    problems, _ = refused("gitlab", {"getBranch": {"name": "main", "canPush": False}}, {"report": "true"})
    assert [problem.split(": ")[1] for problem in problems] == [
        "the token's user may not push to it (protected branch)",
        "acme-ml/research is on GitLab's Free plan, where gitlab.com creates no project access token, and the report needs one",
    ]


@pytest.mark.parametrize(("environment", "expected"), [("glpat-from-the-environment", "glpat-from-the-environment"), (None, "")])
def test_a_gitlab_plan_is_asked_of_the_instance_with_the_environments_token(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, environment: str | None, expected: str
) -> None:
    plan = GitlabPlan(None)
    monkeypatch.setattr(runtime, "OFFLINE_CALLS", plan)
    monkeypatch.delenv("GITLAB_TOKEN", raising=False)
    if environment is not None:
        monkeypatch.setenv("GITLAB_TOKEN", environment)
    evaluation = run("gitlab", report="true", gitlab__baseUrl="https://gitlab.acme.example/api/v4/")
    assert plan.asked == [("https://gitlab.acme.example/api/v4/", expected, numeric_id("gitlab/acme-ml/research"))]
    # A self-managed instance has no Free plan that refuses the token: an unknown plan is no warning there.
    assert report_warnings(caplog) == []
    assert evaluation.find(GITLAB_TOKEN)


def test_an_unknown_gitlab_com_plan_is_a_warning_and_a_known_one_is_none(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runtime, "OFFLINE_CALLS", GitlabPlan("premium"))
    assert run("gitlab", report="true").find(GITLAB_TOKEN)
    assert report_warnings(caplog) == []
    monkeypatch.setattr(runtime, "OFFLINE_CALLS", GitlabPlan(None))
    assert run("gitlab", report="true").find(GITLAB_TOKEN)
    assert report_warnings(caplog) == [
        "mlops-ci:report = true: the plan of acme-ml/research cannot be read with this token (only the group's owners"
        " can): on gitlab.com's Free plan, pulumi up stops when it creates the report's project access token"
    ]


def test_a_gitlab_project_without_a_namespace_is_not_asked_its_plan(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    plan = GitlabPlan("free")
    monkeypatch.setattr(runtime, "OFFLINE_CALLS", plan)
    project: dict[str, Any] = {"pathWithNamespace": "acme-ml/research/churn-model", "id": "7", "namespaces": []}
    run("gitlab", mocks=Answers({"getProject": project}), report="true")
    assert plan.asked == []
    assert [w.split(" cannot")[0] for w in report_warnings(caplog)] == [
        "mlops-ci:report = true: the plan of acme-ml/research/churn-model"
    ]


def hand_change_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    messages = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    return [m for m in messages if "deleted by hand?" in m or "differs from what this configuration commits" in m]


class DeliveredBefore(Answers):
    """A GitLab project where the stack delivered its `variable` before, and whose branch holds
    `files` (path -> bytes; None: absent; other paths as offline); the look-ups' arguments recorded."""

    def __init__(self, variable: str, files: Mapping[str, bytes | None], description: str = f"{MANAGED}: the key") -> None:
        super().__init__({"getProjectVariable": self.variable, "getRepositoryFile": self.file})
        self.delivered, self.files, self.description = variable, files, description
        self.arguments: list[tuple[str, dict[str, Any]]] = []

    def variable(self, args: Mapping[str, Any], found: Any) -> Any:
        self.arguments.append(("getProjectVariable", dict(args)))
        delivered = {"key": args["key"], "project": args["project"], "description": self.description}
        return delivered if args["key"] == self.delivered else found

    def file(self, args: Mapping[str, Any], found: Any) -> Any:
        self.arguments.append(("getRepositoryFile", dict(args)))
        path = args["filePath"]
        if path not in self.files:
            return found
        content = self.files[path]
        if content is None:
            return NOT_FOUND
        return {"filePath": path, "ref": args["ref"], "content": base64.b64encode(content).decode(), "encoding": "base64"}


HAND_CHANGED: dict[str, str | None] = {"branch": "develop", "ciFile": "ci/mlops.yml"}


def committed_contents(**overrides: str | None) -> dict[str, bytes]:
    """Path -> content of the job script and the CI file the stack commits."""
    evaluation = run("gitlab", HAND_CHANGED | overrides)
    return {
        committed_file(evaluation, GITLAB_FILE, suffix).plain("filePath"): committed_file(evaluation, GITLAB_FILE, suffix)
        .plain("content")
        .encode()
        for suffix in ("ci-file", "job-script")
    }


def test_gitlab_files_as_the_stack_commits_them_are_no_hand_change(caplog: pytest.LogCaptureFixture) -> None:
    mocks = DeliveredBefore("GOOGLE_SERVICE_ACCOUNT_KEY", committed_contents())
    run("gitlab", HAND_CHANGED, mocks=mocks)
    assert hand_change_warnings(caplog) == []
    project = "acme-ml/research/churn-model"
    assert ("getProjectVariable", {"project": project, "key": "GOOGLE_SERVICE_ACCOUNT_KEY"}) in mocks.arguments
    for path in ("ci/mlops.yml", ".mlops-ci/team-a.py"):
        assert ("getRepositoryFile", {"project": project, "filePath": path, "ref": "develop"}) in mocks.arguments


def test_gitlab_files_deleted_by_hand_after_the_delivery_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    run("gitlab", HAND_CHANGED, mocks=DeliveredBefore("GOOGLE_SERVICE_ACCOUNT_KEY", dict.fromkeys(committed_contents())))
    assert hand_change_warnings(caplog) == [
        f"{path} is missing from branch develop of acme-ml/research/churn-model although the stack delivered its CI"
        " variables (deleted by hand?): `pulumi up` commits it again after its refresh; with `--refresh=false`, run"
        " `pulumi refresh` first, or `pulumi destroy` stops at it"
        for path in ("ci/mlops.yml", ".mlops-ci/team-a.py")
    ]


def test_a_variable_the_team_set_by_hand_before_the_first_up_is_no_delivery(caplog: pytest.LogCaptureFixture) -> None:
    # Its creation fails at `up` anyway (GitLab refuses a second variable of the key and scope); no false warning.
    absent = dict.fromkeys(committed_contents())
    run("gitlab", HAND_CHANGED, mocks=DeliveredBefore("GOOGLE_SERVICE_ACCOUNT_KEY", absent, description="our old key"))
    assert hand_change_warnings(caplog) == []


def test_a_gitlab_ci_file_edited_by_hand_into_bytes_that_are_no_text_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    files = committed_contents() | {"ci/mlops.yml": b"\xff\xfe not UTF-8 \x80"}
    run("gitlab", HAND_CHANGED, mocks=DeliveredBefore("GOOGLE_SERVICE_ACCOUNT_KEY", files))
    assert hand_change_warnings(caplog) == [
        "ci/mlops.yml on branch develop of acme-ml/research/churn-model differs from what this configuration commits:"
        " if the configuration changed, this pulumi up commits the new version; if it was edited by hand, `pulumi up`"
        " puts the stack's version back after its refresh (with `--refresh=false` it leaves it until the stack's"
        " version changes)"
    ]


@pytest.mark.parametrize("mode", ["direct", "impersonation"])
def test_keyless_hand_changes_are_told_by_the_delivered_provider_variable(caplog: pytest.LogCaptureFixture, mode: str) -> None:
    """Both keyless modes deliver GCP_WORKLOAD_IDENTITY_PROVIDER; only impersonation GCP_SERVICE_ACCOUNT."""
    keyless: dict[str, str | None] = {"auth": "workload-identity", "keylessMode": mode}
    files = dict.fromkeys(committed_contents(**keyless))
    run("gitlab", HAND_CHANGED | keyless, mocks=DeliveredBefore("GOOGLE_SERVICE_ACCOUNT_KEY", files))
    assert hand_change_warnings(caplog) == [], "the key's variable is not what a keyless stack delivers"
    run("gitlab", HAND_CHANGED | keyless, mocks=DeliveredBefore(PROVIDER_VARIABLE, files))
    assert [w.split(" is missing")[0] for w in hand_change_warnings(caplog)] == ["ci/mlops.yml", ".mlops-ci/team-a.py"]
    # A key-mode stack delivers the key: a keyless variable found there says nothing of its files.
    caplog.clear()
    run("gitlab", HAND_CHANGED, mocks=DeliveredBefore(PROVIDER_VARIABLE, files))
    assert hand_change_warnings(caplog) == []


def test_a_gitlab_branch_the_token_may_not_push_to_is_refused_saying_what_to_do() -> None:
    problems, _ = refused("gitlab", {"getBranch": {"name": "main", "canPush": False}})
    assert problems == [
        "mlops-ci:branch = 'main': the token's user may not push to it (protected branch): the CI file cannot be"
        " committed; allow the token's role to push, or choose another branch"
    ]


@pytest.mark.parametrize("base", ["github", "gitlab"])
def test_a_branch_without_the_pipeline_or_any_requirements_file_gets_no_hint(base: str) -> None:
    where = "acme-ml/churn-model" if base == "github" else "acme-ml/research/churn-model"
    problems, _ = refused(base, {"getRepositoryFile": no_file("dvc.yaml", "requirements-freeze.txt", "requirements.txt")})
    assert problems == [
        f"mlops-ci:branch = 'main': no dvc.yaml on it in {where}: the CI job reproduces a DVC pipeline (`dvc stage add`,"
        " the guide's chapter 2.1); push it first",
        f"mlops-ci:requirementsFile = 'requirements-freeze.txt': not on branch main in {where}",
    ]


def test_a_requirements_file_named_otherwise_suggests_the_first_usual_name_the_branch_has() -> None:
    problems, _ = refused(
        "gitlab", {"getRepositoryFile": no_file("requirements/dev.txt")}, {"requirementsFile": "requirements/dev.txt"}
    )
    assert problems == [
        "mlops-ci:requirementsFile = 'requirements/dev.txt': not on branch main in acme-ml/research/churn-model;"
        " the branch has requirements-freeze.txt: set mlops-ci:requirementsFile to it"
    ]


def test_an_empty_github_file_at_the_job_script_path_stops_the_stack() -> None:
    """GitHub answers an empty file with content "": its first line is quoted as empty."""

    def answer(args: Mapping[str, Any], found: Any) -> Any:
        if args["file"] != ".mlops-ci/team-a.py":
            return found
        return {"file": args["file"], "branch": args["branch"], "sha": "e" * 40, "content": ""}

    problems, _ = refused("github", {"getRepositoryFile": answer})
    assert len(problems) == 1
    assert "(its first line: ''); the stack commits its job script there" in problems[0]


@pytest.mark.parametrize(("content", "quoted"), [(b"\xff\xfe\x00binary\nmore", "'\ufffd\ufffd\\x00binary'"), (b"", "''")])
def test_a_gitlab_job_script_path_holding_no_text_or_nothing_stops_the_stack(content: bytes, quoted: str) -> None:
    def answer(args: Mapping[str, Any], found: Any) -> Any:
        if args["filePath"] != ".mlops-ci/team-a.py":
            return found
        encoded = base64.b64encode(content).decode()
        return {"filePath": args["filePath"], "ref": args["ref"], "content": encoded, "encoding": "base64"}

    problems, _ = refused("gitlab", {"getRepositoryFile": answer})
    assert len(problems) == 1
    assert f"(its first line: {quoted}); the stack commits its job script there" in problems[0]
