"""Fixtures of the reliability tests."""
from __future__ import annotations

import pytest

from tests.reliability.test_restarts import PrivateRedis


@pytest.fixture
def private_redis():
    """A Redis server of the test's own, on a free port, that the test may stop and start again."""
    server = PrivateRedis()
    server.start()
    yield server
    server.kill()
