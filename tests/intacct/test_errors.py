"""Every documented failure shape becomes the right typed error with Intacct's raw parts."""
from __future__ import annotations

import pickle

import httpx
import pytest

from connector.intacct import errors

from .fakes import (
    Gateway,
    auth_failure,
    control_failure,
    envelope,
    error_xml,
    make_client,
    result_xml,
    xml_response,
)


def _login_fails_with(step: httpx.Response | bytes) -> errors.IntacctError:
    gateway = Gateway(login_script=[step])
    with make_client(gateway) as client, pytest.raises(errors.IntacctError) as info:
        client.get_api_session()
    assert len(gateway.received) == 1  # permanent: no retry, no further request
    return info.value


@pytest.mark.parametrize(
    ("description", "description2", "correction", "expected"),
    [
        ("Web Services not subscribed",
         "This company is not authorized for XML transactions. Please subscribe to the XML Gateway.",
         "Subscribe to Web Services in Company > Admin > Subscriptions.", errors.WebServicesNotSubscribed),
        ("IP address not allowed", "The IP address 203.0.113.9 is not allowed to access company ID 'ACME'.",
         "Add the address in Company > Setup > Company > Security > IP address filters.",
         errors.IPAddressRejected),
        ("Invalid Web Services Authorization",
         "The sender ID 'X' is not authorized to make Web Services requests to company ID 'Y'.",
         "Contact the company administrator to grant Web Services authorization to this sender ID.",
         errors.SenderNotAuthorized),
        ("", "Sign-in information is incorrect", "", errors.LoginFailed),
        ("", "Sign-in information is incorrect. The user 'U' is inactive.",
         "Ask an administrator to set the user's status to Active.", errors.UserInactive),
        ("", "Sign-in information is incorrect. The user 'U' is locked out.",
         "Ask an administrator to unlock the user.", errors.UserLockedOut),
        ("", "Invalid location ID 'E9' for this company or user.", "Check the entity ID.",
         errors.InvalidEntity),
        ("", "Something new Intacct invents", "", errors.AuthenticationError),
    ],
)
def test_authentication_failures_are_told_apart_by_text(
    description: str, description2: str, correction: str, expected: type[errors.IntacctError],
) -> None:
    exc = _login_fails_with(auth_failure(error_xml("XL03000006", description, description2, correction)))
    assert type(exc) is expected
    assert exc.level == "authentication"
    assert exc.permanent is True
    assert exc.errorno == "XL03000006"
    assert (exc.description, exc.description2, exc.correction) == (description, description2, correction)
    assert str(exc) == " ".join(p for p in ("XL03000006", description, description2, correction) if p)
    assert exc.http_status == 200


def test_needs_login_for_api_is_flagged() -> None:
    exc = _login_fails_with(auth_failure(error_xml(
        "XL03000006", "Invalid Web Services Authorization",
        "The sender ID 'X' requires a user login for API requests to company ID 'Y'.",
        'Turn off "Needs login for API" for the sender ID in Company > Setup > Company > Security.')))
    assert isinstance(exc, errors.SenderNotAuthorized)
    assert exc.needs_login_for_api is True
    plain = _login_fails_with(auth_failure(error_xml(
        "XL03000006", "Invalid Web Services Authorization",
        "The sender ID 'X' is not authorized to make Web Services requests to company ID 'Y'.")))
    assert plain.needs_login_for_api is False


def test_control_failure_bad_sender_credentials() -> None:
    exc = _login_fails_with(control_failure(error_xml(
        "XL03000006", "", "Incorrect Intacct XML Partner ID or password.")))
    assert type(exc) is errors.SenderCredentialsInvalid
    assert exc.level == "control"
    assert str(exc) == "XL03000006 Incorrect Intacct XML Partner ID or password."


def test_control_failure_schema_error_and_unknown_control_error() -> None:
    exc = _login_fails_with(control_failure(error_xml("XL03000003", "XML Parse schema error: bad element")))
    assert type(exc) is errors.MalformedRequest and exc.permanent
    exc = _login_fails_with(control_failure(error_xml("XL03999999", "Something new")))
    assert type(exc) is errors.ControlError
    assert exc.errorno == "XL03999999" and exc.level == "control"


def test_demo_company_expired_has_its_own_permanent_error() -> None:
    exc = _login_fails_with(control_failure(error_xml(
        "PL04000055", "", "This company is a demo company and has expired.")))
    assert type(exc) is errors.DemoCompanyExpired
    assert exc.permanent and exc.level == "control" and exc.errorno == "PL04000055"


def test_transport_policy_error_is_not_a_bad_sender() -> None:
    exc = _login_fails_with(control_failure(error_xml(
        "XL03000006", "", "asyncPolicy is not a valid transport policy.")))
    assert type(exc) is errors.TransportPolicyInvalid
    assert not isinstance(exc, errors.SenderCredentialsInvalid)
    assert exc.permanent and exc.level == "control" and exc.errorno == "XL03000006"


def test_http_401_xml_login_failure() -> None:
    body = (b'<?xml version="1.0" encoding="UTF-8"?><response><control><status>failure</status></control>'
            b"<errormessage><error><errorno>XMLGW_JPP0002</errorno><description>Sign-in information is "
            b"incorrect. Please check your request.</description></error></errormessage></response>")
    exc = _login_fails_with(xml_response(body, 401))
    assert type(exc) is errors.LoginFailed
    assert exc.http_status == 401 and exc.level == "control"
    assert exc.description == "Sign-in information is incorrect. Please check your request."


def test_http_400_gw_0011_company_not_found() -> None:
    body = control_failure("<error><errorno>GW-0011</errorno>"
                           "<description>Invalid Request [Request ID: abc123]</description></error>")
    exc = _login_fails_with(xml_response(body, 400))
    assert type(exc) is errors.CompanyNotFound
    assert exc.http_status == 400 and exc.permanent
    assert str(exc) == "GW-0011 Invalid Request [Request ID: abc123]"


def test_http_429_gw_0010_is_rate_limited_with_retry_after() -> None:
    body = control_failure("<error><errorno>GW-0010</errorno><description>Rate limit exceeded: too many "
                           "concurrent requests for this company.</description></error>")
    gateway = Gateway(login_script=[xml_response(body, 429, {"retry-after": "7"})] * 6)
    sleeps: list[float] = []
    with make_client(gateway, sleep=sleeps.append) as client, pytest.raises(errors.RateLimited) as info:
        client.get_api_session()
    exc = info.value
    assert exc.http_status == 429 and exc.errorno == "GW-0010" and exc.permanent is False
    assert exc.retry_after == 7.0
    assert sleeps == [7.0] * 5


def _call_fails_with(*results: str) -> errors.IntacctError:
    gateway = Gateway(script=[envelope(*results)])
    with make_client(gateway) as client, pytest.raises(errors.IntacctError) as info:
        client.read("APBILL", [1])
    return info.value


def test_permission_denied_carries_operation_and_object() -> None:
    exc = _call_fails_with(result_xml("readByQuery", status="failure", errors=[error_xml(
        "PL04000005", "",
        "You do not have permission for API operation READ_BY_QUERY on objects of type apbill")]))
    assert type(exc) is errors.PermissionDenied
    assert (exc.operation, exc.object_name) == ("READ_BY_QUERY", "apbill")
    assert exc.level == "result" and exc.permanent and exc.function == "readByQuery"
    assert exc.control_id == "f1"


@pytest.mark.parametrize(
    ("error", "expected", "permanent"),
    [
        (error_xml("Query Failed", "", "Object definition BADOBJECT not found"), errors.UnknownObject, True),
        (error_xml("XL03000011", "Duplicate request",
                   "A function with control ID 'X' has already been executed for this company."),
         errors.DuplicateRequest, True),
        (error_xml("BL01001973", "Could not update record.", "Invalid value 'X' for field STATUS."),
         errors.RecordError, True),
        (error_xml("DL02000001", "There was an error processing the request.", "Invalid or expired resultId"),
         errors.ResultError, True),
    ],
)
def test_result_failures(error, expected, permanent) -> None:
    exc = _call_fails_with(result_xml("read", '<data listtype="objects" count="0"/>', status="failure",
                                      errors=[error]))
    assert type(exc) is expected
    assert exc.permanent is permanent
    assert exc.level == "result"


def test_service_offline_is_transient_and_retried_for_reads() -> None:
    offline = envelope(result_xml("read", status="failure", errors=[error_xml(
        "XL03000012", "Service unavailable", "The Service is Temporarily Off-line",
        "Please Try Again Later")]))
    gateway = Gateway(script=[offline, envelope(result_xml("read", '<data listtype="APBILL" count="0"/>'))])
    sleeps: list[float] = []
    with make_client(gateway, sleep=sleeps.append) as client:
        assert client.read("APBILL", [1]) == []
    assert sleeps == [1.0]


def test_transaction_rollback_reports_the_cause_and_all_errors() -> None:
    rollback = error_xml("XL03000009", "The entire transaction in this operation has been rolled back due to "
                                       "an error.")
    exc = _call_fails_with(
        result_xml("update", status="failure", controlid="u1", errors=[
            error_xml("BL01001973", "Could not update record.",
                      "No USERINFO record with LOGINID 'X' was found."),
            rollback]),
        result_xml("update", status="aborted", controlid="u2", errors=[rollback]),
    )
    assert type(exc) is errors.RecordError
    assert exc.control_id == "u1"
    assert [e.errorno for e in exc.errors] == ["BL01001973", "XL03000009"]
    assert str(exc).startswith("BL01001973 Could not update record. No USERINFO record")


def test_errors_survive_pickling() -> None:
    detail = errors.ErrorDetail(
        "PL04000005", "", "You do not have permission for API operation READ on objects of type userinfo")
    exc = errors.classify("result", [detail],
                          http_status=200, function="read")
    clone = pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own object
    assert type(clone) is errors.PermissionDenied
    assert (clone.operation, clone.object_name, clone.function, str(clone)) == (
        "READ", "userinfo", "read", str(exc))


def test_every_error_class_declares_permanence() -> None:
    transient = {errors.SessionExpired, errors.RateLimited, errors.GatewayUnavailable, errors.RequestTimeout,
                 errors.ConnectionDropped}
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.IntacctError)]
    assert len(classes) >= 25
    for cls in classes:
        assert cls().permanent is (cls not in transient), cls
        assert cls().level in errors.LEVELS


def test_http_400_gw_0011_is_recognised_whatever_the_content_type() -> None:
    body = control_failure(
        "<error><errorno>GW-0011</errorno><description>Invalid Request</description></error>")
    exc = _login_fails_with(httpx.Response(400, content=body, headers={"content-type": "text/plain"}))
    assert type(exc) is errors.CompanyNotFound and exc.http_status == 400


def test_bare_http_401_is_a_login_failure_and_other_4xx_are_invalid_responses() -> None:
    exc = _login_fails_with(httpx.Response(401, text="Unauthorized"))
    assert type(exc) is errors.LoginFailed and exc.http_status == 401 and exc.level == "http"
    exc = _login_fails_with(httpx.Response(403, text="Forbidden"))
    assert type(exc) is errors.InvalidResponse and exc.http_status == 403 and exc.permanent


def test_redirects_are_not_followed() -> None:
    exc = _login_fails_with(httpx.Response(302, headers={"location": "https://evil.example/steal"}))
    assert type(exc) is errors.InvalidResponse and exc.http_status == 302
