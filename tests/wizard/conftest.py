"""The three people of every access test: an org admin, support staff, an admin of another org."""
from __future__ import annotations

import pytest
from django.test import Client

from connector import services

PASSWORD = "correct horse battery staple"  # noqa: S105 - test logins only


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def organisation(db):
    admin = services.user_create(username="alice", email="alice@acme.test", password=PASSWORD)
    return services.organisation_create(name="Acme Ltd", slug="acme", admin=admin)


@pytest.fixture
def other_organisation(db):
    admin = services.user_create(username="olga", email="olga@other.test", password=PASSWORD)
    return services.organisation_create(name="Other plc", slug="other", admin=admin)


def _client_for(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


@pytest.fixture
def admin_client(organisation) -> Client:
    return _client_for("alice")


@pytest.fixture
def support_client(db) -> Client:
    user = services.user_create(username="sam", email="sam@operator.test", password=PASSWORD)
    services.support_staff_grant(user=user)
    return _client_for("sam")


@pytest.fixture
def outsider_client(other_organisation) -> Client:
    return _client_for("olga")
