"""Fixtures for the REST API: a registered app on the simulator and a company that answers both protocols."""
from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from simulator import oauth
from simulator.demo import build_company
from tests.simulator.conftest import SMALL_SIZES

CLIENT_ID = "connect-test.app.sage.com"
CLIENT_SECRET = "test-client-secret-5f1c"  # noqa: S105 - fake credential registered on the simulator only
REDIRECT_URI = "https://connect.example.com/oauth/callback"
API = "/simulator/ia/api/v1"


@pytest.fixture
def rest_app(db: Any) -> Any:
    return oauth.register_app(CLIENT_ID, CLIENT_SECRET, settings.INTACCT_SENDER_ID, [REDIRECT_URI])


@pytest.fixture
def company(db: Any) -> Any:
    """TEST-CO: set up right (sender authorised, role-based, ws_connect), small data."""
    return build_company("TEST-CO", sizes=SMALL_SIZES).company
