"""Every request to the GitHub API stand-in and every answer it gives, checked against GitHub's own
OpenAPI description (npm `@octokit/openapi`, `generated/api.github.com.json`, pinned in package.json)
with openapi-core: a request the description does not describe (path, method, parameters, body), or
an answer it does not allow (status, body), is a problem; the stand-in then answers 500 naming it.

go-github reaches environment secrets at `/repositories/{repository_id}/environments/...`, a route
GitHub still serves but no longer describes: those are checked as their described twin
`/repos/{owner}/{repo}/environments/...`. `POST /graphql` is not in the description: graphql-core
checks it against GitHub's GraphQL schema (localcloud/github_graphql.py).
"""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
from pathlib import Path
from typing import Any, cast

import jsonschema.exceptions
from openapi_core import Config, OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse

DESCRIPTION = (
    Path(__file__).resolve().parent.parent / "node_modules" / "@octokit" / "openapi" / "generated" / "api.github.com.json"
)
_REPOSITORY_ID = re.compile(r"^/repositories/\d+/")
_UNDESCRIBED_FIELDS = [
    # go-github `CreateUpdateEnvironment.CanAdminsBypass`, sent on every create and update by upstream
    # `createUpdateEnvironmentData`; GitHub answers it in `environment.can_admins_bypass` and the
    # provider works against GitHub with it, but the request body's description omits it.
    ("PUT", re.compile(r"^/repos/[^/]+/[^/]+/environments/[^/]+$"), "can_admins_bypass"),
]
"""Request fields the real provider sends that the description does not list (a finding: the
description is stricter than GitHub): left out of the request before it is checked."""
_SLASHED = re.compile(r"^(/repos/[^/]+/[^/]+/(?:contents|git/ref|branches|rules/branches)/)(.+)$")
"""Routes whose last parameter holds slashes (a file path, `heads/<branch>`, a branch name): the
description's templates match one segment, so the parameter is checked percent-encoded."""


@functools.cache
def description(path: Path = DESCRIPTION) -> OpenAPI:
    """The description, loaded once (about a second); not validated itself (GitHub's). Its `oneOf`s
    are checked as `anyOf`: some list alternatives no answer can tell apart (the 409 of
    `PUT /repos/{owner}/{repo}/contents/{path}` is `basic-error` or `repository-rule-violation-error`,
    both open objects of optional fields), so under `oneOf` GitHub's own answers would fail."""
    spec = json.loads(path.read_text().replace('"oneOf":', '"anyOf":'))
    return OpenAPI.from_dict(
        spec,
        config=Config(spec_validator_cls=None),  # pyright: ignore[reportArgumentType] — openapi-core's documented way to skip it
    )


class OpenApiChecker:
    """The stand-in's `Checker`."""

    def __init__(self, path: Path = DESCRIPTION) -> None:
        self.path = path

    def problems(self, exchange: dict[str, Any]) -> list[str]:
        path = str(exchange["path"])
        if path == "/graphql":
            return []
        path = _REPOSITORY_ID.sub("/repos/owner/repo/", path)
        slashed = _SLASHED.match(path)
        if slashed:
            path = slashed[1] + urllib.parse.quote(slashed[2], safe="")
        sent = exchange["request"]
        if isinstance(sent, dict):
            dropped = {f for method, where, f in _UNDESCRIBED_FIELDS if method == exchange["method"] and where.match(path)}
            sent = {key: value for key, value in cast(dict[str, Any], sent).items() if key not in dropped}
        body = b"" if sent is None else json.dumps(sent).encode()
        request = MockRequest(
            "https://api.github.com",
            str(exchange["method"]).lower(),
            path,
            args=exchange["query"],
            data=body,
            content_type="application/json" if body else None,  # pyright: ignore[reportArgumentType] — None: no body
        )
        answer = b"" if exchange["answer"] is None else json.dumps(exchange["answer"]).encode()
        content_type = "application/json" if answer else None
        response = MockResponse(answer, status_code=int(exchange["status"]), content_type=content_type)  # pyright: ignore[reportArgumentType]
        api = description(self.path)
        found: list[str] = []
        checks = (
            ("request", lambda: api.validate_request(request)),
            ("answer", lambda: api.validate_response(request, response)),
        )
        for what, check in checks:
            try:
                check()
            except ResponseNotFound:
                if not _undescribed_error(exchange, path):
                    found.append(
                        f"{exchange['method']} {path} {exchange['status']}: {what}: a status the description does not list"
                    )
            except Exception as error:  # noqa: BLE001 — openapi-core's errors have no common base worth naming
                found.append(f"{exchange['method']} {path} {exchange['status']}: {what}: {_reason(error)}")
        return found


def _undescribed_error(exchange: dict[str, Any], path: str) -> bool:
    """An error status the operation does not list but GitHub gives, answered as GitHub answers errors
    (`basic-error`: a `message`): 401, 403, 404 on any route (`ANY_ROUTE_ERRORS`), the others on the
    routes `ROUTE_ERRORS` names only (`path` as checked: `/repositories/{id}/` read as `/repos/owner/repo/`)."""
    answer = exchange["answer"]
    if not (isinstance(answer, dict) and isinstance(cast(dict[str, Any], answer).get("message"), str)):
        return False
    status, method = int(exchange["status"]), str(exchange["method"])
    return status in ANY_ROUTE_ERRORS or any(
        status == allowed and method == verb and where.match(path) for verb, where, allowed, _ in ROUTE_ERRORS
    )


ANY_ROUTE_ERRORS = frozenset({401, 403, 404})
"""GitHub docs, "Troubleshooting the REST API": 401 without valid credentials, 403 for a token that lacks a
permission, 404 (instead of 403) for what the token may not see — on any route, listed or not."""
_SECRET = r"^/repos/[^/]+/[^/]+/(?:actions|environments/[^/]+)/secrets/[^/]+$"
ROUTE_ERRORS: list[tuple[str, re.Pattern[str], int, str]] = [
    (
        "PUT",
        re.compile(_SECRET),
        422,
        'github/rest-api-description#419 (422 "key_id" wasn\'t supplied), integrations/terraform-provider-github#2315'
        " (422 Bad request - validation failed due to an improperly encrypted secret)",
    ),
    (
        "POST",
        re.compile(r"^/repos/[^/]+/[^/]+/actions/variables$"),
        409,
        "not verified: GitHub's answer to a variable name that exists (upstream resourceGithubActionsVariableCreate"
        " passes any error through)",
    ),
    (
        "POST",
        re.compile(r"^/repos/[^/]+/[^/]+/actions/variables$"),
        422,
        "GitHub docs, 'Store information in variables', 'Naming conventions for configuration variables' (the rules;"
        " the status not verified)",
    ),
]
"""Other error statuses the stand-in answers where the description lists none: (method, path, status,
source)."""


def _reason(error: BaseException) -> str:
    """The deepest reasons: openapi-core wraps jsonschema's errors (`schema_errors`)."""
    cause: BaseException = error
    while getattr(cause, "schema_errors", None) is None and cause.__cause__ is not None:
        cause = cause.__cause__
    schema_errors: list[jsonschema.exceptions.ValidationError] = list(getattr(cause, "schema_errors", None) or [])
    if not schema_errors:
        return str(cause)[:500]
    return "; ".join(_schema_error(e) for e in schema_errors)[:2000]


def _schema_error(error: jsonschema.exceptions.ValidationError) -> str:
    """A jsonschema error, its `oneOf`/`anyOf` alternatives' best one followed down."""
    while error.context:
        error = cast(jsonschema.exceptions.ValidationError, jsonschema.exceptions.best_match(error.context))  # pyright: ignore[reportUnknownMemberType]
    where = "/".join(str(part) for part in error.absolute_path)
    return f"at /{where}: {error.message[:300]}"


def checker() -> OpenApiChecker:
    """The checker; the description must be installed (`npm ci`): a stand-in never answers unchecked."""
    if not DESCRIPTION.exists():
        raise FileNotFoundError(
            f"{DESCRIPTION}: GitHub's OpenAPI description is missing; run `npm ci` (make node_modules/.installed)"
        )
    return OpenApiChecker()
