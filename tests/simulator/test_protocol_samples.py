"""The simulator's answers compared element by element with our samples of each documented shape
(tests/fixtures/protocol, sources in docs/protocol-choices.md)."""

from __future__ import annotations

import gzip
import re

import pytest
from lxml import etree

from simulator.faults import set_fault
from tests.protocol_samples import SAMPLES, compare
from tests.simulator.conftest import envelope, login_xml, post, tree

pytestmark = pytest.mark.django_db


def fn(inner: str) -> str:
    return f'<function controlid="f1">{inner}</function>'


def assert_matches(name: str, response, status: int = 200, **values: str) -> None:
    assert response.status_code == status, response.content[:500]
    problems = compare(name, response.content, **values)
    assert not problems, "\n".join(problems)


def test_session_stamps_are_utc_and_the_endpoint_names_the_companys_host(client, company):
    company.timezone_name = "America/Los_Angeles"
    company.session_endpoint_host = "127.0.0.2"
    company.save()
    assert_matches("session_utc.xml", post(client, envelope(fn("<getAPISession/>"))))


def test_bad_sender(client, company):
    assert_matches("control_bad_sender.xml", post(client, envelope(fn("<getAPISession/>"), sender_password="nope")))


def test_wrong_login_in_xml(client, company):
    body = envelope(fn("<getAPISession/>"), auth=login_xml(password="wrong-password"))
    assert_matches("auth_wrong_login.xml", post(client, body))


def test_wrong_login_as_http_401_bare_control_iso_8859_1(client, company):
    company.login_failure_style = "http401"
    company.save()
    response = post(client, envelope(fn("<getAPISession/>"), auth=login_xml(password="wrong-password")))
    assert_matches("http401_login.xml", response, status=401)
    assert response["Content-Type"] == "text/xml;charset=ISO-8859-1"


def test_unknown_company_http_400_bare_control(client, company):
    response = post(client, envelope(fn("<getAPISession/>"), auth=login_xml(company="NO-SUCH-CO")))
    assert_matches("http400_unknown_company.xml", response, status=400)


def test_expired_demo_company(client, company):
    company.demo_expired = True
    company.save()
    assert_matches("demo_expired.xml", post(client, envelope(fn("<getAPISession/>"))))


def test_unknown_transport_policy(client, company):
    body = envelope(fn("<getAPISession/>")).replace(
        "<includewhitespace>", "<policyid>nightlyExport</policyid><includewhitespace>"
    )
    assert_matches("transport_policy.xml", post(client, body))


def test_query_on_an_unknown_object(client, company):
    body = envelope(fn("<query><object>PROJECTBUDGET</object><select><field>RECORDNO</field></select></query>"))
    assert_matches("query_unknown_object.xml", post(client, body))


def test_refused_update_stacks_its_errors(client, company):
    body = envelope(fn("<update><USERINFO><LOGINID>jdoe.gone</LOGINID><STATUS>inactive</STATUS></USERINFO></update>"))
    assert_matches("update_stacked_errors.xml", post(client, body))


def test_query_dotted_fields_are_dotted_elements(client, company):
    body = envelope(fn(
        "<query><object>EMPLOYEE</object><select><field>RECORDNO</field><field>PERSONALINFO.FIRSTNAME</field>"
        "<field>CONTACT.MAILADDRESS.CITY</field></select><orderby><order><field>RECORDNO</field><ascending/>"
        "</order></orderby><pagesize>2</pagesize></query>"
    ))
    assert_matches("query_dotted_fields.xml", post(client, body))


def test_read_by_query_nests_grouped_fields(client, company):
    body = envelope(fn(
        "<readByQuery><object>EMPLOYEE</object><fields>RECORDNO,PERSONALINFO.FIRSTNAME,PERSONALINFO.LASTNAME"
        "</fields><query>RECORDNO &lt;= 2</query><pagesize>100</pagesize></readByQuery>"
    ))
    assert_matches("readbyquery_nested_fields.xml", post(client, body))


def test_amounts_and_flags_in_the_forms_records_carry(client, company):
    body = envelope(fn(
        "<query><object>APBILL</object><select><field>RECORDNO</field><field>TOTALENTERED</field>"
        "<field>TOTALPAID</field><field>TOTALDUE</field><field>ONHOLD</field><field>RECORD_URL</field></select>"
        "<filter><in><field>RECORDNO</field><value>2</value><value>78</value></in></filter></query>"
    ))
    assert_matches("amounts_and_flags.xml", post(client, body))


def test_read_more_last_page_keeps_its_result_id(client, company):
    first = tree(post(client, envelope(fn(
        "<readByQuery><object>LOCATION</object><fields>RECORDNO,LOCATIONID</fields><query></query>"
        "<pagesize>4</pagesize></readByQuery>"
    ))))
    result_id = first.xpath("//data/@resultId")[0]
    assert result_id
    response = post(client, envelope(fn(f"<readMore><resultId>{result_id}</resultId></readMore>")))
    assert_matches("readmore_last_page.xml", response, RESULTID=result_id)


def test_delete_answers_its_status_alone(client, company):
    assert_matches("delete_success.xml", post(client, envelope(fn(
        "<delete><object>USERINFO</object><keys>7</keys></delete>"))))
    again = tree(post(client, envelope(fn("<delete><object>USERINFO</object><keys>7</keys></delete>"))))
    assert again.xpath("//result/status")[0].text == "failure"
    assert [e.text for e in again.xpath("//error/errorno")] == ["BL01001973", "BL01001973"]


def test_inspect_lists_the_standard_field_set(client, company):
    assert_matches("inspect_location.xml", post(client, envelope(fn("<inspect><object>LOCATION</object></inspect>"))))


def test_lookup_defines_each_field_and_marks_custom_ones(client, company):
    response = post(client, envelope(fn("<lookup><object>DEPARTMENT</object></lookup>")))
    assert_matches("lookup_custom_field.xml", response)


def test_cdn_error_page_fault(client, company):
    set_fault(company, "html_error", count=1, status=503)
    response = post(client, envelope(fn("<getAPISession/>")))
    assert response.status_code == 503 and response["Content-Type"].startswith("text/html")
    sample = (SAMPLES / "cdn_503.html").read_text().replace("\n", "")
    pattern = re.escape(sample).replace(re.escape("8e1f2a3b4c5d6e7f"), r"[0-9a-f]{16}")
    assert re.fullmatch(pattern, response.content.decode().replace("\n", ""))


def test_gzip_when_asked(client, company):
    plain = post(client, envelope(fn("<getAPISession/>")))
    assert "Content-Encoding" not in plain
    packed = post(client, envelope(fn("<getAPISession/>")), HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert packed["Content-Encoding"] == "gzip"
    assert etree.fromstring(gzip.decompress(packed.content)).tag == "response"


def test_includewhitespace_true_pretty_prints_the_same_document(client, company):
    query = fn("<readByQuery><object>LOCATION</object><fields>RECORDNO</fields><query></query></readByQuery>")
    compact = post(client, envelope(query))
    pretty = post(client, envelope(query).replace(
        "<includewhitespace>false</includewhitespace>", "<includewhitespace>true</includewhitespace>"))
    assert b"\n  <control>\n    <status>success</status>" in pretty.content
    assert b"\n" not in compact.content.split(b"\n", 1)[1]
    strip = etree.XMLParser(remove_blank_text=True)
    expected = etree.tostring(etree.fromstring(compact.content, strip))
    assert etree.tostring(etree.fromstring(pretty.content, strip)).replace(b"\n", b"") == expected.replace(b"\n", b"")


def test_rownum_and_single_letter_codes_in_read_by_query(client, company):
    def rbq(obj: str, query: str, fields: str = "RECORDNO,USERTYPE,STATUS") -> etree._Element:
        return tree(post(client, envelope(fn(
            f"<readByQuery><object>{obj}</object><fields>{fields}</fields><query>{query}</query>"
            "<pagesize>1000</pagesize></readByQuery>"))))

    limited = rbq("APBILL", "RECORDNO &gt; 10 AND rownum &lt;= 5", "RECORDNO")
    data = limited.xpath("//data")[0]
    assert (data.get("count"), data.get("totalcount"), data.get("numremaining")) == ("5", "5", "0")
    assert [r.findtext("RECORDNO") for r in data] == ["11", "12", "13", "14", "15"]
    business = rbq("USERINFO", "USERTYPE = 'B'")
    assert business.xpath("//data/userinfo") and {u.findtext("USERTYPE") for u in business.xpath("//userinfo")} == {
        "business user"
    }
    active = rbq("USERINFO", "STATUS = 'T'")
    assert {u.findtext("STATUS") for u in active.xpath("//userinfo")} == {"active"}


def test_the_comparison_catches_the_shapes_we_used_to_answer():
    """The samples are not vacuous: the simulator's earlier shapes fail them."""
    from tests.protocol_samples import concrete

    local_time = concrete("session_utc.xml").replace(b"+00:00", b"-08:00")
    assert any("sessiontimestamp" in p for p in compare("session_utc.xml", local_time))
    echoed = concrete("http401_login.xml").replace(
        b"<status>failure</status>", b"<status>failure</status><senderid>IntacctConnectDemo</senderid>"
    )
    assert compare("http401_login.xml", echoed)
    query_failed = concrete("query_unknown_object.xml").replace(b"XL03000009", b"Query Failed")
    assert compare("query_unknown_object.xml", query_failed)
    no_data = re.sub(rb"<data [^>]*/>", b"", concrete("query_unknown_object.xml"))
    assert compare("query_unknown_object.xml", no_data)
    nested = concrete("query_dotted_fields.xml").replace(
        b"<PERSONALINFO.FIRSTNAME>Joseph</PERSONALINFO.FIRSTNAME>",
        b"<PERSONALINFO><FIRSTNAME>Joseph</FIRSTNAME></PERSONALINFO>",
    )
    assert compare("query_dotted_fields.xml", nested)
    cents = concrete("amounts_and_flags.xml").replace(b">38647<", b">38647.00<")
    assert compare("amounts_and_flags.xml", cents)
    assert not compare("amounts_and_flags.xml", concrete("amounts_and_flags.xml"))


def test_lookup_lists_employee_contact_as_a_relationship(client, company):
    doc = tree(post(client, envelope(fn("<lookup><object>EMPLOYEE</object></lookup>"))))
    ids = doc.xpath("//Fields/Field/ID/text()")
    assert {"SSN", "BIRTHDATE", "RECORD_URL", "MEGAENTITYNAME", "PERSONALINFO.FIRSTNAME"} <= set(ids)
    assert not [i for i in ids if i.startswith("CONTACT.")]  # a query path, not a field of *
    relationship = doc.xpath("//Relationships/Relationship")[0]
    assert (relationship.findtext("OBJECTPATH"), relationship.findtext("RELATEDBY")) == ("CONTACT", "CONTACTKEY")
    custom = doc.xpath("//Field[ISCUSTOM='true']/ID/text()")
    assert custom == ["BADGE_NUMBER", "COST_CENTER"]
