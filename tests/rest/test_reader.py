"""The REST reader: the XML client's interface over REST, records in the XML shape, against one simulated company
answering both protocols (what lets sync and deprovisioning read either protocol and store the same rows)."""
from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from connector.intacct import ClientConfig, Credentials, IntacctClient, RetryPolicy
from connector.intacct import filters as F  # noqa: N812 - the alias the sync uses
from connector.intacct.errors import PermissionDenied, UnknownObject
from connector.intacct_rest import ClientCredentialsGrant, IntacctRestClient, RestConfig, rest_name
from connector.intacct_rest.errors import GatewayUnavailable, InvalidQuery
from connector.intacct_rest.reader import RestReader, translate
from connector.objects import OBJECTS
from simulator import inflight, oauth
from simulator import records as sim_records
from simulator.demo import DEMO_PASSWORD, build_company
from simulator.faults import clear_faults, set_fault
from tests.rest.conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI
from tests.simulator.conftest import SMALL_SIZES

NO_WAIT = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05, total_budget=5.0)
LA = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def both(live_server, transactional_db) -> dict[str, Any]:
    inflight.inflight_reset()
    demo = build_company("READER-CO", sizes=SMALL_SIZES)
    oauth.register_app(CLIENT_ID, CLIENT_SECRET, settings.INTACCT_SENDER_ID, [REDIRECT_URI])
    base = live_server.url + "/simulator/ia/api/v1"
    gateway = live_server.url + settings.SIMULATOR_GATEWAY_PATH
    rest = IntacctRestClient(RestConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=base,
                                        allowed_endpoints=(base,), retry=NO_WAIT),
                             ClientCredentialsGrant("ws_connect", "READER-CO"))
    xml = IntacctClient(ClientConfig(endpoint_url=gateway, allowed_endpoints=(gateway,), retry=NO_WAIT,
                                     sender_id=settings.INTACCT_SENDER_ID,
                                     sender_password=settings.INTACCT_SENDER_PASSWORD),
                        Credentials("READER-CO", "ws_connect", DEMO_PASSWORD))
    with RestReader(rest, "America/Los_Angeles") as reader, xml:
        yield {"rest": reader, "xml": xml, "demo": demo}


@pytest.mark.parametrize("definition", [o for o in OBJECTS if o.incremental], ids=lambda o: o.name)
def test_the_sync_s_pages_are_the_same_over_both_protocols(both, definition):
    """The full read's RECORDNO keyset and the incremental (WHENMODIFIED, RECORDNO) keyset, page by page."""
    fields = list(definition.fields)
    order = [("WHENMODIFIED", "asc"), ("RECORDNO", "asc")]
    pages = {}
    for side in ("xml", "rest"):
        first = both[side].query_page(definition.name, fields, F.GreaterThan("RECORDNO", 0),
                                      order_by=[("RECORDNO", "asc")], page_size=4)
        last = first.records[-1]
        keyset = F.Or(F.GreaterThan("WHENMODIFIED", last["WHENMODIFIED"]),
                      F.And(F.EqualTo("WHENMODIFIED", last["WHENMODIFIED"]), F.GreaterThan("RECORDNO", 0)))
        incremental = both[side].query_page(definition.name, fields, keyset, order_by=order, page_size=500)
        since = both[side].query_page(definition.name, fields,
                                      F.GreaterThanOrEqual("WHENMODIFIED", last["WHENMODIFIED"]), order_by=order,
                                      page_size=7, offset=3)
        pages[side] = (first, incremental, since)
    for xml_page, rest_page in zip(pages["xml"], pages["rest"], strict=True):
        assert rest_page.records == xml_page.records
        assert (rest_page.total_count, rest_page.num_remaining, rest_page.offset) == \
               (xml_page.total_count, xml_page.num_remaining, xml_page.offset)
    assert pages["rest"][0].records and pages["rest"][0].num_remaining


def test_legacy_get_list_objects_read_whole_are_the_same_records(both):
    definition = next(o for o in OBJECTS if o.legacy_get_list)
    kwargs = {"fields": list(definition.fields), "page_size": 3, "sorts": [(definition.recordno_field, "asc")]}
    xml_rows = list(both["xml"].get_list(definition.name, **kwargs))
    rest_rows = list(both["rest"].get_list(definition.name, **kwargs))
    assert rest_rows == xml_rows and len(rest_rows) == SMALL_SIZES["EXPENSEREPORTBATCH"]


def test_read_by_recordno_and_the_permission_batch(both):
    fields = ["RECORDNO", "LOGINID", "STATUS"]
    assert both["rest"].read("USERINFO", [2, 3, 999], fields=fields) == both["xml"].read("USERINFO", [2, 3, 999],
                                                                                          fields=fields)
    outcomes = both["rest"].batch([
        both["rest"].query_call("roles", "USERROLES", ["USERID", "ROLENAME"], filter=F.EqualTo("USERID", "ws_connect")),
        both["rest"].get_user_permissions_call("permissions", "ws_connect"),
        both["rest"].query_call("bills", "APBILL", ["RECORDNO"], page_size=2)])
    # No published REST counterpart of USERROLES / getUserPermissions: each its own error, nothing sent for them.
    assert isinstance(outcomes["roles"].error, UnknownObject)
    assert isinstance(outcomes["permissions"].error, UnknownObject)
    assert outcomes["bills"].error is None and len(outcomes["bills"].records) == 2


def test_calls_are_counted_per_object_label(both):
    reader = both["rest"]
    reader.query_page("GLACCOUNT", ["RECORDNO"], page_size=1)  # the access token is fetched here, unlabelled
    before = reader.stats.snapshot()["requests"]
    with reader.stats.labelled("APBILL"):
        reader.query_page("APBILL", ["RECORDNO"], page_size=5)
        reader.query_page("APBILL", ["RECORDNO"], page_size=5, offset=5)
    assert reader.stats.requests_for("APBILL") == 2
    assert reader.stats.snapshot()["requests"] == before + 2


def test_filters_translate_to_the_query_service():
    name = rest_name("APBILL")
    assert name is not None
    flt = F.Or(F.GreaterThan("WHENMODIFIED", "07/01/2024 12:30:00"),
               F.And(F.EqualTo("WHENMODIFIED", "07/01/2024 12:30:00"), F.GreaterThan("RECORDNO", 42)))
    query = translate(flt, name, LA)
    assert query.filters == [{"$gt": {"audit.modifiedDateTime": "2024-07-01T19:30:00Z"}},
                             {"$eq": {"audit.modifiedDateTime": "2024-07-01T19:30:00Z"}},
                             {"$gt": {"key": "42"}}]
    assert query.expression == "1 or (2 and 3)"
    ranged = translate(F.And(F.GreaterThan("RECORDNO", 0), F.LessThanOrEqual("RECORDNO", 900)), name, LA)
    assert ranged.filters == [{"$gt": {"key": "0"}}, {"$lte": {"key": "900"}}] and ranged.expression == "1 and 2"
    assert translate(F.GreaterThan("RECORDNO", 0), name, LA).expression is None
    assert translate(F.In("RECORDNO", [1, 2]), name, LA).filters == [{"$in": {"key": ["1", "2"]}}]
    assert translate(F.Like("VENDORID", "V1%"), name, LA).filters == [{"$startsWith": {"vendor.id": "V1"}}]
    assert translate(F.Between("WHENDUE", "01/01/2024", "01/31/2024"), name, LA).filters == [
        {"$between": {"dueDate": ["2024-01-01", "2024-01-31"]}}]
    with pytest.raises(ValueError, match="no REST name"):
        translate(F.EqualTo("NOSUCHFIELD", "x"), name, LA)


def test_an_object_without_a_rest_name_is_refused_before_anything_is_sent(both):
    before = both["rest"].stats.snapshot()["requests"]
    with pytest.raises(UnknownObject):
        both["rest"].query_page("USERROLES", ["USERID"])
    assert both["rest"].stats.snapshot()["requests"] == before


# --- writes (deprovisioning) ---------------------------------------------------------------------

def test_a_user_and_an_employee_are_deactivated_over_rest(both):
    company = both["demo"].company
    sim_records.modify_record(company, "EMPLOYEE", 4, {"STATUS": "active", "ENDDATE": ""})
    outcome = both["rest"].update_confirmed("USERINFO", {"RECORDNO": "3", "STATUS": "inactive"}, "ic-x-1")
    assert outcome.answer == "applied"
    both["rest"].update_confirmed("EMPLOYEE", {"RECORDNO": "4", "STATUS": "inactive", "ENDDATE": "12/03/2026"},
                                  "ic-x-2")
    assert sim_records.get_record(company, "USERINFO", 3)["STATUS"] == "inactive"
    employee = sim_records.get_record(company, "EMPLOYEE", 4)
    assert (employee["STATUS"], employee["ENDDATE"]) == ("inactive", "12/03/2026")
    # Read back over REST in the XML shape, as deprovisioning verifies it.
    [back] = both["rest"].read("EMPLOYEE", [4], fields=["RECORDNO", "STATUS", "ENDDATE"])
    assert back == {"RECORDNO": "4", "STATUS": "inactive", "ENDDATE": "12/03/2026"}
    both["rest"].update_confirmed("EMPLOYEE", {"RECORDNO": "4", "STATUS": "active", "ENDDATE": ""}, "ic-x-3")
    assert sim_records.get_record(company, "EMPLOYEE", 4)["ENDDATE"] == ""


def test_a_write_whose_answers_were_lost_is_confirmed_by_reading_it_back(both):
    company = both["demo"].company
    sim_records.modify_record(company, "USERINFO", 3, {"STATUS": "active"})
    set_fault(company, "drop", count=2)  # both attempts applied, both answers dropped
    outcome = both["rest"].update_confirmed("USERINFO", {"RECORDNO": "3", "STATUS": "inactive"}, "ic-x-4")
    assert outcome.confirmed_by_read_back and outcome.answer == "applied (confirmed by read-back)"
    assert sim_records.get_record(company, "USERINFO", 3)["STATUS"] == "inactive"


def test_a_write_refused_on_every_attempt_is_raised_not_confirmed(both):
    company = both["demo"].company
    sim_records.modify_record(company, "USERINFO", 3, {"STATUS": "active"})
    set_fault(company, "http5xx", count=2, status=503)  # never reached the record
    with pytest.raises(GatewayUnavailable):
        both["rest"].update_confirmed("USERINFO", {"RECORDNO": "3", "STATUS": "inactive"}, "ic-x-5")
    clear_faults(company)
    assert sim_records.get_record(company, "USERINFO", 3)["STATUS"] == "active"


def test_writes_need_the_rights_and_valid_values(both):
    demo = both["demo"]
    with pytest.raises(InvalidQuery):
        both["rest"].update_confirmed("USERINFO", {"RECORDNO": "3", "STATUS": "gone"}, "ic-x-6")
    demo.user.admin_privileges = "Limited"
    demo.user.save()
    with pytest.raises(PermissionDenied):
        both["rest"].update_confirmed("USERINFO", {"RECORDNO": "3", "STATUS": "inactive"}, "ic-x-7")
