"""SSRF: no setting and no input sends our credentials anywhere but the allowed Intacct endpoint.

A real loopback "evil" HTTP server records every request it receives; each test drives the product's own
path (the Connect form, the validation service the worker runs, the sync service) and asserts that the
evil server never heard from us, whatever the admin typed, whatever the configured endpoint, whatever a
hostile gateway answers (a session endpoint elsewhere, a redirect), whatever proxy the environment names.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest
from django.test import Client

from connector import clients, services, sync, validation
from connector.intacct import endpoint_allowed, errors
from connector.models import Connection, SyncRun, ValidationRun
from tests.conftest import PASSWORD

SECRET = "Ssrf-Secret-Pw-4411"


@dataclass
class Server:
    url: str
    requests: list = field(default_factory=list)
    answer: dict = field(default_factory=dict)  # status, headers, body for the next answers


@pytest.fixture
def evil() -> Iterator[Server]:
    yield from _serve()


@pytest.fixture
def hostile_gateway() -> Iterator[Server]:
    yield from _serve()


def _serve() -> Iterator[Server]:
    server_state = Server(url="")

    class Handler(BaseHTTPRequestHandler):
        def _any(self):
            length = int(self.headers.get("Content-Length", 0) or 0)
            body = self.rfile.read(length) if length else b""
            server_state.requests.append((self.command, self.path, dict(self.headers), body))
            answer = server_state.answer or {"status": 200, "headers": {}, "body": b""}
            self.send_response(answer["status"])
            for name, value in answer.get("headers", {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(answer["body"])))
            self.end_headers()
            self.wfile.write(answer["body"])

        do_GET = do_POST = do_PUT = do_CONNECT = _any  # noqa: N815 - http.server's naming

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.url = f"http://127.0.0.1:{server.server_port}/ia/xml/xmlgw.phtml"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server_state
    server.shutdown()
    server.server_close()


def session_answer(endpoint: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?><response><control><status>success</status></control>'
            "<operation><authentication><status>success</status><userid>ws_connect</userid>"
            "<companyid>ACME</companyid></authentication><result><status>success</status>"
            "<function>getAPISession</function><controlid>f1</controlid><data><api>"
            f"<sessionid>hostile-session-1</sessionid><endpoint>{endpoint}</endpoint><locationid></locationid>"
            "</api></data></result></operation></response>").encode()


@pytest.fixture
def no_broker():
    """Validation retries are scheduled through the broker; here they are only recorded."""
    with mock.patch("connector.tasks.connection_validate_later.apply_async"), \
            mock.patch("connector.tasks.connection_validate.apply_async"), \
            mock.patch("connector.tasks.connection_validate.delay"), mock.patch("connector.tasks.sync_run.delay"):
        yield


def _validate_latest() -> ValidationRun:
    run = ValidationRun.objects.order_by("-id").first()
    assert run is not None
    validation.run_validation(run_id=run.id)  # what the worker runs
    run.refresh_from_db()
    return run


def _credentials(connection: Connection, **values) -> None:
    services.connection_set_credentials(connection=connection, company_id=values.get("company_id", "ACME"),
                                        user_id=values.get("user_id", "ws_connect"), password=SECRET,
                                        entity_id=values.get("entity_id", ""), by=None)


def _fast(settings) -> None:
    settings.INTACCT_MAX_RETRIES = 0
    settings.INTACCT_RETRY_BUDGET_SECONDS = 1
    settings.INTACCT_TIMEOUT_SECONDS = 5


# --- what an admin types ---------------------------------------------------------------------

HOSTILE_FIELDS = [
    {"company_id": "http://127.0.0.1:{port}/"},
    {"company_id": "ACME@127.0.0.1:{port}"},
    {"company_id": "//127.0.0.1:{port}/x"},
    {"entity_id": "http://127.0.0.1:{port}/ia/xml/xmlgw.phtml"},
    {"user_id": "ws_connect\r\nHost: 127.0.0.1:{port}"},
    {"company_id": "ACME\r\nX-Forward: 127.0.0.1:{port}"},
    {"entity_id": "E1</locationid><endpoint>http://127.0.0.1:{port}/</endpoint><locationid>"},
    {"company_id": "ACME]]><!DOCTYPE x [<!ENTITY e SYSTEM \"http://127.0.0.1:{port}/\">]>"},
]


@pytest.mark.parametrize("fields", HOSTILE_FIELDS, ids=lambda f: next(iter(f)) + ":" + next(iter(f.values()))[:12])
def test_connect_form_input_never_reaches_another_host(fields, evil, intacct_endpoint, organisation, settings,
                                                       no_broker, transactional_db):
    _fast(settings)
    port = evil.url.split(":")[2].split("/")[0]
    client = Client()
    assert client.login(username="alice", password=PASSWORD)
    data = {"company_id": "ACME", "user_id": "ws_connect", "password": SECRET, "entity_id": "",
            **{k: v.format(port=port) for k, v in fields.items()}}
    response = client.post("/organisations/acme/setup/step-6/", data)
    assert response.status_code in (200, 302)
    if response.status_code == 302:  # accepted as typed: the validation the worker runs goes to Intacct only
        run = _validate_latest()
        assert run.status in ValidationRun.FINISHED
    assert evil.requests == []


# --- what the operator configures -------------------------------------------------------------

@pytest.mark.parametrize("endpoint", [
    "http://127.0.0.1:{port}/ia/xml/xmlgw.phtml",
    "https://api.intacct.com.127.0.0.1.nip.io:{port}/",
    "https://api.intacct.com@127.0.0.1:{port}/",
    "https://127.0.0.1:{port}/.intacct.com/",
    "http://api.intacct.com/ia/xml/xmlgw.phtml",  # not https
    "file:///etc/passwd",
])
def test_an_endpoint_setting_outside_intacct_is_refused_without_the_simulator(endpoint, evil, organisation,
                                                                               settings, no_broker, db):
    """With the simulator off (production), only https://*.intacct.com is ever called."""
    port = evil.url.split(":")[2].split("/")[0]
    settings.SIMULATOR_ENABLED = False
    settings.INTACCT_ENDPOINT_URL = endpoint.format(port=port)
    _fast(settings)
    connection = services.connection_get(organisation=organisation)
    _credentials(connection)
    connection.refresh_from_db()
    with pytest.raises(errors.EndpointNotAllowed):
        clients.client_for(connection)
    run = _validate_latest()
    assert run.status != ValidationRun.Status.PASSED
    assert evil.requests == []


def test_endpoint_allowlist_rules():
    assert endpoint_allowed("https://api.intacct.com/ia/xml/xmlgw.phtml")
    assert endpoint_allowed("https://eu.api.intacct.com/ia/xml/xmlgw.phtml")
    for url in ("http://api.intacct.com/ia/xml/xmlgw.phtml", "https://api.intacct.com.evil.test/",
                "https://evilintacct.com/", "https://user:pw@api.intacct.com/", "https://evil.test/?h=.intacct.com",
                "https://evil.test#.intacct.com", "https://[::1]/", "ftp://api.intacct.com/", "", "https://",
                "https://api.intacct.com\r\n.evil.test/"):
        assert not endpoint_allowed(url), url


def test_production_settings_refuse_a_foreign_endpoint():
    """Already enforced at start-up (tests/test_settings.py); repeated here so this file covers every way in."""
    from tests.test_settings import PRODUCTION_ENV, run_python

    for endpoint in ("http://api.intacct.com/ia/xml/xmlgw.phtml", "https://127.0.0.1/ia/xml/xmlgw.phtml",
                     "https://api.intacct.com.evil.test/"):
        result = run_python("import django; django.setup()", {**PRODUCTION_ENV, "INTACCT_ENDPOINT_URL": endpoint})
        assert result.returncode != 0 and "INTACCT_ENDPOINT_URL must be" in result.stderr, endpoint


# --- what a hostile gateway answers -------------------------------------------------------------

@pytest.fixture
def hostile_setup(hostile_gateway, organisation, settings, no_broker, db):
    """The configured endpoint (allowed: the simulator setting) is a gateway under an attacker's control."""
    settings.SIMULATOR_ENABLED = True
    settings.INTACCT_ENDPOINT_URL = hostile_gateway.url
    _fast(settings)
    connection = services.connection_get(organisation=organisation)
    _credentials(connection)
    return connection


def test_a_session_endpoint_elsewhere_gets_no_session_and_no_sender_password(hostile_setup, hostile_gateway, evil):
    hostile_gateway.answer = {"status": 200, "body": session_answer(evil.url)}
    run = _validate_latest()
    assert run.status != ValidationRun.Status.PASSED
    assert len(hostile_gateway.requests) >= 1  # the login went to the configured endpoint only
    assert evil.requests == []


def test_a_sync_with_a_session_endpoint_elsewhere_sends_nothing_there(hostile_setup, hostile_gateway, evil):
    hostile_gateway.answer = {"status": 200, "body": session_answer(evil.url)}
    Connection.objects.filter(pk=hostile_setup.pk).update(status=Connection.Status.CONNECTED)
    hostile_setup.refresh_from_db()
    run, _ = services.sync_request(connection=hostile_setup)
    sync.run_sync(run_id=run.id)  # what the worker runs
    run.refresh_from_db()
    assert run.status != SyncRun.Status.SUCCEEDED
    assert evil.requests == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed(status, hostile_setup, hostile_gateway, evil):
    hostile_gateway.answer = {"status": status, "headers": {"Location": evil.url}, "body": b""}
    run = _validate_latest()
    assert run.status != ValidationRun.Status.PASSED
    assert hostile_gateway.requests and evil.requests == []


def test_proxy_variables_in_the_environment_are_not_used(hostile_setup, hostile_gateway, evil, monkeypatch):
    proxy = evil.url.rsplit("/ia/", 1)[0]
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    hostile_gateway.answer = {"status": 200, "body": session_answer(hostile_gateway.url)}
    _validate_latest()
    assert hostile_gateway.requests  # straight to the endpoint
    assert evil.requests == []


def test_the_evil_server_does_record_requests(evil):
    """The detector works: a request made on purpose is seen (so the empty lists above mean something)."""
    import httpx

    httpx.post(evil.url, content=b"<x/>", timeout=5)
    assert len(evil.requests) == 1
