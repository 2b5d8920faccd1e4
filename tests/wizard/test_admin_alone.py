"""Issue 15's defects as an Intacct admin met them, in Chromium on the simulator with a real Celery worker.

Each test walks the journey the report describes (fix-and-retry, retry without re-typing, the headline, the
progress bar, ...), checks the page, the database afterwards and what the simulated Intacct received, and runs
axe-core on every page it sees.
"""
from __future__ import annotations

import re

import pytest

from connector import services
from connector.models import AuditEvent, Connection, Organisation, SyncRun, ValidationRun
from simulator.demo import DEMO_PASSWORD, build_company, without
from simulator.models import SimCompany
from simulator.services import CONNECT_PERMISSIONS
from tests.conftest import PASSWORD, wait_for
from tests.validation.conftest import SMALL
from tests.wizard.journey import (
    DESKTOP,
    PHONE,
    assert_accessible,
    connect,
    no_horizontal_scroll,
    sign_in,
    step_marks,
    wait_verdict,
)

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _org(username: str = "alice", slug: str = "acme", name: str = "Acme Ltd"):
    admin = services.user_create(username=username, email=f"{username}@acme.test", password=PASSWORD)
    return services.organisation_create(name=name, slug=slug, admin=admin)


def _runs(organisation) -> list[ValidationRun]:
    return list(ValidationRun.objects.filter(connection__organisation=organisation).order_by("id"))


# --- 1. Fix-and-retry never hits the Connect limit; failed sign-ins do, per company and user -------------

def test_fixing_and_retrying_is_not_limited_but_repeated_failed_sign_ins_are(page, live_server, celery_worker,
                                                                            settings):
    settings.CONNECT_FAILED_SIGN_INS_PER_USER = 2
    demo = build_company("RETRY-CO", sizes=SMALL, permissions=without(CONNECT_PERMISSIONS, "Bills", "View"))
    build_company("RETRY-OTHER", sizes=SMALL)
    organisation = _org()
    other = _org("olga", "other", "Other plc")
    base = live_server.url
    sign_in(page, base)

    # Fixing things in Intacct between Connects: each sign-in works, so none counts.
    for _ in range(4):
        summary = connect(page, base, "RETRY-CO", DEMO_PASSWORD) or wait_verdict(page)
        assert "Bills" in summary
    assert "Too many" not in page.content() and "Please correct" not in page.content()
    assert len(_runs(organisation)) == 4

    # Two wrong passwords: Intacct refuses the sign-in twice; the third try is not sent, with words.
    for _ in range(2):
        connect(page, base, "RETRY-CO", "Wrong-Passw0rd!")
        assert page.locator(".check-failed").first.get_attribute("data-check") == "login"
    connect(page, base, "RETRY-CO", "Wrong-Passw0rd!", wait=False)
    alert = page.locator(".limit-alert").inner_text()
    assert "refused the sign-in" in alert and "ws_connect" in alert and "RETRY-CO" in alert
    assert "Check again" in alert and "minute" in alert
    assert "Please correct" not in page.content()  # no problem below to correct
    assert len(_runs(organisation)) == 6  # nothing was saved or sent
    demo.user.refresh_from_db()
    assert demo.user.status == "active"  # never locked out by us
    assert_accessible(page)

    # Another organisation on the same IP address, first Connect: accepted and checked.
    page.context.clear_cookies()
    sign_in(page, base, "olga")
    summary = connect(page, base, "RETRY-OTHER", DEMO_PASSWORD, slug="other") or wait_verdict(page)
    assert "Connected." in summary
    assert Connection.objects.get(organisation=other).status == Connection.Status.CONNECTED


# --- 2. Check again: no re-typing the password ---------------------------------------------------------------

@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_check_again_after_a_fix_in_intacct_without_retyping_the_password(viewport, page, live_server,
                                                                          celery_worker):
    build_company("AGAIN-CO", sizes=SMALL, subscribed=False)
    organisation = _org()
    base = live_server.url
    page.set_viewport_size(viewport)
    sign_in(page, base)
    summary = connect(page, base, "AGAIN-CO", DEMO_PASSWORD) or wait_verdict(page)
    assert "Not connected yet." in summary
    assert page.get_by_role("button", name="Check again").count() == 1  # on step 6 too
    assert_accessible(page)

    page.get_by_role("link", name="Revisit step 1").click()
    page.wait_for_url(re.compile(r"/step-1/$"))
    last = page.locator(".last-check").inner_text()
    assert "Web Services subscribed" in last and "failed" in last.lower()
    assert_accessible(page)
    assert no_horizontal_scroll(page)

    # The admin subscribes on the simulator's screen, then checks again from the same page.
    sim = page.context.new_page()
    sim.goto(f"{base}/simulator/companies/AGAIN-CO/admin/subscriptions/")
    sim.get_by_label("Web Services").check()
    sim.get_by_role("button", name="Save").click()
    # Close the tab only once its form was saved (closing it with the POST still in flight once hung
    # Playwright's close for minutes on a loaded CI machine).
    wait_for(lambda: SimCompany.objects.get(company_id="AGAIN-CO").web_services_subscribed,
             message="the subscription saved on the simulator's screen")
    sim.wait_for_load_state()
    sim.close()
    page.get_by_role("button", name="Check again").click()
    page.wait_for_url(re.compile(r"/step-6/"))
    assert "Connected." in wait_verdict(page)
    assert DEMO_PASSWORD not in page.content()

    runs = _runs(organisation)
    assert [run.status for run in runs] == ["failed", "passed"]
    assert AuditEvent.objects.filter(connection__organisation=organisation, action="credentials.set").count() == 1
    assert SimCompany.objects.get(company_id="AGAIN-CO").web_services_subscribed

    # And on the connection page.
    page.goto(f"{base}/organisations/acme/connection/")
    page.get_by_role("button", name="Check again").click()
    assert "Connected." in wait_verdict(page)
    assert len(_runs(organisation)) == 3
    assert_accessible(page)


# --- 3. The headline names the fix for the permission type Intacct reports ---------------------------------

def test_headline_follows_the_permission_type_intacct_reports_not_the_admins_choice(page, live_server,
                                                                                    celery_worker):
    build_company("HEAD-CO", sizes=SMALL, permissions=without(CONNECT_PERMISSIONS, "Bills", "View"))
    organisation = _org()
    services.connection_set_permission_model(connection=organisation.connection, permission_model="user",
                                             by=None)
    base = live_server.url
    sign_in(page, base)
    summary = connect(page, base, "HEAD-CO", DEMO_PASSWORD) or wait_verdict(page)
    assert "role-based" in summary.lower() or "role" in summary
    assert "step 4" in summary and "step 5" not in summary
    assert page.get_by_role("link", name="Revisit step 4").count() == 1
    run = _runs(organisation)[-1]
    assert run.failed_step == 4
    assert Connection.objects.get(organisation=organisation).intacct_permission_model == "role"


# --- 4. The progress bar tells the truth ---------------------------------------------------------------------

def test_progress_marks_come_from_the_latest_checks(page, live_server, celery_worker):
    build_company("MARK-BAD", sizes=SMALL, subscribed=False)
    build_company("MARK-GOOD", sizes=SMALL)
    organisation = _org()
    base = live_server.url
    sign_in(page, base)

    connect(page, base, "MARK-BAD", DEMO_PASSWORD)
    # The progress bar follows the verdict without a reload.
    page.wait_for_selector("nav.progress li[data-step=step-6][data-mark=failed]")
    marks = step_marks(page)
    assert marks[1] == "failed" and marks[6] == "failed", marks
    assert page.locator("nav.progress li[data-mark=failed] .num").first.inner_text() == "✗"
    assert "✓" not in page.locator("nav.progress li[data-step=step-6]").inner_text()

    # "I've done this" on step 1 counts until a check says otherwise.
    page.goto(f"{base}/organisations/acme/setup/step-1/")
    page.get_by_role("button", name="I've done this").click()
    page.goto(f"{base}/organisations/acme/setup/step-1/")
    assert step_marks(page)[1] == "done"

    connect(page, base, "MARK-BAD", DEMO_PASSWORD)
    page.reload()
    assert step_marks(page)[1] == "failed"

    connect(page, base, "MARK-GOOD", DEMO_PASSWORD)
    page.reload()
    marks = step_marks(page)
    assert all(mark == "passed" for mark in marks.values()), marks
    assert page.locator(".progress-bar").get_attribute("aria-valuenow") == "100"
    assert Connection.objects.get(organisation=organisation).status == "connected"
    assert_accessible(page)


# --- 5. Step 4 keeps the choice with one button ---------------------------------------------------------------

def test_step_4_keeps_the_choice_when_i_ve_done_this_is_pressed(page, live_server, celery_worker):
    organisation = _org()
    base = live_server.url
    sign_in(page, base)
    page.goto(f"{base}/organisations/acme/setup/step-4/")
    page.get_by_label("User-based").check()
    page.get_by_role("button", name="I've done this").click()
    page.wait_for_url(re.compile(r"/step-5/$"))
    connection = Connection.objects.get(organisation=organisation)
    assert connection.permission_model == "user"
    assert 4 in connection.steps_done()
    assert "user-based" in page.locator("table.permissions caption").inner_text().lower() or \
        "Web Services user" in page.locator("table.permissions caption").inner_text()


# --- 6. The admin sees Intacct's own words ----------------------------------------------------------------------

def test_admin_sees_intacct_s_own_words_next_to_a_failed_check(page, live_server, celery_worker):
    build_company("WORDS-CO", sizes=SMALL, subscribed=False)
    organisation = _org()
    base = live_server.url
    sign_in(page, base)
    connect(page, base, "WORDS-CO", DEMO_PASSWORD)
    check = _runs(organisation)[-1].checks.get(status="failed")
    assert check.errorno
    failed = page.locator(".check-failed").first
    said = failed.locator("details.intacct-said")
    assert said.count() == 1
    said.locator("summary").click()
    text = said.inner_text()
    assert f"Intacct said: {check.errorno}" in text and check.description in text
    assert_accessible(page)


# --- 7. The steps say what Intacct's screens say ----------------------------------------------------------------

def test_steps_4_and_5_match_intacct_s_screens(page, live_server, celery_worker):
    _org()
    base = live_server.url
    sign_in(page, base)
    page.goto(f"{base}/organisations/acme/setup/step-4/")
    text = page.locator("article.step").inner_text()
    assert "Global settings" in text and "Security tab" not in text and "Security</em> tab" not in page.content()
    assert_accessible(page)
    page.goto(f"{base}/organisations/acme/setup/step-5/")
    fields = page.locator("table.fields").inner_text()
    assert "Contact name" in fields
    text = page.locator("article.step").inner_text()
    assert "not billable" in text
    assert "must not belong to an existing Intacct user" in text and "+" in fields
    assert_accessible(page)


# --- 8. Statuses and labels -------------------------------------------------------------------------------------

def test_connection_page_words_for_a_first_setup(page, live_server, celery_worker):
    demo = build_company("STATUS-CO", sizes=SMALL)
    organisation = _org()
    base = live_server.url
    sign_in(page, base)
    connect(page, base, "STATUS-CO", DEMO_PASSWORD, wait=True)
    page.get_by_role("link", name="Go to your connection").click()
    page.wait_for_url(re.compile(r"/connection/$"))
    # On the connection page itself, no link to itself.
    assert page.get_by_role("link", name="Go to your connection").count() == 0
    # The admin's own company ID in full.
    assert "STATUS-CO" in page.locator(".facts").inner_text()
    # The first sync is a full one; objects by their names.
    wait_for(lambda: SyncRun.objects.filter(connection__organisation=organisation, finished_at__isnull=False).exists(),
             timeout=60, message="the first sync")
    page.reload()
    sync_text = page.locator("#sync").inner_text()
    assert "incremental sync" not in sync_text.lower(), sync_text
    assert "expensereportbatch" not in sync_text
    assert_accessible(page)
    page.goto(f"{base}/organisations/acme/records/APBILL/")
    assert "RECORDNO or RECORDNO" not in page.content()
    assert demo.company.company_id == Connection.objects.get(organisation=organisation).company_id


def test_a_never_connected_company_is_in_setup_everywhere(page, live_server, celery_worker, settings):
    build_company("NEVER-CO", sizes=SMALL, subscribed=False)
    organisation = _org()
    base = live_server.url
    sign_in(page, base)
    connect(page, base, "NEVER-CO", DEMO_PASSWORD)
    page.goto(f"{base}/organisations/acme/connection/")
    facts = page.locator(".facts").inner_text()
    assert "In setup" in facts and "Broken" not in facts and "Needs attention" not in facts
    support = services.user_create(username="sam", email="sam@operator.test", password=PASSWORD)
    services.support_staff_grant(user=support)
    page.context.clear_cookies()
    sign_in(page, base, "sam")
    page.goto(f"{base}/support/")
    row = page.locator("tr", has_text=organisation.name).first.inner_text()
    assert "stale" not in row and "Broken" not in row and "Needs attention" not in row
    assert_accessible(page)
    page.goto(f"{base}/organisations/")
    assert "Broken" not in page.locator("main").inner_text()
    connection = Connection.objects.get(organisation=organisation)
    page.goto(f"{base}/support/connections/{connection.id}/")
    assert " ·  · " not in page.locator("main").inner_text() and "· ·" not in page.locator("main").inner_text()
    assert_accessible(page)


# --- 9. Accessibility -------------------------------------------------------------------------------------------

def test_step_6_sign_up_and_step_5_are_accessible(page, live_server, celery_worker, settings):
    settings.SIGNUP_ENABLED = True
    _org()
    base = live_server.url
    page.goto(base + "/accounts/signup/")
    page.get_by_role("button", name=re.compile("Sign up|Create")).click()
    for element in page.locator("[aria-describedby]").all():
        for ident in element.get_attribute("aria-describedby").split():
            assert page.locator(f"#{ident}").count() == 1, ident
    assert_accessible(page)
    sign_in(page, base)
    page.goto(f"{base}/organisations/acme/setup/step-6/")
    page.get_by_role("button", name="Connect", exact=True).click()
    for element in page.locator("[aria-describedby]").all():
        for ident in element.get_attribute("aria-describedby").split():
            assert page.locator(f"#{ident}").count() == 1, ident
    assert_accessible(page)

    page.goto(f"{base}/organisations/acme/setup/step-5/")
    # No invisible focusable control: every button is at least 24 px both ways.
    sizes = page.evaluate("Array.from(document.querySelectorAll('main button, main a, main input'))"
                          ".filter(e => e.offsetParent !== null)"
                          ".map(e => [e.outerHTML.slice(0, 60), e.getBoundingClientRect().width,"
                          " e.getBoundingClientRect().height])")
    tiny = [s for s in sizes if s[1] < 8 or s[2] < 8]
    assert not tiny, tiny
    box = page.get_by_label("I want user deprovisioning")
    url = page.url
    box.focus()
    page.keyboard.press("Space")
    assert box.is_checked() and page.url == url
    assert page.evaluate("document.activeElement.id") == box.get_attribute("id")
    page.get_by_role("button", name="Update the table").click()
    page.wait_for_selector("text=required for deprovisioning")
    assert Connection.objects.get().wants_deprovisioning
    assert_accessible(page)


# --- 10. A phone-sized screen -----------------------------------------------------------------------------------

def test_step_4_and_failed_sync_rows_fit_a_phone(page, live_server, celery_worker):
    organisation = _org()
    services.connection_set_permission_model(connection=organisation.connection, permission_model="role", by=None)
    base = live_server.url
    page.set_viewport_size(PHONE)
    sign_in(page, base)
    page.goto(f"{base}/organisations/acme/setup/step-4/")
    assert no_horizontal_scroll(page)
    cell = page.locator("table.permissions tbody tr td").last.bounding_box()
    assert cell["x"] + cell["width"] <= PHONE["width"] + 1, cell
    assert_accessible(page)


# --- 11. Two tabs -----------------------------------------------------------------------------------------------

def test_a_stale_tab_does_not_overwrite_newer_answers(page, live_server, celery_worker):
    organisation = _org()
    base = live_server.url
    sign_in(page, base)
    page.goto(f"{base}/organisations/acme/setup/step-4/")
    other = page.context.new_page()
    other.goto(f"{base}/organisations/acme/setup/step-4/")
    other.get_by_label("User-based").check()
    other.get_by_role("button", name="Save choice").click()
    other.wait_for_load_state()
    # The first tab still shows the old page: its answer must not silently win.
    page.get_by_label("Role-based").check()
    page.get_by_role("button", name="Save choice").click()
    page.wait_for_load_state()
    assert "changed in another window" in page.locator("main").inner_text()
    assert Connection.objects.get(organisation=organisation).permission_model == "user"
    assert page.get_by_label("User-based").is_checked()
    assert_accessible(page)


# --- 12. NEW-CO has no leftover role ----------------------------------------------------------------------------

def test_new_co_has_no_roles_on_the_simulator_screen(page, live_server, celery_worker):
    from simulator.demo import SEED_COMPANIES

    kwargs = next(kwargs for name, _, kwargs in SEED_COMPANIES if name == "NEW-CO")
    build_company("NEW-CO", **{**kwargs, "sizes": SMALL})
    page.goto(f"{live_server.url}/simulator/companies/NEW-CO/admin/roles/")
    assert "Intacct Connect" not in page.locator("main").inner_text()
    assert SimCompany.objects.get(company_id="NEW-CO").roles.count() == 0


# --- 9 and 10. Every page: axe-core finds no serious violation, desktop and phone; failed-sync rows fit ---------

def test_every_page_passes_axe_and_failed_sync_rows_fit_a_phone(page, live_server, celery_worker, settings):
    from simulator import services as sim

    settings.SIGNUP_ENABLED = True
    demo = build_company("AXE-CO", sizes=SMALL)
    organisation = _org()
    support = services.user_create(username="sam", email="sam@operator.test", password=PASSWORD)
    services.support_staff_grant(user=support)
    base = live_server.url
    sign_in(page, base)
    connect(page, base, "AXE-CO", DEMO_PASSWORD)
    connection = Connection.objects.get(organisation=organisation)
    wait_for(lambda: SyncRun.objects.filter(connection=connection, finished_at__isnull=False).exists(), timeout=60,
             message="the first sync")
    # The company's admin unticks Bills View; "Sync now" ends partial with a failed row.
    sim.set_permissions(role=demo.company.roles.get(name="Intacct Connect"),
                        permissions=without(CONNECT_PERMISSIONS, "Bills", "View"))
    page.goto(f"{base}/organisations/acme/connection/")
    page.get_by_role("button", name="Sync now").click()
    wait_for(lambda: SyncRun.objects.filter(connection=connection, finished_at__isnull=False).count() >= 2,
             timeout=60, message="the second sync")

    admin_pages = [f"/organisations/acme/setup/step-{n}/" for n in range(1, 7)] + [
        "/organisations/acme/connection/", "/organisations/acme/connection/password/",
        "/organisations/acme/connection/entity/", "/organisations/acme/connection/disconnect/",
        "/organisations/acme/records/APBILL/", "/organisations/acme/records/EMPLOYEE/",
        "/organisations/acme/api-tokens/", "/accounts/password_change/"]
    support_pages = ["/support/", f"/support/connections/{connection.id}/", "/organisations/"]
    anonymous_pages = ["/accounts/login/", "/accounts/signup/", "/accounts/password_reset/"]
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        for path in admin_pages:
            page.goto(base + path)
            assert_accessible(page)
            assert no_horizontal_scroll(page), (path, viewport)
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/organisations/acme/connection/")
    failed = page.locator(".sync-progress tr[data-object=APBILL]")
    assert "Bills" in failed.inner_text() or "APBILL" in failed.inner_text()
    # A failed row is as tall as its words, not hundreds of pixels of blank space: every cell spans the
    # phone's width (no narrow column wrapping the message word by word) and the row is just its cells.
    cells = [cell.bounding_box() for cell in failed.locator("td").all()]
    assert all(cell["width"] > 300 for cell in cells), cells
    assert failed.bounding_box()["height"] <= sum(cell["height"] for cell in cells) + 24
    row_boxes = [row.bounding_box() for row in page.locator(".sync-progress tbody tr").all()]
    assert all(box["x"] + box["width"] <= PHONE["width"] + 1 for box in row_boxes)

    page.context.clear_cookies()
    sign_in(page, base, "sam")
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        for path in support_pages:
            page.goto(base + path)
            assert_accessible(page)
    page.context.clear_cookies()
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        for path in anonymous_pages:
            page.goto(base + path)
            assert_accessible(page)


# --- 13. Hand-off to the Intacct admin --------------------------------------------------------------------------

@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_org_admin_hands_the_steps_to_the_intacct_admin_and_watches_live(viewport, page, live_server,
                                                                        celery_worker, _browser):
    from datetime import timedelta

    from django.core import mail
    from django.utils import timezone

    from wizard.models import HandOff

    build_company("HAND-CO", sizes=SMALL)
    organisation = _org()
    _org("olga", "other", "Other plc")
    base = live_server.url
    page.set_viewport_size(viewport)
    sign_in(page, base)
    page.goto(f"{base}/organisations/acme/setup/step-1/")
    page.get_by_label("Their name").fill("Ivan Intacct")
    page.get_by_label(re.compile("Their e-mail address")).fill("ivan@acme.test")
    page.get_by_role("button", name="Create the link").click()
    link = page.locator(".new-link code").inner_text().strip()
    assert "/handoff/" in link
    assert_accessible(page)
    handoff = HandOff.objects.get()
    assert handoff.name == "Ivan Intacct" and handoff.expires_at > timezone.now() + timedelta(days=6)
    assert link.rsplit("/", 2)[-2] not in handoff.token_hash  # only the hash is stored
    assert any(link in message.body for message in mail.outbox if "ivan@acme.test" in message.to)

    # The Intacct admin, in their own browser, no account.
    guest_context = _browser.new_context(viewport=viewport)
    guest = guest_context.new_page()
    guest.goto(link)
    guest.wait_for_url(re.compile(r"/organisations/acme/setup/step-1/$"))
    assert "Ivan Intacct" in guest.locator(".guest-note").inner_text()
    assert guest.locator("#handoff").count() == 0  # cannot hand off further
    assert_accessible(guest)
    guest.get_by_role("button", name="I've done this").click()
    guest.wait_for_url(re.compile(r"/step-2/$"))

    # The org admin sees it without reloading.
    page.wait_for_selector("[data-handoff] >> text=on step 2", timeout=15_000)
    assert "Subscribe: marked done" in page.locator(".handoff-progress").inner_text()

    # Steps 1-6 only, this organisation only.
    guest.goto(f"{base}/organisations/acme/connection/")
    assert "/accounts/login/" in guest.url
    response = guest.goto(f"{base}/organisations/other/setup/step-1/")
    assert response.status == 404
    summary = connect(guest, base, "HAND-CO", DEMO_PASSWORD) or wait_verdict(guest)
    assert "Connected." in summary
    assert guest.get_by_role("link", name="Go to your connection").count() == 0  # not a page for guests
    assert Connection.objects.get(organisation=organisation).status == "connected"
    actions = list(AuditEvent.objects.filter(organisation=organisation, action__startswith="handoff")
                   .values_list("action", flat=True))
    assert actions.count("handoff.created") == 1 and actions.count("handoff.used") >= 4

    # Revoked: the link and the session it opened stop working at once.
    page.goto(f"{base}/organisations/acme/setup/step-1/")
    page.get_by_role("button", name="Revoke Ivan Intacct's link").click()
    assert guest.goto(f"{base}/organisations/acme/setup/step-1/").status == 404
    assert guest.goto(link).status == 404
    assert "no longer works" in guest.locator("main").inner_text()
    assert AuditEvent.objects.filter(organisation=organisation, action="handoff.revoked").count() == 1
    guest_context.close()


def test_an_expired_hand_off_link_does_not_open(page, live_server, celery_worker):
    from datetime import timedelta

    from django.utils import timezone

    from wizard import handoff as handoffs
    from wizard.models import HandOff

    organisation = _org()
    _, link = handoffs.handoff_create(organisation=organisation, name="Late Larry", email="", by=None, ip=None)
    HandOff.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    path = link.split("/handoff/", 1)[1]
    assert page.goto(f"{live_server.url}/handoff/{path}").status == 404
    assert page.goto(f"{live_server.url}/organisations/acme/setup/step-1/").url.startswith(
        f"{live_server.url}/accounts/login/")
    assert_accessible(page)


# --- 15. Names generated for pasting; validation checks the user holds the suggested role --------------------

@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_generated_names_are_copied_and_the_suggested_role_is_checked(viewport, page, live_server, celery_worker,
                                                                     settings):
    from simulator import services as sim

    organisation = _org()
    services.connection_set_permission_model(connection=organisation.connection, permission_model="role", by=None)
    base = live_server.url
    page.set_viewport_size(viewport)
    sign_in(page, base)
    page.goto(f"{base}/organisations/acme/setup/step-5/")
    user_button = page.get_by_role("button", name="Copy user ID")
    role_button = page.get_by_role("button", name="Copy role name").first
    assert user_button.is_visible() and role_button.is_visible()
    user_id, role_name = user_button.get_attribute("data-copy"), role_button.get_attribute("data-copy")
    assert user_id == "ws_connect_acme" and role_name == settings.SUGGESTED_ROLE_NAME
    assert_accessible(page)

    # The Intacct admin pastes the names but ticks an old role on the user instead of the suggested one.
    sim.settings_sender()
    company = sim.create_company("NAMES-CO")
    sim.authorize_sender(company, settings.INTACCT_SENDER_ID)
    suggested = sim.create_role(company, role_name, CONNECT_PERMISSIONS)
    old = sim.create_role(company, "Old integration", CONNECT_PERMISSIONS)
    user, _ = sim.create_user(company, user_id, first_name="Intacct Connect", last_name="Integration",
                              roles=[old], password=DEMO_PASSWORD)

    page.goto(f"{base}/organisations/acme/setup/step-6/")
    assert page.get_by_label("User ID").input_value() == user_id  # filled in with the suggestion
    page.get_by_label("Company ID").fill("NAMES-CO")
    page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Connect", exact=True).click()
    wait_verdict(page)
    note = page.locator(".check[data-check=permission_model]").inner_text()
    assert f'not the role "{role_name}" suggested in step 4' in note and "Old integration" in note
    check = _runs(organisation)[-1].checks.get(key="permission_model")
    assert check.status == "warning" and check.wizard_step == 5

    # Fixed in Intacct: the suggested role on the user; Check again, nothing re-typed.
    user.roles.set([suggested])
    page.get_by_role("button", name="Check again").click()
    page.wait_for_url(re.compile(r"/step-6/"))
    wait_verdict(page)
    assert _runs(organisation)[-1].checks.get(key="permission_model").status == "passed"
    assert "suggested in step 4" not in page.locator(".checklist").inner_text()


# --- 14. Pictures of the Intacct screens, taken from the simulator's screens by scripts/intacct_screens.py -------

@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_each_step_shows_a_current_picture_of_its_intacct_screen(viewport, page, live_server, celery_worker,
                                                                 artifacts_dir, settings, tmp_path):
    import os
    from pathlib import Path

    from scripts import intacct_screens
    from simulator.demo import SEED_COMPANIES
    from wizard.pictures import SCREENS

    kwargs = next(kwargs for name, _, kwargs in SEED_COMPANIES if name == "NEW-CO")
    build_company("NEW-CO", **{**kwargs, "sizes": SMALL})
    # INTACCT_SCREENS_OUT=static/img/intacct regenerates the committed pictures (and docs/*.png) from this run.
    out = Path(os.environ.get("INTACCT_SCREENS_OUT") or tmp_path)
    written = intacct_screens.capture_steps(page.context.new_page(), f"{live_server.url}/simulator", "NEW-CO", out)
    assert [path.name for path in written] == [f"step-{screen.step}.png" for screen in SCREENS]
    assert all(path.stat().st_size > 5_000 for path in written)

    _org()
    base = live_server.url
    page.set_viewport_size(viewport)
    sign_in(page, base)
    for screen in SCREENS:
        page.goto(f"{base}/organisations/acme/setup/step-{screen.step}/")
        picture = page.locator("figure.intacct-picture img")
        assert picture.get_attribute("alt") == screen.alt
        # The picture loads lazily (below the fold on a long step): bring it into view, then it must load.
        picture.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle(),
                               timeout=15_000)
        assert picture.bounding_box()["width"] <= viewport["width"]
        link = page.get_by_role("link", name="Open this screen in the simulator (demo)")
        assert link.get_attribute("href") == f"/simulator/companies/NEW-CO/{screen.path}"
        assert_accessible(page)
    page.goto(f"{base}/simulator/companies/NEW-CO/{SCREENS[3].path}")
    assert "Global settings" in page.locator("main").inner_text() and page.get_by_label("Permission type").count()
    if os.environ.get("INTACCT_SCREENS_OUT"):
        organisation = Organisation.objects.get(slug="acme")
        build_company("README-CO", sizes=SMALL)
        connect(page, base, "README-CO", DEMO_PASSWORD)
        support = services.user_create(username="sam", email="sam@operator.test", password=PASSWORD)
        services.support_staff_grant(user=support)
        intacct_screens.capture_readme(page, base, ("alice", PASSWORD), ("sam", PASSWORD), organisation.slug)
