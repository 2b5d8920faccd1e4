"""Validation lists a multi-entity company's entities (for step 6's picker) in its one batched request."""
from __future__ import annotations

from connector import objects
from connector.models import Connection
from simulator.demo import build_company
from simulator.models import ApiUsage, SimSession
from simulator.services import add_entity, set_user_entities
from tests.validation.conftest import SMALL, make_connection, validate


def test_top_level_sign_in_stores_the_entities_without_an_extra_request(simulator):
    demo = build_company("ENT-CO", sizes=SMALL)
    add_entity(demo.company, "E300", "Northern Europe")
    connection = make_connection("ENT-CO")
    run = validate(connection)
    assert run.status == "passed", run.summary
    # One sign-in, one batch: the entity list rode along with the other reads.
    assert run.requests == 2
    connection.refresh_from_db()
    assert connection.intacct_entities == [{"id": "E100", "name": "Entity E100"},
                                           {"id": "E200", "name": "Entity E200"},
                                           {"id": "E300", "name": "Northern Europe"}]
    # What Intacct received: a top-level session, and the list counted as one more read of the batch.
    assert SimSession.objects.filter(company=demo.company, entity__isnull=True).exists()
    # (the user's record, its roles, one read per object, and the entities; getUserPermissions is free).
    assert ApiUsage.objects.get(company=demo.company).transactions == 2 + len(objects.OBJECTS) + 1


def test_a_company_without_entities_stores_an_empty_list(simulator):
    build_company("ONE-CO", sizes=SMALL, entities=())
    connection = make_connection("ONE-CO")
    Connection.objects.filter(pk=connection.pk).update(intacct_entities=[{"id": "OLD", "name": "stale"}])
    run = validate(connection)
    assert run.status == "passed", run.summary
    connection.refresh_from_db()
    assert connection.intacct_entities == []


def test_an_entity_level_sign_in_keeps_the_list_from_the_top_level(simulator):
    demo = build_company("ENT2-CO", sizes=SMALL)
    connection = make_connection("ENT2-CO")
    validate(connection)
    connection.refresh_from_db()
    listed = connection.intacct_entities
    assert [e["id"] for e in listed] == ["E100", "E200"]
    connection.entity_id = "E200"
    connection.save(update_fields=["entity_id"])
    run = validate(connection)
    assert run.status == "passed", run.summary
    connection.refresh_from_db()
    assert connection.intacct_entities == listed
    assert SimSession.objects.filter(company=demo.company, entity__entity_id="E200").exists()


def test_a_refused_top_level_sign_in_lists_nothing_and_says_why(simulator):
    demo = build_company("ENT3-CO", sizes=SMALL)
    set_user_entities(demo.user, demo.company.entities.filter(entity_id="E100"))
    connection = make_connection("ENT3-CO")
    run = validate(connection)
    assert run.status == "failed" and run.failed_check == "entity"
    assert "restricted to some entities" in run.summary
    connection.refresh_from_db()
    assert connection.intacct_entities == []
