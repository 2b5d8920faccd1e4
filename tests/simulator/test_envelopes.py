"""Response shapes against the reference's example envelopes (docs: intacct-protocol.md §2)."""

from __future__ import annotations

import re

import pytest

from tests.simulator.conftest import envelope, login_xml, post, text, tree

pytestmark = pytest.mark.django_db


def test_get_api_session_success_envelope(gw):
    response, doc = gw('<function controlid="f1"><getAPISession/></function>')
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert float(response["X-Simulator-Time-Ms"]) >= 0
    assert text(doc, "/response/control/status") == "success"
    assert text(doc, "/response/control/controlid") == "ctl-1"
    assert text(doc, "/response/control/uniqueid") == "false"
    assert text(doc, "/response/control/dtdversion") == "3.0"
    auth = doc.xpath("/response/operation/authentication")[0]
    assert [c.tag for c in auth] == [
        "status",
        "userid",
        "companyid",
        "locationid",
        "sessiontimestamp",
        "sessiontimeout",
    ]
    assert text(auth, "status") == "success" and text(auth, "companyid") == "TEST-CO"
    result = doc.xpath("/response/operation/result")[0]
    assert [c.tag for c in result] == ["status", "function", "controlid", "data"]
    assert text(result, "function") == "getAPISession" and text(result, "controlid") == "f1"
    assert text(result, "data/api/sessionid").endswith("..")
    assert text(result, "data/api/endpoint") == "http://testserver/simulator/ia/xml/xmlgw.phtml"
    assert text(result, "data/api/locationid") == ""


def test_session_endpoint_is_the_url_the_caller_used(client, company):
    response = post(client, envelope('<function controlid="f"><getAPISession/></function>'), HTTP_HOST="127.0.0.1:8765")
    assert text(tree(response), "//api/endpoint") == "http://127.0.0.1:8765/simulator/ia/xml/xmlgw.phtml"


def test_session_with_entity_and_then_used_for_reads(gw):
    _, doc = gw('<function controlid="f"><getAPISession><locationid>E100</locationid></getAPISession></function>')
    session_id = text(doc, "//api/sessionid")
    assert text(doc, "//api/locationid") == "E100"
    _, doc = gw(
        '<function controlid="r"><read><object>DEPARTMENT</object><keys>1</keys><fields>*</fields></read></function>',
        auth=f"<sessionid>{session_id}</sessionid>",
    )
    assert text(doc, "//authentication/status") == "success"
    assert text(doc, "//authentication/locationid") == "E100"
    assert text(doc, "//result/data/DEPARTMENT/DEPARTMENTID") == "D001"


def test_session_slides_forward(gw, company):
    from simulator.models import SimSession

    _, doc = gw('<function controlid="f"><getAPISession/></function>')
    session = SimSession.objects.get(session_id=text(doc, "//api/sessionid"))
    first_expiry = session.expires_at
    gw(
        '<function controlid="f"><getAPISession/></function>',
        auth=f"<sessionid>{session.session_id}</sessionid>",
    )
    session.refresh_from_db()
    assert session.expires_at > first_expiry


def test_control_failure_envelope_bad_sender_password(gw):
    response, doc = gw('<function controlid="f1"><getAPISession/></function>', sender_password="wrong")  # noqa: S106 - fake credential in a test
    assert response.status_code == 200
    assert text(doc, "/response/control/status") == "failure"
    assert doc.xpath("/response/operation") == []
    error = doc.xpath("/response/errormessage/error")[0]
    assert [c.tag for c in error] == ["errorno", "description", "description2", "correction"]
    assert text(error, "errorno") == "XL03000006"
    assert text(error, "description2") == "Incorrect Intacct XML Partner ID or password."


def test_auth_failure_envelope(gw):
    response, doc = gw(
        '<function controlid="f1"><getAPISession/></function>',
        auth=login_xml(password="nope"),  # noqa: S106 - fake credential in a test
    )
    assert response.status_code == 200
    assert text(doc, "/response/control/status") == "success"
    auth = doc.xpath("/response/operation/authentication")[0]
    assert [c.tag for c in auth] == ["status", "userid", "companyid", "locationid"]
    assert text(auth, "status") == "failure"
    assert text(doc, "/response/operation/errormessage/error/errorno") == "XL03000006"
    assert text(doc, "/response/operation/errormessage/error/description2") == "Sign-in information is incorrect"
    assert doc.xpath("/response/operation/result") == []


def test_result_failure_unknown_object(gw):
    _, doc = gw(
        '<function controlid="q"><readByQuery><object>BADOBJECT</object><fields>*</fields><query/>'
        "</readByQuery></function>"
    )
    result = doc.xpath("//result")[0]
    assert text(result, "status") == "failure"
    assert text(result, "errormessage/error/errorno") == "Query Failed"
    assert text(result, "errormessage/error/description2") == "Object definition BADOBJECT not found"


def test_read_by_query_data_attributes_and_lowercase_records(gw):
    _, doc = gw(
        '<function controlid="q"><readByQuery><object>APBILL</object><fields>RECORDNO,VENDORNAME</fields>'
        "<query>RECORDNO &lt;= 3</query><pagesize>2</pagesize></readByQuery></function>"
    )
    data = doc.xpath("//result/data")[0]
    assert data.get("listtype") == "apbill"
    assert (data.get("count"), data.get("totalcount"), data.get("numremaining")) == ("2", "3", "1")
    assert data.get("resultId")
    assert [c.tag for c in data] == ["apbill", "apbill"]
    assert [c.tag for c in data[0]] == ["RECORDNO", "VENDORNAME"]


def test_read_by_query_empty_result(gw):
    _, doc = gw(
        '<function controlid="q"><readByQuery><object>APBILL</object><fields>*</fields>'
        "<query>RECORDNO &lt; 0</query></readByQuery></function>"
    )
    data = doc.xpath("//result/data")[0]
    assert (data.get("count"), data.get("totalcount"), data.get("numremaining"), data.get("resultId")) == (
        "0",
        "0",
        "0",
        "",
    )
    assert len(data) == 0


def test_query_data_attributes_and_uppercase_records(gw):
    _, doc = gw(
        '<function controlid="q"><query><object>APBILL</object><select><field>RECORDNO</field>'
        "<field>STATE</field></select><filter><lessthanorequalto><field>RECORDNO</field><value>5</value>"
        "</lessthanorequalto></filter><pagesize>2</pagesize><offset>2</offset></query></function>"
    )
    data = doc.xpath("//result/data")[0]
    assert data.get("listtype") == "APBILL"
    assert [data.get(a) for a in ("totalcount", "offset", "count", "numremaining")] == ["5", "2", "2", "1"]
    assert [r.findtext("RECORDNO") for r in data.findall("APBILL")] == ["3", "4"]


def test_read_empty_result_is_not_an_error(gw):
    _, doc = gw(
        '<function controlid="r"><read><object>USERINFO</object><keys>999999</keys><fields>*</fields></read></function>'
    )
    assert text(doc, "//result/status") == "success"
    data = doc.xpath("//result/data")[0]
    assert (data.get("listtype"), data.get("count"), len(data)) == ("USERINFO", "0", 0)


def test_read_by_name_finds_the_real_user_with_nested_contact(gw):
    _, doc = gw(
        '<function controlid="r"><readByName><object>USERINFO</object><keys>ws_connect</keys>'
        "<fields>RECORDNO,LOGINID,STATUS,CONTACTINFO.FIRSTNAME,LOGINDISABLED</fields></readByName></function>"
    )
    user = doc.xpath("//result/data/USERINFO")[0]
    assert text(user, "LOGINID") == "ws_connect" and text(user, "STATUS") == "active"
    assert text(user, "CONTACTINFO/FIRSTNAME") == "Web"
    assert text(user, "LOGINDISABLED") == "true"


def test_transaction_rollback(gw, company):
    from simulator.records import get_record

    _, doc = gw(
        '<function controlid="u1"><update><EMPLOYEE><EMPLOYEEID>E00001</EMPLOYEEID><STATUS>inactive</STATUS>'
        "</EMPLOYEE></update></function>"
        '<function controlid="u2"><update><EMPLOYEE><EMPLOYEEID>E00002</EMPLOYEEID><STATUS>bogus</STATUS>'
        "</EMPLOYEE></update></function>"
        '<function controlid="u3"><update><EMPLOYEE><EMPLOYEEID>E00003</EMPLOYEEID><STATUS>inactive</STATUS>'
        "</EMPLOYEE></update></function>",
        transaction=True,
    )
    results = doc.xpath("//result")
    assert [text(r, "status") for r in results] == ["aborted", "failure", "aborted"]
    # The cause, the generic record error stacked under it (as the documented BL01001973 sample), then the rollback.
    assert [e.text for e in results[1].xpath("errormessage/error/errorno")] == [
        "BL01001973",
        "BL01001973",
        "XL03000009",
    ]
    assert re.fullmatch(
        r"Invalid value 'bogus' for field STATUS\. \[Support ID: [\w%-]+\]",
        text(results[1], "errormessage/error[1]/description2"),
    )
    assert text(results[1], "errormessage/error[2]/description") == ""
    assert text(results[1], "errormessage/error[2]/description2") == "Could not update EMPLOYEE record."
    assert text(results[0], "errormessage/error/description") == (
        "The entire transaction in this operation has been rolled back due to an error."
    )
    from simulator.models import RecordOverride

    assert RecordOverride.objects.count() == 0
    assert get_record(company, "EMPLOYEE", 1)["WHENMODIFIED"].startswith(("0", "1"))


def test_without_transaction_failures_are_isolated(gw, company):
    from simulator.records import get_record

    _, doc = gw(
        '<function controlid="u1"><update><EMPLOYEE><EMPLOYEEID>E00001</EMPLOYEEID><STATUS>inactive</STATUS>'
        "</EMPLOYEE></update></function>"
        '<function controlid="u2"><update><EMPLOYEE><EMPLOYEEID>NOPE</EMPLOYEEID><STATUS>active</STATUS>'
        "</EMPLOYEE></update></function>"
    )
    assert [text(r, "status") for r in doc.xpath("//result")] == ["success", "failure"]
    assert text(doc, "//result[2]/errormessage/error/description2").startswith(
        "No EMPLOYEE record with EMPLOYEEID 'NOPE' was found. [Support ID: "
    )
    assert get_record(company, "EMPLOYEE", 1)["STATUS"] == "inactive"


def test_get_list_expense_summaries_legacy_shape(gw):
    _, doc = gw(
        '<function controlid="g"><get_list object="expensereportbatch" maxitems="3" start="2">'
        '<sorts><sortfield order="desc">recordno</sortfield></sorts></get_list></function>'
    )
    listtype = doc.xpath("//result/listtype")[0]
    assert (listtype.text, listtype.get("start"), listtype.get("end"), listtype.get("total")) == (
        "expensereportbatch",
        "2",
        "4",
        "7",
    )
    assert [r.findtext("recordno") for r in doc.xpath("//result/data/expensereportbatch")] == ["5", "4", "3"]


def test_get_list_filter(gw):
    _, doc = gw(
        '<function controlid="g"><get_list object="expensereportbatch">'
        '<filter><logical logical_operator="or">'
        "<expression><field>recordno</field><operator>=</operator><value>2</value></expression>"
        "<expression><field>recordno</field><operator>&gt;=</operator><value>6</value></expression>"
        "</logical></filter></get_list></function>"
    )
    assert [r.findtext("recordno") for r in doc.xpath("//result/data/expensereportbatch")] == ["2", "6", "7"]


def test_get_user_permissions(gw):
    _, doc = gw(
        '<function controlid="p"><getUserPermissions><userId>ws_connect</userId></getUserPermissions></function>'
    )
    policies = {p.findtext("policyName"): p.findtext("rights") for p in doc.xpath("//policy")}
    assert policies["Bills"] == "List|View" and policies["Employees"] == "List|View|Edit"
    assert "Accounts Payable" in [a.text for a in doc.xpath("//appSubscription/applicationName")]


def test_update_userinfo_deprovisions_real_user(gw, company):
    from simulator.models import SimUser
    from simulator.services import create_user

    create_user(
        company,
        "leaver",
        first_name="Lee",
        last_name="Ver",
        email="lee@example.com",
        password="x-pass-1",  # noqa: S106 - fake credential in a test
    )
    _, doc = gw(
        '<function controlid="u"><update><USERINFO><LOGINID>leaver</LOGINID><STATUS>inactive</STATUS>'
        "</USERINFO></update></function>"
    )
    assert text(doc, "//result/status") == "success"
    assert text(doc, "//result/data/userinfo/LOGINID") == "leaver"
    assert SimUser.objects.get(login_id="leaver").status == "inactive"
