"""The REST client against the simulator over real loopback HTTP: both grants, tokens, data, errors."""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.conf import settings
from lxml import etree

from connector import policy
from connector.intacct import ClientConfig, Credentials, IntacctClient, RetryPolicy
from connector.intacct_rest import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    IntacctRestClient,
    Pkce,
    RestConfig,
    TokenSet,
    authorization_url,
    errors,
    rest_name,
)
from simulator import inflight, oauth
from simulator.demo import DEMO_PASSWORD, build_company
from simulator.metering import month_usage
from simulator.models import OAuthGrant, SenderAuthorization
from tests.rest.conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI
from tests.simulator.conftest import SMALL_SIZES

NO_WAIT = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, total_budget=5.0)


@pytest.fixture
def live(live_server, transactional_db) -> dict[str, Any]:
    inflight.inflight_reset()
    company = build_company("LIVE-CO", sizes=SMALL_SIZES).company
    app = oauth.register_app(CLIENT_ID, CLIENT_SECRET, settings.INTACCT_SENDER_ID, [REDIRECT_URI])
    base = live_server.url + "/simulator/ia/api/v1"
    return {"company": company, "app": app, "base": base, "url": live_server.url, "sleeps": []}


def config(live: dict[str, Any], **overrides: Any) -> RestConfig:
    options: dict[str, Any] = dict(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=live["base"],
                                   allowed_endpoints=(live["base"],), retry=NO_WAIT, timeout=30.0,
                                   sleep=live["sleeps"].append)
    options.update(overrides)
    return RestConfig(**options)


def cc_client(live: dict[str, Any], user: str = "ws_connect", **overrides: Any) -> IntacctRestClient:
    return IntacctRestClient(config(live, **overrides), ClientCredentialsGrant(user, "LIVE-CO"))


def approve_in_browser_like_http(live: dict[str, Any], url: str) -> str:
    """Walk the authorize page as a browser would (cookies, CSRF token, two forms); return the code."""
    with httpx.Client(follow_redirects=False) as browser:
        page = browser.get(url)
        assert page.status_code == 200 and "Sign in to Sage Intacct" in page.text
        form = {i.get("name"): i.get("value") or "" for i in etree.HTML(page.text).xpath("//form//input")}
        form.update(company_id="LIVE-CO", user_id="ws_connect", password=DEMO_PASSWORD)
        consent = browser.post(url.split("?")[0], data=form)
        assert "Allow" in consent.text, consent.text[:300]
        form = {i.get("name"): i.get("value") or "" for i in etree.HTML(consent.text).xpath("//form//input")}
        back = browser.post(url.split("?")[0], data={**form, "decision": "accept"})
    assert back.status_code == 302 and back.headers["location"].startswith(REDIRECT_URI)
    query = parse_qs(urlsplit(back.headers["location"]).query)
    assert query["state"] == ["state-42"]
    return query["code"][0]


def test_connect_with_sage_intacct_pkce_then_refresh_rotates_and_is_saved(live):
    SenderAuthorization.objects.filter(company=live["company"]).delete()
    pkce = Pkce.new()
    url = authorization_url(config(live), redirect_uri=REDIRECT_URI, state="state-42", pkce=pkce)
    code = approve_in_browser_like_http(live, url)
    saved: list[TokenSet] = []
    now = [1_000_000.0]
    client = IntacctRestClient(config(live, clock=lambda: now[0]))
    with client:
        first = client.exchange_code(code, redirect_uri=REDIRECT_URI, code_verifier=pkce.verifier,
                                     on_tokens=saved.append, refresh_token_lifetime=180 * 86400)
        assert first.refresh_token and saved == [first]
        # The admin's approval authorised our sender: the company now answers REST calls.
        page = client.query_page("general-ledger/account", ["key", "id"], size=5)
        assert [r["id"] for r in page.records] == ["1010", "1020", "1030", "1040", "1050"]
        now[0] += first.expires_at - 1_000_000.0  # the access token's life has passed
        client.query_page("general-ledger/account", ["key"], size=1)
    assert len(saved) == 2 and saved[1].refresh_token != first.refresh_token
    assert SenderAuthorization.objects.filter(company=live["company"], active=True).count() == 1
    grant = OAuthGrant.objects.get(company=live["company"])
    assert grant.refreshes == 1 and not grant.revoked_reason
    # What Intacct received: the old refresh token no longer works (rotation).
    stale = IntacctRestClient(config(live, clock=lambda: now[0]), AuthorizationCodeGrant(first, lambda t: None))
    with stale, pytest.raises(errors.TokenRevoked) as caught:
        stale.renew_access_token()
    assert policy.action_for(caught.value) == policy.Action.STOP


def test_client_credentials_reads_every_bill_the_xml_side_reads(live):
    name = rest_name("APBILL")
    assert name is not None
    with cc_client(live) as rest:
        records = list(rest.query(name.path, name.rest_fields(["RECORDNO", "RECORDID", "TOTALENTERED"]),
                                  order_by=[{"key": "asc"}], size=1000))
        calls = rest.stats.snapshot()
    xml_config = ClientConfig(endpoint_url=live["url"] + settings.SIMULATOR_GATEWAY_PATH,
                              sender_id=settings.INTACCT_SENDER_ID, sender_password=settings.INTACCT_SENDER_PASSWORD,
                              allowed_endpoints=(live["url"] + settings.SIMULATOR_GATEWAY_PATH,), retry=NO_WAIT)
    with IntacctClient(xml_config, Credentials("LIVE-CO", "ws_connect", DEMO_PASSWORD)) as xml:
        xml_records = list(xml.query("APBILL", ["RECORDNO", "RECORDID", "TOTALENTERED"], page_size=1000))
    assert len(records) == 2500
    assert [(r["key"], r["id"], r["totalTxnAmount"]) for r in records] == [
        (r["RECORDNO"], r["RECORDID"], r["TOTALENTERED"]) for r in xml_records]
    assert calls["requests"] == 4 and calls["logins"] == 1  # one token, three pages


def test_entity_username_and_object_get(live):
    with IntacctRestClient(config(live), ClientCredentialsGrant("ws_connect", "LIVE-CO", "E100")) as client:
        employee = client.get_object("company-config/employee", "7")
    assert employee["id"] == "E00007" and employee["href"] == "/objects/company-config/employee/7"
    assert OAuthGrant.objects.get(kind="client_credentials").entity.entity_id == "E100"


def test_wrong_web_services_user_is_a_sign_in_refusal(live):
    with cc_client(live, user="nobody") as client, pytest.raises(errors.LoginFailed) as caught:
        client.query_page("accounts-payable/bill", ["key"])
    assert policy.action_for(caught.value) == policy.Action.STOP


def test_wrong_client_secret_is_our_configuration_and_stops(live):
    with cc_client(live, client_secret="wrong-secret-0000") as client, \
            pytest.raises(errors.ClientCredentialsRejected) as caught:
        client.query_page("accounts-payable/bill", ["key"])
    assert policy.action_for(caught.value) == policy.Action.STOP and caught.value.http_status == 401


def test_missing_permission_fails_one_object_only(live):
    company = live["company"]
    company.permission_model = "user"  # the user holds no permission of its own
    company.save(update_fields=["permission_model"])
    with cc_client(live) as client:
        with pytest.raises(errors.PermissionDenied) as caught:
            client.query_page("accounts-payable/bill", ["key"])
        users = client.query_page("company-config/user", ["id"], size=3)
    assert policy.action_for(caught.value) == policy.Action.FAIL_OBJECT and caught.value.http_status == 403
    assert len(users.records) == 3


def test_unknown_object_is_404_and_fails_that_object(live):
    with cc_client(live) as client, pytest.raises(errors.UnknownObject) as caught:
        client.query_page("accounts-payable/nothing", ["key"])
    assert policy.action_for(caught.value) == policy.Action.FAIL_OBJECT


def test_company_at_its_limit_is_retried_after_retry_after_then_reported(live):
    company = live["company"]
    with cc_client(live) as client:
        client.renew_access_token()  # the token first: the token endpoint is not under the company's limit
        with inflight.holding(company.company_id, company.concurrency_limit), \
                pytest.raises(errors.RateLimited) as caught:
            client.query_page("accounts-payable/bill", ["key"])
    assert live["sleeps"] == [1.0, 1.0] and caught.value.retry_after == 1.0
    assert policy.action_for(caught.value) == policy.Action.RETRY


def test_revoked_connection_is_its_own_cause(live):
    code = approve_in_browser_like_http(
        live, authorization_url(config(live), redirect_uri=REDIRECT_URI, state="state-42"))
    with IntacctRestClient(config(live)) as client:
        client.exchange_code(code, redirect_uri=REDIRECT_URI, on_tokens=lambda t: None)
        client.revoke()
        with pytest.raises(errors.TokenRevoked) as caught:
            client.query_page("accounts-payable/bill", ["key"])
    assert policy.action_for(caught.value) == policy.Action.STOP


def test_withdrawn_consent_is_its_own_cause(live):
    code = approve_in_browser_like_http(
        live, authorization_url(config(live), redirect_uri=REDIRECT_URI, state="state-42"))
    with IntacctRestClient(config(live)) as client:
        client.exchange_code(code, redirect_uri=REDIRECT_URI, on_tokens=lambda t: None)
        oauth.withdraw_consent(live["company"], CLIENT_ID)
        with pytest.raises(errors.ConsentWithdrawn):
            client.query_page("accounts-payable/bill", ["key"])


def test_expired_access_token_mid_run_is_replaced_once(live):
    from simulator import faults

    with cc_client(live) as client:
        client.query_page("accounts-payable/bill", ["key"], size=1)
        faults.set_fault(live["company"], "expire_session", count=1)
        page = client.query_page("accounts-payable/bill", ["key"], size=2)
    assert [r["key"] for r in page.records] == ["1", "2"] and client.stats.snapshot()["logins"] == 2


def test_tokens_and_secret_never_reach_the_log(live, caplog):
    caplog.set_level(logging.DEBUG)
    from simulator import faults

    with cc_client(live) as client:
        faults.set_fault(live["company"], "http5xx", count=1, status=503)
        client.query_page("accounts-payable/bill", ["key"], size=1)
        token = client.tokens.access_token if client.tokens else ""
    text = caplog.text
    assert token and token not in text and CLIENT_SECRET not in text
    assert "retrying" in text and "503" in text


def test_each_page_is_one_billed_call(live):
    before = month_usage(live["company"])
    with cc_client(live) as client:
        list(client.query("accounts-payable/bill", ["key"], size=1000))
    assert month_usage(live["company"]) == before + 3


def test_no_token_code_or_secret_is_stored_in_plain_text_by_the_simulator(live, caplog):
    from tests.security.test_no_plaintext_secrets import database_rows

    caplog.set_level(logging.DEBUG)
    pkce = Pkce.new()
    code = approve_in_browser_like_http(
        live, authorization_url(config(live), redirect_uri=REDIRECT_URI, state="state-42", pkce=pkce))
    saved: list[TokenSet] = []
    with IntacctRestClient(config(live)) as client:
        client.exchange_code(code, redirect_uri=REDIRECT_URI, code_verifier=pkce.verifier, on_tokens=saved.append)
        client.renew_access_token()
        client.query_page("accounts-payable/bill", ["key"], size=1)
    secrets = {code, pkce.verifier, CLIENT_SECRET, DEMO_PASSWORD}
    secrets |= {t.access_token for t in saved} | {t.refresh_token for t in saved if t.refresh_token}
    assert len(secrets) == 8
    for table, rows in database_rows().items():
        for row in rows:
            assert not any(secret in row for secret in secrets), table
    # Our client's and the simulator's own lines (the test's stand-in browser is httpx at DEBUG: it prints the
    # redirect's Location, code included, as any HTTP debug log of a browser would).
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("connector", "simulator",
                                                                                         "django", "wizard"))
    assert ours and not any(secret in ours for secret in secrets)


FAULTS = [("http5xx", errors.GatewayUnavailable), ("http524", errors.GatewayUnavailable),
          ("html_error", errors.GatewayUnavailable), ("html_error-403", errors.InvalidResponse),
          ("http429", errors.RateLimited),
          ("drop", errors.ConnectionDropped), ("malformed", errors.InvalidResponse),
          ("offline", errors.GatewayUnavailable), ("slow", None)]


@pytest.mark.parametrize(("kind", "cls"), FAULTS, ids=[k for k, _ in FAULTS])
def test_each_simulator_fault_is_retried_then_reported_as_transient(live, kind, cls):
    from simulator import faults

    kind, _, status = kind.partition("-")
    options = {"delay_ms": 50} if kind == "slow" else {"status": int(status or 503)} \
        if kind in ("http5xx", "html_error") else {}
    with cc_client(live) as client:
        client.renew_access_token()
        faults.set_fault(live["company"], kind, count=1, **options)
        page = client.query_page("accounts-payable/bill", ["key"], size=3)  # one fault, then the answer
        assert [r["key"] for r in page.records] == ["1", "2", "3"]
        if cls is None:
            return
        faults.set_fault(live["company"], kind, count=3, **options)  # every attempt hit
        with pytest.raises(cls) as caught:
            client.query_page("accounts-payable/bill", ["key"], size=3)
    assert policy.action_for(caught.value) == policy.Action.RETRY, caught.value
    assert len(live["sleeps"]) == 3  # one retry for the first fault, two for the second
