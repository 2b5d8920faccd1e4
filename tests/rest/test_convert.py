"""One company, both protocols: REST rows converted are the XML records, and the XML keyset goes on over REST."""
from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from connector.intacct import ClientConfig, Credentials, IntacctClient, RetryPolicy
from connector.intacct import filters as F  # noqa: N812 - the alias the sync uses
from connector.intacct_rest import ClientCredentialsGrant, IntacctRestClient, RestConfig, rest_name
from connector.intacct_rest.convert import keyset_after, utc_iso, xml_record, xml_value
from connector.objects import OBJECTS_BY_NAME
from simulator import inflight, oauth
from simulator.demo import DEMO_PASSWORD, build_company
from tests.rest.conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI
from tests.simulator.conftest import SMALL_SIZES

NO_WAIT = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05, total_budget=5.0)
LA = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def both(live_server, transactional_db) -> dict[str, Any]:
    inflight.inflight_reset()
    build_company("BOTH-CO", sizes=SMALL_SIZES)
    oauth.register_app(CLIENT_ID, CLIENT_SECRET, settings.INTACCT_SENDER_ID, [REDIRECT_URI])
    base = live_server.url + "/simulator/ia/api/v1"
    gateway = live_server.url + settings.SIMULATOR_GATEWAY_PATH
    rest = IntacctRestClient(RestConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=base,
                                        allowed_endpoints=(base,), retry=NO_WAIT),
                             ClientCredentialsGrant("ws_connect", "BOTH-CO"))
    xml = IntacctClient(ClientConfig(endpoint_url=gateway, allowed_endpoints=(gateway,), retry=NO_WAIT,
                                     sender_id=settings.INTACCT_SENDER_ID,
                                     sender_password=settings.INTACCT_SENDER_PASSWORD),
                        Credentials("BOTH-CO", "ws_connect", DEMO_PASSWORD))
    with rest, xml:
        yield {"rest": rest, "xml": xml}


@pytest.mark.parametrize("object_name", ["APBILL", "EMPLOYEE", "USERINFO", "CCTRANSACTION", "GLACCOUNT",
                                         "DEPARTMENT", "LOCATION", "APADJUSTMENT", "EEXPENSES"])
def test_rest_rows_converted_are_the_xml_records(both, object_name):
    definition = OBJECTS_BY_NAME[object_name]
    name = rest_name(object_name)
    assert name is not None
    fields = list(definition.fields)
    xml_rows = list(both["xml"].query(object_name, fields, order_by=[("RECORDNO", "asc")], page_size=500))
    rest_rows = list(both["rest"].query(name.path, name.rest_fields(fields), order_by=[{"key": "asc"}], size=500))
    assert len(rest_rows) == len(xml_rows) > 0
    converted = [xml_record(name, row, LA) for row in rest_rows]
    expected = [{f: r.get(f) for f in fields} for r in xml_rows]
    assert converted == expected


def test_the_xml_keyset_cursor_goes_on_over_rest(both):
    name = rest_name("APBILL")
    assert name is not None
    fields = ["RECORDNO", "WHENMODIFIED"]
    order = [("WHENMODIFIED", "asc"), ("RECORDNO", "asc")]
    first = list(both["xml"].query("APBILL", fields, order_by=order, page_size=1000, limit=1000))
    cursor = first[-1]
    after = F.Or(F.GreaterThan("WHENMODIFIED", str(cursor["WHENMODIFIED"])),
                 F.And(F.EqualTo("WHENMODIFIED", str(cursor["WHENMODIFIED"])),
                       F.GreaterThan("RECORDNO", str(cursor["RECORDNO"]))))
    xml_next = list(both["xml"].query("APBILL", fields, filter=after, order_by=order, page_size=1000, limit=500))
    filters, expression, order_by = keyset_after(name, str(cursor["WHENMODIFIED"]), str(cursor["RECORDNO"]), LA)
    page = both["rest"].query_page(name.path, name.rest_fields(fields), filters=filters,
                                   filter_expression=expression, order_by=order_by, size=500)
    assert [xml_record(name, r, LA) for r in page.records] == [{f: r[f] for f in fields} for r in xml_next]


def test_values_convert_in_the_company_time_zone_across_daylight_saving():
    assert xml_value("2024-07-01T19:30:00Z", LA) == "07/01/2024 12:30:00"  # PDT, UTC-7
    assert xml_value("2024-01-15T20:30:00Z", LA) == "01/15/2024 12:30:00"  # PST, UTC-8
    assert xml_value("2024-01-15", LA) == "01/15/2024"
    assert xml_value(None, LA) is None and xml_value(True, LA) == "true" and xml_value("BILL-1", LA) == "BILL-1"
    assert utc_iso("07/01/2024 12:30:00", LA) == "2024-07-01T19:30:00Z"
