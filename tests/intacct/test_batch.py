"""Several read functions in one request: each result judged on its own (validation's probes use this)."""
from __future__ import annotations

from xml.etree import ElementTree as ET  # noqa: N817 - the standard library, to read our own request

import httpx
import pytest

from connector.intacct import errors
from tests.intacct.fakes import (
    Gateway,
    answer_each,
    function_object,
    make_client,
    permission_denied,
    query_data,
    result_xml,
    xml_response,
)

PERMISSIONS = ("<data><permissions><appSubscription><applicationName>Company</applicationName><policies><policy>"
               "<policyName>Employees</policyName><rights>List|View|Edit</rights></policy></policies>"
               "</appSubscription></permissions></data>")


def _answer(function: ET.Element, controlid: str) -> str:
    name = function.tag
    if name == "getUserPermissions":
        return result_xml(name, PERMISSIONS, controlid=controlid)
    if function_object(function) == "APBILL":
        return permission_denied(name, "apbill", controlid)
    return result_xml(name, query_data("DEPARTMENT", [{"RECORDNO": "1", "DEPARTMENTID": "D1"}], total=9),
                      controlid=controlid)


answer = answer_each(_answer)  # each function by its control ID, in order, as the gateway does


def test_three_functions_go_in_one_request_and_each_answers_on_its_own() -> None:
    gateway = Gateway(script=[answer])
    client = make_client(gateway)
    with client:
        outcomes = client.batch([
            client.query_call("departments", "DEPARTMENT", ["DEPARTMENTID"]),
            client.query_call("bills", "APBILL", ["RECORDNO"]),
            client.get_user_permissions_call("permissions", "ws_user"),
        ])
    sent = [r for r in gateway.received if not r.is_login]
    assert len(sent) == 1 and len(sent[0].xml.findall("operation/content/function")) == 3
    assert outcomes["departments"].error is None and outcomes["departments"].value() == [
        {"RECORDNO": "1", "DEPARTMENTID": "D1"}]
    assert isinstance(outcomes["bills"].error, errors.PermissionDenied)
    with pytest.raises(errors.PermissionDenied):
        outcomes["bills"].value()
    [permission] = outcomes["permissions"].permissions
    assert (permission.application, permission.policy, permission.rights) == (
        "Company", "Employees", frozenset({"List", "View", "Edit"}))
    assert client.stats.snapshot()["requests"] == 2  # the login and the batch


def test_a_function_the_gateway_did_not_answer_is_a_transient_error_of_its_own() -> None:
    def drop_last(request: httpx.Request) -> httpx.Response:
        body = answer(request).content.decode()
        cut = body.rindex("<result>")
        return xml_response((body[:cut] + "</operation></response>").encode())

    client = make_client(Gateway(script=[drop_last]))
    with client:
        outcomes = client.batch([client.query_call("a", "DEPARTMENT", ["DEPARTMENTID"]),
                                 client.query_call("b", "LOCATION", ["LOCATIONID"])])
    assert outcomes["a"].error is None
    assert isinstance(outcomes["b"].error, errors.InvalidResponse) and not outcomes["b"].error.permanent


def test_batch_keys_must_be_unique() -> None:
    client = make_client(Gateway())
    with client, pytest.raises(ValueError, match="unique"):
        client.batch([client.query_call("a", "DEPARTMENT", ["DEPARTMENTID"]),
                      client.query_call("a", "LOCATION", ["LOCATIONID"])])
