"""The client against the simulator: in process (httpx WSGI transport) and over real loopback HTTP."""
from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from django.conf import settings
from django.core.wsgi import get_wsgi_application

from connector.intacct import ClientConfig, Credentials, IntacctClient, RetryPolicy
from simulator.demo import DEMO_PASSWORD, build_company
from simulator.inflight import inflight_reset

SMALL = {"DEPARTMENT": 12, "LOCATION": 5, "EMPLOYEE": 40, "USERINFO": 10, "CCTRANSACTION": 30, "GLACCOUNT": 20,
         "APBILL": 1001, "APADJUSTMENT": 10, "EEXPENSES": 25, "EXPENSEREPORTBATCH": 7}
NO_WAIT = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, total_budget=5.0)


class Gateway:
    """Builds clients for one way of reaching the simulator."""

    def __init__(self, url: str, transport: httpx.BaseTransport | None, mode: str):
        self.url, self.transport, self.mode = url, transport, mode
        self.sleeps: list[float] = []

    def config(self, **overrides) -> ClientConfig:
        options = dict(endpoint_url=self.url, sender_id=settings.INTACCT_SENDER_ID,
                       sender_password=settings.INTACCT_SENDER_PASSWORD, allowed_endpoints=(self.url,),
                       transport=self.transport, retry=NO_WAIT, timeout=30.0, sleep=self.sleeps.append)
        options.update(overrides)
        return ClientConfig(**options)

    def client(self, company_id: str, *, user_id: str = "ws_connect", password: str = DEMO_PASSWORD,
               entity_id: str | None = None, **overrides) -> IntacctClient:
        creds = Credentials(company_id=company_id, user_id=user_id, password=password, entity_id=entity_id)
        return IntacctClient(self.config(**overrides), creds)


@pytest.fixture(params=["in-process", "loopback"])
def gateway(request, transactional_db) -> Gateway:
    """Both ways of reaching the simulator; loopback is a real HTTP server on 127.0.0.1."""
    inflight_reset()
    if request.param == "in-process":
        transport = httpx.WSGITransport(app=get_wsgi_application())
        return Gateway("http://testserver" + settings.SIMULATOR_GATEWAY_PATH, transport, "in-process")
    live_server = request.getfixturevalue("live_server")
    return Gateway(live_server.url + settings.SIMULATOR_GATEWAY_PATH, None, "loopback")


@pytest.fixture
def company_factory(transactional_db) -> Callable:
    def make(company_id: str = "ACME", **kwargs):
        kwargs.setdefault("sizes", SMALL)
        return build_company(company_id, **kwargs)
    return make


@pytest.fixture
def gateway_for(transactional_db) -> Callable:
    """A Gateway for an explicit URL (e.g. the live server under another host name)."""
    inflight_reset()

    def make(url: str, *, transport: httpx.BaseTransport | None = None, **overrides) -> Gateway:
        gateway = Gateway(url, transport, "loopback")
        base_config = gateway.config

        def config(**more) -> ClientConfig:
            return base_config(**{**overrides, **more})

        gateway.config = config  # type: ignore[method-assign]
        return gateway

    return make
