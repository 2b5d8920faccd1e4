"""The three people of every access test: an org admin, support staff, an admin of another org."""
from __future__ import annotations

import pytest
from django.test import Client

from connector import services

PASSWORD = "correct horse battery staple"  # noqa: S105 - test logins only


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # MD5 first for speed; PBKDF2 kept because the simulator hashes its users' passwords with it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                                 "django.contrib.auth.hashers.PBKDF2PasswordHasher"]


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


def simulated_company(company_id: str, *, permission_model: str = "role", role_name: str = "Connect API",
                      login_id: str = "ws_connect", password: str = "Sim-Passw0rd!",  # noqa: S107
                      deprovisioning: bool = False, skip_policies: tuple[str, ...] = ()):
    """A simulated Intacct company set up exactly as the wizard tells an admin to (simulator helpers)."""
    from django.conf import settings

    from connector.objects import permission_table
    from simulator import services as sim

    sim.settings_sender()
    company = sim.create_company(company_id, permission_model=permission_model)
    sim.authorize_sender(company, settings.INTACCT_SENDER_ID)
    permissions = [(row.application, row.policy,
                    "|".join(row.rights_for(wants_deprovisioning=deprovisioning)))
                   for row in permission_table() if row.policy not in skip_policies]
    admin = "Full" if deprovisioning else "Off"
    if permission_model == "role":
        role = sim.create_role(company, role_name, permissions)
        sim.create_user(company, login_id, first_name="Intacct Connect", last_name="Integration",
                        admin_privileges=admin, roles=[role], password=password)
    else:
        sim.create_user(company, login_id, first_name="Intacct Connect", last_name="Integration",
                        admin_privileges=admin, permissions=permissions, password=password)
    return company
