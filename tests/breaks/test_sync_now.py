"""Issue 11's scenario, as a user met it: connected, Bills View unticked on the simulator's Roles screen,
then "Sync now" in our app, with a real Celery worker. It used to crash the worker and stay "Running"."""
from __future__ import annotations

import time

import pytest

from connector.models import Connection, SyncRun
from simulator.demo import DEMO_PASSWORD, build_company
from tests.conftest import mail_text, mails_to, wait_for
from tests.validation.conftest import PASSWORD, SMALL, make_connection, validate

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

BILLS_VIEW = 'The role "Intacct Connect" assigned to user "ws_connect" lacks Accounts Payable > Bills View'


def test_bills_view_removed_then_sync_now_ends_partial_in_seconds(page, live_server, celery_worker, settings,
                                                                   artifacts_dir):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                                 "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    demo = build_company("NOW-CO", sizes=SMALL)
    connection = make_connection("NOW-CO")
    assert validate(connection).status == "passed"
    # Connected: the first sync was queued at once and the worker runs it.
    first = wait_for(lambda: SyncRun.objects.filter(connection=connection, status=SyncRun.Status.SUCCEEDED).first(),
                     timeout=60, message="the first sync after connecting")
    admin = connection.organisation.memberships.get().user
    base = live_server.url

    # The company's Intacct admin unticks Bills View on the role.
    role = demo.company.roles.get(name="Intacct Connect")
    page.goto(f"{base}/simulator/companies/NOW-CO/admin/roles/{role.pk}/")
    bills_view = page.locator("input[name='perm-5-View']")
    assert bills_view.is_checked()
    bills_view.uncheck()
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    assert "View" not in role.permissions.get(policy="Bills").rights

    # Our admin presses "Sync now".
    page.goto(base + "/accounts/login/")
    page.get_by_label("Username").fill(admin.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{base}/organisations/{connection.organisation.slug}/connection/")
    pressed = time.monotonic()
    page.get_by_role("button", name="Sync now").click()

    run = wait_for(lambda: SyncRun.objects.exclude(pk=first.pk).filter(connection=connection,
                                                                         status__in=("partial", "failed",
                                                                                     "succeeded")).first(),
                   timeout=30, message="the sync to end")
    took = time.monotonic() - pressed
    assert run.status == SyncRun.Status.PARTIAL, run.summary
    assert took < 15, f"the sync took {took:.1f}s to end"
    objects = {o.object_name: o for o in run.object_runs.all()}
    assert objects["APBILL"].status == "failed"
    assert BILLS_VIEW in objects["APBILL"].message and "(step 4)" in objects["APBILL"].message
    assert {name for name, o in objects.items() if o.status == "succeeded"} == set(objects) - {"APBILL"}
    assert len(objects) == 10

    connection.refresh_from_db()
    assert connection.status == Connection.Status.NEEDS_ATTENTION and connection.status_check == "read_apbill"
    assert BILLS_VIEW in connection.status_message
    wait_for(lambda: mails_to(admin.email, "stopped working: permission missing") == 1, timeout=10,
             message="the e-mail to the admin")
    assert BILLS_VIEW in mail_text(admin.email, "stopped working") and DEMO_PASSWORD not in mail_text(
        admin.email, "stopped working")

    # What the admin sees: the run's words and the connection's status, without reloading by hand.
    page.goto(f"{base}/organisations/{connection.organisation.slug}/connection/")
    text = page.locator("body").inner_text()
    assert "Needs attention" in text and BILLS_VIEW in text
    page.screenshot(path=str(artifacts_dir / "sync-now-after-bills-view-removed.png"), full_page=True)

    # A second "Sync now" with the same cause: no second e-mail.
    page.get_by_role("button", name="Sync now").click()
    wait_for(lambda: SyncRun.objects.filter(connection=connection).exclude(pk__in=(first.pk, run.pk))
             .filter(status="partial").exists(), timeout=30, message="the second sync")
    time.sleep(1)
    assert mails_to(admin.email, "stopped working") == 1
