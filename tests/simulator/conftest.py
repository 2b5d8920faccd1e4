"""Helpers for simulator tests: requests are written by hand as XML strings, answers read by XPath."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from lxml import etree

from simulator.demo import SIZES, build_company

GATEWAY = "/simulator/ia/xml/xmlgw.phtml"
SMALL_SIZES = SIZES["two_pages"]


def login_xml(
    company: str = "TEST-CO",
    user: str = "ws_connect",
    password: str = "Demo-Connect-2024!",  # noqa: S107 - fake credential in a test
    location: str | None = None,
) -> str:
    loc = f"<locationid>{location}</locationid>" if location is not None else ""
    return f"<login><userid>{user}</userid><companyid>{company}</companyid><password>{password}</password>{loc}</login>"


def envelope(
    functions: str,
    *,
    auth: str | None = None,
    sender: str | None = None,
    sender_password: str | None = None,
    transaction: bool = False,
    uniqueid: bool = False,
    controlid: str = "ctl-1",
) -> str:
    """A complete 3.0 request; ``functions`` is the inner XML of <content>."""
    sender = settings.INTACCT_SENDER_ID if sender is None else sender
    sender_password = settings.INTACCT_SENDER_PASSWORD if sender_password is None else sender_password
    auth = login_xml() if auth is None else auth
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<request><control><senderid>{sender}</senderid><password>{sender_password}</password>"
        f"<controlid>{controlid}</controlid><uniqueid>{'true' if uniqueid else 'false'}</uniqueid>"
        "<dtdversion>3.0</dtdversion><includewhitespace>false</includewhitespace></control>"
        f'<operation transaction="{"true" if transaction else "false"}">'
        f"<authentication>{auth}</authentication>"
        f"<content>{functions}</content></operation></request>"
    )


def post(client: Any, body: str, **extra: Any) -> Any:
    return client.post(GATEWAY, data=body.encode(), content_type="application/xml", **extra)


def tree(response: Any) -> Any:
    return etree.fromstring(response.content)


def text(node: Any, path: str) -> str:
    found = node.xpath(path)
    assert found, f"{path} not found in {etree.tostring(node)[:2000]!r}"
    value = found[0]
    return value if isinstance(value, str) else (value.text or "")


@pytest.fixture
def company(db: Any) -> Any:
    """TEST-CO: set up right, role-based, small data."""
    return build_company("TEST-CO", sizes=SMALL_SIZES).company


@pytest.fixture
def gw(client: Any, company: Any) -> Any:
    """Post a request to the gateway for TEST-CO and return (response, parsed tree)."""

    def call(functions: str, **kwargs: Any) -> tuple[Any, Any]:
        extra = kwargs.pop("extra", {})
        response = post(client, envelope(functions, **kwargs), **extra)
        return response, tree(response)

    return call
