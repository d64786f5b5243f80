"""Fixtures shared by the tests; the helpers they use live in `tests/helpers.py`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localcloud.kit.servers import TokenEndpoint
from tests.helpers import CountingMocks


@pytest.fixture
def counting_mocks() -> CountingMocks:
    return CountingMocks()


@pytest.fixture
def token_endpoint() -> Iterator[TokenEndpoint]:
    """Google's token endpoint as the job script and the e2e jobs ask it (localcloud/kit/servers.py)."""
    endpoint = TokenEndpoint()
    endpoint.start()
    try:
        yield endpoint
    finally:
        endpoint.stop()
