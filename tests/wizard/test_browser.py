"""The whole wizard in a real browser, both branches, each Intacct step done on the simulator's screens.

Chromium (Playwright) drives our pages and the simulator's pages side by side; the password comes from
the simulator's mailbox; a real Celery worker validates against the live server's simulated gateway.
"""
from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from connector import services
from connector.models import Connection
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def shot(page, artifacts_dir, name):
    page.screenshot(path=str(artifacts_dir / f"wizard-{name}.png"), full_page=True)


def done(page):
    page.get_by_role("button", name="I've done this").click()


def tick_permissions(sim, rows):
    for application, policy, rights in rows:
        for right in rights:
            sim.get_by_label(f"{application} {policy} {right}", exact=True).check()


def read_permission_table(page):
    rows = []
    for row in page.locator("table.permissions tbody tr").all():
        application = row.locator("td").nth(0).inner_text().strip()
        policy = row.locator("th").inner_text().strip()
        rights_cell = row.locator("td").nth(1).inner_text()
        rights = [r.strip() for r in rights_cell.split("Edit:")[0].split(",") if r.strip()]
        if "Edit: required" in rights_cell:
            rights.append("Edit")
        rows.append((application, policy, rights))
    return rows


@pytest.mark.parametrize("branch", ["role", "user"])
def test_admin_walks_the_wizard_on_the_simulator_and_connects(branch, page, live_server, celery_worker,
                                                              artifacts_dir, settings):
    from simulator import services as sim

    sim.settings_sender()  # the operator's own Sender ID exists in the simulated gateway
    admin = services.user_create(username="alice", email="alice@acme.test", password=PASSWORD)
    services.organisation_create(name="Acme Ltd", slug="acme", admin=admin)
    company_id = f"BROWSER-{branch.upper()}"
    email = f"alice+intacct-{branch}@acme.test"
    base, sim_base = live_server.url, f"{live_server.url}/simulator"
    prefix = f"{branch}-"

    page.goto(base + "/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/setup/step-1/$"))
    sim_page = page.context.new_page()

    # Step 1: a new company on the simulator, then Company > Admin > Subscriptions: Web Services on.
    sim_page.goto(sim_base + "/")
    sim_page.get_by_label("Company ID").fill(company_id)
    sim_page.get_by_role("button", name=re.compile("Create")).click()
    sim_page.goto(f"{sim_base}/companies/{company_id}/admin/subscriptions/")
    sim_page.get_by_label("Web Services").check()
    sim_page.get_by_role("button", name="Save").click()
    shot(page, artifacts_dir, prefix + "step-1")
    done(page)

    # Step 2: no IP filter on this company: the page says to skip it.
    page.wait_for_url(re.compile(r"/step-2/$"))
    assert page.locator("button.copy-button").first.is_visible()  # JavaScript revealed the copy buttons
    shot(page, artifacts_dir, prefix + "step-2")
    done(page)

    # Step 3: the Sender ID exactly as the wizard shows it, on Web Services authorizations.
    page.wait_for_url(re.compile(r"/step-3/$"))
    sender_id = page.locator(".big-copy code").inner_text().strip()
    assert sender_id == settings.INTACCT_SENDER_ID
    sim_page.goto(f"{sim_base}/companies/{company_id}/setup/security/")
    sim_page.get_by_label("Sender ID (case-sensitive)").fill(sender_id)
    sim_page.get_by_role("button", name="Add sender").click()
    shot(page, artifacts_dir, prefix + "step-3")
    done(page)

    # Step 4: the company's permission type, the same choice in the wizard, and (role-based) the role.
    page.wait_for_url(re.compile(r"/step-4/$"))
    sim_page.goto(f"{sim_base}/companies/{company_id}/setup/company-info/")
    sim_page.get_by_label("Permission type").select_option(branch)
    sim_page.get_by_role("button", name="Save").click()
    page.get_by_label("Role-based" if branch == "role" else "User-based").check()
    page.get_by_role("button", name="Save choice").click()
    role_name = None
    if branch == "role":
        role_name = page.locator("ol.instructions code").first.inner_text().strip()
        sim_page.goto(f"{sim_base}/companies/{company_id}/admin/roles/")
        sim_page.get_by_label("Role name").fill(role_name)
        tick_permissions(sim_page, read_permission_table(page))
        sim_page.get_by_role("button", name="Create role").click()
    shot(page, artifacts_dir, prefix + "step-4")
    done(page)

    # Step 5: the Web Services user, field by field; the user-based branch also wants deprovisioning.
    page.wait_for_url(re.compile(r"/step-5/"))
    if branch == "user":
        page.get_by_label("I want user deprovisioning").check()
        page.get_by_role("button", name="Update the table").click()
        page.wait_for_selector("text=required for deprovisioning")
    sim_page.goto(f"{sim_base}/companies/{company_id}/admin/users/")
    sim_page.get_by_label("User ID").fill("ws_connect")
    first_name = page.locator("[aria-label='Copy first name']").get_attribute("data-copy")
    sim_page.get_by_label("First name").fill(first_name)
    sim_page.get_by_label("Last name").fill("Integration")
    sim_page.get_by_label("Email address").fill(email)
    sim_page.get_by_label("User type").select_option("business user")
    sim_page.get_by_label("Admin privileges").select_option("Full" if branch == "user" else "Off")
    sim_page.get_by_label("Status").select_option("active")
    if branch == "role":
        sim_page.get_by_label(role_name, exact=True).check()
    else:
        tick_permissions(sim_page, read_permission_table(page))
    sim_page.get_by_role("button", name="Create user").click()
    shot(page, artifacts_dir, prefix + "step-5")
    done(page)

    # The password Intacct "mailed": the simulator's mailbox.
    sim_page.goto(f"{sim_base}/mailbox/?to={quote(email)}")
    body = sim_page.locator("pre.mail-body").first.inner_text()
    mailed_password = re.search(r"Password: (\S+)", body).group(1)

    # Step 6: a company ID pasted with a trailing space, the mailed password, Connect.
    page.wait_for_url(re.compile(r"/step-6/"))
    page.get_by_label("Company ID").fill(company_id + " ")
    page.get_by_label("User ID").fill("ws_connect")
    page.get_by_label("Password", exact=True).fill(mailed_password)
    shot(page, artifacts_dir, prefix + "step-6-form")
    page.get_by_role("button", name="Connect").click()
    page.wait_for_selector("text=We removed spaces around the company ID")
    page.wait_for_selector(".run-summary.run-passed, .run-summary.run-failed, .run-summary.run-inconclusive",
                           timeout=30_000)
    shot(page, artifacts_dir, prefix + "step-6-result")
    summary = page.locator(".run-summary").inner_text()
    assert "Connected." in summary, page.locator(".checklist").inner_text()
    assert page.locator(".check-passed").count() >= 15
    assert mailed_password not in page.content()

    connection = Connection.objects.get()
    assert connection.status == "connected" and connection.company_id == company_id
    assert connection.permission_model == branch and connection.wants_deprovisioning == (branch == "user")
    assert sorted(connection.steps_done()) == [1, 2, 3, 4, 5, 6]

    page.get_by_role("link", name="Go to your connection").click()
    page.wait_for_url(re.compile(r"/connection/$"))
    shot(page, artifacts_dir, prefix + "connection")
    assert "Connected" in page.locator(".facts").inner_text()

    # The same wizard on a phone-sized screen.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/organisations/acme/setup/step-4/")
    shot(page, artifacts_dir, prefix + "phone-step-4")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
