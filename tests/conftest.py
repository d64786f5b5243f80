"""Fixtures shared by the tests; the helpers they use live in `tests/helpers.py`."""

from __future__ import annotations

import pytest

from tests.helpers import CountingMocks


@pytest.fixture
def counting_mocks() -> CountingMocks:
    return CountingMocks()
