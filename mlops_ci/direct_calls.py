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
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Generator, Sequence
from email.message import Message
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
    refusals: tuple[str, ...] = ()
    """Reads GitHub refused (a 4xx): what stays unknown, the permission it needs and the remedy."""


WRITING_RULES = frozenset({"pull_request", "update", "required_status_checks", "required_signatures", "required_deployments"})
"""Ruleset rules a commit through the contents API cannot satisfy (GitHub docs, "Available rules for
rulesets"; `creation`, `deletion`, `non_fast_forward` concern the branch itself)."""
BYPASSING = frozenset({"always", "exempt"})
"""`current_user_can_bypass` values that let a direct commit through (@octokit/openapi
`repository-ruleset.current_user_can_bypass`: always, pull_requests_only, never, exempt; `exempt`:
the rules do not apply to the user at all)."""
_NEXT_PAGE = re.compile(r'<([^>]+)>;\s*rel="next"')
"""The next page in GitHub's `Link` header (docs: rest/using-the-rest-api/using-pagination-in-the-rest-api)."""


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

    def github_access(self, api_url: str, token: str, repository: str, branch: str) -> GithubAccess | None:
        """The token's scopes (`GET /user`) and the rulesets that block a commit on `branch`
        (`GET /repos/{repository}/rules/branches/{branch}`, every page, then each ruleset's
        `current_user_can_bypass`). Each read on its own: one GitHub refuses (a 4xx) leaves its part
        unknown and says so in `refusals`; None only when GitHub cannot be reached."""
        get = _GithubReader(api_url.rstrip("/"), token)
        try:
            scopes, refusals = get.scopes()
            rules, refused = get.branch_rules(repository, branch)
            blocking: dict[int, set[str]] = {}
            for rule in rules:  # every source: the repository's rulesets and its organization's
                if rule.get("type") in WRITING_RULES and "ruleset_id" in rule:
                    blocking.setdefault(int(rule["ruleset_id"]), set()).add(str(rule["type"]))
            refused_rulesets: list[str] = []
            unsure: list[str] = []
            for ruleset_id, types in sorted(blocking.items()):
                shown = ", ".join(sorted(types))
                try:  # docs repos/rules#get-a-repository-ruleset: `includes_parents` (default true): the organization's too
                    ruleset = get.json(f"/repos/{repository}/rulesets/{ruleset_id}")[0]
                except _RefusedError:
                    unsure.append(f"{ruleset_id} ({shown})")
                    continue
                if ruleset.get("current_user_can_bypass") not in BYPASSING:
                    refused_rulesets.append(f"{ruleset.get('name', ruleset_id)!r} ({shown})")
        except UnreachableError:
            return None
        return GithubAccess(scopes, tuple(refused_rulesets), tuple(unsure), tuple(dict.fromkeys((*refusals, *refused))))

    def nonce(self) -> str:
        """A fresh random text."""
        return secrets.token_hex(8)


class _RefusedError(Exception):
    """GitHub answered a read with an error status (or not with JSON)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _GithubReader:
    """GETs of GitHub's REST API at `base` with the token."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.headers = {"Accept": "application/vnd.github+json", **({"Authorization": f"Bearer {token}"} if token else {})}

    def json(self, path_or_url: str) -> tuple[Any, Message]:
        """(decoded JSON, headers: case-insensitive, RFC 9110 §5.1). Raises `_RefusedError` on an
        error status, `UnreachableError` when GitHub cannot be reached."""
        url = path_or_url if path_or_url.startswith(self.base + "/") else self.base + path_or_url
        request = urllib.request.Request(url, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"null"), response.headers
        except urllib.error.HTTPError as error:
            raise _RefusedError(error.code) from None
        except ValueError:  # not JSON
            raise _RefusedError(200) from None
        except OSError as error:
            raise UnreachableError(f"{self.base}: {error}") from None

    def scopes(self) -> tuple[tuple[str, ...] | None, list[str]]:
        """A classic token's scopes (`X-OAuth-Scopes`, None without it) and what GitHub refused."""
        try:
            header = self.json("/user")[1].get("X-OAuth-Scopes")
        except _RefusedError as refused:
            return None, [
                BAD_CREDENTIALS
                if refused.status == 401
                else f"GitHub answers {refused.status} to GET /user (a GitHub App's token cannot read a user): the token's"
                " scopes are unknown; the commit of the CI file needs Contents and Workflows: write"
            ]
        return (None if header is None else tuple(s.strip() for s in header.split(",") if s.strip())), []

    def branch_rules(self, repository: str, branch: str) -> tuple[list[dict[str, Any]], list[str]]:
        """Every page of the rules that apply to `branch` (the `Link` header's `rel="next"`, followed on
        this API only: the token goes nowhere else), and what GitHub refused."""
        rules: list[dict[str, Any]] = []
        url: str | None = f"/repos/{repository}/rules/branches/{urllib.parse.quote(branch, safe='')}"
        try:
            while url:
                page, headers = self.json(url)
                rules.extend(cast(list[dict[str, Any]], page) if isinstance(page, list) else [])
                found = _NEXT_PAGE.search(headers.get("Link") or "")
                url = found[1] if found and found[1].startswith(self.base + "/") else None
        except _RefusedError as refused:
            return rules, [
                BAD_CREDENTIALS
                if refused.status == 401
                else f"GitHub answers {refused.status} to GET /repos/{repository}/rules/branches/{branch}: the rulesets"
                f" on the branch are unknown; the token needs read access to {repository} (fine-grained: Metadata: read)"
            ]
        return rules, []


BAD_CREDENTIALS = "GitHub refuses the token (401 Bad credentials): it is expired, revoked or mistyped; set a valid github:token"


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
