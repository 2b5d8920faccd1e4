"""The dashboard and a connection's page in a real browser (Debian's Chromium via Playwright), with screenshots."""
from __future__ import annotations

from pathlib import Path

import pytest

from connector import services
from connector.models import Connection
from tests.conftest import PASSWORD
from tests.dashboard.data import populate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_support_filters_the_dashboard_and_opens_a_failing_connection(page, live_server, artifacts_dir):
    populate(connections=60, days=60)
    user = services.user_create(username="sam", email="sam@operator.test", password=PASSWORD)
    services.support_staff_grant(user=user)

    page.goto(live_server.url + "/support/")
    page.get_by_label("Username").fill("sam")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(live_server.url + "/support/")
    assert page.get_by_role("heading", name="Support dashboard").is_visible()
    assert page.locator("svg.status-chart rect").count() > 0
    connected = Connection.objects.filter(status="connected").count()
    assert page.locator(".card-connected .card-number").inner_text() == str(connected)
    page.screenshot(path=str(artifacts_dir / "dashboard-list.png"), full_page=True)
    page.screenshot(path=str(DOCS / "dashboard.png"))  # the first screen, for the README

    page.get_by_label("Failing check").select_option("read_apbill")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.connections tbody tr")
    failing = Connection.objects.filter(status_check="read_apbill").count()
    assert rows.count() == min(failing, 50) and failing > 0
    assert "Can read bills" in rows.first.inner_text()

    rows.first.locator("a").first.click()
    assert page.get_by_role("heading", name="Validation checklist").is_visible()
    assert page.get_by_text("BL34000061").first.is_visible()
    assert page.get_by_role("button", name="Re-validate").is_visible()
    page.screenshot(path=str(artifacts_dir / "dashboard-connection.png"), full_page=True)

    page.get_by_label("Send the admin").select_option("4")
    page.get_by_role("button", name="Send link").click()
    assert page.get_by_text("This organisation has no admin with an e-mail address.").is_visible()
    assert page.get_by_text("support.step_link_sent").is_visible()
