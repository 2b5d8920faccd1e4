"""Sessions: one login, reuse on the returned endpoint, allowlist, one re-login on expiry, threads."""
from __future__ import annotations

import threading
import time

import httpx
import pytest

from connector.intacct import ClientConfig, Credentials, IntacctClient, endpoint_allowed, errors

from .fakes import (
    ENDPOINT,
    SESSION_ENDPOINT,
    SESSION_ID,
    SESSION_ID_2,
    Gateway,
    auth_failure,
    control_failure,
    envelope,
    error_xml,
    make_client,
    result_xml,
    session_body,
    xml_response,
)

READ_EMPTY = envelope(result_xml("read", '<data listtype="USERINFO" count="0"/>'))
INVALID_SESSION = auth_failure(error_xml("XL03000006", "", "Invalid session"))


def test_session_is_cached_and_its_repr_hides_the_id() -> None:
    gateway = Gateway(script=[READ_EMPTY, READ_EMPTY])
    with make_client(gateway) as client:
        session = client.get_api_session()
        assert client.get_api_session() is session
        client.read("USERINFO", [1])
        client.read("USERINFO", [2])
        assert client.stats.logins == 1
    assert session.session_id == SESSION_ID
    assert session.endpoint == SESSION_ENDPOINT
    assert session.location_id is None
    assert session.expires_at is not None and session.expires_at.isoformat() == "2024-05-01T18:00:00-07:00"
    assert SESSION_ID not in repr(session)
    assert len(gateway.logins) == 1


def test_expired_session_logs_in_again_exactly_once_and_retries() -> None:
    gateway = Gateway(script=[INVALID_SESSION, READ_EMPTY],
                      login_script=[session_body(SESSION_ID), session_body(SESSION_ID_2)])
    with make_client(gateway) as client:
        assert client.read("USERINFO", [1]) == []
        assert client.stats.logins == 2
        assert client.stats.retries == 0
    assert [c.session_id for c in gateway.calls] == [SESSION_ID, SESSION_ID_2]
    assert len(gateway.logins) == 2


# However Intacct words a refused session, the client must not care: none of these texts is relied on.
REFUSED_SESSION_ANSWERS = {
    "invalid session": INVALID_SESSION,
    "wording we never match": auth_failure(error_xml("XL03000006", "", "The session has timed out. Start over.")),
    "wrong-password wording": auth_failure(error_xml("XL03000006", "", "Sign-in information is incorrect")),
    "no words at all": auth_failure(error_xml("XL03000099")),
    "bare authentication failure": auth_failure(),
    "HTTP 401 with XML": xml_response(control_failure(error_xml(
        "XMLGW_JPP0002", "Sign-in information is incorrect. Please check your request.")), 401),
    "bare HTTP 401": httpx.Response(401, text="Unauthorized"),
}


@pytest.mark.parametrize("answer", REFUSED_SESSION_ANSWERS.values(), ids=REFUSED_SESSION_ANSWERS.keys())
def test_any_refused_session_is_recovered_by_one_new_login_whatever_the_words(answer) -> None:
    gateway = Gateway(script=[answer, READ_EMPTY], login_script=[session_body(SESSION_ID), session_body(SESSION_ID_2)])
    with make_client(gateway) as client:
        assert client.read("USERINFO", [1]) == []
        assert client.stats.logins == 2 and client.stats.retries == 0
        assert client.get_api_session().session_id == SESSION_ID_2
    assert [c.session_id for c in gateway.calls] == [SESSION_ID, SESSION_ID_2]


@pytest.mark.parametrize(("login_answer", "expected"), [
    (auth_failure(error_xml("XL03000006", "", "Sign-in information is incorrect")), errors.LoginFailed),
    (auth_failure(error_xml("XL03000006", "", "Sign-in information is incorrect. The user 'ws_user' is "
                                              "inactive.")), errors.UserInactive),
    (control_failure(error_xml("XL03000006", "", "Incorrect Intacct XML Partner ID or password.")),
     errors.SenderCredentialsInvalid),
    (control_failure(error_xml("PL04000055", "", "This company is a demo company and has expired.")),
     errors.DemoCompanyExpired),
])
def test_when_the_new_login_fails_its_own_error_is_raised(login_answer, expected) -> None:
    gateway = Gateway(script=[REFUSED_SESSION_ANSWERS["wording we never match"], READ_EMPTY],
                      login_script=[session_body(SESSION_ID), login_answer])
    with make_client(gateway) as client, pytest.raises(errors.IntacctError) as info:
        client.read("USERINFO", [1])
    assert type(info.value) is expected
    assert len(gateway.logins) == 2 and len(gateway.calls) == 1


def test_when_the_new_login_cannot_get_through_the_transient_error_is_raised() -> None:
    gateway = Gateway(script=[INVALID_SESSION, READ_EMPTY],
                      login_script=[session_body(SESSION_ID)] + [httpx.Response(502, text="bad gateway")] * 6)
    with make_client(gateway) as client, pytest.raises(errors.GatewayUnavailable) as info:
        client.read("USERINFO", [1])
    assert info.value.permanent is False and len(gateway.logins) == 7


def test_session_still_invalid_after_one_relogin_raises() -> None:
    gateway = Gateway(script=[INVALID_SESSION, INVALID_SESSION, READ_EMPTY])
    with make_client(gateway) as client, pytest.raises(errors.SessionExpired) as info:
        client.read("USERINFO", [1])
    assert len(gateway.logins) == 2 and len(gateway.calls) == 2
    assert info.value.permanent is False


def test_session_endpoint_outside_allowlist_is_refused_before_sending() -> None:
    gateway = Gateway(script=[READ_EMPTY],
                      login_script=[session_body(endpoint="https://evil.example.com/ia/xml/xmlgw.phtml")])
    with make_client(gateway) as client, pytest.raises(errors.EndpointNotAllowed):
        client.read("USERINFO", [1])
    assert [r.url for r in gateway.received] == [ENDPOINT]


@pytest.mark.parametrize("url", [
    "http://api.intacct.com/ia/xml/xmlgw.phtml",
    "https://intacct.com.evil.example/ia/xml/xmlgw.phtml",
    "https://evilintacct.com/ia/xml/xmlgw.phtml",
    "https://user@evil.example/@api.intacct.com/",
])
def test_configured_endpoint_outside_allowlist_is_refused(url: str) -> None:
    gateway = Gateway()
    with pytest.raises(errors.EndpointNotAllowed):
        make_client(gateway, endpoint_url=url)
    assert gateway.received == []


def test_allowlist_rules() -> None:
    assert endpoint_allowed("https://api.intacct.com/ia/xml/xmlgw.phtml")
    assert endpoint_allowed("https://NA12.Intacct.com/ia/xml/xmlgw.phtml")
    assert endpoint_allowed("https://intacct.com/x")
    assert not endpoint_allowed("https://api.intacct.com.attacker.net/")
    assert not endpoint_allowed("http://testserver/simulator/ia/xml/xmlgw.phtml")
    assert endpoint_allowed("http://testserver/simulator/ia/xml/xmlgw.phtml",
                            ("http://testserver/simulator/ia/xml/xmlgw.phtml",))
    assert not endpoint_allowed("http://testserver/other", ("http://testserver/simulator/ia/xml/xmlgw.phtml",))


def test_explicitly_allowed_endpoint_works() -> None:
    sim = "http://testserver/simulator/ia/xml/xmlgw.phtml"
    gateway = Gateway(script=[READ_EMPTY], login_script=[session_body(endpoint=sim)])
    with make_client(gateway, endpoint_url=sim, allowed_endpoints=(sim,)) as client:
        client.read("USERINFO", [1])
    assert [r.url for r in gateway.received] == [sim, sim]


def test_two_threads_share_one_login_and_the_request_slot_wraps_every_request() -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    class Slot:
        def __enter__(self) -> None:
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)

        def __exit__(self, *exc: object) -> None:
            nonlocal in_flight
            with lock:
                in_flight -= 1

    def handler(request: httpx.Request) -> httpx.Response:
        body = request.read()
        time.sleep(0.01)
        if b"<login>" in body:
            return httpx.Response(200, content=session_body())
        return httpx.Response(200, content=READ_EMPTY)

    config = ClientConfig(sender_id="S", sender_password="sender-secret",  # noqa: S106 - test value
                          transport=httpx.MockTransport(handler), request_slot=Slot)
    results: list[object] = []
    with IntacctClient(config, Credentials("ACME", "ws_user", "user-secret")) as client:
        def work() -> None:
            for key in range(5):
                results.append(client.read("USERINFO", [key]))

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert client.stats.logins == 1
        assert client.stats.requests == 11
    assert results == [[]] * 10
    assert peak >= 1 and in_flight == 0
