"""Fault injection of each kind, and uniqueid duplicate detection."""

from __future__ import annotations

import time

import pytest

from simulator.faults import clear_faults, set_fault
from simulator.gateway import SESSION_REFUSED_ERROR
from simulator.models import ExecutedControlId
from tests.simulator.conftest import text

pytestmark = pytest.mark.django_db
SESSION_FN = '<function controlid="f1"><getAPISession/></function>'


def test_slow_response_delays_then_answers(gw, company):
    set_fault(company, "slow", count=1, delay_ms=300)
    started = time.perf_counter()
    response, doc = gw(SESSION_FN)
    assert time.perf_counter() - started >= 0.3
    assert response.status_code == 200 and text(doc, "//result/status") == "success"
    # The header reports the simulator's own work, not the injected delay.
    assert float(response["X-Simulator-Time-Ms"]) < 300
    started = time.perf_counter()
    gw(SESSION_FN)
    assert time.perf_counter() - started < 0.3


@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_5xx_for_next_n_requests(client, gw, company, status):
    set_fault(company, "http5xx", count=2, status=status)
    from tests.simulator.conftest import envelope, post

    for _ in range(2):
        response = post(client, envelope(SESSION_FN))
        assert response.status_code == status
        assert response["Content-Type"].startswith("text/plain")
    response, _ = gw(SESSION_FN)
    assert response.status_code == 200
    company.refresh_from_db()
    assert company.faults == []


def test_http_524_html(client, company):
    from tests.simulator.conftest import envelope, post

    set_fault(company, "http524", count=1)
    response = post(client, envelope(SESSION_FN))
    assert response.status_code == 524
    assert response["Content-Type"].startswith("text/html")
    assert b"524" in response.content


def test_http_429(gw, company):
    set_fault(company, "http429", count=1)
    response, doc = gw(SESSION_FN)
    assert response.status_code == 429
    assert text(doc, "//errormessage/error/errorno") == "GW-0010"


def test_malformed_xml_is_truncated(client, company):
    from lxml import etree

    from tests.simulator.conftest import envelope, post

    set_fault(company, "malformed", count=1)
    response = post(client, envelope(SESSION_FN))
    assert response.status_code == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content)


def test_dropped_connection_in_process_ends_the_body_early(client, company):
    from lxml import etree

    from tests.simulator.conftest import envelope, post

    set_fault(company, "drop", count=1)
    response = post(client, envelope(SESSION_FN))
    assert response.streaming
    received = b"".join(response.streaming_content)
    assert 0 < len(received) < int(response["Content-Length"])
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(received)


def test_expire_session_fault_only_hits_session_requests(gw, company):
    _, doc = gw(SESSION_FN)
    session = text(doc, "//api/sessionid")
    set_fault(company, "expire_session", count=1)
    _, doc = gw(SESSION_FN)  # a login request: not consumed
    assert text(doc, "//authentication/status") == "success"
    _, doc = gw(SESSION_FN, auth=f"<sessionid>{session}</sessionid>")
    assert text(doc, "//operation/errormessage/error/description2") == SESSION_REFUSED_ERROR[2]
    company.refresh_from_db()
    assert company.faults == []


def test_rate_faults_are_repeatable(client, company):
    from tests.simulator.conftest import envelope, post

    def run() -> list[int]:
        set_fault(company, "http5xx", rate=0.5, status=503, seed=42)
        statuses = [post(client, envelope(SESSION_FN)).status_code for _ in range(20)]
        clear_faults(company)
        return statuses

    first, second = run(), run()
    assert first == second
    assert 0 < first.count(503) < 20
    company.refresh_from_db()
    assert company.faults == []


def test_fault_arguments_are_checked(company):
    with pytest.raises(ValueError):
        set_fault(company, "nonsense", count=1)
    with pytest.raises(ValueError):
        set_fault(company, "slow")
    with pytest.raises(ValueError):
        set_fault(company, "slow", count=1, rate=0.5)


UPDATE = (
    '<function controlid="{cid}"><update><EMPLOYEE><EMPLOYEEID>E00001</EMPLOYEEID><STATUS>inactive</STATUS>'
    "</EMPLOYEE></update></function>"
)


def test_uniqueid_refuses_a_repeated_completed_controlid(gw, company):
    _, doc = gw(UPDATE.format(cid="emp-1-off"), uniqueid=True)
    assert text(doc, "//result/status") == "success"
    _, doc = gw(UPDATE.format(cid="emp-1-off"), uniqueid=True)
    error = doc.xpath("//result/errormessage/error")[0]
    assert text(doc, "//result/status") == "failure"
    assert (text(error, "errorno"), text(error, "description"), text(error, "description2")) == (
        "XL03000011",
        "Duplicate request",
        "A function with control ID 'emp-1-off' has already been executed for this company.",
    )
    # Without uniqueid the same controlid runs again.
    _, doc = gw(UPDATE.format(cid="emp-1-off"))
    assert text(doc, "//result/status") == "success"


def test_failed_function_is_not_remembered_for_uniqueid(gw, company):
    bad = UPDATE.format(cid="c1").replace("inactive", "bogus")
    _, doc = gw(bad, uniqueid=True)
    assert text(doc, "//result/status") == "failure"
    assert not ExecutedControlId.objects.filter(controlid="c1").exists()
    _, doc = gw(UPDATE.format(cid="c1"), uniqueid=True)
    assert text(doc, "//result/status") == "success"


def test_rolled_back_transaction_forgets_controlids(gw, company):
    bad = UPDATE.format(cid="t2").replace("inactive", "bogus")
    gw(UPDATE.format(cid="t1") + bad, uniqueid=True, transaction=True)
    assert ExecutedControlId.objects.count() == 0


def test_offline_fault_fails_every_function(gw, company):
    set_fault(company, "offline", count=1)
    response, doc = gw(SESSION_FN + SESSION_FN.replace("f1", "f2"))
    assert response.status_code == 200
    assert text(doc, "//authentication/status") == "success"
    for result in doc.xpath("//result"):
        error = result.xpath("errormessage/error")[0]
        assert text(result, "status") == "failure"
        assert [text(error, t) for t in ("errorno", "description", "description2", "correction")] == [
            "XL03000012",
            "Service unavailable",
            "The Service is Temporarily Off-line",
            "Please Try Again Later",
        ]
    _, doc = gw(SESSION_FN)
    assert text(doc, "//result/status") == "success"


def test_dropped_connection_over_real_http(live_server, transactional_db):
    """Over a socket the client sees the body end early (not a hang, not a complete document)."""
    import httpx

    from simulator.demo import build_company
    from tests.simulator.conftest import GATEWAY, envelope

    demo = build_company("TEST-CO", sizes={"APBILL": 100})
    set_fault(demo.company, "drop", count=1)
    url = live_server.url + GATEWAY
    body = envelope(
        '<function controlid="q"><readByQuery><object>APBILL</object><fields>*</fields><query/>'
        "<pagesize>100</pagesize></readByQuery></function>"
    )
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(url, content=body.encode(), timeout=10)
    response = httpx.post(url, content=body.encode(), timeout=10)
    assert response.status_code == 200 and b"</response>" in response.content


def test_uniqueid_defaults_to_true_when_the_request_leaves_it_out(client, company):
    """The documented default: without <uniqueid>, a completed function controlid is refused when repeated."""
    from tests.simulator.conftest import envelope, post, tree

    body = envelope(UPDATE.format(cid="no-flag-1")).replace("<uniqueid>false</uniqueid>", "")
    first = tree(post(client, body))
    assert text(first, "//result/status") == "success"
    assert text(first, "/response/control/uniqueid") == "true"
    again = tree(post(client, body))
    assert text(again, "//result/errormessage/error/errorno") == "XL03000011"
