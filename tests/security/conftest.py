"""Security tests: the wizard's people (org admin, support staff, another organisation's admin) and a superuser."""
from __future__ import annotations

import pytest
from django.test import Client

from tests.wizard.conftest import (  # noqa: F401 - fixtures shared with the wizard's tests
    PASSWORD,
    admin_client,
    fast_password_hashing,
    organisation,
    other_organisation,
    outsider_client,
    support_client,
)


@pytest.fixture
def superuser_client(db) -> Client:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser(username="root", email="root@operator.test", password=PASSWORD)
    client = Client()
    assert client.login(username="root", password=PASSWORD)
    return client
