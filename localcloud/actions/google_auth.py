"""Stand-in for google-github-actions/auth v3.0.0 (7c6bc770dae815cd3e89ee6cdf493a5fab2cc093), with
`credentials_json`, read from `src/main.ts`, `src/post.ts`, `src/client/service_account_key_json.ts`
and `src/utils.ts` at that commit, and the helpers its bundle carries
(`@google-github-actions/actions-utils`: `parseCredential`, `writeSecureFile`, `forceRemove`):
the key parsed (JSON, or base64 of it), written back as `JSON.stringify` writes it to
$GITHUB_WORKSPACE/gha-creds-<16 hex>.json (mode 0640, never over an existing file) before
anything can fail, exported as GOOGLE_APPLICATION_CREDENTIALS and the project variables, then a
self-signed JWT for iamcredentials (the `auth_token` output), which fails on a key that cannot
sign. The post step deletes the file named by GOOGLE_GHA_CREDS_PATH.

Workload Identity Federation (`workload_identity_provider`, with or without `service_account`),
read from `src/main.ts` and `src/client/workload_identity_federation.ts` at that commit: the ID token
asked of ACTIONS_ID_TOKEN_REQUEST_URL (`&audience=`, default `https://iam.googleapis.com/<provider>`,
the request token as bearer, answer `{"value": ...}`: `@actions/core` `getIDToken`), the credential
file of type `external_account` (STS audience `//iam.googleapis.com/<provider>`, the request URL and
token as `credential_source`, `service_account_impersonation_url` only with a service account:
direct federation without), then one exchange at `https://sts.googleapis.com/v1/token` (JSON body,
camelCase keys) whose refusal fails the step with the STS's answer as `@actions/http-client` puts it
(the raw body). The retries of `getIDToken` (`withRetries`, 3) are not modelled."""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, cast

import jwt

from localcloud.actions import stand_in
from localcloud.actions.stand_in import ActionError, Inputs, StandIn

SECRETS_WARNING = (
    "If you are specifying input values via GitHub secrets, ensure the secret is being injected into the "
    "environment. By default, secrets are not passed to workflows triggered from forks, including Dependabot."
)
CREDENTIAL_VARIABLES = ("CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_GHA_CREDS_PATH")
PROJECT_VARIABLES = ("CLOUDSDK_CORE_PROJECT", "CLOUDSDK_PROJECT", "GCLOUD_PROJECT", "GCP_PROJECT", "GOOGLE_CLOUD_PROJECT")


def parse_credential(value: str) -> dict[str, Any]:
    """`parseCredential`: trimmed; base64 (either alphabet, padding optional) unless it starts with `{`."""
    text = value.strip()
    if not text:
        raise ActionError("Missing service account key JSON (got empty value)")
    if not text.startswith("{"):
        padded = text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)
        try:
            text = base64.b64decode(padded).decode()
        except (binascii.Error, UnicodeDecodeError) as error:
            raise ActionError(f"Failed to parse service account key JSON credentials: {error}") from None
    try:
        credential = json.loads(text)
    except json.JSONDecodeError as error:
        raise ActionError(f"Failed to parse service account key JSON credentials: {error}") from None
    if not isinstance(credential, dict):
        raise ActionError("Provided credential is not a valid Google Service Account Key JSON")
    return cast(dict[str, Any], credential)


def write_credentials_file(credential: dict[str, Any]) -> Path:
    """`createCredentialsFile` with `writeSecureFile`: mode 0640, flag `wx`."""
    path = Path(os.environ["GITHUB_WORKSPACE"]) / f"gha-creds-{secrets.token_hex(8)}.json"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640), "w") as key_file:
        key_file.write(json.dumps(credential, separators=(",", ":"), ensure_ascii=False))
    print(f'Created credentials file at "{path}"', flush=True)
    return path


def auth_token(credential: dict[str, Any], universe: str) -> str:
    """`ServiceAccountKeyClient.getToken`: a JWT for iamcredentials signed with the key."""
    email = str(credential.get("client_email", ""))
    now = int(time.time())
    claims = {"iss": email, "sub": email, "aud": f"https://iamcredentials.{universe}/", "iat": now, "exp": now + 3599}
    try:
        key, kid = str(credential.get("private_key", "")), credential.get("private_key_id")
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
    except (ValueError, TypeError, jwt.PyJWTError) as error:
        raise ActionError(
            f"Failed to sign auth token using {email}: Failed to sign jwt using private key for {email}: {error}"
        ) from None


OIDC_WARNING = (
    "GitHub Actions did not inject $ACTIONS_ID_TOKEN_REQUEST_TOKEN or $ACTIONS_ID_TOKEN_REQUEST_URL into this job. "
    "This most likely means the GitHub Actions workflow permissions are incorrect, or this job is being run from a "
    "fork. For more information, please see "
    "https://docs.github.com/en/actions/security-guides/automatic-token-authentication#permissions-for-the-github_token"
)


def id_token(request_url: str, request_token: str, audience: str) -> str:
    """`core.getIDToken(audience)`."""
    url = f"{request_url}&audience={urllib.parse.quote(audience, safe='')}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {request_token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.loads(response.read())["value"])
    except (OSError, ValueError, KeyError) as error:
        raise ActionError(
            f"Failed to get ID Token. \n Error Code : {getattr(error, 'code', '')}\n Error Message: {error}"
        ) from None


def federation_credential(inputs: Inputs, provider: str) -> tuple[dict[str, Any], str]:
    """`WorkloadIdentityFederationClient`: the credential file's content, and the job's ID token."""
    request_token, request_url = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"), os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    if not request_token or not request_url:
        raise ActionError(OIDC_WARNING)
    oidc_audience = inputs.get("audience") or f"https://iam.googleapis.com/{provider}"
    token = id_token(request_url, request_token, oidc_audience)
    parts = urllib.parse.urlsplit(request_url)
    query = urllib.parse.urlencode([*urllib.parse.parse_qsl(parts.query), ("audience", oidc_audience)])
    credential: dict[str, Any] = {
        "type": "external_account",
        "audience": f"//iam.{inputs.get('universe')}/{provider}",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": f"https://sts.{inputs.get('universe')}/v1/token",
        "credential_source": {
            "url": urllib.parse.urlunsplit(parts._replace(query=query)),
            "headers": {"Authorization": f"Bearer {request_token}"},
            "format": {"type": "json", "subject_token_field_name": "value"},
        },
    }
    if account := inputs.get("service_account"):
        credential["service_account_impersonation_url"] = (
            f"https://iamcredentials.{inputs.get('universe')}/v1/projects/-/serviceAccounts/{account}:generateAccessToken"
        )
    return credential, token


def federated_token(credential: dict[str, Any], token: str, universe: str) -> str:
    """`WorkloadIdentityFederationClient.getToken`: one exchange at the STS."""
    body = {
        "audience": credential["audience"],
        "grantType": "urn:ietf:params:oauth:grant-type:token-exchange",
        "requestedTokenType": "urn:ietf:params:oauth:token-type:access_token",
        "scope": f"https://www.{universe}/auth/cloud-platform",
        "subjectTokenType": "urn:ietf:params:oauth:token-type:jwt",
        "subjectToken": token,
    }
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    request = urllib.request.Request(credential["token_url"], data=json.dumps(body).encode(), headers=headers)
    failed = f"Failed to generate Google Cloud federated token for {credential['audience']}"
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.loads(response.read())["access_token"])
    except urllib.error.HTTPError as error:
        raise ActionError(f"{failed}: {error.read().decode(errors='replace') or f'Failed request: ({error.code})'}") from None
    except (OSError, ValueError, KeyError) as error:
        raise ActionError(f"{failed}: {error}") from None


def key_credential(credentials_json: str) -> dict[str, Any]:
    credential = parse_credential(credentials_json)
    if credential.get("type") != "service_account":
        raise ActionError("Provided credential is not a valid Google Service Account Key JSON")
    return credential


def project_of(inputs: Inputs, credential: dict[str, Any]) -> str | None:
    """`computeProjectID`: the input, the service account's domain, the key's project."""
    account = inputs.get("service_account")
    from_email = account.split("@", 1)[1].removesuffix(".iam.gserviceaccount.com") if "@" in account else ""
    key_project = credential.get("project_id") if credential.get("type") == "service_account" else None
    return inputs.get("project_id") or (from_email if from_email.count(".") == 0 and from_email else None) or key_project


def authenticate(inputs: Inputs) -> None:
    credentials_json, provider = inputs.get("credentials_json"), inputs.get("workload_identity_provider")
    if bool(credentials_json) == bool(provider):
        raise ActionError(
            'The GitHub Action workflow must specify exactly one of "workload_identity_provider" or "credentials_json"! '
            + SECRETS_WARNING
        )
    id_token_value = ""
    if provider:
        credential, id_token_value = federation_credential(inputs, provider)
    else:
        credential = key_credential(credentials_json)
    project = project_of(inputs, credential)
    exports = inputs.boolean("export_environment_variables")
    if inputs.boolean("create_credentials_file"):
        path = write_credentials_file(credential)
        stand_in.set_output("credentials_file_path", str(path))
        for name in CREDENTIAL_VARIABLES if exports else ():
            stand_in.export_variable(name, str(path))
    if project:
        stand_in.set_output("project_id", str(project))
        for name in PROJECT_VARIABLES if exports else ():
            stand_in.export_variable(name, str(project))
    universe = inputs.get("universe")
    token = federated_token(credential, id_token_value, universe) if provider else auth_token(credential, universe)
    stand_in.set_secret(token)
    stand_in.set_output("auth_token", token)


def main(inputs: Inputs) -> None:
    try:
        authenticate(inputs)
    except ActionError as error:
        raise ActionError(f"google-github-actions/auth failed with: {error}") from None


def post(inputs: Inputs) -> None:
    """`post.ts`: the credentials file removed, unless the inputs kept it."""
    if not inputs.boolean("create_credentials_file"):
        print('Skipping credential cleanup - "create_credentials_file" is false.', flush=True)
    elif not inputs.boolean("cleanup_credentials"):
        print('Skipping credential cleanup - "cleanup_credentials" is false.', flush=True)
    elif not (path := os.environ.get("GOOGLE_GHA_CREDS_PATH")):
        print("Skipping credential cleanup - $GOOGLE_GHA_CREDS_PATH is not set.", flush=True)
    else:
        Path(path).unlink(missing_ok=True)
        print(f'Removed exported credentials at "{path}".', flush=True)


STAND_IN = StandIn(
    action="google-github-actions/auth",
    commit="7c6bc770dae815cd3e89ee6cdf493a5fab2cc093",
    release="v3.0.0",
    implemented=frozenset(
        {
            *("credentials_json", "project_id", "universe", "workload_identity_provider", "service_account", "audience"),
            *("create_credentials_file", "export_environment_variables", "cleanup_credentials"),
        }
    ),
    main=main,
    post=post,
)

if __name__ == "__main__":
    STAND_IN.run()
