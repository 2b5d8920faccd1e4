"""Issue 15 item 16: after a top-level sign-in, step 6 and the connection page list the entities Intacct
reports and the admin picks the top level or one entity (checked at once), in Chromium on the simulator."""
from __future__ import annotations

import re

import pytest

from connector import services
from connector.models import AuditEvent, Connection, ValidationRun
from simulator.demo import DEMO_PASSWORD, build_company
from simulator.models import SimSession
from simulator.services import add_entity, set_user_entities
from tests.conftest import PASSWORD
from tests.validation.conftest import SMALL
from tests.wizard.journey import DESKTOP, PHONE, assert_accessible, connect, no_horizontal_scroll, sign_in, wait_verdict

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]
VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
TYPED_BOX = "Entity ID (optional)"


def _org():
    admin = services.user_create(username="alice", email="alice@acme.test", password=PASSWORD)
    return services.organisation_create(name="Acme Ltd", slug="acme", admin=admin)


def _runs(organisation) -> list[str]:
    return list(ValidationRun.objects.filter(connection__organisation=organisation).order_by("id")
                .values_list("status", flat=True))


def _last_session_entity(demo) -> str:
    session = SimSession.objects.filter(company=demo.company, user=demo.user).order_by("-id").first()
    return session.entity.entity_id if session.entity else ""


def _choose(page, label: str, button: str = "Save and check") -> str:
    page.get_by_label(label, exact=True).check()
    page.get_by_role("button", name=button).click()
    page.wait_for_load_state()
    return wait_verdict(page)


@VIEWPORTS
def test_admin_picks_an_entity_then_the_top_level_and_each_choice_is_checked_at_once(viewport, page, live_server,
                                                                                     celery_worker):
    demo = build_company("PICK-CO", sizes=SMALL)
    add_entity(demo.company, "E300", "Northern Europe")
    organisation = _org()
    base = live_server.url
    page.set_viewport_size(viewport)
    sign_in(page, base)

    # Before any sign-in nothing is known: the typed box, no picker.
    page.goto(f"{base}/organisations/acme/setup/step-6/")
    assert page.get_by_label(TYPED_BOX).count() == 1
    assert page.locator("#entity-picker fieldset").count() == 0

    # The top-level sign-in lists the entities; the picker replaces the box without reloading the page.
    assert "Connected." in (connect(page, base, "PICK-CO", DEMO_PASSWORD) or wait_verdict(page))
    page.wait_for_selector("#entity-picker fieldset", timeout=15_000)
    assert page.get_by_label(TYPED_BOX).count() == 0
    picker = page.locator("#entity-picker")
    assert "Intacct lists 3 entities" in picker.inner_text()
    assert page.get_by_label("Top level (all entities)").is_checked()
    for label in ("E100: Entity E100", "E200: Entity E200", "E300: Northern Europe"):
        assert page.get_by_label(label, exact=True).count() == 1
    assert_accessible(page)
    assert no_horizontal_scroll(page)
    connection = Connection.objects.get(organisation=organisation)
    assert [e["id"] for e in connection.intacct_entities] == ["E100", "E200", "E300"]
    assert _last_session_entity(demo) == ""

    # One entity: saved and checked straight away with the stored credentials.
    assert "Connected." in _choose(page, "E300: Northern Europe")
    assert "signs in to entity E300" in page.content()
    assert page.get_by_label("E300: Northern Europe", exact=True).is_checked()
    assert DEMO_PASSWORD not in page.content()
    connection.refresh_from_db()
    assert connection.entity_id == "E300" and connection.status == Connection.Status.CONNECTED
    assert _last_session_entity(demo) == "E300"  # what Intacct received: a sign-in to E300
    assert AuditEvent.objects.filter(connection=connection, action="entity.changed").count() == 1
    assert AuditEvent.objects.filter(connection=connection, action="credentials.set").count() == 1
    assert_accessible(page)

    # The user is restricted to E300 in Intacct; the admin picks the top level: refused, with the words why.
    set_user_entities(demo.user, demo.company.entities.filter(entity_id="E300"))
    summary = _choose(page, "Top level (all entities)")
    assert "restricted to some entities" in summary
    assert page.locator(".check-failed").first.get_attribute("data-check") == "entity"
    connection.refresh_from_db()
    assert connection.entity_id == "" and connection.status == Connection.Status.BROKEN
    assert _runs(organisation) == ["passed", "passed", "failed"]
    assert_accessible(page)
    assert no_horizontal_scroll(page)

    # The connection page's "Change entity" offers the same list; E300 works again.
    page.goto(f"{base}/organisations/acme/connection/")
    page.get_by_role("link", name="Change entity").click()
    page.wait_for_url(re.compile(r"/connection/entity/$"))
    assert page.get_by_label("Entity ID", exact=True).count() == 0
    assert page.get_by_label("Top level (all entities)").is_checked()
    assert_accessible(page)
    assert no_horizontal_scroll(page)
    summary = _choose(page, "E300: Northern Europe", button="Save and re-validate")
    assert "Connected." in summary
    page.wait_for_url(re.compile(r"/connection/"))
    connection.refresh_from_db()
    assert connection.entity_id == "E300" and connection.status == Connection.Status.CONNECTED
    assert _last_session_entity(demo) == "E300"
    assert_accessible(page)


@VIEWPORTS
def test_a_company_without_entities_keeps_the_typed_box_and_shows_no_picker(viewport, page, live_server,
                                                                            celery_worker):
    build_company("SOLO-CO", sizes=SMALL, entities=())
    organisation = _org()
    base = live_server.url
    page.set_viewport_size(viewport)
    sign_in(page, base)
    assert "Connected." in (connect(page, base, "SOLO-CO", DEMO_PASSWORD) or wait_verdict(page))
    page.reload()
    assert page.get_by_label(TYPED_BOX).count() == 1
    assert page.locator("#entity-picker fieldset").count() == 0
    assert Connection.objects.get(organisation=organisation).intacct_entities == []
    page.goto(f"{base}/organisations/acme/connection/entity/")
    assert page.get_by_label("Entity ID", exact=True).count() == 1
    assert page.get_by_label("Top level (all entities)").count() == 0
    assert_accessible(page)
    assert no_horizontal_scroll(page)


def test_a_forged_entity_is_refused_with_words_and_nothing_changes(page, live_server, celery_worker):
    demo = build_company("FORGE-CO", sizes=SMALL)
    organisation = _org()
    base = live_server.url
    sign_in(page, base)
    assert "Connected." in (connect(page, base, "FORGE-CO", DEMO_PASSWORD) or wait_verdict(page))
    page.reload()
    # A radio value edited in the page (or an entity removed in Intacct since): not one Intacct listed.
    page.locator("#entity-picker input[value='E200']").evaluate("el => { el.value = 'E999'; el.checked = true; }")
    page.get_by_role("button", name="Save and check").click()
    page.wait_for_load_state()
    assert "That entity is not one Intacct listed" in page.locator("#entity-picker").inner_text()
    assert_accessible(page)
    connection = Connection.objects.get(organisation=organisation)
    assert connection.entity_id == "" and _runs(organisation) == ["passed"]
    assert _last_session_entity(demo) == ""
