"""Helpers of the admin-journey browser tests (issue 15): signing in, connecting, axe-core on every page."""
from __future__ import annotations

import re

from tests.conftest import PASSWORD

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
RESULT = ".run-summary.run-passed, .run-summary.run-failed, .run-summary.run-inconclusive"


def sign_in(page, base: str, username: str = "alice") -> None:
    page.goto(base + "/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def connect(page, base: str, company_id: str, password: str, *, slug: str = "acme", user_id: str = "ws_connect",
            wait: bool = True) -> None:
    """Step 6 as an admin fills it in; waits for the verdict unless told not to."""
    page.goto(f"{base}/organisations/{slug}/setup/step-6/")
    page.get_by_label("Company ID").fill(company_id)
    page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Connect", exact=True).click()
    page.wait_for_load_state()
    if wait:
        wait_verdict(page)


def wait_verdict(page) -> str:
    page.wait_for_selector(RESULT, timeout=30_000)
    return page.locator(".run-summary").first.inner_text()


def axe_serious(page) -> list[str]:
    """Serious and critical axe-core violations of the page as it is now (empty: none)."""
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import Error

    for attempt in range(3):
        try:
            results = Axe().run(page)
            break
        except Error as exc:
            # The connection page reloads itself when a sync ends: run axe again on the reloaded page.
            if "Execution context was destroyed" not in str(exc) or attempt == 2:
                raise
            page.wait_for_load_state()
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]} {v['help']}"
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def assert_accessible(page) -> None:
    found = axe_serious(page)
    assert not found, f"axe on {page.url}:\n" + "\n".join(found)


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def step_marks(page) -> dict[int, str]:
    """The progress bar's mark of each step: 'passed', 'failed', 'done' (the admin's word) or 'open'."""
    marks = {}
    for item in page.locator("nav.progress li").all():
        number = int(re.search(r"step-(\d)", item.get_attribute("data-step") or "step-0").group(1))
        marks[number] = item.get_attribute("data-mark")
    return marks
