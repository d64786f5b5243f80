"""The few things the program asks the outside world itself, beside the providers: whether Google
accepts a new key on the bucket yet, the plan of a GitLab group, and a random nonce. One seam:
the offline runtime replaces them (no credential, no network, the same plan every time).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import urllib.parse
import urllib.request
from collections.abc import Generator, Sequence
from typing import Any

STORAGE_API = "https://storage.googleapis.com"
READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
KEY_REFUSED = "Google refuses the key"
"""How `credential_refusal` begins when Google's token endpoint refuses the key itself."""


class UnreachableError(Exception):
    """Google (or what plays it) cannot be reached: waiting longer would not help."""


class DirectCalls:
    """The real ones."""

    def credential_refusal(self, key_base64: str, bucket: str, permissions: Sequence[str]) -> str | None:
        """Why Google does not let the key (its key file, base64) do yet what CI does on the
        bucket; None once it does. As CI's clients ask: google-auth's signed assertion to the key
        file's `token_uri`, then Cloud Storage (at `STORAGE_EMULATOR_HOST` when set, as Google's
        client libraries do): the bucket's testIamPermissions, then one listing. Raises
        `UnreachableError` when the question cannot be asked."""
        import google.auth.exceptions
        from google.auth.transport.requests import AuthorizedSession, Request
        from google.oauth2 import service_account

        key_file: dict[str, Any] = json.loads(base64.b64decode(key_base64))
        credentials = service_account.Credentials.from_service_account_info(key_file, scopes=[READ_ONLY_SCOPE])  # type: ignore[no-untyped-call]
        try:
            credentials.refresh(Request())  # type: ignore[no-untyped-call]
        except google.auth.exceptions.RefreshError as error:
            return f"{KEY_REFUSED} ({error.args[0] if error.args else error})"
        except google.auth.exceptions.TransportError as error:
            raise UnreachableError(f"{key_file.get('token_uri')}: {error}") from None
        base = os.environ.get("STORAGE_EMULATOR_HOST", STORAGE_API).rstrip("/")
        where = f"{base}/storage/v1/b/{urllib.parse.quote(bucket, safe='')}"
        session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        try:
            tested = session.get(f"{where}/iam/testPermissions", params=[("permissions", p) for p in permissions], timeout=30)
            listed = session.get(f"{where}/o", params={"maxResults": "1"}, timeout=30) if tested.status_code == 200 else tested
        except OSError as error:
            raise UnreachableError(f"{base}: {error}") from None
        if tested.status_code != 200:
            return f"Cloud Storage answers {tested.status_code} to the bucket's testIamPermissions"
        missing = sorted(set(permissions) - set(tested.json().get("permissions", [])))
        if missing:
            return f"the bucket grants are not effective yet (missing {', '.join(missing)})"
        return f"Cloud Storage answers {listed.status_code} to a listing of the bucket" if listed.status_code != 200 else None

    def gitlab_plan(self, base_url: str, token: str, namespace_id: int) -> str | None:
        """The GitLab plan of a namespace (`GET /namespaces/:id`: `plan`, answered to the group's
        owners only); None when GitLab does not say, or cannot be reached."""
        request = urllib.request.Request(f"{base_url.rstrip('/')}/namespaces/{namespace_id}")
        # Not on a redirect: urllib would hand the token to whatever host the answer names.
        request.add_unredirected_header("PRIVATE-TOKEN", token)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                plan = json.loads(response.read()).get("plan")
        except (OSError, ValueError):  # unreachable, refused, not JSON: GitLab does not say
            return None
        return str(plan) if plan else None

    def nonce(self) -> str:
        """A fresh random text."""
        return secrets.token_hex(8)


_current: list[DirectCalls] = [DirectCalls()]


def current() -> DirectCalls:
    return _current[0]


@contextlib.contextmanager
def replaced_by(calls: DirectCalls) -> Generator[None]:
    """`calls` answer instead of the outside world while the block runs."""
    _current.insert(0, calls)
    try:
        yield
    finally:
        _current.remove(calls)
