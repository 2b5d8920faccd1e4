"""Our samples of each documented gateway shape (tests/fixtures/protocol) replayed through the client on
the mock transport: each is read, typed and paged as the real gateway's answer must be."""
from __future__ import annotations

import gzip
from datetime import UTC

import httpx
import pytest

from connector.intacct import errors
from tests.protocol_samples import SAMPLES, concrete

from .fakes import Gateway, SleepRecorder, envelope, make_client, records_xml, result_xml

POD = "http://127.0.0.2/simulator/ia/xml/xmlgw.phtml"


def reply(name: str, status: int = 200, content_type: str = "text/xml; charset=UTF-8", **values: str) -> httpx.Response:
    return httpx.Response(status, content=concrete(name, **values), headers={"content-type": content_type})


def logged_in(script: list, **config) -> tuple[Gateway, object]:
    """A client whose login answers with the session sample (endpoint on the company's pod host)."""
    gateway = Gateway(script=script, login_script=[reply("session_utc.xml")])
    return gateway, make_client(gateway, allowed_endpoints=(POD,), **config)


def test_session_sample_gives_a_utc_expiry_and_the_pod_endpoint() -> None:
    gateway, client = logged_in([])
    with client:
        session = client.get_api_session()
    assert session.endpoint == POD
    assert session.expires_at is not None and session.expires_at.utcoffset() == UTC.utcoffset(None)


def test_session_endpoint_on_a_host_outside_the_allowlist_is_refused() -> None:
    gateway = Gateway(login_script=[reply("session_utc.xml")])
    with make_client(gateway) as client, pytest.raises(errors.EndpointNotAllowed):
        client.get_api_session()


@pytest.mark.parametrize(("name", "status", "content_type", "expected", "errorno"), [
    ("control_bad_sender.xml", 200, "text/xml; charset=UTF-8", errors.SenderCredentialsInvalid, "XL03000006"),
    ("auth_wrong_login.xml", 200, "text/xml; charset=UTF-8", errors.LoginFailed, "XL03000006"),
    ("http401_login.xml", 401, "text/xml;charset=ISO-8859-1", errors.LoginFailed, "XMLGW_JPP0002"),
    ("http400_unknown_company.xml", 400, "text/xml; charset=UTF-8", errors.CompanyNotFound, "GW-0011"),
    ("demo_expired.xml", 200, "text/xml; charset=UTF-8", errors.IntacctError, "PL04000055"),
    ("transport_policy.xml", 200, "text/xml; charset=UTF-8", errors.IntacctError, "XL03000006"),
])
def test_login_failures_are_typed_and_permanent(name, status, content_type, expected, errorno) -> None:
    gateway = Gateway(login_script=[reply(name, status, content_type)])
    with make_client(gateway) as client, pytest.raises(expected) as caught:
        client.get_api_session()
    assert caught.value.errorno == errorno and caught.value.permanent
    assert len(gateway.received) == 1  # a permanent failure is not retried


def test_expired_demo_and_bad_policy_keep_their_text_for_the_reader() -> None:
    for name, text in (("demo_expired.xml", "This company is a demo company and has expired."),
                       ("transport_policy.xml", "nightlyExport is not a valid transport policy.")):
        gateway = Gateway(login_script=[reply(name)])
        with make_client(gateway) as client, pytest.raises(errors.IntacctError) as caught:
            client.get_api_session()
        assert caught.value.level == "control" and caught.value.description2 == text


def test_query_on_an_unknown_object_is_unknown_object() -> None:
    _, client = logged_in([reply("query_unknown_object.xml")])
    with client, pytest.raises(errors.UnknownObject) as caught:
        client.query_page("PROJECTBUDGET", fields=["RECORDNO"])
    assert caught.value.description2 == "Object definition PROJECTBUDGET not found"


def test_stacked_update_errors_keep_every_error_and_the_support_id() -> None:
    _, client = logged_in([reply("update_stacked_errors.xml")])
    with client, pytest.raises(errors.RecordError) as caught:
        client.update("USERINFO", {"LOGINID": "jdoe.gone", "STATUS": "inactive"}, control_id="w1")
    assert [e.description2 for e in caught.value.errors] == [
        "No USERINFO record with LOGINID 'jdoe.gone' was found. [Support ID: Qb3xY1%7EZc9TnA0wLk2PqR]",
        "Could not update USERINFO record.",
    ]


def test_query_dotted_elements_and_read_by_query_nesting_give_the_same_keys() -> None:
    _, client = logged_in([reply("query_dotted_fields.xml"), reply("readbyquery_nested_fields.xml")])
    with client:
        page = client.query_page("EMPLOYEE", fields=["RECORDNO", "PERSONALINFO.FIRSTNAME",
                                                     "CONTACT.MAILADDRESS.CITY"], page_size=2)
        nested = list(client.read_by_query("EMPLOYEE", ("RECORDNO", "PERSONALINFO.FIRSTNAME",
                                                        "PERSONALINFO.LASTNAME"), "RECORDNO <= 2"))
    assert [(r["RECORDNO"], r["PERSONALINFO.FIRSTNAME"], r["CONTACT.MAILADDRESS.CITY"]) for r in page.records] == [
        ("1", "Joseph", "Dublin"), ("2", "Robert", "Sydney")]
    assert [r["PERSONALINFO.FIRSTNAME"] for r in nested] == ["Joseph", "Robert"]


def test_amounts_and_flags_are_read_as_written() -> None:
    _, client = logged_in([reply("amounts_and_flags.xml")])
    with client:
        page = client.query_page("APBILL", fields=["RECORDNO", "TOTALENTERED", "TOTALPAID", "TOTALDUE", "ONHOLD",
                                                   "RECORD_URL"])
    assert [(r["TOTALENTERED"], r["TOTALDUE"], r["ONHOLD"]) for r in page.records] == [
        ("2649.29", "2649.29", "false"), ("38647", "0", "true")]


def test_read_more_last_page_with_its_result_id_ends_the_read() -> None:
    first = envelope(result_xml("readByQuery", '<data listtype="location" count="4" totalcount="5" numremaining="1" '
                                'resultId="RID-77">' + records_xml("location", [
                                    {"RECORDNO": str(i), "LOCATIONID": f"L00{i}"} for i in range(1, 5)]) + "</data>"))
    gateway, client = logged_in([first, reply("readmore_last_page.xml", RESULTID="RID-77")])
    with client:
        records = list(client.read_by_query("LOCATION", ("RECORDNO", "LOCATIONID"), page_size=4))
    assert [r["LOCATIONID"] for r in records] == ["L001", "L002", "L003", "L004", "L005"]
    assert [c.function_name for c in gateway.calls] == ["readByQuery", "readMore"]  # no third request


def test_cdn_html_page_is_retried_then_the_answer_is_read() -> None:
    page = httpx.Response(503, content=(SAMPLES / "cdn_503.html").read_bytes(),
                          headers={"content-type": "text/html; charset=UTF-8"})
    sleeps = SleepRecorder()
    gateway, client = logged_in([page, reply("amounts_and_flags.xml")], sleep=sleeps)
    with client:
        assert len(client.query_page("APBILL", fields=["RECORDNO"]).records) == 2
    assert len(sleeps.delays) == 1


def test_gzip_encoded_sample_is_read() -> None:
    packed = httpx.Response(200, content=gzip.compress(concrete("amounts_and_flags.xml")),
                            headers={"content-type": "text/xml; charset=UTF-8", "content-encoding": "gzip"})
    _, client = logged_in([packed])
    with client:
        assert [r["RECORDNO"] for r in client.query_page("APBILL", fields=["RECORDNO"]).records] == ["2", "78"]
