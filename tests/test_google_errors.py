"""Google's refusals at create time: an API enabled moments ago is waited for (bounded), a key an
organization policy forbids and Cloud Resource Manager off in the deployer's project are one clear
error each; and which resources carry these error hooks."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pulumi
import pytest

from mlops_ci.components import google_errors
from mlops_ci.components.google_errors import GoogleRefusedError, on_key_error, retry_disabled_api
from tests.helpers import ACCOUNT, ACCOUNT_BINDING, BUCKET, KEY, POOL, POOL_PROVIDER, SERVICE, run


def disabled(api: str, project: str = "123456789012") -> str:
    """The provider's error for a call to an API Google calls disabled (its 403, as printed)."""
    return (
        f"Error creating ServiceAccount: googleapi: Error 403: API has not been used in project {project} before or it is"
        f" disabled. Enable it by visiting https://console.developers.google.com/apis/api/{api}/overview?project={project}"
        " then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems and"
        " retry.\nDetails: [...SERVICE_DISABLED...], accessNotConfigured"
    )


KEY_REFUSED = (
    "Error creating service account key: googleapi: Error 400: Key creation is not allowed on this service account."
    '\nDetails:\n[{"@type": "type.googleapis.com/google.rpc.PreconditionFailure", "violations": [{"type":'
    ' "constraints/iam.disableServiceAccountKeyCreation"}]}], failedPrecondition'
)


def failed(*errors: str, operation: str = "create") -> pulumi.ErrorHookArgs:
    """What the engine hands an error hook: the errors so far, newest first."""
    return pulumi.ErrorHookArgs("urn:x", "", "ci-identity-account", ACCOUNT, failed_operation=operation, errors=list(errors))


@pytest.fixture(autouse=True)
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(google_errors, "RETRY_DELAYS", (0, 0, 0))


def test_a_create_refused_for_an_api_enabled_moments_ago_is_retried_a_few_times() -> None:
    error = disabled("iam.googleapis.com")
    assert asyncio.run(retry_disabled_api(failed(error))) is True
    assert asyncio.run(retry_disabled_api(failed(error, error, error))) is True
    with pytest.raises(GoogleRefusedError, match=r"still answers that iam\.googleapis\.com is disabled in project 123456789012"):
        asyncio.run(retry_disabled_api(failed(error, error, error, error)))


def test_other_failures_are_left_to_the_engine() -> None:
    assert asyncio.run(retry_disabled_api(failed("googleapi: Error 409: already exists"))) is False
    assert asyncio.run(retry_disabled_api(failed(disabled("iam.googleapis.com"), operation="delete"))) is False


def test_cloud_resource_manager_off_in_the_deployers_project_is_one_clear_error() -> None:
    with pytest.raises(GoogleRefusedError) as raised:
        asyncio.run(retry_disabled_api(failed(disabled("cloudresourcemanager.googleapis.com", "555"))))
    assert str(raised.value) == (
        "Google answers that cloudresourcemanager.googleapis.com (Cloud Resource Manager) is disabled in project 555, the"
        " project of the credentials pulumi up uses: the Google provider reads every project through it. Enable it there"
        " (`gcloud services enable cloudresourcemanager.googleapis.com --project 555`) and run pulumi up again."
    )


def test_an_api_the_stack_does_not_enable_is_not_waited_for() -> None:
    """Google names the project of the credentials `pulumi up` uses when an API is off there (the
    Google provider's Service Usage calls, for one): the stack enables only its own APIs in its
    own project, so waiting five minutes for another would not help, nor is it "enabled moments ago"."""
    with pytest.raises(GoogleRefusedError) as raised:
        asyncio.run(retry_disabled_api(failed(disabled("serviceusage.googleapis.com", "563584335869"))))
    message = str(raised.value)
    assert message.startswith(
        "Google answers that serviceusage.googleapis.com is disabled in project 563584335869: not an API the stack"
        " enables, so that is the project of the credentials pulumi up uses (or their quota project)"
    ), message
    assert "`gcloud services enable serviceusage.googleapis.com --project 563584335869`" in message
    # an answer without Google's link is waited for, as are the stack's own APIs in key and keyless mode
    assert asyncio.run(retry_disabled_api(failed("googleapi: Error 403: ..., SERVICE_DISABLED"))) is True
    for api in ("storage.googleapis.com", "iam.googleapis.com", "sts.googleapis.com", "iamcredentials.googleapis.com"):
        assert asyncio.run(retry_disabled_api(failed(disabled(api)))) is True


def test_a_key_an_organization_policy_forbids_names_keyless_mode() -> None:
    with pytest.raises(GoogleRefusedError) as raised:
        asyncio.run(on_key_error("acme-ml-test", failed(KEY_REFUSED)))
    message = str(raised.value)
    assert message.startswith("Google refuses to create a service-account key in project acme-ml-test")
    assert "Set mlops-ci:auth to workload-identity" in message
    assert "mlops-ci:keylessMode direct" in message  # the choice the next up asks for (no silent switch)
    assert "pulumi destroy removes what it created" in message
    assert asyncio.run(on_key_error("acme-ml-test", failed(disabled("iam.googleapis.com")))) is True  # and waits for IAM


def test_which_resources_carry_which_hooks() -> None:
    evaluation = run("github")
    hooks = {r.type: r.error_hooks for r in evaluation.registrations if r.custom}
    assert hooks[KEY] == ("ci-identity-key-errors",)
    assert hooks[ACCOUNT] == ("ci-identity-google-api-errors",)
    assert hooks[SERVICE] == ("apis-google-api-errors",)
    assert hooks[BUCKET] == ("dvc-remote-google-api-errors",)
    keyless = run("github", auth="workload-identity")
    assert keyless.one(POOL).error_hooks == keyless.one(POOL_PROVIDER).error_hooks == ("workload-identity-google-api-errors",)
    impersonation = run("github", auth="workload-identity", keylessMode="impersonation")
    assert impersonation.one(ACCOUNT_BINDING).error_hooks == ("workload-identity-google-api-errors",)


def test_the_keys_hook_names_the_stacks_project(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[pulumi.ErrorHook] = []
    key_errors = google_errors.key_errors

    def recorded(name: str, project: str) -> pulumi.ErrorHook:
        made.append(key_errors(name, project))
        return made[-1]

    monkeypatch.setattr(google_errors, "key_errors", recorded)
    run("github", gcp__project="acme-ml-vision")
    [hook] = made
    with pytest.raises(GoogleRefusedError, match=r"^Google refuses to create a service-account key in project acme-ml-vision:"):
        asyncio.run(cast(Any, hook.callback(failed(KEY_REFUSED))))
