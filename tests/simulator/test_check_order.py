"""Each gateway error, at its level with the exact texts of docs/protocol-choices.md, in the check order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from simulator.demo import build_company
from simulator.gateway import SESSION_REFUSED_ERROR
from simulator.inflight import holding, inflight_stats
from simulator.models import SimSession, SimUser
from simulator.services import add_entity, ensure_sender
from tests.simulator.conftest import envelope, login_xml, post, text, tree

pytestmark = pytest.mark.django_db
SESSION_FN = '<function controlid="f1"><getAPISession/></function>'


def auth_error(doc):
    error = doc.xpath("/response/operation/errormessage/error")[0]
    return tuple(text(error, tag) for tag in ("errorno", "description", "description2", "correction"))


def call(client, company_id, *, functions=SESSION_FN, **kwargs):
    auth = kwargs.pop("auth", login_xml(company=company_id))
    extra = kwargs.pop("extra", {})
    response = post(client, envelope(functions, auth=auth, **kwargs), **extra)
    return response, tree(response)


# 1. XML well-formed and of the schema
@pytest.mark.parametrize(
    "body",
    [
        "<request><control>",
        "not xml at all",
        "",
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "boom">]><request>&x;</request>',
        "<request><control><senderid>s</senderid><controlid>c</controlid></control></request>",
        "<request><control><senderid>s</senderid><controlid>c</controlid></control><operation><authentication>"
        "<login><userid>u</userid></login></authentication></operation></request>",
        "<request><control><senderid>s</senderid><controlid>c</controlid></control><operation><authentication>"
        "<sessionid>x</sessionid></authentication><content><function controlid='a'><frobnicate/></function>"
        "</content></operation></request>",
    ],
)
def test_malformed_or_invalid_request_is_a_control_failure(client, company, body):
    response = client.post("/simulator/ia/xml/xmlgw.phtml", data=body.encode(), content_type="application/xml")
    doc = tree(response)
    assert response.status_code == 200
    assert text(doc, "/response/control/status") == "failure"
    assert text(doc, "/response/errormessage/error/errorno") == "XL03000003"
    assert text(doc, "/response/errormessage/error/description2").startswith("XML Parse schema error: ")


def test_get_is_not_allowed(client):
    assert client.get("/simulator/ia/xml/xmlgw.phtml").status_code == 405


# 2. Sender credentials (checked before the company even exists)
@pytest.mark.parametrize("sender, password", [("NoSuchSender", None), (None, "wrong"), ("intacctconnectdemo", None)])
def test_bad_sender_is_a_control_failure_even_for_unknown_company(client, company, sender, password):
    response, doc = call(client, "NO-SUCH-CO", sender=sender, sender_password=password)
    assert response.status_code == 200
    assert text(doc, "/response/control/status") == "failure"
    assert text(doc, "//errormessage/error/errorno") == "XL03000006"
    assert text(doc, "//errormessage/error/description2") == "Incorrect Intacct XML Partner ID or password."


def test_other_registered_sender_is_accepted(client, company):
    ensure_sender("PartnerTwo", "pw-two")
    _, doc = call(client, "TEST-CO", sender="PartnerTwo", sender_password="pw-two")  # noqa: S106 - fake credential in a test
    # Known sender, but not authorised for TEST-CO: that is the authentication level.
    assert text(doc, "/response/control/status") == "success"
    assert auth_error(doc)[1] == "Invalid Web Services Authorization"


# 3. Company exists
def test_unknown_company_is_http_400_gw_0011(client, company):
    response, doc = call(client, "NO-SUCH-CO")
    assert response.status_code == 400
    assert text(doc, "/response/control/status") == "failure"
    error = doc.xpath("//errormessage/error")[0]
    assert text(error, "errorno") == "GW-0011"
    assert text(error, "description").startswith("Invalid Request [Request ID: ")
    assert [c.tag for c in error] == ["errorno", "description"]


def test_company_with_trailing_space_is_unknown(client, company):
    response, _ = call(client, "TEST-CO ")
    assert response.status_code == 400


# 4. Concurrency
def test_concurrency_limit_gives_429_before_authentication(client, company):
    company.web_services_subscribed = False  # a later check must not be reached
    company.save()
    with holding("TEST-CO", 2):
        response, doc = call(client, "TEST-CO")
    assert response.status_code == 429
    assert text(doc, "//errormessage/error/errorno") == "GW-0010"
    assert text(doc, "//errormessage/error/description") == (
        "Rate limit exceeded: too many concurrent requests for this company."
    )
    stats = inflight_stats("TEST-CO")
    assert stats["rejected"] == 1 and stats["in_flight"] == 0 and stats["max_in_flight"] == 2


def test_one_below_the_limit_is_served_and_counted(client, company):
    with holding("TEST-CO", 1):
        response, doc = call(client, "TEST-CO")
    assert response.status_code == 200 and text(doc, "//authentication/status") == "success"
    assert inflight_stats("TEST-CO")["max_in_flight"] == 2
    assert inflight_stats("TEST-CO")["in_flight"] == 0


def test_concurrency_limit_with_real_threads(transactional_db, settings):
    """Slow requests held open in threads: the third concurrent one is refused."""
    import threading

    from django.test import Client

    from simulator.faults import set_fault

    demo = build_company("THREAD-CO", sizes={"APBILL": 10})
    set_fault(demo.company, "slow", count=2, delay_ms=600)
    results = []

    def worker():
        results.append(call(Client(), "THREAD-CO")[0].status_code)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    import time

    deadline = time.time() + 5
    while inflight_stats("THREAD-CO")["in_flight"] < 2 and time.time() < deadline:
        time.sleep(0.01)
    third = call(Client(), "THREAD-CO")[0].status_code
    for t in threads:
        t.join()
    assert sorted(results) == [200, 200] and third == 429
    assert inflight_stats("THREAD-CO")["max_in_flight"] == 2


# 5. Authentication level, in order
def expect_auth(doc, description, description2, correction=""):
    assert text(doc, "/response/control/status") == "success"
    assert text(doc, "/response/operation/authentication/status") == "failure"
    assert doc.xpath("/response/operation/result") == []
    assert auth_error(doc) == ("XL03000006", description, description2, correction)


def test_not_subscribed_comes_before_ip_filter(client):
    build_company("NOSUB", subscribed=False, ip_filter=["203.0.113.0/24"], authorize_sender_id=False)
    _, doc = call(client, "NOSUB")
    expect_auth(
        doc,
        "Web Services not subscribed",
        "This company is not authorized for XML transactions. Please subscribe to the XML Gateway.",
        "Subscribe to Web Services in Company > Admin > Subscriptions.",
    )


def test_ip_filter_comes_before_sender_authorisation(client):
    build_company("IPF", ip_filter=["203.0.113.0/24"], authorize_sender_id=False)
    _, doc = call(client, "IPF")
    expect_auth(
        doc,
        "IP address not allowed",
        "The IP address 127.0.0.1 is not allowed to access company ID 'IPF'.",
        "Add the address in Company > Setup > Company > Security > IP address filters.",
    )


def test_ip_filter_allows_listed_address(client):
    build_company("IPOK", ip_filter=["10.0.0.0/8", "127.0.0.1"])
    _, doc = call(client, "IPOK")
    assert text(doc, "//authentication/status") == "success"
    _, doc = call(client, "IPOK", extra={"REMOTE_ADDR": "10.1.2.3"})
    assert text(doc, "//authentication/status") == "success"
    _, doc = call(client, "IPOK", extra={"REMOTE_ADDR": "192.0.2.1"})
    assert auth_error(doc)[1] == "IP address not allowed"


def test_sender_not_authorised_comes_before_login(client, settings):
    build_company("NOAUTH", authorize_sender_id=False)
    _, doc = call(client, "NOAUTH", auth=login_xml(company="NOAUTH", password="wrong"))  # noqa: S106 - fake credential in a test
    expect_auth(
        doc,
        "Invalid Web Services Authorization",
        f"The sender ID '{settings.INTACCT_SENDER_ID}' is not authorized to make Web Services requests "
        "to company ID 'NOAUTH'.",
        "Contact the company administrator to grant Web Services authorization to this sender ID.",
    )


def test_sender_authorisation_is_case_sensitive(client, settings):
    build_company("CASE", sender_id=settings.INTACCT_SENDER_ID.lower())
    _, doc = call(client, "CASE")
    assert auth_error(doc)[1] == "Invalid Web Services Authorization"


def test_needs_login_for_api(client, settings):
    build_company("NEEDS", needs_login_for_api=True)
    _, doc = call(client, "NEEDS")
    expect_auth(
        doc,
        "Invalid Web Services Authorization",
        f"The sender ID '{settings.INTACCT_SENDER_ID}' requires a user login for API requests to company ID 'NEEDS'.",
        'Turn off "Needs login for API" for the sender ID in Company > Setup > Company > Security > '
        "Web Services authorizations.",
    )


@pytest.mark.parametrize("user, password", [("ws_connect", "wrong"), ("nobody", "Demo-Connect-2024!")])
def test_wrong_login(client, company, user, password):
    _, doc = call(client, "TEST-CO", auth=login_xml(user=user, password=password))
    expect_auth(doc, "", "Sign-in information is incorrect")


def test_login_is_case_insensitive_for_user_id(client, company):
    _, doc = call(client, "TEST-CO", auth=login_xml(user="WS_Connect"))
    assert text(doc, "//authentication/status") == "success"


def test_wrong_login_as_http_401(client):
    build_company("C401", login_failure_style="http401")
    response, doc = call(client, "C401", auth=login_xml(company="C401", password="wrong"))  # noqa: S106 - fake credential in a test
    assert response.status_code == 401
    assert text(doc, "/response/control/status") == "failure"
    assert text(doc, "//errormessage/error/errorno") == "XMLGW_JPP0002"
    assert text(doc, "//errormessage/error/description") == (
        "Sign-in information is incorrect. Please check your request."
    )


def test_inactive_user(client):
    build_company("INACT", user_status="inactive")
    _, doc = call(client, "INACT", auth=login_xml(company="INACT"))
    expect_auth(
        doc,
        "",
        "Sign-in information is incorrect. The user 'ws_connect' is inactive.",
        "Ask an administrator to set the user's status to Active.",
    )


def test_inactive_user_with_wrong_password_sees_generic_text(client):
    build_company("INACT2", user_status="inactive")
    _, doc = call(client, "INACT2", auth=login_xml(company="INACT2", password="bad"))  # noqa: S106 - fake credential in a test
    expect_auth(doc, "", "Sign-in information is incorrect")


def test_locked_out_user(client):
    build_company("LOCK", user_status="locked out")
    _, doc = call(client, "LOCK", auth=login_xml(company="LOCK"))
    expect_auth(
        doc,
        "",
        "Sign-in information is incorrect. The user 'ws_connect' is locked out.",
        "Ask an administrator to unlock the user.",
    )


def test_invalid_entity(client, company):
    _, doc = call(client, "TEST-CO", auth=login_xml(location="E9"))
    expect_auth(doc, "", "Invalid location ID 'E9' for this company or user.", "Check the entity ID.")


def test_entity_not_allowed_for_user(client, company):
    e300 = add_entity(company, "E300")
    SimUser.objects.get(login_id="ws_connect").entities.set([add_entity(company, "E100")])
    _, doc = call(client, "TEST-CO", auth=login_xml(location=e300.entity_id))
    assert auth_error(doc)[2] == "Invalid location ID 'E300' for this company or user."
    _, doc = call(client, "TEST-CO", auth=login_xml(location="E100"))
    assert text(doc, "//authentication/locationid") == "E100"


def test_unknown_session(client, company):
    _, doc = call(client, "TEST-CO", auth="<sessionid>nope..</sessionid>")
    expect_auth(doc, "", SESSION_REFUSED_ERROR[2])


def test_expired_session(client, company):
    _, doc = call(client, "TEST-CO")
    session_id = text(doc, "//api/sessionid")
    SimSession.objects.filter(session_id=session_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    _, doc = call(client, "TEST-CO", auth=f"<sessionid>{session_id}</sessionid>")
    expect_auth(doc, "", SESSION_REFUSED_ERROR[2])


def test_session_of_deactivated_user_is_invalid(client, company):
    _, doc = call(client, "TEST-CO")
    session_id = text(doc, "//api/sessionid")
    SimUser.objects.filter(login_id="ws_connect").update(status="inactive")
    _, doc = call(client, "TEST-CO", auth=f"<sessionid>{session_id}</sessionid>")
    expect_auth(doc, "", SESSION_REFUSED_ERROR[2])


def test_session_requests_still_check_subscription(client, company):
    _, doc = call(client, "TEST-CO")
    session_id = text(doc, "//api/sessionid")
    company.web_services_subscribed = False
    company.save()
    _, doc = call(client, "TEST-CO", auth=f"<sessionid>{session_id}</sessionid>")
    assert auth_error(doc)[1] == "Web Services not subscribed"
