"""LOCATIONENTITY lists the company's entities (Company > Setup > Entities) to query and readByQuery."""

from __future__ import annotations

import pytest

from simulator.demo import build_company
from simulator.models import Entity
from simulator.services import add_entity, remove_entity
from tests.simulator.conftest import SMALL_SIZES, envelope, login_xml, post, text, tree

pytestmark = pytest.mark.django_db

QUERY = ('<function controlid="e"><query><object>LOCATIONENTITY</object><select><field>RECORDNO</field>'
         "<field>LOCATIONID</field><field>NAME</field></select><pagesize>100</pagesize></query></function>")
READ_BY_QUERY = ('<function controlid="e"><readByQuery><object>LOCATIONENTITY</object>'
                 "<fields>RECORDNO,LOCATIONID,NAME</fields><query/><pagesize>100</pagesize></readByQuery></function>")


def rows(doc, tag: str) -> list[tuple[str, str, str]]:
    return [(r.findtext("RECORDNO"), r.findtext("LOCATIONID"), r.findtext("NAME"))
            for r in doc.xpath(f"//result/data/{tag}")]


def test_query_lists_the_companys_entities_with_id_name_and_recordno(client, company):
    add_entity(company, "E300", "Northern Europe")
    doc = tree(post(client, envelope(QUERY)))
    assert text(doc, "//result/status") == "success"
    expected = [(str(e.pk), e.entity_id, e.name) for e in Entity.objects.filter(company=company).order_by("pk")]
    assert [r[1] for r in expected] == ["E100", "E200", "E300"]
    assert rows(doc, "LOCATIONENTITY") == expected
    data = doc.xpath("//result/data")[0]
    assert (data.get("listtype"), data.get("count"), data.get("totalcount")) == ("LOCATIONENTITY", "3", "3")


def test_readbyquery_answers_the_same_entities_and_follows_removals(client, company):
    remove_entity(Entity.objects.get(company=company, entity_id="E100"))
    doc = tree(post(client, envelope(READ_BY_QUERY)))
    assert text(doc, "//result/status") == "success"
    assert [(r[1], r[2]) for r in rows(doc, "locationentity")] == [("E200", "Entity E200")]


def test_a_company_without_entities_answers_an_empty_list(client):
    build_company("SOLO-CO", sizes=SMALL_SIZES, entities=())
    doc = tree(post(client, envelope(QUERY, auth=login_xml(company="SOLO-CO"))))
    assert text(doc, "//result/status") == "success"
    assert doc.xpath("//result/data")[0].get("totalcount") == "0"
    assert rows(doc, "LOCATIONENTITY") == []


def test_entities_need_the_locations_view_permission(client):
    build_company("NOLOC-CO", sizes=SMALL_SIZES, permission_model="user",
                  permissions=[("Company", "Departments", "List|View")])
    doc = tree(post(client, envelope(QUERY, auth=login_xml(company="NOLOC-CO"))))
    assert text(doc, "//result/status") == "failure"
    assert "permission" in text(doc, "//result/errormessage/error/description2")


def test_entities_cannot_be_deleted_through_the_api(client, company):
    function = '<function controlid="d"><delete><object>LOCATIONENTITY</object><keys>1</keys></delete></function>'
    doc = tree(post(client, envelope(function)))
    assert text(doc, "//result/status") == "failure"
    assert Entity.objects.filter(company=company).count() == 2
