"""In a real browser: "Connect with Sage Intacct" on the simulator's pages, then the company disconnects the app."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings

from connector import policy
from connector.intacct_rest import IntacctRestClient, Pkce, RestConfig, TokenSet, authorization_url, errors
from simulator import inflight, oauth
from simulator.demo import DEMO_PASSWORD, build_company
from simulator.models import OAuthGrant, SenderAuthorization
from tests.rest.conftest import CLIENT_ID, CLIENT_SECRET
from tests.simulator.conftest import SMALL_SIZES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_signs_in_approves_and_later_disconnects_the_application(page, live_server):
    inflight.inflight_reset()
    company = build_company("BROWSER-CO", sizes=SMALL_SIZES, authorize_sender_id=False).company
    # The redirect URI is a page of the live server, so the browser really lands there.
    redirect_uri = live_server.url + "/simulator/"
    oauth.register_app(CLIENT_ID, CLIENT_SECRET, settings.INTACCT_SENDER_ID, [redirect_uri])
    base = live_server.url + "/simulator/ia/api/v1"
    config = RestConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=base, allowed_endpoints=(base,))
    pkce = Pkce.new()

    page.goto(authorization_url(config, redirect_uri=redirect_uri, state="browser-state", pkce=pkce))
    page.fill("#company_id", "BROWSER-CO")
    page.fill("#user_id", "ws_connect")
    page.fill("#password", "wrong-password")
    page.get_by_role("button", name="Sign in").click()
    assert page.locator("[role=alert]").inner_text() == "Sign-in information is incorrect."
    page.fill("#company_id", "BROWSER-CO")
    page.fill("#user_id", "ws_connect")
    page.fill("#password", DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    assert "adds the sender ID" in page.inner_text("main")  # the admin is told what Accept also does
    page.get_by_role("button", name="Accept").click()
    page.wait_for_url(re.compile(r".*/simulator/\?code="))
    query = parse_qs(urlsplit(page.url).query)
    assert query["state"] == ["browser-state"]
    assert SenderAuthorization.objects.filter(company=company, sender_id=settings.INTACCT_SENDER_ID,
                                              active=True).exists()

    saved: list[TokenSet] = []
    with IntacctRestClient(config) as client:
        client.exchange_code(query["code"][0], redirect_uri=redirect_uri, code_verifier=pkce.verifier,
                             on_tokens=saved.append)
        assert [r["id"] for r in client.query_page("company-config/department", ["id"], size=3).records] == [
            "D001", "D002", "D003"]

        page.goto(f"{live_server.url}/simulator/companies/BROWSER-CO/")
        page.click("#menu-applications")
        assert page.locator(".grant-state").all_inner_texts() == ["active"]
        page.get_by_role("button", name=f"Disconnect {CLIENT_ID}").click()
        assert "1 authorization(s) ended" in page.inner_text("main")
        assert page.locator(".grant-state").all_inner_texts() == ["ended (consent)"]

        with pytest.raises(errors.ConsentWithdrawn) as caught:
            client.renew_access_token()
    assert policy.action_for(caught.value) == policy.Action.STOP
    assert OAuthGrant.objects.get(company=company).revoked_reason == "consent" and len(saved) == 1
