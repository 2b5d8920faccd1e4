"""Every form and API parameter fuzzed (hypothesis): a clear message or a 4xx, never a 500, never garbage stored.

Each example runs in a savepoint that is rolled back afterwards, so examples do not see each other's data.
Per submission: the status is below 500; a refused submission changes nothing in the database; an
accepted one stores exactly what the form cleaned, with no control character in any stored text.
(The Intacct client's own fuzzing is tests/fuzz/test_client_fuzz.py.)
"""
from __future__ import annotations

import unicodedata
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector import crypto
from connector.models import ApiToken, AuditEvent, Connection, Organisation, Record, ValidationRun
from simulator import services as sim
from simulator.models import Role, SimCompany, SimUser
from tests.conftest import PASSWORD
from wizard import forms

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

INJECTIONS = [
    "' OR '1'='1", "'; DROP TABLE connector_connection; --", '" OR ""="', "1; SELECT pg_sleep(5)",
    "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "{{ settings.SECRET_KEY }}", "{% debug %}",
    "${jndi:ldap://127.0.0.1/x}", "../../etc/passwd", "%00", "\x00", "ACME\x00", "\r\nSet-Cookie: x=1",
    "<![CDATA[x]]>", "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>",
    "\u202eRLO", "\u200bACME", "ACME\u2028", "\ufeff", "🙂" * 50, "Ａ" * 101, "9" * 40, "-1", "0", "1e309",
    "NaN", "2024-02-30", "2024-13-01T25:61:61", "9999-12-31T23:59:59", "0000-00-00", "a" * 10_000,
]
CONTROL = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=31), min_size=1, max_size=5)
HOSTILE = st.one_of(
    st.sampled_from(INJECTIONS),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=300),
    st.builds(lambda a, c, b: a + c + b, st.text(max_size=8), CONTROL, st.text(max_size=8)),
    st.integers(min_value=101, max_value=20_000).map(lambda n: "x" * n),
    st.integers().map(str),
    st.just(""),
)

# Spellings of "alice" that Django's login form (NFKC, then an exact match) or sign-up treats as alice.
ALICE_VARIANTS = st.builds(
    lambda letters, before, after: before + "".join(letters) + after,
    st.tuples(*[st.sampled_from([c, c.upper(), chr(ord(c) + 0xFEE0), chr(ord(c.upper()) + 0xFEE0)])
                for c in "alice"]),
    st.sampled_from(["", " ", "\u3000"]), st.sampled_from(["", " ", "\u3000"]),
)


def control_chars(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in text)


def snapshot(*models) -> list:
    return [sorted(map(repr, model.objects.values_list())) for model in models]


@pytest.fixture
def fuzz_settings(settings):
    settings.RATE_LIMIT_ENABLED = False  # the limiter is tested on its own (test_rate_limit.py)
    return settings


@pytest.fixture
def quiet():
    """Nothing leaves the process: no task published, no request to Intacct."""
    with mock.patch("connector.tasks.connection_validate.delay"), mock.patch("connector.tasks.sync_run.delay"), \
            mock.patch("connector.tasks.connection_validate.apply_async"), \
            mock.patch("connector.intacct.client.IntacctClient._roundtrip",
                       side_effect=AssertionError("no request to Intacct while fuzzing")):
        yield


@pytest.fixture
def connected(organisation):
    Connection.objects.filter(organisation=organisation).update(
        company_id="ACME", user_id="ws_connect", password_token=crypto.encrypt("Old-Passw0rd"),
        status=Connection.Status.CONNECTED, permission_model="role")
    Record.objects.create(connection=organisation.connection, object_name="USERINFO", recordno=5, key_value="jdoe",
                          whenmodified="2024-01-02 03:04:05", data={"LOGINID": "jdoe"})
    organisation.connection.refresh_from_db()
    return organisation.connection


def rolled_back(call):
    """Run `call` in a savepoint rolled back afterwards; return what it returned."""
    with transaction.atomic():
        result = call()
        transaction.set_rollback(True)
    return result


def assert_no_500(response, what) -> None:
    assert response.status_code < 500, (what, response.status_code)


def any_control(params: dict) -> bool:
    """A query with a control character (NUL...) in any value: the middleware answers 400 before any view."""
    return any(unicodedata.category(ch) == "Cc" for value in params.values() for ch in str(value))


def assert_refused_if_control(response, params: dict) -> bool:
    """True (after checking the clear 400) when the query held a control character; False otherwise."""
    if not any_control(params):
        return False
    assert response.status_code == 400 and b"control character" in response.content, (params, response.status_code)
    return True


# --- the wizard's forms -----------------------------------------------------------------------

@FUZZ
@given(company_id=HOSTILE, user_id=HOSTILE, password=HOSTILE, entity_id=HOSTILE)
def test_connect_form(company_id, user_id, password, entity_id, connected, admin_client, fuzz_settings, quiet):
    data = {"company_id": company_id, "user_id": user_id, "password": password, "entity_id": entity_id}

    def run():
        before = snapshot(Connection, ValidationRun)
        response = admin_client.post("/organisations/acme/setup/step-6/", data)
        assert_no_500(response, data)
        form = forms.ConnectForm(data)
        if response.status_code == 302:
            assert form.is_valid()
            connection = Connection.objects.get(pk=connected.pk)
            cleaned = form.cleaned_data
            assert (connection.company_id, connection.user_id, connection.entity_id) == (
                cleaned["company_id"], cleaned["user_id"], cleaned["entity_id"])
            assert crypto.decrypt(connection.password_token) == cleaned["password"]
            for value in (connection.company_id, connection.user_id, connection.entity_id, cleaned["password"]):
                assert not control_chars(value) and "\u200b" not in value, repr(value)
        else:
            assert response.status_code == 200 and not form.is_valid()
            html = response.content.decode()
            assert "Nothing was sent to Intacct." in html
            assert snapshot(Connection, ValidationRun) == before
    rolled_back(run)


@FUZZ
@given(password=HOSTILE)
def test_password_change_form(password, connected, admin_client, fuzz_settings, quiet):
    def run():
        before = connected.password_token
        response = admin_client.post("/organisations/acme/connection/password/", {"password": password})
        assert_no_500(response, password)
        form = forms.PasswordChangeForm({"password": password})
        token = Connection.objects.get(pk=connected.pk).password_token
        if response.status_code == 302:
            assert form.is_valid() and crypto.decrypt(token) == form.cleaned_data["password"]
            assert not control_chars(form.cleaned_data["password"])
        else:
            assert response.status_code == 200 and token == before
            assert 'class="field-error"' in response.content.decode()
    rolled_back(run)


@FUZZ
@given(entity_id=HOSTILE)
def test_entity_form(entity_id, connected, admin_client, fuzz_settings, quiet):
    def run():
        response = admin_client.post("/organisations/acme/connection/entity/", {"entity_id": entity_id})
        assert_no_500(response, entity_id)
        stored = Connection.objects.get(pk=connected.pk).entity_id
        form = forms.EntityForm({"entity_id": entity_id})
        if response.status_code == 302:
            assert form.is_valid() and stored == form.cleaned_data["entity_id"] and not control_chars(stored)
        else:
            assert response.status_code == 200 and stored == "" and not form.is_valid()
    rolled_back(run)


@FUZZ
@given(organisation_name=HOSTILE, username=HOSTILE, email=HOSTILE, password=HOSTILE)
def test_signup_form(organisation_name, username, email, password, db, fuzz_settings):
    data = {"organisation_name": organisation_name, "username": username, "email": email, "password": password}

    def run():
        before = snapshot(get_user_model(), Organisation)
        response = Client().post("/accounts/signup/", data)
        assert_no_500(response, data)
        if response.status_code == 302:
            user = get_user_model().objects.get(username=username)
            organisation = Organisation.objects.get(memberships__user=user)
            form_name = organisation.name
            assert not control_chars(user.username) and not control_chars(form_name)
            assert len(user.username) <= 150 and len(form_name) <= 200 and organisation.slug
            assert Client().get(f"/organisations/{organisation.slug}/setup/").status_code == 302
        else:
            assert response.status_code == 200 and snapshot(get_user_model(), Organisation) == before
    rolled_back(run)


@FUZZ
@given(action=HOSTILE, permission_model=HOSTILE, wants=HOSTILE, number=st.integers(min_value=-5, max_value=2**70))
def test_wizard_step_toggles(action, permission_model, wants, number, connected, admin_client, fuzz_settings,
                             quiet):
    def run():
        for step in (number, 4, 5):
            data = {"action": action, "permission_model": permission_model, "wants_deprovisioning": wants}
            response = admin_client.post(f"/organisations/acme/setup/step-{step}/", data)
            assert_no_500(response, (step, data))
            assert response.status_code in (200, 302, 400, 404)
        connection = Connection.objects.get(pk=connected.pk)
        assert connection.permission_model in ("role", "user", "")
        assert connection.wants_deprovisioning in (True, False)
    rolled_back(run)


def test_wizard_step_toggles_refuse_unknown_actions_with_400(connected, admin_client, fuzz_settings, quiet):
    before = snapshot(Connection, AuditEvent)
    response = admin_client.post("/organisations/acme/setup/step-2/", {"action": "<script>"})
    assert response.status_code == 400 and snapshot(Connection, AuditEvent) == before


@FUZZ
@given(username=HOSTILE, password=HOSTILE)
def test_login_form(username, password, organisation, fuzz_settings):
    response = Client().post("/accounts/login/", {"username": username, "password": password})
    assert_no_500(response, (username, password))
    assert response.status_code == 200  # never logged in with garbage


# --- support actions and the dashboard's filters ------------------------------------------------

@FUZZ
@given(step=HOSTILE, q=HOSTILE, status=HOSTILE, check=HOSTILE, sort=HOSTILE, page=HOSTILE, org=HOSTILE,
       stale=HOSTILE)
def test_support_dashboard(step, q, status, check, sort, page, org, stale, connected, support_client,
                           fuzz_settings, quiet):
    from django.core import mail

    def run():
        params = {"q": q, "status": status, "check": check, "sort": sort, "page": page, "organisation": org,
                  "stale": stale}
        for url in ("/support/", "/support/connections.csv"):
            response = support_client.get(url, params)
            assert_no_500(response, params)
            if not assert_refused_if_control(response, params):
                assert response.status_code == 200
        before = (len(mail.outbox), AuditEvent.objects.filter(action="support.step_link_sent").count())
        response = support_client.post(f"/support/connections/{connected.pk}/step-link/", {"step": step})
        assert_no_500(response, step)
        if step.strip() not in {"1", "2", "3", "4", "5", "6"}:
            assert (len(mail.outbox), AuditEvent.objects.filter(action="support.step_link_sent").count()) == before
    rolled_back(run)


@FUZZ
@given(connection_id=st.integers(min_value=-2, max_value=2**70))
def test_support_urls_with_any_connection_id(connection_id, connected, support_client, fuzz_settings, quiet):
    def run():
        for url in (f"/support/connections/{connection_id}/",):
            response = support_client.get(url)
            assert_no_500(response, url)
        for action in ("revalidate", "sync", "step-link"):
            response = support_client.post(f"/support/connections/{connection_id}/{action}/", {"step": "1"})
            assert_no_500(response, (connection_id, action))
    rolled_back(run)


# --- synced data: search, paging, CSV, deprovisioning, tokens, the JSON API ----------------------

@FUZZ
@given(q=HOSTILE, after=HOSTILE, obj=st.one_of(st.just("USERINFO"), HOSTILE.filter(lambda s: "/" not in s)))
def test_records_search_and_paging(q, after, obj, connected, admin_client, fuzz_settings):
    from urllib.parse import quote

    path = quote(obj, safe="") or "USERINFO"
    for url in (f"/organisations/acme/records/{path}/", f"/organisations/acme/records/{path}/csv/"):
        response = admin_client.get(url, {"q": q, "after": after})
        assert_no_500(response, (url, q, after))
        if assert_refused_if_control(response, {"q": q, "after": after}):
            continue
        assert response.status_code in (200, 404)
        if response.status_code == 200 and url.endswith("csv/"):
            b"".join(response.streaming_content)  # the whole stream is produced without error


@FUZZ
@given(cursor=HOSTILE, limit=HOSTILE, since=HOSTILE, deleted=HOSTILE)
def test_api_records_parameters(cursor, limit, since, deleted, connected, admin_client, fuzz_settings):
    params = {"cursor": cursor, "limit": limit, "modified_since": since, "include_deleted": deleted}
    response = admin_client.get("/api/v1/organisations/acme/objects/USERINFO/records/", params)
    assert_no_500(response, params)
    if assert_refused_if_control(response, params):
        return
    assert response.status_code in (200, 400)
    body = response.json()
    assert ("records" in body) if response.status_code == 200 else ("error" in body)


@FUZZ
@given(token=HOSTILE)
def test_api_bearer_token(token, connected, fuzz_settings):
    if any(ch in token for ch in "\r\n\x00"):
        token = token.replace("\r", "").replace("\n", "").replace("\x00", "")
    for url in ("/api/v1/organisations/acme/objects/", "/api/v1/organisations/acme/status/"):
        response = Client().get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert_no_500(response, token)
        assert response.status_code == 401


@FUZZ
@given(recordno=st.integers(min_value=0, max_value=2**70), action=HOSTILE.filter(lambda s: "/" not in s),
       end_date=HOSTILE, with_employee=HOSTILE)
def test_user_deprovision_parameters(recordno, action, end_date, with_employee, connected, admin_client,
                                     fuzz_settings, quiet):
    from urllib.parse import quote

    def run():
        url = f"/organisations/acme/users/{recordno}/{quote(action, safe='') or 'deactivate'}/"
        for method in ("get", "post"):
            params = {"end_date": end_date, "with_employee": with_employee}
            response = getattr(admin_client, method)(url, params)
            assert_no_500(response, (url, end_date))
            if method == "get" and assert_refused_if_control(response, params):
                continue
            assert response.status_code in (200, 404)
    rolled_back(run)


@FUZZ
@given(name=HOSTILE, revoke=HOSTILE, kind=HOSTILE)
def test_api_tokens_and_sync_now(name, revoke, kind, connected, admin_client, fuzz_settings, quiet):
    def run():
        before = ApiToken.objects.count()
        response = admin_client.post("/organisations/acme/api-tokens/", {"name": name})
        assert_no_500(response, name)
        tokens = list(ApiToken.objects.all())
        if response.status_code == 200 and len(tokens) > before:
            stored = tokens[-1].name
            assert stored and len(stored) <= 100 and not control_chars(stored) and stored == stored.strip()
        else:
            assert response.status_code in (200, 400) and len(tokens) == before
        response = admin_client.post("/organisations/acme/api-tokens/", {"revoke": revoke})
        assert_no_500(response, revoke)
        response = admin_client.post("/organisations/acme/sync/", {"kind": kind})
        assert_no_500(response, kind)
        from connector.models import SyncRun

        assert set(SyncRun.objects.values_list("kind", flat=True)) <= set(SyncRun.Kind.values)
    rolled_back(run)


@FUZZ
@given(run_id=st.integers(min_value=-2, max_value=2**70))
def test_validation_status_with_any_run_id(run_id, connected, admin_client, fuzz_settings):
    response = admin_client.get(f"/organisations/acme/validations/{run_id}/")
    assert_no_500(response, run_id)
    assert response.status_code == 404


# --- the simulator's forms ------------------------------------------------------------------------

@pytest.fixture
def sim_company(db):
    company = sim.create_company("FUZZ-CO")
    role = sim.create_role(company, "Existing role", [])
    user, _ = sim.create_user(company, "ws_user", first_name="W", last_name="S", roles=[role])
    return company, role, user


SIM_TEXT_MODELS = (SimCompany, Role, SimUser)


def assert_simulator_clean() -> None:
    for model in SIM_TEXT_MODELS:
        for row in model.objects.values():
            for key, value in row.items():
                if isinstance(value, str):
                    assert not control_chars(value), (model.__name__, key, value)


@FUZZ
@given(a=HOSTILE, b=HOSTILE, c=HOSTILE, d=HOSTILE, choice=HOSTILE, number=HOSTILE)
def test_simulator_forms(a, b, c, d, choice, number, sim_company, fuzz_settings):
    company, role, user = sim_company
    base = f"/simulator/companies/{company.company_id}"
    posts = [
        ("/simulator/", {"company_id": a, "name": b}),
        (f"{base}/admin/subscriptions/", {"web_services_subscribed": choice}),
        (f"{base}/setup/security/", {"action": "ip", "ip_filter_enabled": choice, "allowed_ips": a}),
        (f"{base}/setup/security/", {"action": "add_sender", "sender_id": a, "needs_login_for_api": choice}),
        (f"{base}/setup/security/", {"action": "remove_sender", "authorization": number}),
        (f"{base}/setup/company-info/", {"permission_model": choice, "session_lifetime_seconds": number,
                                         "concurrency_limit": number, "login_failure_style": choice,
                                         "timezone_name": a}),
        (f"{base}/admin/roles/", {"name": a, "description": b}),
        (f"{base}/admin/roles/{role.pk}/", {"name": c, "description": d}),
        (f"{base}/admin/users/", {"login_id": a, "first_name": b, "last_name": c, "email": d,
                                  "user_type": choice, "admin_privileges": choice, "status": choice,
                                  "roles": number}),
        (f"{base}/admin/users/{user.pk}/", {"user_type": choice, "admin_privileges": choice, "status": choice,
                                             "roles": number}),
        (f"{base}/admin/users/{user.pk}/", {"action": "reset_password"}),
        (f"{base}/faults/", {"action": "arm", "kind": choice, "mode": choice, "count": number, "rate": number,
                             "delay_ms": number, "status": number, "seed": number}),
    ]

    def run():
        client = Client()
        for url, data in posts:
            response = client.post(url, data)
            assert_no_500(response, (url, data))
            assert response.status_code in (200, 302, 404), (url, response.status_code)
        response = client.get("/simulator/mailbox/", {"to": a})
        assert_no_500(response, a)
        assert_refused_if_control(response, {"to": a})
        assert_simulator_clean()
        for created in SimCompany.objects.exclude(pk=company.pk):
            assert Client().get(f"/simulator/companies/{created.company_id}/").status_code == 200
    rolled_back(run)


# --- a few exact cases the fuzzing found, kept as plain regressions ------------------------------

@pytest.mark.parametrize("value", ["AC\x01ME", "ACME\x7f", "\u200bACME", "AC\u202eME"])
def test_connect_refuses_control_and_invisible_characters_in_ids(value, connected, admin_client, fuzz_settings,
                                                                 quiet):
    for field in ("company_id", "user_id", "entity_id"):
        data = {"company_id": "ACME", "user_id": "ws_connect", "password": "pw", "entity_id": "", field: value}
        response = admin_client.post("/organisations/acme/setup/step-6/", data)
        assert response.status_code == 200 and "invisible" in response.content.decode(), field
    assert Connection.objects.get(pk=connected.pk).company_id == "ACME"


def test_connect_refuses_a_password_intacct_could_not_receive(connected, admin_client, fuzz_settings, quiet):
    data = {"company_id": "ACME", "user_id": "ws_connect", "password": "pass\x08word", "entity_id": ""}
    response = admin_client.post("/organisations/acme/setup/step-6/", data)
    assert response.status_code == 200 and "control character" in response.content.decode()
    assert crypto.decrypt(Connection.objects.get(pk=connected.pk).password_token) == "Old-Passw0rd"


@FUZZ
@given(before=st.text(max_size=8), after=st.text(max_size=8), control=CONTROL, name=st.sampled_from(
    ["q", "after", "cursor", "page", "sort", "status", "organisation", "next"]))
def test_a_nul_or_control_byte_in_any_query_parameter_is_a_400(before, after, control, name, connected,
                                                               admin_client, support_client, fuzz_settings):
    """Whatever surrounds it, a control character (NUL first of all) in a query is a clear 400 on every page."""
    params = {name: before + control + after}
    for client, url in ((support_client, "/support/"), (support_client, "/support/connections.csv"),
                        (admin_client, "/organisations/acme/records/USERINFO/"),
                        (admin_client, "/organisations/acme/records/USERINFO/csv/"),
                        (admin_client, "/api/v1/organisations/acme/objects/USERINFO/records/"),
                        (Client(), "/accounts/login/"), (Client(), "/accounts/password_reset/")):
        response = client.get(url, params)
        assert assert_refused_if_control(response, params), (url, params)


@pytest.mark.parametrize("after", ["9" * 30, "²", "-1"])
def test_record_paging_with_huge_or_odd_numbers(after, connected, admin_client, fuzz_settings):
    for params in ({"after": after}, {"q": after}):
        assert admin_client.get("/organisations/acme/records/USERINFO/", params).status_code == 200
    response = admin_client.get("/api/v1/organisations/acme/objects/USERINFO/records/", {"cursor": after})
    assert response.status_code in (200, 400)


@FUZZ
@given(username=st.one_of(ALICE_VARIANTS, st.integers(min_value=1, max_value=160).map(lambda n: "\ufdfa" * n)))
def test_signup_refuses_every_spelling_of_a_taken_username(username, organisation, fuzz_settings):
    """Sign-up stores names as Django does (NFKC): a fullwidth or other-case copy of alice is a form error."""
    data = {"organisation_name": "Copy Ltd", "username": username, "email": "copy@evil.test",
            "password": "Another-Passw0rd-42"}

    def run():
        before = snapshot(get_user_model(), Organisation)
        response = Client().post("/accounts/signup/", data)
        assert_no_500(response, data)
        if unicodedata.normalize("NFKC", username).strip().lower() == "alice":
            assert response.status_code == 200 and snapshot(get_user_model(), Organisation) == before
        stored = list(get_user_model().objects.values_list("username", flat=True))
        assert all(len(name) <= 150 for name in stored)
        assert sum(unicodedata.normalize("NFKC", name).lower() == "alice" for name in stored) == 1
    rolled_back(run)


@FUZZ
@given(username=ALICE_VARIANTS)
def test_login_lockout_holds_for_every_spelling_of_the_username(username, organisation, settings):
    """Once alice is locked, no spelling Django would log in as alice gets past the limiter."""
    from django.core.cache import cache

    settings.RATE_LIMIT_ENABLED = True
    settings.LOGIN_RATE_LIMIT_PER_ACCOUNT, settings.LOGIN_RATE_LIMIT_PER_IP = 3, 1000
    cache.clear()
    for n in range(3):
        Client().post("/accounts/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR=f"192.0.2.{n}")
    client = Client()
    response = client.post("/accounts/login/", {"username": username, "password": PASSWORD},
                           REMOTE_ADDR="198.51.100.77")
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    cache.clear()


def test_signup_refuses_a_username_django_would_not_accept(db, fuzz_settings):
    data = {"organisation_name": "Acme", "username": "al ice<script>", "email": "a@b.test",
            "password": PASSWORD}
    response = Client().post("/accounts/signup/", data)
    assert response.status_code == 200 and not get_user_model().objects.filter(email="a@b.test").exists()


def test_token_names_are_cleaned(connected, admin_client, fuzz_settings):
    admin_client.post("/organisations/acme/api-tokens/", {"name": "  CI\x00 token\x07  "})
    assert ApiToken.objects.get().name == "CI token"

