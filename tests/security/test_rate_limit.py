"""Login is rate limited per IP and account; Connect after failed Intacct sign-ins: 429 on a real page, nothing lost."""
from __future__ import annotations

from unittest import mock

import pytest
from django.core.cache import cache
from django.test import Client

from connector import services
from connector.models import AuditEvent, Connection, ValidationCheck, ValidationRun
from tests.conftest import PASSWORD

LOGIN = "/accounts/login/"
STEP_6 = "/organisations/acme/setup/step-6/"


@pytest.fixture
def limits(settings):
    settings.RATE_LIMIT_ENABLED = True
    settings.LOGIN_RATE_LIMIT_PER_IP, settings.LOGIN_RATE_LIMIT_PER_ACCOUNT = 6, 3
    settings.LOGIN_RATE_LIMIT_WINDOW_SECONDS = 900
    settings.CONNECT_FAILED_SIGN_INS_PER_USER = 3
    settings.CONNECT_RATE_LIMIT_WINDOW_SECONDS = 3600
    return settings


@pytest.fixture
def enqueued():
    with mock.patch("connector.tasks.connection_validate.delay") as delay:
        yield delay


def login(client: Client, username: str, password: str, ip: str = "203.0.113.7"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_failed_logins_per_account_are_limited_then_even_the_right_password_waits(organisation, limits):
    client = Client()
    for _ in range(3):
        assert login(client, "alice", "wrong").status_code == 200
    blocked = login(client, "alice", PASSWORD)
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0
    html = blocked.content.decode()
    assert "Too many attempts" in html and "<form" in html and 'value="alice"' in html
    assert "_auth_user_id" not in client.session
    # Another IP does not help against the per-account limit; the same username in capitals neither.
    assert login(Client(), "ALICE", PASSWORD, ip="198.51.100.9").status_code == 429
    # Another account from the same IP still logs in (the IP limit is higher).
    services.user_create(username="bob", email="bob@acme.test", password=PASSWORD)
    assert login(Client(), "bob", PASSWORD).status_code == 302


def test_logins_per_ip_are_limited_across_usernames(db, limits):
    client = Client()
    for n in range(6):
        assert login(client, f"user{n}", "wrong").status_code == 200
    assert login(client, "someone-else", "wrong").status_code == 429
    assert login(Client(), "someone-else", "wrong", ip="198.51.100.9").status_code == 200


def test_successful_logins_do_not_count_against_the_account(organisation, limits):
    for _ in range(4):
        assert login(Client(), "alice", PASSWORD).status_code == 302


def test_the_window_ends(organisation, limits):
    for _ in range(3):
        login(Client(), "alice", "wrong")
    assert login(Client(), "alice", PASSWORD).status_code == 429
    with mock.patch("wizard.ratelimit.time.time", return_value=__import__("time").time() + 901):
        assert login(Client(), "alice", PASSWORD).status_code == 302


def test_counters_are_shared_with_other_processes_through_the_cache(organisation, limits):
    """A second web process (here a fresh interpreter on the same cache) sees this process's counters."""
    import subprocess
    import sys

    from django.conf import settings

    for _ in range(3):
        login(Client(), "alice", "wrong")
    probe = ("import django; django.setup(); from django.conf import settings as s;"
             "s.LOGIN_RATE_LIMIT_PER_ACCOUNT = 3; from wizard import ratelimit;"
             "print(ratelimit.retry_after([(ratelimit.login_limits()[1], 'alice')]))")
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings",
           "CACHE_DIR": settings.CACHES["default"]["LOCATION"], "LOG_LEVEL": "WARNING"}
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60,
                            cwd=settings.BASE_DIR)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip().splitlines()[-1]) > 0
    cache.clear()
    assert login(Client(), "alice", PASSWORD).status_code == 302


def _connect(client: Client, ip: str = "203.0.113.7", **overrides):
    data = {"company_id": "ACME", "user_id": "ws_connect", "password": "Some-Passw0rd", "entity_id": "E1",
            **overrides}
    return client.post(STEP_6, data, REMOTE_ADDR=ip)


def _failed_sign_in(organisation, company_id: str = "ACME", user_id: str = "ws_connect") -> None:
    """What the worker records when Intacct refuses the Web Services user's sign-in."""
    connection = organisation.connection
    connection.company_id, connection.user_id = company_id, user_id
    connection.save(update_fields=["company_id", "user_id"])
    run = ValidationRun.objects.create(connection=connection, status=ValidationRun.Status.FAILED)
    ValidationCheck.objects.create(run=run, position=6, key="login", label="Web Services user signs in",
                                   status=ValidationCheck.Status.FAILED, message="Sign-in refused.")


def test_connect_waits_after_failed_sign_ins_and_the_over_limit_post_changes_nothing(
        organisation, admin_client, limits, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert _connect(admin_client).status_code == 302
    for _ in range(3):
        _failed_sign_in(organisation)
    connection = Connection.objects.get()
    before = (connection.company_id, connection.user_id, connection.password_token, connection.entity_id)
    counts = (ValidationRun.objects.count(), AuditEvent.objects.count(), enqueued.call_count)
    with django_capture_on_commit_callbacks(execute=True):
        blocked = _connect(admin_client, ip="198.51.100.9", entity_id="E2")
    assert blocked.status_code == 429 and int(blocked["Retry-After"]) > 0
    html = blocked.content.decode()
    assert "refused the sign-in" in html and "nothing was saved or sent" in html and "Check again" in html
    assert "Please correct" not in html
    # The typed values are kept in the form (the password never is re-rendered, by design).
    assert 'value="ACME"' in html and 'value="E2"' in html and "Some-Passw0rd" not in html
    connection.refresh_from_db()
    assert (connection.company_id, connection.user_id, connection.password_token, connection.entity_id) == before
    assert (ValidationRun.objects.count(), AuditEvent.objects.count(), enqueued.call_count) == counts
    # Check again with the stored credentials waits too.
    assert admin_client.post("/organisations/acme/setup/check-again/").status_code == 429
    # Another company or user is another Intacct user: not blocked.
    assert _connect(admin_client, company_id="OTHER-CO").status_code == 302


def test_connects_that_sign_in_are_never_limited(organisation, admin_client, limits, enqueued):
    for _ in range(12):
        assert _connect(admin_client).status_code == 302


def test_invalid_connect_submissions_do_not_use_up_the_limit(organisation, admin_client, limits, enqueued):
    for _ in range(8):
        response = _connect(admin_client, company_id="")
        assert response.status_code == 200 and "Enter your Intacct company ID." in response.content.decode()
    assert _connect(admin_client).status_code == 302


def test_one_organisation_s_failed_sign_ins_never_block_another(organisation, admin_client, limits, enqueued,
                                                                other_organisation, outsider_client):
    for _ in range(5):
        _failed_sign_in(other_organisation)
    assert _connect(admin_client).status_code == 302  # same IP, same company and user, another organisation
    data = {"company_id": "ACME", "user_id": "ws_connect", "password": "pw"}
    assert outsider_client.post("/organisations/other/setup/step-6/", data).status_code == 429


def test_rate_limiting_can_be_switched_off(organisation, admin_client, settings, enqueued):
    settings.RATE_LIMIT_ENABLED = False
    for _ in range(3):
        _failed_sign_in(organisation)
    for _ in range(3):
        assert _connect(admin_client).status_code == 302


def test_default_limits_are_set():
    from django.conf import settings

    assert settings.RATE_LIMIT_ENABLED
    assert 0 < settings.LOGIN_RATE_LIMIT_PER_ACCOUNT <= settings.LOGIN_RATE_LIMIT_PER_IP
    assert 0 < settings.CONNECT_FAILED_SIGN_INS_PER_USER


# --- usernames as Django matches them (issue 13, item 8) ----------------------------------------

FULLWIDTH_ALICE = "ａｌｉｃｅ"  # NFKC-normalises to "alice", which Django's login form logs in as alice


def test_a_fullwidth_copy_of_the_username_counts_against_the_same_account(organisation, limits):
    for _ in range(3):
        assert login(Client(), "alice", "wrong", ip="203.0.113.7").status_code == 200
    # Django's login form normalises the name (NFKC): the fullwidth name is alice, and alice is locked.
    blocked = login(Client(), FULLWIDTH_ALICE, PASSWORD, ip="198.51.100.9")
    assert blocked.status_code == 429
    assert "_auth_user_id" not in Client().session


def test_failed_fullwidth_attempts_lock_the_plain_username(organisation, limits):
    for n, name in enumerate([FULLWIDTH_ALICE, " alice", "ALICE", "ａｌｉｃｅ "]):
        login(Client(), name, "wrong", ip=f"198.51.100.{n + 1}")
    assert login(Client(), "alice", PASSWORD, ip="192.0.2.1").status_code == 429


def test_signup_with_a_fullwidth_copy_of_a_taken_username_is_a_form_error(organisation, settings):
    settings.SIGNUP_ENABLED = True
    data = {"organisation_name": "Mallory Ltd", "username": FULLWIDTH_ALICE, "email": "m@evil.test",
            "password": "Another-Passw0rd-42"}
    response = Client().post("/accounts/signup/", data)
    assert response.status_code == 200
    assert "That username is taken." in response.content.decode()
    from django.contrib.auth import get_user_model
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["alice"]


def test_the_rest_web_services_user_form_waits_after_the_same_failed_sign_ins(
        organisation, admin_client, limits, enqueued):
    """A Web Services user refused three times (over XML or REST) waits on the REST form too; nothing changes."""
    for _ in range(3):
        _failed_sign_in(organisation)
    before = Connection.objects.get(organisation=organisation)
    response = admin_client.post("/organisations/acme/connect/web-services-user/", {
        "return_to": "setup", "cc-company_id": "ACME", "cc-user_id": "ws_connect", "cc-entity_id": "",
        "cc-company_timezone": "America/New_York"})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    html = response.content.decode()
    assert "ws_connect" in html and 'role="alert"' in html
    after = Connection.objects.get(organisation=organisation)
    assert (after.protocol, after.rest_grant) == (before.protocol, before.rest_grant)
    assert not enqueued.called
    # Another user of the same company is not held back.
    response = admin_client.post("/organisations/acme/connect/web-services-user/", {
        "return_to": "setup", "cc-company_id": "ACME", "cc-user_id": "ws_other", "cc-entity_id": "",
        "cc-company_timezone": "America/New_York"})
    assert response.status_code == 302
    assert Connection.objects.get(organisation=organisation).rest_grant == Connection.RestGrant.CLIENT_CREDENTIALS
