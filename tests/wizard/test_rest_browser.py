"""Both REST ways to connect, end to end in a real browser on the simulator, desktop and phone (issue 17).

"Connect with Sage Intacct": the admin chooses it at step 1, declines once at Intacct (told in plain words,
nothing lost), then approves and comes back connected, validated by a real Celery worker over REST. A Web
Services user over REST: an XML connection that works is switched from the connection page, keeping its data.
"""
from __future__ import annotations

import re

import pytest

from connector import services
from connector.models import AuditEvent, Connection, Record
from simulator import inflight
from simulator.demo import DEMO_PASSWORD, build_company
from simulator.models import OAuthGrant, SenderAuthorization
from tests.conftest import PASSWORD, wait_for
from tests.simulator.conftest import SMALL_SIZES
from tests.wizard.journey import DESKTOP, PHONE, assert_accessible, connect, no_horizontal_scroll, sign_in, wait_verdict

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]
VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])


def sign_in_at_intacct(page, company_id: str, decision: str) -> None:
    page.wait_for_url(re.compile(r"/simulator/ia/api/v1/oauth2/authorize"))
    page.fill("#company_id", company_id)
    page.fill("#user_id", "ws_connect")
    page.fill("#password", DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name=decision).click()


@VIEWPORTS
def test_connect_with_sage_intacct_decline_then_approve(viewport, page, live_server, celery_worker, our_rest_app):
    inflight.inflight_reset()
    company_id = f"RB-CODE-{'P' if viewport is PHONE else 'D'}"
    # The sender is not authorised yet: the admin's approval does it (step 3 is covered).
    company = build_company(company_id, sizes=SMALL_SIZES, authorize_sender_id=False).company
    admin = services.user_create(username="alice", email="alice@acme.test", password=PASSWORD)
    services.organisation_create(name="Acme Ltd", slug="acme", admin=admin)
    base = live_server.url
    page.set_viewport_size(viewport)
    sign_in(page, base)

    # Step 1: the branch at the start; REST is the recommended choice.
    page.goto(f"{base}/organisations/acme/setup/step-1/")
    page.get_by_role("radio", name=re.compile(r"Connect with Sage Intacct \(recommended\)")).check()
    page.get_by_role("button", name="Save choice").click()
    page.wait_for_load_state()
    assert page.get_by_role("radio", name=re.compile(r"Connect with Sage Intacct")).is_checked()
    assert_accessible(page)
    page.goto(f"{base}/organisations/acme/setup/step-3/")
    assert "authorises our Sender ID for you" in page.inner_text("main")

    # Step 6: forgotten time zone first (nothing sent), then Intacct, where the admin declines.
    page.goto(f"{base}/organisations/acme/setup/step-6/")
    assert_accessible(page)
    assert no_horizontal_scroll(page)
    page.locator("#id_code-company_id").fill(company_id)
    page.get_by_role("button", name="Connect with Sage Intacct").click()
    assert "Choose the time zone" in page.inner_text("main")
    assert page.locator("#id_code-company_id").input_value() == company_id  # what was typed is kept
    page.locator("#id_code-company_timezone").select_option("America/New_York")
    page.get_by_role("button", name="Connect with Sage Intacct").click()
    sign_in_at_intacct(page, company_id, "Decline")
    page.wait_for_url(re.compile(r"/organisations/acme/setup/step-6/"))
    assert "You chose not to allow Intacct Connect" in page.inner_text("main")
    assert "nothing was connected" in page.inner_text("main")
    connection = Connection.objects.get(organisation__slug="acme")
    assert not connection.has_credentials and connection.protocol == "rest"
    assert page.locator("#id_code-company_id").input_value() == company_id  # nothing lost
    assert_accessible(page)

    # Again, and approve: back here connected, validated over REST by the worker.
    callbacks: list[str] = []
    page.on("request", lambda request: callbacks.append(request.url) if "/sage-intacct/callback/" in request.url
            else None)
    assert page.locator("#id_code-company_timezone").input_value() == "America/New_York"
    page.get_by_role("button", name="Connect with Sage Intacct").click()
    sign_in_at_intacct(page, company_id, "Accept")
    page.wait_for_url(re.compile(r"/organisations/acme/setup/step-6/"))
    assert "Connected with Sage Intacct" in page.inner_text("main")
    verdict = wait_verdict(page)
    assert "Every check passed" in verdict, verdict
    assert_accessible(page)
    connection = Connection.objects.get(organisation__slug="acme")
    assert connection.rest_grant == "authorization_code" and connection.company_timezone == "America/New_York"
    assert connection.status == Connection.Status.CONNECTED
    assert SenderAuthorization.objects.filter(company=company, active=True).exists()
    assert OAuthGrant.objects.filter(company=company, revoked_reason="").count() == 1
    # The state works once: the same callback again connects nothing and says so.
    assert len(callbacks) == 1 and "code=" in callbacks[0]
    page.goto(callbacks[0])
    assert "expired or was already used" in page.inner_text("main")
    assert AuditEvent.objects.filter(action="rest_connection.connected").count() == 1

    # The connection page says how it is connected and offers to reconnect.
    page.goto(f"{base}/organisations/acme/connection/")
    assert "the REST API (Connected with Sage Intacct)" in page.inner_text("main")
    assert page.get_by_role("link", name="Reconnect with Sage Intacct").is_visible()
    assert_accessible(page)


@VIEWPORTS
def test_switch_a_working_xml_connection_to_a_web_services_user_over_rest(viewport, page, live_server, celery_worker,
                                                                         our_rest_app):
    inflight.inflight_reset()
    company_id = f"RB-CC-{'P' if viewport is PHONE else 'D'}"
    build_company(company_id, sizes=SMALL_SIZES)
    admin = services.user_create(username="alice", email="alice@acme.test", password=PASSWORD)
    services.organisation_create(name="Acme Ltd", slug="acme", admin=admin)
    base = live_server.url
    page.set_viewport_size(viewport)
    sign_in(page, base)
    connect(page, base, company_id, DEMO_PASSWORD)  # as today: XML, Web Services user and password
    connection = Connection.objects.get(organisation__slug="acme")
    assert connection.status == Connection.Status.CONNECTED and connection.protocol == "xml"
    wait_for(lambda: Record.objects.filter(connection=connection).exists(), timeout=60,
             message="the first XML sync to store records")
    wait_for(lambda: not connection.sync_runs.filter(status__in=("queued", "running")).exists(), timeout=60,
             message="the first XML sync to end")
    records = Record.objects.filter(connection=connection).count()

    page.goto(f"{base}/organisations/acme/connection/")
    page.get_by_role("link", name="Switch to the REST API").click()
    page.wait_for_url(re.compile(r"/connection/switch-to-rest/$"))
    assert "synced data, the change feed and the run history stay" in page.inner_text("main")
    assert_accessible(page)
    assert no_horizontal_scroll(page)
    page.locator("#id_cc-company_id").fill(company_id)
    page.locator("#id_cc-user_id").fill("ws_connect@" + company_id)  # a typical slip: told, nothing sent
    page.locator("#id_cc-company_timezone").select_option("Europe/London")
    page.get_by_role("button", name="Connect as this Web Services user").click()
    assert "looks like an e-mail address" in page.inner_text("main")
    assert Connection.objects.get(pk=connection.pk).protocol == "xml"
    page.locator("#id_cc-user_id").fill("ws_connect")
    page.get_by_role("button", name="Connect as this Web Services user").click()
    page.wait_for_url(re.compile(r"/organisations/acme/connection/"))
    verdict = wait_verdict(page)
    assert "Every check passed" in verdict, verdict
    assert_accessible(page)
    connection = Connection.objects.get(pk=connection.pk)
    assert (connection.protocol, connection.rest_grant) == ("rest", "client_credentials")
    assert connection.status == Connection.Status.CONNECTED and not connection.password_token
    assert connection.company_timezone == "Europe/London"
    assert Record.objects.filter(connection=connection).count() >= records > 0
    assert AuditEvent.objects.filter(action="connection.switched_to_rest", connection=connection).exists()
    assert "Web Services user (client credentials)" in page.inner_text("main")
