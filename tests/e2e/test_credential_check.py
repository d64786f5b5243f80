"""The credential check each CI file runs once authenticated, before the data check: one token
request with the job's credential through google-auth (which dvc[gs] brings), so that a credential
Google refuses fails in seconds with a message naming it, instead of after minutes of the storage
client's retries. Both platforms, both auth modes, against local token endpoints; the whole job
with a refused key is in test_ci_jobs.py."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest

from localcloud.kit.commands import E2E_VENV, host_env, run
from localcloud.kit.servers import TokenEndpoint, request_body
from localcloud.kit.stack import service_account_key
from localcloud.serving import send_json
from mlops_ci.ci.files import render_ci_file
from tests.helpers import make_settings, reproduce_job_command, write_job_script

pytestmark = pytest.mark.e2e

PLATFORMS = ("github", "gitlab")
# A refused credential must fail well before the storage client's first retry back-off.
FAST = 10.0
# What Google's STS answers when the provider's attribute condition rejects the ID token.
STS_REFUSAL = {
    "error": "unauthorized_client",
    "error_description": "The given credential is rejected by the attribute condition.",
}
EMAIL = "dvc-ci-team-a@acme-ml-test.iam.gserviceaccount.com"


def check_command(platform: str, auth: str, directory: Path, keyless_mode: str = "direct") -> str:
    """The one command of the committed CI file that asks Google for a token, the job script it
    calls committed in `directory`."""
    settings = make_settings(platform, auth=auth, keyless_mode=keyless_mode)
    write_job_script(directory, settings)
    return reproduce_job_command(render_ci_file(settings), platform, "check-login")


def run_check(
    command: str, credential: dict[str, Any], tmp_path: Path, python_bin: Path
) -> tuple[subprocess.CompletedProcess[str], float]:
    """`command` in bash as the job runs it, `python_bin` first on PATH (the job's Python, where the
    requirements went), the credential as the job has it: a file in GOOGLE_APPLICATION_CREDENTIALS."""
    credential_file = tmp_path / "credential.json"
    credential_file.write_text(json.dumps(credential))
    env = host_env(tmp_path / "runner")
    env |= {"PATH": f"{python_bin}:{env['PATH']}", "GOOGLE_APPLICATION_CREDENTIALS": str(credential_file)}
    start = time.monotonic()
    result = run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", command], tmp_path, env, timeout=120, check=False)
    return result, time.monotonic() - start


@pytest.fixture
def refusing_sts() -> Iterator[str]:
    """Google's Security Token Service refusing every token exchange (the provider's attribute
    condition rejects the job's ID token); yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            form = dict(urllib.parse.parse_qsl(request_body(self).decode()))
            assert form.get("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange", form
            send_json(self, HTTPStatus.BAD_REQUEST, STS_REFUSAL)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/token"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_refused_key_fails_in_seconds_naming_the_key_and_the_fix(
    platform: str, token_endpoint: TokenEndpoint, tmp_path: Path
) -> None:
    key_file, _ = service_account_key(EMAIL, "acme-ml-test", token_endpoint.url)  # a key Google never issued

    result, elapsed = run_check(check_command(platform, "key", tmp_path), key_file, tmp_path, E2E_VENV / "bin")

    assert result.returncode == 1, result.stdout
    where = "the secret" if platform == "github" else "the CI/CD variable"
    assert result.stdout.splitlines() == [
        f"ERROR: no Google Cloud token for the key in {where} GOOGLE_SERVICE_ACCOUNT_KEY: invalid_grant: Invalid JWT Signature.",
        "Google refuses a key deleted, rotated away or of another stack:"
        " pulumi up for the stack team-a puts the current key there.",
    ]
    assert [exchange.issuer for exchange in token_endpoint.exchanges] == [EMAIL], "one token request, no retry"
    assert elapsed < FAST


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_accepted_key_passes_with_one_storage_token(platform: str, token_endpoint: TokenEndpoint, tmp_path: Path) -> None:
    key_file, public_key = service_account_key(EMAIL, "acme-ml-test", token_endpoint.url)
    token_endpoint.trust(EMAIL, public_key)

    result, _ = run_check(check_command(platform, "key", tmp_path), key_file, tmp_path, E2E_VENV / "bin")

    assert result.returncode == 0, result.stdout
    assert result.stdout == ""
    assert [(e.issuer, e.scope, e.granted) for e in token_endpoint.exchanges] == [
        (EMAIL, "https://www.googleapis.com/auth/devstorage.read_only", True)
    ]


def external_account(tmp_path: Path, token_url: str, impersonation_url: str) -> dict[str, Any]:
    """The credential configuration the GitLab job writes (GitHub's auth action writes its like),
    with an ID token in `tmp_path`, exchanged at `token_url`, impersonating at `impersonation_url`."""
    (tmp_path / "id-token.jwt").write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzdHViIn0.c2lnbmF0dXJl")
    return {
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/ci",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": token_url,
        "credential_source": {"file": str(tmp_path / "id-token.jwt")},
        "service_account_impersonation_url": impersonation_url,
    }


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_refused_workload_identity_fails_in_seconds_naming_it(platform: str, refusing_sts: str, tmp_path: Path) -> None:
    impersonation = f"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{EMAIL}:generateAccessToken"
    configuration = external_account(tmp_path, refusing_sts, impersonation)

    result, elapsed = run_check(check_command(platform, "workload-identity", tmp_path), configuration, tmp_path, E2E_VENV / "bin")

    assert result.returncode == 1, result.stdout
    where = "repository" if platform == "github" else "project"
    assert result.stdout.splitlines() == [
        "ERROR: no Google Cloud token for the workload identity of this job: Error code unauthorized_client:"
        " The given credential is rejected by the attribute condition.",
        f"Run pulumi up for the stack team-a: it sets the pool, its provider (for this {where} only) and the grant.",
    ]
    assert elapsed < FAST


@pytest.fixture
def federation_propagating() -> Iterator[tuple[str, str, list[int]]]:
    """Google's STS granting the exchange, and IAM Credentials refusing the impersonation once
    (403 PERMISSION_DENIED: the grant on the service account not propagated yet), then granting
    it. Yields (STS URL, impersonation URL, the statuses answered)."""
    answered: list[int] = []
    denied = {
        "error": {
            "code": 403,
            "message": "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
            "status": "PERMISSION_DENIED",
        }
    }

    exchanged = {"access_token": "sts", "issued_token_type": "x", "token_type": "Bearer", "expires_in": 3600}
    impersonated = {"accessToken": "ya29.x", "expireTime": "2099-01-01T00:00:00Z"}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request_body(self)
            if self.path.startswith("/v1/token"):
                send_json(self, HTTPStatus.OK, exchanged)
                return
            status = HTTPStatus.FORBIDDEN if not answered else HTTPStatus.OK
            answered.append(int(status))
            send_json(self, status, denied if status == HTTPStatus.FORBIDDEN else impersonated)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield f"{base}/v1/token", f"{base}/v1/projects/-/serviceAccounts/{EMAIL}:generateAccessToken", answered
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_keyless_waits_for_google_to_honour_a_new_federation(
    federation_propagating: tuple[str, str, list[int]], tmp_path: Path
) -> None:
    """The first run after `pulumi up` created the federation: Google refuses the impersonation
    for a while (IAM propagation); the job asks again instead of failing."""
    sts, impersonation, answered = federation_propagating
    configuration = external_account(tmp_path, sts, impersonation)

    command = check_command("gitlab", "workload-identity", tmp_path, keyless_mode="impersonation")
    result, elapsed = run_check(command, configuration, tmp_path, E2E_VENV / "bin")

    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines() == ["Google does not let this job act as the service account yet: again in 10 s"]
    assert answered == [403, 200]
    assert elapsed >= 10


@pytest.mark.parametrize("platform", PLATFORMS)
def test_requirements_without_google_auth_are_named(platform: str, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    subprocess.run(["python3", "-m", "venv", "--without-pip", bare], check=True, timeout=60)

    result, _ = run_check(check_command(platform, "key", tmp_path), {}, tmp_path, bare / "bin")

    assert result.returncode == 1, result.stdout
    assert result.stdout.splitlines() == [
        "ERROR: No module named 'google': requirements-freeze.txt must bring dvc[gs] (and with it google-auth)"
    ]
