"""The one error policy and the words per cause, table-driven over every error class the client has."""
from __future__ import annotations

import inspect

import pytest

from connector import crypto, diagnosis, limits, objects, policy, services
from connector.intacct import errors
from connector.intacct.errors import ErrorDetail
from connector.models import ValidationRun

A = policy.Action
# Every error class of the client, and what every caller does after it. A new class without a row fails.
ACTIONS = {
    errors.IntacctError: A.FAIL_OBJECT,  # an error the client could not place: that read fails, the rest go on
    errors.ControlError: A.STOP,
    errors.SenderCredentialsInvalid: A.STOP,
    errors.MalformedRequest: A.STOP,
    errors.CompanyNotFound: A.STOP,
    errors.DemoCompanyExpired: A.STOP,
    errors.TransportPolicyInvalid: A.STOP,
    errors.AuthenticationError: A.STOP,
    errors.SenderNotAuthorized: A.STOP,
    errors.WebServicesNotSubscribed: A.STOP,
    errors.IPAddressRejected: A.STOP,
    errors.LoginFailed: A.STOP,
    errors.UserInactive: A.STOP,
    errors.UserLockedOut: A.STOP,
    errors.InvalidEntity: A.STOP,
    errors.SessionExpired: A.RETRY,
    errors.ResultError: A.FAIL_OBJECT,
    errors.PermissionDenied: A.FAIL_OBJECT,
    errors.UnknownObject: A.FAIL_OBJECT,
    errors.DuplicateRequest: A.FAIL_OBJECT,
    errors.RecordError: A.FAIL_OBJECT,
    errors.RateLimited: A.RETRY,
    errors.GatewayUnavailable: A.RETRY,
    errors.RequestTimeout: A.RETRY,
    errors.ConnectionDropped: A.RETRY,
    errors.UnsafeResponse: A.FAIL_OBJECT,
    errors.ResponseTooLarge: A.FAIL_OBJECT,
    errors.EndpointNotAllowed: A.STOP,
    errors.InvalidResponse: A.FAIL_OBJECT,  # an odd answer to a write; the client marks a read's transient
    errors.UnexpectedContent: A.FAIL_OBJECT,
}


def _classes() -> list[type]:
    return [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
            if issubclass(cls, errors.IntacctError) and cls.__module__ == errors.__name__]


def test_every_client_error_class_has_an_action():
    missing = [cls.__name__ for cls in _classes() if cls not in ACTIONS]
    assert not missing, f"error classes with no row in the policy table: {missing}"


@pytest.mark.parametrize("cls", list(ACTIONS), ids=lambda cls: cls.__name__)
def test_the_policy_decides_from_the_typed_error(cls):
    assert policy.action_for(cls("x")) == ACTIONS[cls]


def test_the_policy_follows_the_clients_permanent_flag_and_knows_our_own_stops():
    assert policy.action_for(errors.InvalidResponse("truncated", permanent=False)) == A.RETRY
    assert policy.action_for(limits.SlotTimeout("busy")) == A.RETRY
    assert policy.action_for(crypto.InvalidToken()) == A.RETRY
    assert policy.action_for(policy.KeyUnavailable("no key")) == A.RETRY
    assert policy.action_for(AttributeError("a bug")) == A.INTERNAL
    assert policy.action_for(errors.LoginFailed("HTTP 401", level="http")) == A.STOP


@pytest.fixture
def connection(db):
    organisation = services.organisation_create(name="Acme")
    conn = organisation.connection
    conn.company_id, conn.user_id = "ACME", "ws_connect"
    conn.save()
    return conn


def _error(cls, errorno="", description="", description2=""):
    return cls(errors=[ErrorDetail(errorno, description, description2, "")])


def test_an_unsubscribed_application_names_the_application_and_step_1(connection):
    finding = diagnosis.read_refused(connection, objects.OBJECTS_BY_NAME["EEXPENSES"],
                                     _error(errors.UnknownObject, "XL03000009", "",
                                            "Object definition EEXPENSES not found"), lambda: None)
    assert finding.cause == ValidationRun.Cause.OBJECT_UNAVAILABLE and finding.step == 1
    assert "Time & Expenses" in finding.message and "Company > Admin > Subscriptions" in finding.message


def test_another_refused_read_shows_intacct_words_without_empty_separators(connection):
    finding = diagnosis.read_refused(connection, objects.OBJECTS_BY_NAME["APBILL"],
                                     _error(errors.ResultError, "DL02000001", "", "There was an error."), lambda: None)
    assert finding.cause == ValidationRun.Cause.READ_FAILED
    assert "Intacct said: DL02000001 — There was an error." in finding.message and "· ·" not in finding.message


def test_a_sign_in_refusal_nobody_explained_keeps_intacct_words(connection):
    finding = diagnosis.sign_in_refused(connection, _error(errors.AuthenticationError, "XL03000099", "", "Odd."))
    assert finding.cause == ValidationRun.Cause.SIGN_IN_REFUSED and finding.status == "broken"
    assert "XL03000099 — Odd." in finding.message


def test_an_expired_demo_company_and_a_transport_policy_have_their_own_words(connection):
    expired = diagnosis.sign_in_refused(connection, _error(errors.DemoCompanyExpired, "PL04000055"))
    assert expired.cause == ValidationRun.Cause.COMPANY_EXPIRED and "has expired" in expired.message
    assert "Sender ID" not in expired.message
    policy_error = diagnosis.sign_in_refused(connection, _error(errors.TransportPolicyInvalid, "XL03000006"))
    assert policy_error.our_side and "transport policy" in policy_error.message


@pytest.mark.parametrize(("exc", "words"), [
    (errors.RateLimited("429", http_status=429), "asked us to slow down"),
    (errors.GatewayUnavailable("503", http_status=503), "HTTP 503"),
    (errors.GatewayUnavailable("524", http_status=524), "timed out before answering (HTTP 524)"),
    (errors.InvalidResponse("HTML instead of XML (HTTP 403)", http_status=403), "HTML error page"),
    (errors.RequestTimeout("slow"), "did not answer in time"),
    (errors.ConnectionDropped("dropped"), "dropped"),
    (limits.SlotTimeout("busy"), "request slot"),
    (policy.KeyUnavailable("no key"), "encryption key"),
])
def test_each_transient_cause_has_its_own_words(exc, words):
    text = diagnosis.unreachable(exc)
    assert words in text
    assert exc is not None and "could not be reached" not in text


def test_a_password_entered_here_and_refused_says_when_it_was_entered(connection):
    from django.utils import timezone

    entered = timezone.now()
    history = diagnosis.SignInHistory(worked_before=True, password_changed_at=entered, password_changed_by_us=True)
    finding = diagnosis.sign_in_refused(connection, _error(errors.LoginFailed, "XL03000006"), history)
    assert finding.cause == ValidationRun.Cause.PASSWORD_ENTERED_REFUSED
    assert f"{entered:%d %b %Y %H:%M} UTC" in finding.message and "reset it" not in finding.message
