"""With DEBUG on (`make run`), a 500 in any view that takes a password never shows the password or a hash.

Each test forces an error deep inside such a view (in the database layer, the password hasher or the
encryption) and reads Django's technical 500 page: the POST data, every frame's local variables.
"""
from __future__ import annotations

import re
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.db import DatabaseError
from django.db.backends import utils as db_utils
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from connector import crypto
from connector.models import Connection
from tests.conftest import PASSWORD

TYPED = "Typed-Secret-Passw0rd-731"  # what the person typed in the form
HASH = re.compile(r"(md5|pbkdf2_sha256|argon2|bcrypt\w*|scrypt)\$[^\s<&\"']{4,}")


@pytest.fixture
def debug(settings):
    settings.DEBUG = True
    settings.RATE_LIMIT_ENABLED = False
    return settings


def broken_client(user: str | None = None) -> Client:
    client = Client(raise_request_exception=False)
    if user:
        assert client.login(username=user, password=PASSWORD)
    return client


def assert_technical_500_without_secrets(response, *secrets: str) -> None:
    body = response.content.decode()
    assert response.status_code == 500
    assert "Local vars" in body and "Traceback" in body  # really the DEBUG page, frames and all
    for secret in secrets:
        assert secret not in body
    assert not HASH.search(body), HASH.search(body).group(0)


def failing_sql(table: str, verb: str):
    """Let every query through except `verb` on `table`, which fails like a lost database would."""
    real = db_utils.CursorWrapper._execute

    def execute(self, sql, params, *ignored_wrapper_args):
        if sql.lstrip().upper().startswith(verb) and f'"{table}"' in sql:
            raise DatabaseError("forced failure")
        return real(self, sql, params, *ignored_wrapper_args)
    return mock.patch.object(db_utils.CursorWrapper, "_execute", execute)


def test_signup(db, debug):
    debug.SIGNUP_ENABLED = True
    data = {"organisation_name": "Acme", "username": "newbie", "email": "n@acme.test", "password": TYPED}
    with failing_sql("auth_user", "INSERT"):
        response = broken_client().post("/accounts/signup/", data)
    assert_technical_500_without_secrets(response, TYPED)


def test_login(organisation, debug):
    stored_hash = get_user_model().objects.get(username="alice").password
    with mock.patch("django.contrib.auth.base_user.check_password", side_effect=RuntimeError("forced")):
        response = broken_client().post("/accounts/login/", {"username": "alice", "password": TYPED})
    assert_technical_500_without_secrets(response, TYPED, stored_hash)


@pytest.mark.parametrize("url,data", [
    ("/organisations/acme/setup/step-6/", {"company_id": "ACME", "user_id": "ws_connect", "password": TYPED}),
    ("/organisations/acme/connection/password/", {"password": TYPED}),
])
def test_intacct_password_forms(url, data, organisation, debug):
    Connection.objects.filter(organisation=organisation).update(
        company_id="ACME", user_id="ws_connect", password_token=crypto.encrypt("Old-Passw0rd"))
    with mock.patch("connector.crypto.encrypt", side_effect=RuntimeError("forced")), \
            mock.patch("connector.tasks.connection_validate.delay"):
        response = broken_client("alice").post(url, data)
    assert_technical_500_without_secrets(response, TYPED, "Old-Passw0rd")


def test_password_change(organisation, debug):
    stored_hash = get_user_model().objects.get(username="alice").password
    data = {"old_password": PASSWORD, "new_password1": TYPED, "new_password2": TYPED}
    client = broken_client("alice")
    with failing_sql("auth_user", "UPDATE"):
        response = client.post("/accounts/password_change/", data)
    assert_technical_500_without_secrets(response, TYPED, PASSWORD, stored_hash)


@pytest.mark.parametrize("failure", ["hasher", "database"])
def test_password_reset_confirm(failure, organisation, debug):
    user = get_user_model().objects.get(username="alice")
    client = broken_client()
    link = (f"/accounts/reset/{urlsafe_base64_encode(force_bytes(user.pk))}/"
            f"{default_token_generator.make_token(user)}/")
    form_url = client.get(link)["Location"]  # Django swaps the token for a session and redirects
    data = {"new_password1": TYPED, "new_password2": TYPED}
    forced = (mock.patch("django.contrib.auth.base_user.make_password", side_effect=RuntimeError("forced"))
              if failure == "hasher" else failing_sql("auth_user", "UPDATE"))
    with forced:
        response = client.post(form_url, data)
    assert_technical_500_without_secrets(response, TYPED, user.password)


def test_simulator_gateway(db, debug):
    """The simulator's XML gateway (development only) carries the sender's and the user's passwords."""
    from tests.simulator.conftest import envelope, login_xml

    body = envelope("<function controlid='f1'><getAPISession/></function>", sender_password="Sender-" + TYPED,
                    auth=login_xml(password="User-" + TYPED))
    with mock.patch("simulator.gateway._sender_valid", side_effect=RuntimeError("forced")):
        response = broken_client().post("/simulator/ia/xml/xmlgw.phtml", data=body.encode(),
                                        content_type="application/xml")
    assert_technical_500_without_secrets(response, TYPED)


def test_admin_sets_a_users_password(organisation, debug):
    """Django's admin screens that take a password are covered by the same filter."""
    get_user_model().objects.create_superuser(username="root", email="root@operator.test", password=PASSWORD)
    alice = get_user_model().objects.get(username="alice")
    client = broken_client("root")
    data = {"password1": TYPED, "password2": TYPED, "usable_password": "true"}
    with failing_sql("auth_user", "UPDATE"):
        response = client.post(f"/admin/auth/user/{alice.pk}/password/", data)
    assert_technical_500_without_secrets(response, TYPED, alice.password)
