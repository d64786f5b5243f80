"""The real `__main__.py` under mocks: every resource and its inputs as `pulumi up` would send them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pulumi.runtime import rpc

from mlops_ci.ci.files import render_ci_file, render_job_script
from mlops_ci.offline.runtime import Evaluation, evaluate, reveal
from mlops_ci.offline.stacks import load_stack_file, stack_files
from tests.helpers import (
    ACCOUNT,
    BUCKET,
    GITHUB_FILE,
    GITHUB_SECRET,
    GITLAB_FILE,
    GRANT,
    KEY,
    POOL_PROVIDER,
    SERVICE,
    committed_file,
    decode_key_file,
    key_material,
    make_settings,
    run,
    secret_paths,
)

SECRET = GITHUB_SECRET


@pytest.mark.parametrize("stack_file", stack_files(), ids=lambda p: p.name)
def test_every_stack_file_evaluates(stack_file: Path) -> None:
    stack = load_stack_file(stack_file)
    evaluation = evaluate(stack.stack, stack.config, stack.secret_keys)
    credential_export = "workloadIdentityProvider" if evaluation.find(POOL_PROVIDER) else "secretName"
    # Direct keyless mode has no service account: the grants go to the repository's principal set.
    account: set[str] = {"serviceAccountEmail"} if evaluation.find(ACCOUNT) else set()
    assert (
        set(evaluation.exports)
        == {
            "bucketName",
            "bucketUrl",
            "dvcRemoteUrl",
            "ciFile",
            "ciRunsUrl",
            "nextSteps",
            credential_export,
        }
        | account
    )
    for type_ in (BUCKET, GRANT):
        assert evaluation.find(type_), type_


def test_google_apis_are_enabled_and_never_disabled() -> None:
    evaluation = run()
    services = {r.plain("service"): r for r in evaluation.find(SERVICE)}
    assert set(services) == {"storage.googleapis.com", "iam.googleapis.com"}
    for service in services.values():
        assert service.plain("disableOnDestroy") is False
        assert service.plain("project") == "acme-ml-test"
    assert services["storage.googleapis.com"] in evaluation.waits_for(evaluation.one(BUCKET))
    assert services["iam.googleapis.com"] in evaluation.waits_for(evaluation.one(ACCOUNT))


def test_bucket_is_private_labelled_and_retained() -> None:
    bucket = run(stack="vision").one(BUCKET)
    assert bucket.plain("name") == "acme-ml-test-vision-dvc"
    assert bucket.plain("project") == "acme-ml-test"
    assert bucket.plain("location") == "europe-west6"
    assert bucket.plain("uniformBucketLevelAccess") is True
    assert bucket.plain("publicAccessPrevention") == "enforced"
    assert bucket.plain("forceDestroy") is False
    assert bucket.plain("labels") == {"managed-by": "mlops-ci", "stack": "vision"}
    assert bucket.retain_on_delete is True
    assert bucket.protect is False  # `protect` would block `pulumi destroy` of everything else


def test_unprotected_bucket_is_deleted_on_destroy_but_never_forced() -> None:
    bucket = run(protectBucket="false").one(BUCKET)
    assert bucket.retain_on_delete is False
    assert bucket.plain("forceDestroy") is False


def test_service_account_says_which_repository_it_serves() -> None:
    account = run(serviceAccountId="churn-ci").one(ACCOUNT)
    assert account.plain("accountId") == "churn-ci"
    assert account.plain("project") == "acme-ml-test"
    assert account.plain("displayName") == "mlops-ci: CI of acme-ml/churn-model"
    assert account.plain("description") == "Managed by mlops-ci: CI access to the DVC remote bucket."


def test_service_account_display_name_is_cut_to_googles_100_characters() -> None:
    name = run(repository="acme-ml/" + "m" * 100).one(ACCOUNT).plain("displayName")
    assert name == ("mlops-ci: CI of acme-ml/" + "m" * 100)[:100]


@pytest.mark.parametrize(
    ("access", "roles"),
    [
        ("pull", {"roles/storage.objectViewer"}),
        ("push", {"roles/storage.objectViewer", "roles/storage.objectCreator"}),
        ("admin", {"roles/storage.objectAdmin"}),
    ],
)
def test_grants_are_bucket_scoped_and_non_authoritative(access: str, roles: set[str]) -> None:
    evaluation = run(access=access)
    grants = evaluation.find(GRANT)
    assert {g.plain("role") for g in grants} == roles
    email = evaluation.exports["serviceAccountEmail"]
    for grant in grants:
        assert grant.plain("bucket") == evaluation.exports["bucketName"]
        assert grant.plain("member") == f"serviceAccount:{email}"
        assert grant.plain("condition") is None
    iam_types = {r.type for r in evaluation.registrations if "iam" in r.type.lower()}
    assert iam_types == {GRANT}, "only BucketIAMMember: no project-level, binding or policy resource"


def test_key_rotates_through_its_keeper_new_before_old() -> None:
    key = run(keyRotation="2026-11").one(KEY)
    assert key.plain("keepers") == {"rotation": "2026-11"}
    assert key.delete_before_replace is False
    assert key.plain("serviceAccountId").endswith("/serviceAccounts/dvc-ci-team-a@acme-ml-test.iam.gserviceaccount.com")


def test_github_secret_holds_the_key_json_on_one_line_as_a_secret() -> None:
    evaluation = run()
    secret = evaluation.one(SECRET)
    assert secret.plain("secretName") == "GOOGLE_SERVICE_ACCOUNT_KEY"
    assert secret.plain("repository") == "churn-model"
    assert rpc.is_rpc_secret(secret.inputs["value"])
    assert "plaintextValue" not in secret.inputs
    value = secret.plain("value")
    assert "\n" not in value
    key_file = decode_key_file(evaluation.one(KEY).outputs["privateKey"])
    assert value == json.dumps(key_file, separators=(",", ":"))  # minified: no space either


def test_github_provider_gets_the_owner_githubs_api_and_a_secret_token(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK takes GITHUB_BASE_URL for a base URL left out: the stack's token must not go there.
    monkeypatch.setenv("GITHUB_BASE_URL", "https://ghes.elsewhere.example/api/v3/")
    evaluation = run(github__token="ghp_example", secret_keys=("github:token",))
    provider = evaluation.one("pulumi:providers:github")
    assert provider.plain("owner") == "acme-ml"
    assert provider.plain("baseUrl") == "https://api.github.com/"
    assert rpc.is_rpc_secret(provider.inputs["token"])
    on_github = evaluation.find(SECRET) + evaluation.find(GITHUB_FILE)
    assert len(on_github) == 3  # the secret, the job script, the workflow
    assert all(r.provider.startswith(provider.urn) for r in on_github)


def test_workflow_is_committed_after_the_secret_and_every_grant() -> None:
    evaluation = run(access="push", branch="develop")
    workflow = committed_file(evaluation, GITHUB_FILE)
    waits = evaluation.waits_for(workflow)
    assert evaluation.one(SECRET) in waits
    assert {g.urn for g in evaluation.find(GRANT)} <= {w.urn for w in waits}
    assert workflow.plain("file") == ".github/workflows/mlops.yaml"
    assert workflow.plain("branch") == "develop"
    assert workflow.plain("repository") == "churn-model"
    assert workflow.plain("overwriteOnCreate") is True
    job_script = committed_file(evaluation, GITHUB_FILE, "job-script")
    assert job_script in waits, "the job script before the workflow that calls it"
    assert evaluation.one(SECRET) in evaluation.waits_for(job_script)
    assert {g.urn for g in evaluation.find(GRANT)} <= set(job_script.dependencies)
    assert (job_script.plain("file"), job_script.plain("branch"), job_script.plain("repository")) == (
        ".mlops-ci/team-a.py",
        "develop",
        "churn-model",
    )
    assert (
        job_script.plain("commitMessage") == "mlops-ci: .mlops-ci/team-a.py, the CI job's script, managed by the stack [skip ci]"
    )


@pytest.mark.parametrize(("base", "ci_file_type"), [("github", GITHUB_FILE), ("gitlab", GITLAB_FILE)])
def test_ci_file_content_is_the_rendered_template(base: str, ci_file_type: str) -> None:
    evaluation = run(base, pythonVersion="3.12", requirementsFile="ci/requirements.txt", branch="dev")
    settings = make_settings(base, python_version="3.12", requirements_file="ci/requirements.txt", branch="dev")
    assert committed_file(evaluation, ci_file_type).plain("content") == render_ci_file(settings)
    assert committed_file(evaluation, ci_file_type, "job-script").plain("content") == render_job_script(settings)


@pytest.mark.parametrize(("base", "auth"), [("github", "key"), ("gitlab", "key"), ("gitlab", "workload-identity")])
def test_every_key_derived_value_is_secret_and_never_exported(base: str, auth: str) -> None:
    # With the report, GitLab's project access token is key material too (keyless: the only one).
    evaluation = run(base, auth=auth, report="true")
    material = key_material(evaluation)
    assert len(material) == {"github": 3, "gitlab": 4}[base] - (3 if auth != "key" else 0)
    leaks = [
        f"{r.type}::{r.name}{path}"
        for r in evaluation.registrations
        if r.type != KEY
        for path, secret, value in secret_paths(r.inputs)
        if not secret and any(m in json.dumps(value) or m in str(value) for m in material)
    ]
    assert leaks == []
    derived = [r for r in evaluation.registrations if any(s for _, s, _ in secret_paths(r.inputs))]
    assert derived, "the key reaches the platform as a secret input"
    exported = json.dumps(evaluation.exports)
    assert not any(m in exported for m in material)
    assert not evaluation.secret_exports


def test_two_evaluations_send_identical_inputs() -> None:
    def sent(evaluation: Evaluation) -> dict[str, tuple[object, list[str]]]:
        return {r.urn: (reveal(r.inputs), sorted(r.dependencies)) for r in evaluation.registrations}

    first, second = sent(run(access="push")), sent(run(access="push"))
    assert len(first) == 17  # 5 components (the team's and its 4), 2 providers, 10 resources
    assert first == second


def test_exports_name_the_remote() -> None:
    evaluation = run(stack="vision", dvcRemotePath="teams/vision")
    exports = dict(evaluation.exports)
    assert exports.pop("nextSteps").splitlines() == [
        "# In your clone of acme-ml/churn-model that holds the data, on branch main:"
        " first the CI file and its job script (.mlops-ci/vision.py) the stack committed there.",
        "git pull --ff-only",
        "# Then make gs://acme-ml-test-vision-dvc/teams/vision the default DVC remote.",
        "dvc remote add --default --force mlops-ci gs://acme-ml-test-vision-dvc/teams/vision",
        "# The bucket is new and empty: upload the data and outputs the CI job will pull:",
        "dvc push",
        "git add .dvc/config",
        "git diff --cached --quiet || git commit -m 'DVC remote: gs://acme-ml-test-vision-dvc/teams/vision'",
        "git push",
        "# Then follow the runs at https://github.com/acme-ml/churn-model/actions/workflows/mlops.yaml",
    ]
    assert exports == {
        "bucketName": "acme-ml-test-vision-dvc",
        "bucketUrl": "gs://acme-ml-test-vision-dvc",
        "dvcRemoteUrl": "gs://acme-ml-test-vision-dvc/teams/vision",
        "serviceAccountEmail": "dvc-ci-vision@acme-ml-test.iam.gserviceaccount.com",
        "ciFile": ".github/workflows/mlops.yaml",
        "ciRunsUrl": "https://github.com/acme-ml/churn-model/actions/workflows/mlops.yaml",
        "secretName": "GOOGLE_SERVICE_ACCOUNT_KEY",
    }


def test_key_mode_has_five_dependent_steps_after_the_apis() -> None:
    """The key right after the account, before the grants: where a policy forbids keys, the stack
    stops with only the APIs, the account and the bucket."""
    steps = run("github").steps()
    assert [sorted(r.type for r in step) for step in steps] == [
        sorted(["pulumi:providers:gcp", "pulumi:providers:github"]),
        [SERVICE, SERVICE],
        sorted([ACCOUNT, BUCKET]),
        [KEY],
        [GRANT],
        [SECRET],
        [GITHUB_FILE],  # the job script
        [GITHUB_FILE],  # the workflow that calls it
    ]


def _registrations_of(evaluation: Evaluation, prefix: str) -> list[str]:
    return [r.type for r in evaluation.registrations if r.type.startswith(prefix)]


def test_only_the_platform_in_use_is_registered() -> None:
    assert _registrations_of(run("github"), "gitlab") == []
    assert _registrations_of(run("gitlab"), "github") == []
