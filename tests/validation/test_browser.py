"""The live checklist in a real browser: it fills in as the worker finishes each check."""
from __future__ import annotations

import time

import pytest

from connector import services
from connector.models import Connection
from simulator.demo import DEMO_PASSWORD, build_company, without
from simulator.faults import set_fault
from simulator.services import CONNECT_PERMISSIONS
from tests.validation.conftest import PASSWORD, SMALL

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _sign_in(page, base: str, username: str) -> None:
    page.goto(base + "/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_the_checklist_fills_in_live_on_connect_and_on_the_connection_page(page, live_server, celery_worker,
                                                                          artifacts_dir, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                                 "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    demo = build_company("LIVE-LIST", sizes=SMALL, permissions=without(CONNECT_PERMISSIONS, "Bills"))
    admin = services.user_create(username="lena", email="lena@acme.test", password=PASSWORD)
    organisation = services.organisation_create(name="Acme Ltd", slug="acme", admin=admin)
    services.connection_set_permission_model(connection=organisation.connection, permission_model="role", by=admin)
    # Slow answers, so the page is seen part-way through the run (two requests: the sign-in, then every read).
    set_fault(demo.company, "slow", count=4, delay_ms=2500)
    base = live_server.url
    _sign_in(page, base, "lena")

    page.goto(f"{base}/organisations/acme/setup/step-6/")
    page.get_by_label("Company ID").fill("LIVE-LIST")
    page.get_by_label("User ID").fill("ws_connect")
    page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Connect").click()

    seen_partial = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        finished = page.locator(".check:not(.check-pending)").count()
        pending = page.locator(".check-pending").count()
        if finished and pending:
            seen_partial = True
        if page.locator(".run-summary.run-failed, .run-summary.run-passed").count():
            break
        time.sleep(0.1)
    page.screenshot(path=str(artifacts_dir / "validation-live-result.png"), full_page=True)
    assert seen_partial, "the checklist never showed finished and pending checks together"
    assert "Not connected yet." in page.locator(".run-summary").inner_text()
    failed = page.locator(".check-failed")
    assert failed.count() == 1
    text = failed.inner_text()
    assert 'The role "Intacct Connect" assigned to user "ws_connect" lacks Accounts Payable > Bills View' in text
    assert failed.get_by_role("link", name="Go to step 4").count() == 1
    assert page.locator(".check-pending").count() == 0
    assert DEMO_PASSWORD not in page.content()

    page.goto(f"{base}/organisations/acme/connection/")
    facts = page.locator(".facts").first.inner_text()
    # Never connected yet: "in setup", not "needs attention" (issue 11).
    assert "In setup" in facts and "Can read bills" in facts and "Needs attention" not in facts
    assert "In setup" in page.locator(".status-history").inner_text()
    assert page.locator("#validation .check-failed").count() == 1
    page.screenshot(path=str(artifacts_dir / "validation-connection-page.png"), full_page=True)
    assert Connection.objects.get().status == "in_setup"
