"""Every client function, every error level, sessions, retries and safety, against the simulator."""
from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings

from connector.intacct import ClientConfig, Credentials, IntacctClient, RetryPolicy, errors, filters
from simulator.demo import CONNECT_PERMISSIONS, DEMO_PASSWORD, without
from simulator.faults import set_fault
from simulator.gateway import SESSION_REFUSED_ERROR
from simulator.inflight import inflight_stats
from simulator.models import SimUser
from simulator.records import delete_record, modify_record


def recordnos(records) -> list[int]:
    return [int(r["RECORDNO"]) for r in records]


# --- every function ------------------------------------------------------------------------

def test_get_api_session_pins_the_returned_endpoint(gateway, company_factory):
    company_factory("ACME")
    with gateway.client("ACME") as client:
        session = client.get_api_session()
        assert session.endpoint == gateway.url
        assert session.session_id and session.session_id not in repr(session)
        assert client.get_api_session() is session  # cached: one login
        list(client.read_by_query("DEPARTMENT", fields=("RECORDNO",)))
        assert client.stats.logins == 1


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001])
def test_read_by_query_pages_through_every_record_once(gateway, company_factory, size):
    company_factory("ACME", sizes={"APBILL": size})
    with gateway.client("ACME") as client:
        got = recordnos(client.read_by_query("APBILL", fields=("RECORDNO", "WHENMODIFIED"), page_size=1000))
        assert got == list(range(1, size + 1))
        # One login, then one call per page of 1000 (readByQuery + readMore), and never a page twice.
        assert client.stats.requests == 1 + max(1, -(-size // 1000))


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001])
def test_query_offset_paging(gateway, company_factory, size):
    company_factory("ACME", sizes={"APBILL": size})
    with gateway.client("ACME") as client:
        got = recordnos(client.query("APBILL", fields=["RECORDNO", "VENDORID"], page_size=500,
                                     order_by=[("RECORDNO", "asc")]))
        assert got == list(range(1, size + 1))
        assert client.stats.requests == 1 + max(1, -(-size // 500))


def test_250000_records_stream_over_loopback(live_server, company_factory):
    from tests.integration.conftest import Gateway

    company_factory("BIG", sizes={"APBILL": 250_000})
    gateway = Gateway(live_server.url + settings.SIMULATOR_GATEWAY_PATH, None, "loopback")
    with gateway.client("BIG") as client:
        count, last, ok = 0, 0, True
        for record in client.read_by_query("APBILL", fields=("RECORDNO", "TOTALDUE"), page_size=1000):
            recordno = int(record["RECORDNO"])
            ok = ok and recordno == last + 1
            last, count = recordno, count + 1
        assert (count, last, ok) == (250_000, 250_000, True)
        assert client.stats.requests == 1 + 250


def test_query_filters_and_orders(gateway, company_factory):
    company_factory("ACME", sizes={"APBILL": 300})
    with gateway.client("ACME") as client:
        records = list(client.query(
            "APBILL", fields=["RECORDNO", "STATE", "WHENMODIFIED"],
            filter=filters.And(filters.GreaterThan("RECORDNO", "100"), filters.LessThanOrEqual("RECORDNO", "200"),
                         filters.In("STATE", ["Posted", "Paid"])),
            order_by=[("RECORDNO", "desc")]))
        numbers = recordnos(records)
        assert numbers == sorted(numbers, reverse=True)
        assert numbers and all(100 < n <= 200 for n in numbers)
        assert {r["STATE"] for r in records} <= {"Posted", "Paid"}
        page = client.query_page("APBILL", fields=["RECORDNO"], page_size=1)
        assert page.total_count == 300 and page.num_remaining == 299 and len(page.records) == 1


def test_keyset_query_on_whenmodified_sees_modified_records(gateway, company_factory):
    built = company_factory("ACME", sizes={"APBILL": 50})
    with gateway.client("ACME") as client:
        newest = list(client.query("APBILL", fields=["RECORDNO", "WHENMODIFIED"],
                                   order_by=[("WHENMODIFIED", "desc"), ("RECORDNO", "desc")], limit=1))[0]
        modify_record(built.company, "APBILL", 7, {"DESCRIPTION": "changed"})
        delete_record(built.company, "APBILL", 8)
        changed = list(client.query(
            "APBILL", fields=["RECORDNO", "DESCRIPTION"],
            filter=filters.GreaterThan("WHENMODIFIED", newest["WHENMODIFIED"])))
        assert [(r["RECORDNO"], r["DESCRIPTION"]) for r in changed] == [("7", "changed")]
        assert 8 not in recordnos(client.read_by_query("APBILL", fields=("RECORDNO",)))


def test_read_and_read_by_name(gateway, company_factory):
    company_factory("ACME")
    with gateway.client("ACME") as client:
        departments = client.read("DEPARTMENT", keys=[1, 2], fields=("RECORDNO", "DEPARTMENTID"))
        assert recordnos(departments) == [1, 2]
        assert client.read("DEPARTMENT", keys=[999_999]) == []
        me = client.read_by_name("USERINFO", names=["ws_connect"])
        assert me[0]["LOGINID"] == "ws_connect" and me[0]["ADMIN"] == "Full"


def test_get_user_permissions_lists_the_roles_rights(gateway, company_factory):
    company_factory("ACME")
    with gateway.client("ACME") as client:
        permissions = {(p.application, p.policy): p.rights for p in client.get_user_permissions("ws_connect")}
    assert "View" in permissions[("Accounts Payable", "Bills")]
    assert {"View", "Edit"} <= permissions[("Company", "Employees")]


def test_get_list_expense_summaries_pages(gateway, company_factory):
    company_factory("ACME", sizes={"EXPENSEREPORTBATCH": 23})
    with gateway.client("ACME") as client:
        batches = list(client.get_list("expensereportbatch", page_size=10))
    assert len(batches) == 23
    assert client.stats.requests == 1 + 3


def test_update_deprovisions_and_reactivates_idempotently(gateway, company_factory):
    built = company_factory("ACME")
    SimUser.objects.create(company=built.company, login_id="jdoe", first_name="J", last_name="Doe",
                           email="j@example.com", recordno=5001, status="active")
    with gateway.client("ACME") as client:
        client.update("USERINFO", {"LOGINID": "jdoe", "STATUS": "inactive"}, control_id="deprov-jdoe-1")
        assert client.read_by_name("USERINFO", names=["jdoe"])[0]["STATUS"] == "inactive"
        # The same control id again is refused by the gateway as already done, never applied twice.
        with pytest.raises(errors.DuplicateRequest):
            client.update("USERINFO", {"LOGINID": "jdoe", "STATUS": "inactive"}, control_id="deprov-jdoe-1")
        client.update("USERINFO", {"LOGINID": "jdoe", "STATUS": "active"}, control_id="react-jdoe-1")
        assert client.read_by_name("USERINFO", names=["jdoe"])[0]["STATUS"] == "active"
        employee = client.read("EMPLOYEE", keys=[3], fields=("EMPLOYEEID",))[0]
        client.update("EMPLOYEE", {"EMPLOYEEID": employee["EMPLOYEEID"], "STATUS": "inactive",
                                   "ENDDATE": "06/30/2026"}, control_id="deprov-emp-3")
        after = client.read("EMPLOYEE", keys=[3], fields=("STATUS", "ENDDATE"))[0]
        assert (after["STATUS"], after["ENDDATE"]) == ("inactive", "06/30/2026")
        with pytest.raises(errors.RecordError):
            client.update("USERINFO", {"LOGINID": "nobody", "STATUS": "inactive"}, control_id="deprov-nobody")


def test_an_update_whose_answer_is_lost_is_confirmed_by_reading_the_user_back(gateway, company_factory):
    built = company_factory("ACME")
    SimUser.objects.create(company=built.company, login_id="jdoe", first_name="J", last_name="Doe",
                           email="j@example.com", recordno=5001, status="active")
    with gateway.client("ACME") as client:
        client.get_api_session()
        # The simulator applies the update, then the connection drops part-way through the answer.
        set_fault(built.company, "drop", count=1)
        outcome = client.update_confirmed("USERINFO", {"LOGINID": "jdoe", "STATUS": "inactive"}, "deprov-jdoe-1")
        assert outcome.answer == "applied (confirmed by read-back)"
        assert outcome.attempts == 1 and len(outcome.lost_answers) == 1
        assert outcome.record["STATUS"] == "inactive"
    assert SimUser.objects.get(login_id="jdoe").status == "inactive"


def test_an_update_refused_by_a_524_before_it_ran_is_sent_again_after_reading_back(gateway, company_factory):
    built = company_factory("ACME")
    SimUser.objects.create(company=built.company, login_id="jdoe", first_name="J", last_name="Doe",
                           email="j@example.com", recordno=5001, status="active")
    with gateway.client("ACME") as client:
        client.get_api_session()
        set_fault(built.company, "http524", count=1)
        outcome = client.update_confirmed("USERINFO", {"LOGINID": "jdoe", "STATUS": "inactive"}, "deprov-jdoe-1")
        assert outcome.answer == "applied" and outcome.attempts == 2 and not outcome.confirmed_by_read_back
        assert client.stats.requests == 1 + 3  # login, update (524), read back (still active), update
    assert SimUser.objects.get(login_id="jdoe").status == "inactive"


# --- errors from each level ---------------------------------------------------------------

AUTH_CASES = [
    ({"subscribed": False}, errors.WebServicesNotSubscribed),
    ({"ip_filter": ["203.0.113.0/24"]}, errors.IPAddressRejected),
    ({"authorize_sender_id": False}, errors.SenderNotAuthorized),
    ({"needs_login_for_api": True}, errors.SenderNotAuthorized),
    ({"user_status": "inactive"}, errors.UserInactive),
    ({"user_status": "locked out"}, errors.UserLockedOut),
]


@pytest.mark.parametrize(("setup", "expected"), AUTH_CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_authentication_level_errors_are_typed_and_permanent(gateway, company_factory, setup, expected):
    company_factory("ACME", **setup)
    with gateway.client("ACME") as client, pytest.raises(expected) as caught:
        client.get_api_session()
    assert caught.value.level == "authentication" and caught.value.permanent
    assert caught.value.errorno == "XL03000006"
    assert client.stats.requests == 1  # permanent: not retried


def test_needs_login_for_api_is_flagged(gateway, company_factory):
    company_factory("ACME", needs_login_for_api=True)
    with gateway.client("ACME") as client, pytest.raises(errors.SenderNotAuthorized) as caught:
        client.get_api_session()
    assert caught.value.needs_login_for_api is True


def test_wrong_password_and_wrong_entity(gateway, company_factory):
    company_factory("ACME")
    with gateway.client("ACME", password="wrong-password") as client, pytest.raises(errors.LoginFailed) as caught:
        client.get_api_session()
    assert caught.value.level == "authentication"
    with gateway.client("ACME", entity_id="E999") as client, pytest.raises(errors.InvalidEntity):
        client.get_api_session()
    with gateway.client("ACME", entity_id="E100") as client:
        assert client.get_api_session().location_id == "E100"


def test_wrong_password_http_401_style(gateway, company_factory):
    company_factory("ACME", login_failure_style="http401")
    with gateway.client("ACME", password="wrong-password") as client, pytest.raises(errors.LoginFailed) as caught:
        client.get_api_session()
    assert caught.value.http_status == 401 and caught.value.errorno == "XMLGW_JPP0002"


def test_control_level_errors(gateway, company_factory):
    company_factory("ACME")
    with gateway.client("ACME", sender_password="not-our-sender-password") as client:
        with pytest.raises(errors.SenderCredentialsInvalid) as caught:
            client.get_api_session()
    assert caught.value.level == "control" and caught.value.permanent
    with gateway.client("NO-SUCH-COMPANY") as client, pytest.raises(errors.CompanyNotFound) as caught:
        client.get_api_session()
    assert caught.value.http_status == 400 and caught.value.errorno == "GW-0011"


def test_result_level_permission_denied_after_a_successful_login(gateway, company_factory):
    company_factory("ACME", permissions=without(CONNECT_PERMISSIONS, "Bills"))
    with gateway.client("ACME") as client:
        client.get_api_session()
        assert list(client.read_by_query("DEPARTMENT", fields=("RECORDNO",)))
        with pytest.raises(errors.PermissionDenied) as caught:
            list(client.read_by_query("APBILL", fields=("RECORDNO",)))
        with pytest.raises(errors.UnknownObject):
            client.query_page("NOSUCHOBJECT", fields=["RECORDNO"])
    assert caught.value.level == "result" and caught.value.errorno == "PL04000005"
    assert (caught.value.operation, caught.value.object_name.lower()) == ("READ_BY_QUERY", "apbill")


# --- sessions, retries, limits ------------------------------------------------------------

def test_expired_session_logs_in_again_once(gateway, company_factory, caplog):
    built = company_factory("ACME")
    # The simulator words a refused session in a way no phrase of the client knows.
    assert not isinstance(errors.classify("authentication", [errors.ErrorDetail(*SESSION_REFUSED_ERROR)]),
                          errors.SessionExpired)
    with gateway.client("ACME") as client:
        list(client.read_by_query("DEPARTMENT", fields=("RECORDNO",)))
        first = client.get_api_session()
        set_fault(built.company, "expire_session", count=1)
        with caplog.at_level(logging.INFO, logger="connector.intacct"):
            assert len(list(client.read_by_query("LOCATION", fields=("RECORDNO",)))) == 5
        assert client.stats.logins == 2 and client.stats.retries == 0
        assert client.get_api_session().session_id != first.session_id
    assert "refused the session during readByQuery" in caplog.text


def test_expired_session_of_a_user_deactivated_since_raises_the_login_error(gateway, company_factory):
    company_factory("ACME")
    with gateway.client("ACME") as client:
        list(client.read_by_query("DEPARTMENT", fields=("RECORDNO",)))
        SimUser.objects.filter(login_id="ws_connect").update(status="inactive")
        with pytest.raises(errors.UserInactive) as caught:
            list(client.read_by_query("LOCATION", fields=("RECORDNO",)))
        assert caught.value.level == "authentication" and caught.value.permanent
        assert client.stats.logins == 1  # the session call, then one login that failed


def test_transient_5xx_is_retried_with_backoff_then_succeeds(gateway, company_factory):
    built = company_factory("ACME")
    with gateway.client("ACME") as client:
        client.get_api_session()
        set_fault(built.company, "http5xx", count=2, status=502)
        assert len(list(client.read_by_query("LOCATION", fields=("RECORDNO",)))) == 5
        assert client.stats.retries == 2
    assert len(gateway.sleeps) == 2 and all(0 <= s <= 0.05 for s in gateway.sleeps)


@pytest.mark.parametrize("kind", ["http5xx", "http429", "malformed", "drop"])
def test_retries_are_bounded(gateway, company_factory, kind):
    built = company_factory("ACME")
    with gateway.client("ACME") as client:
        client.get_api_session()
        set_fault(built.company, kind, count=50)
        with pytest.raises(errors.IntacctError) as caught:
            client.query_page("LOCATION", fields=["RECORDNO"])
        assert not caught.value.permanent
        assert client.stats.requests == 1 + 4  # the policy's four attempts, no more


def test_524_on_a_write_is_never_resent_blindly(gateway, company_factory):
    built = company_factory("ACME")
    with gateway.client("ACME") as client:
        client.get_api_session()
        set_fault(built.company, "http524", count=1)
        outcome = client.update_confirmed("USERINFO", {"LOGINID": "ws_connect", "STATUS": "active"}, "w-524")
        # The user is already active: reading back settles it and the update is not sent again.
        assert outcome.confirmed_by_read_back and "GatewayUnavailable" in outcome.lost_answers[0]
        assert client.stats.requests == 3 and client.stats.retries == 0


def test_more_requests_than_the_limit_get_429_and_the_simulator_counts_them(live_server, company_factory):
    from tests.integration.conftest import Gateway

    gateway = Gateway(live_server.url + settings.SIMULATOR_GATEWAY_PATH, None, "loopback")
    built = company_factory("ACME")
    set_fault(built.company, "slow", count=3, delay_ms=600)
    outcomes: list[object] = []

    def one() -> None:
        with gateway.client("ACME", retry=RetryPolicy(max_attempts=1)) as client:
            try:
                client.get_api_session()
                outcomes.append("ok")
            except errors.RateLimited as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = inflight_stats("ACME")
    assert stats["max_in_flight"] == built.company.concurrency_limit == 2
    assert outcomes.count("ok") == 2 and sum(isinstance(o, errors.RateLimited) for o in outcomes) == 1


# --- safety --------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<response><control><status>success</status></control><operation><authentication><status>success</status>
</authentication><result><status>success</status><function>getAPISession</function><controlid>x</controlid>
<data><api><sessionid>&lol9;</sessionid><endpoint>&lol9;</endpoint></api></data></result></operation></response>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<response><control><status>success</status></control><operation><authentication><status>success</status>
</authentication><result><status>success</status><function>getAPISession</function><controlid>x</controlid>
<data><api><sessionid>&xxe;</sessionid><endpoint>http://127.0.0.1/</endpoint></api></data></result></operation>
</response>"""


@pytest.fixture
def hostile_server():
    """A real loopback HTTP server that answers every POST with the body the test chose."""
    body = {"value": b""}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body["value"])))
            self.end_headers()
            self.wfile.write(body["value"])

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/ia/xml/xmlgw.phtml", body
    server.shutdown()


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
def test_hostile_xml_over_loopback_is_refused_fast(hostile_server, payload):
    url, body = hostile_server
    body["value"] = payload
    config = ClientConfig(endpoint_url=url, allowed_endpoints=(url,), sender_id="S", sender_password="sp",
                          retry=RetryPolicy(max_attempts=1))
    started = time.monotonic()
    with IntacctClient(config, Credentials("C", "U", "pw")) as client, pytest.raises(errors.UnsafeResponse):
        client.get_api_session()
    assert time.monotonic() - started < 1.0


def test_20_mb_of_junk_inside_data_over_loopback_is_refused_after_reading_a_few_mb(hostile_server):
    url, body = hostile_server
    body["value"] = (b"<response><control><status>success</status></control><operation><authentication>"
                     b"<status>success</status></authentication><result><status>success</status><function>"
                     b"getAPISession</function><controlid>f</controlid><data><api><sessionid>S1</sessionid>"
                     b"<endpoint>" + url.encode() + b"</endpoint></api></data></result></operation></response>")
    config = ClientConfig(endpoint_url=url, allowed_endpoints=(url,), sender_id="S", sender_password="sp",
                          retry=RetryPolicy(max_attempts=1))
    with IntacctClient(config, Credentials("C", "U", "pw")) as client:
        client.get_api_session()
        body["value"] = (b"<response><control><status>success</status></control><operation><authentication>"
                         b"<status>success</status></authentication><result><status>success</status>"
                         b"<function>query</function><controlid>f</controlid><data listtype=\"APBILL\" count=\"0\">"
                         + b"<x/>" * (5 * 1024 * 1024) + b"</data></result></operation></response>")
        started = time.monotonic()
        with pytest.raises(errors.UnexpectedContent):
            client.query_page("APBILL", fields=["RECORDNO"])
        assert time.monotonic() - started < 5
        # Up to 4 MB (an ordinary page is ~1 MB) is received before parsing starts: refused long before the end.
        assert client.stats.bytes_received < 6 * 1024 * 1024


def test_session_endpoint_outside_the_allowlist_gets_no_credentials(hostile_server):
    url, body = hostile_server
    body["value"] = (b"<response><control><status>success</status></control><operation><authentication>"
                     b"<status>success</status></authentication><result><status>success</status><function>"
                     b"getAPISession</function><controlid>f</controlid><data><api><sessionid>S1</sessionid>"
                     b"<endpoint>http://evil.example.net/ia/xml/xmlgw.phtml</endpoint></api></data></result>"
                     b"</operation></response>")
    config = ClientConfig(endpoint_url=url, allowed_endpoints=(url,), sender_id="S", sender_password="sp")
    with IntacctClient(config, Credentials("C", "U", "pw")) as client, pytest.raises(errors.EndpointNotAllowed):
        list(client.read_by_query("APBILL"))
    assert client.stats.requests == 1


def test_no_secret_in_any_log_line_or_exception_text(gateway, company_factory, caplog):
    built = company_factory("ACME", permissions=without(CONNECT_PERMISSIONS, "Bills"))
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with gateway.client("ACME") as client:
        session_id = client.get_api_session().session_id
        set_fault(built.company, "http5xx", count=1)
        list(client.read_by_query("DEPARTMENT"))
        for call in (lambda: list(client.read_by_query("APBILL")),
                     lambda: client.query_page("NOSUCHOBJECT", fields=["RECORDNO"])):
            try:
                call()
            except errors.IntacctError as exc:
                texts += [str(exc), repr(exc), repr(exc.__dict__)]
    with gateway.client("ACME", password="another-secret-pw") as client:
        try:
            client.get_api_session()
        except errors.IntacctError as exc:
            texts += [str(exc), repr(exc), repr(exc.__dict__)]
    texts += [r.getMessage() for r in caplog.records]
    assert len(caplog.records) > 3 and len(texts) > 6
    everything = "\n".join(texts)
    for secret in (DEMO_PASSWORD, "another-secret-pw", settings.INTACCT_SENDER_PASSWORD, session_id):
        assert secret not in everything
