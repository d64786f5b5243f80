"""The few things the program asks the outside world itself, beside the providers: whether Google
accepts a new key on the bucket yet, the plan of a GitLab group, what GitHub lets the token do on the
branch, and a random nonce. One seam: the offline runtime replaces them (no credential, no network,
the same plan every time).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import secrets
import urllib.parse
import urllib.request
from collections.abc import Generator, Sequence
from typing import Any, cast

STORAGE_API = "https://storage.googleapis.com"
READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
KEY_REFUSED = "Google refuses the key"
"""How `credential_refusal` begins when Google's token endpoint refuses the key itself."""


@dataclasses.dataclass(frozen=True)
class GithubAccess:
    """What GitHub tells of a token on a branch."""

    scopes: tuple[str, ...] | None
    """A classic token's OAuth scopes (`X-OAuth-Scopes`); None when GitHub does not say (a
    fine-grained token or a GitHub App's: their permissions cannot be read)."""
    blocking_rulesets: tuple[str, ...]
    """Rulesets that apply to the branch, forbid a direct commit and that the token's user may not
    bypass: `<name> (<rule types>)`."""
    unsure_rulesets: tuple[str, ...] = ()
    """Such rulesets whose bypass list the token cannot read: `<id> (<rule types>)`."""


WRITING_RULES = frozenset({"pull_request", "update", "required_status_checks", "required_signatures", "required_deployments"})
"""Ruleset rules a commit through the contents API cannot satisfy (GitHub docs, "Available rules for
rulesets"; `creation`, `deletion`, `non_fast_forward` concern the branch itself)."""


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

    def github_access(self, api_url: str, token: str, repository: str, branch: str) -> GithubAccess:
        """The token's scopes (`GET /user`) and the rulesets that block a commit on `branch`
        (`GET /repos/{repository}/rules/branches/{branch}`, then each ruleset's
        `current_user_can_bypass`). What GitHub does not answer (unreachable, refused) is unknown:
        no scopes, no rules, or a ruleset among `unsure_rulesets`."""
        base = api_url.rstrip("/")
        scopes: tuple[str, ...] | None = None
        with contextlib.suppress(OSError, ValueError):
            header = _github_get(f"{base}/user", token)[1].get("X-OAuth-Scopes")
            scopes = None if header is None else tuple(s.strip() for s in header.split(",") if s.strip())
        blocking: dict[int, set[str]] = {}
        with contextlib.suppress(OSError, ValueError):
            rules = _github_get(f"{base}/repos/{repository}/rules/branches/{urllib.parse.quote(branch, safe='')}", token)[0]
            for rule in cast(list[dict[str, Any]], rules) if isinstance(rules, list) else []:
                if rule.get("type") in WRITING_RULES and rule.get("ruleset_source_type") == "Repository":
                    blocking.setdefault(int(rule["ruleset_id"]), set()).add(str(rule["type"]))
        refused: list[str] = []
        unsure: list[str] = []
        for ruleset_id, types in sorted(blocking.items()):
            shown = f"{ruleset_id} ({', '.join(sorted(types))})"
            try:
                ruleset = _github_get(f"{base}/repos/{repository}/rulesets/{ruleset_id}", token)[0]
            except (OSError, ValueError):
                unsure.append(shown)
                continue
            if ruleset.get("current_user_can_bypass") != "always":
                refused.append(f"{ruleset.get('name', ruleset_id)!r} ({', '.join(sorted(types))})")
        return GithubAccess(scopes, tuple(refused), tuple(unsure))

    def nonce(self) -> str:
        """A fresh random text."""
        return secrets.token_hex(8)


def _github_get(url: str, token: str) -> tuple[Any, dict[str, str]]:
    """A GET of GitHub's REST API: (decoded JSON, headers)."""
    headers = {"Accept": "application/vnd.github+json", **({"Authorization": f"Bearer {token}"} if token else {})}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        return json.loads(response.read() or b"null"), dict(response.headers.items())


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
