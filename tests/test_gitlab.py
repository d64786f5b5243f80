"""GitLab delivery: a masked, raw, base64 CI/CD variable, and `.gitlab-ci.yml` committed after it."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from pulumi.runtime import rpc

from mlops_ci.offline import runtime
from mlops_ci.settings.rules import REPORT_TOKEN_VARIABLE
from tests.helpers import GITLAB_FILE, GITLAB_TOKEN, GITLAB_VARIABLE, GRANT, KEY, CountingMocks, committed_file, run

VARIABLE = GITLAB_VARIABLE
CI_FILE = GITLAB_FILE


def test_variable_is_masked_raw_unprotected_and_secret() -> None:
    evaluation = run("gitlab")
    variable = evaluation.one(VARIABLE)
    assert variable.plain("project") == "acme-ml/research/churn-model"
    assert variable.plain("key") == "GOOGLE_SERVICE_ACCOUNT_KEY"
    assert variable.plain("masked") is True
    assert variable.plain("hidden") is True
    assert variable.plain("raw") is True
    assert variable.plain("protected") is False
    assert variable.plain("variableType") == "env_var"
    assert variable.plain("environmentScope") == "*"
    assert rpc.is_rpc_secret(variable.inputs["value"])
    # Exactly the key's base64 form: one line, in GitLab's mask alphabet.
    assert variable.plain("value") == evaluation.one(KEY).outputs["privateKey"]


def test_older_instances_get_a_masked_variable_that_is_not_hidden() -> None:
    variable = run("gitlab", hiddenVariable="false").one(VARIABLE)
    assert variable.plain("masked") is True
    assert variable.plain("hidden") is False


def test_protected_variable_follows_the_config() -> None:
    assert run("gitlab", protectedVariable="true").one(VARIABLE).plain("protected") is True


def test_ci_file_is_committed_after_the_variable_and_every_grant() -> None:
    evaluation = run("gitlab", access="admin", branch="develop", ciFile="ci/mlops.yml")
    ci_file = committed_file(evaluation, CI_FILE)
    waits = {r.urn for r in evaluation.waits_for(ci_file)}
    assert evaluation.one(VARIABLE).urn in waits
    assert {g.urn for g in evaluation.find(GRANT)} <= waits
    assert ci_file.plain("filePath") == "ci/mlops.yml"
    assert ci_file.plain("branch") == "develop"
    assert ci_file.plain("encoding") == "text"
    assert ci_file.plain("project") == "acme-ml/research/churn-model"
    assert "python3 .mlops-ci/team-a.py repro" in ci_file.plain("content")
    job_script = committed_file(evaluation, CI_FILE, "job-script")
    assert job_script.urn in waits, "the job script before the CI file that calls it"
    assert evaluation.one(VARIABLE).urn in {r.urn for r in evaluation.waits_for(job_script)}
    assert (job_script.plain("filePath"), job_script.plain("branch"), job_script.plain("encoding")) == (
        ".mlops-ci/team-a.py",
        "develop",
        "text",
    )
    assert job_script.plain("deleteCommitMessage") == "mlops-ci: remove .mlops-ci/team-a.py (stack destroyed)"
    assert 'dvc("repro", "--pull", "--allow-missing")' in job_script.plain("content")


def test_self_managed_gitlab_and_token_reach_the_provider() -> None:
    evaluation = run(
        "gitlab",
        gitlab__baseUrl="https://gitlab.acme.example/api/v4/",
        gitlab__token="glpat-example",
        secret_keys=("gitlab:token",),
    )
    provider = evaluation.one("pulumi:providers:gitlab")
    assert provider.plain("baseUrl") == "https://gitlab.acme.example/api/v4/"
    assert rpc.is_rpc_secret(provider.inputs["token"])
    assert evaluation.one(VARIABLE).provider.startswith(provider.urn)


class UnmaskableKeyMocks(CountingMocks):
    """A key whose value GitLab could not mask (a raw JSON file instead of base64)."""

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        if args.typ == KEY:
            outputs["privateKey"] = base64.b64decode(outputs["privateKey"]).decode()
        return resource_id, outputs


def test_unmaskable_value_is_refused_naming_the_key_and_no_variable_is_created() -> None:
    mocks = UnmaskableKeyMocks()
    refusal = (
        "mlops-ci:secretName 'GOOGLE_SERVICE_ACCOUNT_KEY': the value cannot be masked by GitLab (one line, >= 8 characters"
        " of a-z A-Z 0-9 _ + = / @ : . ~ -); the variable was not created"
    )
    with pytest.raises(Exception, match=re.escape(refusal)):
        run("gitlab", mocks=mocks)
    assert not [c for c in mocks.created if c.startswith(VARIABLE)]
    assert not [c for c in mocks.created if c.startswith(CI_FILE)]


def test_every_gitlab_variable_and_token_says_mlops_ci_manages_it_and_what_it_holds() -> None:
    evaluation = run("gitlab", report="true")
    assert {v.plain("key"): v.plain("description") for v in evaluation.find(VARIABLE)} == {
        "GOOGLE_SERVICE_ACCOUNT_KEY": "Managed by mlops-ci: service-account key file, base64",
        REPORT_TOKEN_VARIABLE: "Managed by mlops-ci: project access token that posts the experiment report",
    }
    token = evaluation.one(GITLAB_TOKEN)
    assert token.plain("description") == "Managed by mlops-ci: posts the experiment report on merge requests"
    rotated = run("gitlab", report="true", keyRotation="2026-12").one(GITLAB_TOKEN)
    assert rotated.plain("description") == "Managed by mlops-ci: posts the experiment report on merge requests (rotation 2026-12)"


def test_keyless_settings_are_plain_raw_unprotected_variables_that_say_so() -> None:
    variables = run("gitlab", auth="workload-identity", keylessMode="impersonation").find(VARIABLE)
    described = {
        v.plain("key"): (v.plain("description"), v.plain("masked"), v.plain("protected"), v.plain("raw"), v.inputs.get("hidden"))
        for v in variables
    }
    setting = ("Managed by mlops-ci: keyless CI setting (not a secret)", False, False, True, None)
    assert described == {"GCP_WORKLOAD_IDENTITY_PROVIDER": setting, "GCP_SERVICE_ACCOUNT": setting}
    assert not [v for v in variables if rpc.is_rpc_secret(v.inputs["value"])]


def test_gitlab_commits_say_which_file_the_stack_manages_and_only_the_ci_files_runs_ci() -> None:
    evaluation = run("gitlab")
    ci_file, job_script = committed_file(evaluation, CI_FILE), committed_file(evaluation, CI_FILE, "job-script")
    ci_message = "mlops-ci: .gitlab-ci.yml, managed by the stack (pulumi up, pulumi destroy)"
    assert (ci_file.plain("createCommitMessage"), ci_file.plain("updateCommitMessage")) == (ci_message, ci_message)
    assert ci_file.plain("deleteCommitMessage") == "mlops-ci: remove .gitlab-ci.yml (stack destroyed)"
    script_message = "mlops-ci: .mlops-ci/team-a.py, the CI job's script, managed by the stack [skip ci]"
    assert (job_script.plain("createCommitMessage"), job_script.plain("updateCommitMessage")) == (script_message, script_message)
    # The pre-flight refused a job script that is not the stack's: what is at these paths is the stack's to write.
    assert ci_file.plain("overwriteOnCreate") is job_script.plain("overwriteOnCreate") is True


def test_the_gitlab_delivery_keeps_the_ci_files_path_as_its_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `pulumi stack export` shows of the component (its registered outputs)."""
    registered: dict[str, Any] = {}

    class Recording(runtime.RecordingMonitor):
        def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
            registered[request.urn] = rpc.deserialize_properties(request.outputs)
            monitor: Any = super()  # the SDK's mock monitor is untyped
            return monitor.RegisterResourceOutputs(request)

    monkeypatch.setattr(runtime, "RecordingMonitor", Recording)
    delivery = run("gitlab", ciFile="ci/mlops.yml").one("mlops-ci:gitlab:GitlabDelivery")
    assert registered[delivery.urn] == {"ci_file": "ci/mlops.yml"}
