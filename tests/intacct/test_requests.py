"""What the gateway receives: envelope order, escaping, headers, auth mode, function XML."""
from __future__ import annotations

import pytest

from connector.intacct import Credentials
from connector.intacct import filters as F

from .fakes import (
    ENDPOINT,
    SENDER_ID,
    SENDER_PASSWORD,
    SESSION_ENDPOINT,
    SESSION_ID,
    USER_PASSWORD,
    Gateway,
    envelope,
    make_client,
    records_xml,
    result_xml,
)


def _read_answer(obj: str = "USERINFO", count: int = 0) -> bytes:
    return envelope(result_xml("read", f'<data listtype="{obj}" count="{count}"/>'))


def test_login_request_has_declaration_control_block_in_xsd_order_and_escaped_login() -> None:
    gateway = Gateway(script=[_read_answer()])
    with make_client(gateway, credentials=Credentials(" ACME ", "ws_user ", USER_PASSWORD, "E100")) as client:
        client.read("USERINFO", [1])
    login = gateway.logins[0]
    assert login.url == ENDPOINT
    assert login.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    control = login.xml.find("control")
    assert [c.tag for c in control] == [
        "senderid", "password", "controlid", "uniqueid", "dtdversion", "includewhitespace"]
    assert control.findtext("senderid") == SENDER_ID
    assert control.findtext("password") == SENDER_PASSWORD
    assert control.findtext("uniqueid") == "false"
    assert control.findtext("dtdversion") == "3.0"
    assert control.findtext("includewhitespace") == "false"
    assert 1 <= len(control.findtext("controlid")) <= 256
    assert [c.tag for c in login.xml] == ["control", "operation"]
    operation = login.xml.find("operation")
    assert [c.tag for c in operation] == ["authentication", "content"]
    loginel = operation.find("authentication/login")
    assert [c.tag for c in loginel] == ["userid", "companyid", "password", "locationid"]
    # Stray spaces are trimmed from IDs; the password is sent exactly, escaped on the wire.
    assert loginel.findtext("userid") == "ws_user"
    assert loginel.findtext("companyid") == "ACME"
    assert loginel.findtext("password") == USER_PASSWORD
    assert loginel.findtext("locationid") == "E100"
    assert b"&amp;" in login.body and b"&lt;secret&gt;" in login.body
    functions = operation.findall("content/function")
    assert len(functions) == 1  # getAPISession is sent alone
    assert functions[0].get("controlid")
    assert [f.tag for f in functions[0]] == ["getAPISession"]


def test_headers_content_type_gzip_and_user_agent() -> None:
    gateway = Gateway(script=[_read_answer()])
    with make_client(gateway, user_agent="intacct-connect/test") as client:
        client.read("USERINFO", [1])
    for received in gateway.received:
        assert received.headers["content-type"] == "application/xml"
        assert "gzip" in received.headers["accept-encoding"]
        assert received.headers["user-agent"] == "intacct-connect/test"


def test_login_omits_locationid_without_entity() -> None:
    gateway = Gateway(script=[_read_answer()])
    with make_client(gateway) as client:
        client.read("USERINFO", [1])
    assert gateway.logins[0].xml.find("operation/authentication/login/locationid") is None


def test_calls_after_login_use_session_id_on_session_endpoint() -> None:
    gateway = Gateway(script=[_read_answer(), _read_answer()])
    with make_client(gateway) as client:
        client.read("USERINFO", [1])
        client.read_by_name("USERINFO", ["ws_user"])
    assert len(gateway.logins) == 1
    for call in gateway.calls:
        assert call.url == SESSION_ENDPOINT
        assert call.session_id == SESSION_ID
        assert call.xml.find("operation/authentication/login") is None
        assert call.xml.findtext("control/password") == SENDER_PASSWORD
        assert call.xml.findtext("control/uniqueid") == "false"
    assert [c.function_name for c in gateway.calls] == ["read", "readByName"]
    read = gateway.calls[0].function
    assert [(c.tag, c.text) for c in read] == [
        ("object", "USERINFO"), ("keys", "1"), ("fields", "*"), ("returnFormat", "xml")]
    assert gateway.calls[1].function.findtext("keys") == "ws_user"


def test_update_sends_uniqueid_true_and_the_callers_control_id() -> None:
    answer = envelope(result_xml(
        "update", '<data listtype="objects" count="1">'
        + records_xml("USERINFO", [{"RECORDNO": "7", "LOGINID": "jdoe"}]) + "</data>",
        controlid="deprovision-42-v1"))
    gateway = Gateway(script=[answer])
    with make_client(gateway) as client:
        record = client.update("USERINFO", {"LOGINID": "jdoe", "STATUS": "inactive",
                                            "USERLOCATIONS": {"LOCATIONID": ["E1", "E2"]}},
                               control_id="deprovision-42-v1")
    assert record == {"RECORDNO": "7", "LOGINID": "jdoe"}
    call = gateway.calls[0]
    assert call.xml.findtext("control/uniqueid") == "true"
    assert call.xml.find("operation/content/function").get("controlid") == "deprovision-42-v1"
    update = call.function
    assert update.tag == "update"
    userinfo = update.find("USERINFO")
    assert [(c.tag, c.text) for c in userinfo][:2] == [("LOGINID", "jdoe"), ("STATUS", "inactive")]
    assert [c.text for c in userinfo.findall("USERLOCATIONS/LOCATIONID")] == ["E1", "E2"]


def test_employee_update_escapes_values() -> None:
    answer = envelope(result_xml("update", '<data listtype="objects" count="0"/>'))
    gateway = Gateway(script=[answer])
    with make_client(gateway) as client:
        assert client.update("EMPLOYEE", {"EMPLOYEEID": "E1&<2>", "STATUS": "inactive",
                                          "ENDDATE": "06/30/2024"}, control_id="emp-E1-v1") == {}
    call = gateway.calls[0]
    assert b"E1&amp;&lt;2&gt;" in call.body
    assert call.function.findtext("EMPLOYEE/EMPLOYEEID") == "E1&<2>"


def test_query_function_xml_order_filters_and_options() -> None:
    answer = envelope(result_xml("query", '<data listtype="APBILL" totalcount="0" offset="0" count="0" '
                                          'numremaining="0"/>'))
    gateway = Gateway(script=[answer])
    flt = F.And(F.GreaterThanOrEqual("WHENMODIFIED", "01/01/2024 00:00:00"),
                F.In("STATE", ["Posted", "Draft"]))
    with make_client(gateway) as client:
        list(client.query("APBILL", fields=["RECORDNO", "WHENMODIFIED"], filter=flt,
                          order_by=[("WHENMODIFIED", "asc"), ("RECORDNO", "desc")], page_size=2000,
                          case_insensitive=True))
    query = gateway.calls[0].function
    assert [c.tag for c in query] == [
        "object", "select", "filter", "orderby", "options", "pagesize", "offset"]
    assert [f.text for f in query.findall("select/field")] == ["RECORDNO", "WHENMODIFIED"]
    and_el = query.find("filter/and")
    assert [c.tag for c in and_el] == ["greaterthanorequalto", "in"]
    assert [c.text for c in and_el.find("in")] == ["STATE", "Posted", "Draft"]
    orders = query.findall("orderby/order")
    assert [(o.findtext("field"), o[1].tag) for o in orders] == [
        ("WHENMODIFIED", "ascending"), ("RECORDNO", "descending")]
    assert query.findtext("options/caseinsensitive") == "true"
    assert query.findtext("pagesize") == "2000"
    assert query.findtext("offset") == "0"


def test_read_by_query_function_xml() -> None:
    answer = envelope(result_xml("readByQuery", '<data listtype="apbill" count="0" totalcount="0" '
                                                'numremaining="0" resultId=""/>'))
    gateway = Gateway(script=[answer])
    with make_client(gateway) as client:
        assert list(client.read_by_query("APBILL", ("RECORDNO", "WHENMODIFIED"),
                                         "WHENMODIFIED >= '01/01/2024 00:00:00'", page_size=1000)) == []
    fn = gateway.calls[0].function
    assert [(c.tag, c.text) for c in fn] == [
        ("object", "APBILL"), ("fields", "RECORDNO,WHENMODIFIED"),
        ("query", "WHENMODIFIED >= '01/01/2024 00:00:00'"), ("pagesize", "1000"), ("returnFormat", "xml")]
    assert b"&gt;=" in gateway.calls[0].body


def test_get_list_and_permissions_function_xml() -> None:
    gateway = Gateway(script=[
        envelope(result_xml("get_list", '<listtype start="0" end="-1" total="0">expensereportbatch</listtype>'
                                        "<data/>")),
        envelope(result_xml("getUserPermissions", "<data><permissions/></data>")),
    ])
    with make_client(gateway) as client:
        assert list(client.get_list("expensereportbatch", fields=["recordno"],
                                    filters=[("status", "=", "active"), ("whenmodified", ">", "01/01/2024")],
                                    page_size=50)) == []
        assert client.get_user_permissions("ws_user") == []
    get_list = gateway.calls[0].function
    assert get_list.attrib == {"object": "expensereportbatch", "maxitems": "50", "start": "0",
                               "showprivate": "false"}
    assert [c.tag for c in get_list] == ["filter", "fields"]
    expressions = get_list.findall("filter/logical/expression")
    assert get_list.find("filter/logical").get("logical_operator") == "and"
    assert [(e.findtext("field"), e.findtext("operator"), e.findtext("value")) for e in expressions] == [
        ("status", "=", "active"), ("whenmodified", ">", "01/01/2024")]
    assert gateway.calls[1].function.findtext("userId") == "ws_user"


def test_filter_single_condition_is_not_wrapped() -> None:
    el = F.And(F.IsNull("ENDDATE")).to_element()
    assert el.tag == "isnull"
    between = F.Between("A", 1, 2).to_element()
    assert [c.text for c in between] == ["A", "1", "2"]


def test_filter_and_argument_validation() -> None:
    with pytest.raises(ValueError):
        F.In("RECORDNO", range(1001))
    with pytest.raises(ValueError):
        F.In("RECORDNO", [])
    with pytest.raises(ValueError):
        F.And()
    assert F.In("A", [1]) == F.In("A", (1,))
    with make_client(Gateway()) as client:
        with pytest.raises(ValueError):
            client.update("USERINFO", {"LOGINID": "x"}, control_id="x" * 257)
        with pytest.raises(ValueError):
            client.update("USERINFO", {"LOGINID": "x"}, control_id="")
