"""Fixtures for the Intacct client unit tests (no database, no network)."""
from __future__ import annotations

import pytest

from .fakes import Gateway, SleepRecorder


@pytest.fixture
def gateway() -> Gateway:
    """A fresh scripted fake gateway."""
    return Gateway()


@pytest.fixture
def sleeps() -> SleepRecorder:
    """Records backoff delays instead of waiting."""
    return SleepRecorder()
