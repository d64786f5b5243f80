"""Fixtures shared by the tests; the helpers they use live in `tests/helpers.py`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from localcloud.kit.servers import TokenEndpoint
from tests.helpers import CountingMocks

# No time limit per example: on a loaded machine (CI, `make mutation`'s two runs at once) an example's time says
# nothing of the code, and Hypothesis' 200 ms deadline failed tests that pass (equivalent mutants came out killed).
settings.register_profile("mlops-ci", deadline=None)
settings.load_profile("mlops-ci")


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
