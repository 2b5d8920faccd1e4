"""Our client against the simulator's documented shapes (issue 12 §1): it follows a session endpoint on
another host within its allowlist, reads gzip answers, and types the new error shapes."""
from __future__ import annotations

import httpx
import pytest
from django.conf import settings

from connector.intacct import errors
from simulator.faults import set_fault


class RecordingTransport(httpx.HTTPTransport):
    """Real HTTP, remembering each request's URL and each answer's Content-Encoding."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.encodings: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        response = super().handle_request(request)
        self.encodings.append(response.headers.get("content-encoding", ""))
        return response


@pytest.fixture
def loopback(live_server, transactional_db):
    """The live simulator reached as http://localhost:PORT, and the same server as http://127.0.0.1:PORT."""
    called = live_server.url + settings.SIMULATOR_GATEWAY_PATH
    assert called.startswith("http://localhost:")
    other = called.replace("http://localhost:", "http://127.0.0.1:")
    return called, other


def test_session_endpoint_on_another_host_is_followed_within_the_allowlist(loopback, gateway_for, company_factory):
    called, other = loopback
    company_factory("ACME", session_endpoint_host="127.0.0.1")
    transport = RecordingTransport()
    with gateway_for(called, allowed_endpoints=(called, other), transport=transport).client("ACME") as client:
        session = client.get_api_session()
        assert session.endpoint == other
        assert len(list(client.read_by_query("LOCATION", fields=("RECORDNO",)))) == 5
    assert transport.urls == [called, other]


def test_session_endpoint_outside_the_allowlist_is_refused(loopback, gateway_for, company_factory):
    called, other = loopback
    company_factory("ACME", session_endpoint_host="127.0.0.1")
    transport = RecordingTransport()
    with gateway_for(called, allowed_endpoints=(called,), transport=transport).client("ACME") as client:
        with pytest.raises(errors.EndpointNotAllowed):
            client.get_api_session()
    assert transport.urls == [called]  # the session was never used anywhere


def test_answers_come_gzip_encoded_and_are_read(loopback, gateway_for, company_factory):
    called, _ = loopback
    company_factory("ACME")
    transport = RecordingTransport()
    with gateway_for(called, transport=transport).client("ACME") as client:
        records = list(client.read_by_query("APBILL", fields=("RECORDNO", "TOTALENTERED", "RECORD_URL")))
    assert len(records) == 1001
    assert set(transport.encodings) == {"gzip"}
    assert all(r["RECORD_URL"].startswith("https://") for r in records)


def test_expired_demo_company_is_a_permanent_control_error(gateway, company_factory):
    company_factory("ACME", demo_expired=True)
    with gateway.client("ACME") as client, pytest.raises(errors.IntacctError) as caught:
        client.get_api_session()
    assert caught.value.level == "control" and caught.value.permanent
    assert caught.value.errorno == "PL04000055"
    assert caught.value.description2 == "This company is a demo company and has expired."


@pytest.mark.parametrize("status", [503, 520])
def test_cdn_html_error_pages_are_retried(gateway, company_factory, status):
    built = company_factory("ACME")
    with gateway.client("ACME") as client:
        client.get_api_session()
        set_fault(built.company, "html_error", count=1, status=status)
        assert len(list(client.read_by_query("LOCATION", fields=("RECORDNO",)))) == 5
        assert client.stats.retries == 1


def test_cdn_403_page_is_an_error_not_a_crash(gateway, company_factory):
    built = company_factory("ACME")
    with gateway.client("ACME") as client:
        client.get_api_session()
        set_fault(built.company, "html_error", count=20, status=403)
        with pytest.raises(errors.InvalidResponse) as caught:
            client.query_page("LOCATION", fields=["RECORDNO"])
    # An outage in front of the gateway, not a refused read: tried again, then transient.
    assert caught.value.http_status == 403 and not caught.value.permanent


def test_stacked_update_errors_are_one_record_error(gateway, company_factory):
    company_factory("ACME")
    with gateway.client("ACME") as client, pytest.raises(errors.RecordError) as caught:
        client.update("EMPLOYEE", {"EMPLOYEEID": "E00001", "STATUS": "bogus"}, control_id="bad-status")
    assert [e.errorno for e in caught.value.errors] == ["BL01001973", "BL01001973"]
    assert caught.value.description2.startswith("Invalid value 'bogus' for field STATUS. [Support ID: ")


def test_query_of_an_unknown_object_is_typed(gateway, company_factory):
    company_factory("ACME")
    with gateway.client("ACME") as client, pytest.raises(errors.UnknownObject) as caught:
        client.query_page("SODOCUMENTPARAMS", fields=["RECORDNO"])
    assert caught.value.errorno == "XL03000009"


def test_query_reads_dotted_fields_as_dotted_elements(gateway, company_factory):
    company_factory("ACME")
    with gateway.client("ACME") as client:
        page = client.query_page("EMPLOYEE", fields=["RECORDNO", "PERSONALINFO.FIRSTNAME", "CONTACT.LASTNAME"])
        records = list(page.records)
    assert records and all(r["PERSONALINFO.FIRSTNAME"] and r["CONTACT.LASTNAME"] for r in records)
