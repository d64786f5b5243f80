"""Red-team (rt18): what the OpenAPI check lets through. Fails on ghprovider 8f08c35."""

from __future__ import annotations

import pytest

from localcloud import github_openapi

pytestmark = pytest.mark.skipif(not github_openapi.DESCRIPTION.exists(), reason="needs node_modules (npm ci)")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/repos/acme/vision", 409),  # described: 200, 301, 403, 404
        ("DELETE", "/repos/acme/vision/actions/secrets/KEY", 404),  # described: 204 only
        ("PUT", "/repos/acme/vision/actions/secrets/KEY", 422),  # described: 201, 204 only
    ],
)
def test_an_error_status_the_operation_does_not_list_is_a_problem(method: str, path: str, status: int) -> None:
    """`_undescribed_error` passes any status >= 400 whose body has a `message`: the stand-in can
    answer an error GitHub never gives and the check stays silent (its docstring's reason —
    401/404/422 anywhere — covers these three at most, not 409 on a GET)."""
    request = {"encrypted_value": "aGk=", "key_id": "1"} if method == "PUT" else None
    exchange = {"method": method, "path": path, "query": {}, "request": request, "status": status, "answer": {"message": "x"}}
    assert github_openapi.OpenApiChecker().problems(exchange)
