"""What real companies do beyond the setup steps, set on the simulator's screens and seen at the gateway.

Deleting a user, user types that limit writes, entity-restricted users, per-application subscriptions,
several allowed IP addresses, lock-out after failed sign-ins, a monthly API quota, a second integration
with its own sender ID (issue 12).
"""

from __future__ import annotations

import httpx
import pytest
from django.conf import settings

from simulator.demo import build_company
from simulator.gateway import SESSION_REFUSED_ERROR
from simulator.models import ApiUsage, SimCompany, SimUser
from simulator.services import create_user
from tests.simulator.conftest import GATEWAY, envelope, login_xml, post, text, tree

pytestmark = pytest.mark.django_db
BASE = "/simulator/companies/TEST-CO"
EMPLOYEE_UPDATE = (
    '<function controlid="u"><update><EMPLOYEE><EMPLOYEEID>{id}</EMPLOYEEID><STATUS>inactive</STATUS>'
    "</EMPLOYEE></update></function>"
)
USER_UPDATE = (
    '<function controlid="u"><update><USERINFO><LOGINID>{id}</LOGINID><STATUS>inactive</STATUS>'
    "</USERINFO></update></function>"
)


def rbq(obj: str, controlid: str = "q", pagesize: int = 5) -> str:
    return (
        f'<function controlid="{controlid}"><readByQuery><object>{obj}</object><fields>RECORDNO</fields>'
        f"<query></query><pagesize>{pagesize}</pagesize></readByQuery></function>"
    )


def session_fn(location: str | None = None) -> str:
    inner = "" if location is None else f"<locationid>{location}</locationid>"
    return f'<function controlid="s"><getAPISession>{inner}</getAPISession></function>'


def call(client, functions: str, **kwargs):
    return tree(post(client, envelope(functions, **kwargs)))


def auth_error(doc) -> str:
    return text(doc, "//operation/errormessage/error/description2")


def employee_id(company) -> str:
    from simulator.records import OBJECTS, gen_for

    return OBJECTS["EMPLOYEE"].generate(gen_for(company, OBJECTS["EMPLOYEE"]), 1)["EMPLOYEEID"]


# --- Deleting a user ----------------------------------------------------------------------------
def test_a_user_deleted_on_the_screen_can_no_longer_sign_in_and_leaves_userinfo(client, company):
    user = SimUser.objects.get(company=company, login_id="ws_connect")
    session_id = text(call(client, session_fn()), "//api/sessionid")
    other, password = create_user(company, "ws_other", password="Other-Pass-2024!", admin_privileges="Full")
    other_auth = login_xml(user="ws_other", password=password)
    listed = call(client, rbq("USERINFO", pagesize=1000), auth=other_auth).xpath("//userinfo/RECORDNO/text()")
    assert str(user.recordno) in listed

    response = client.post(f"{BASE}/admin/users/{user.pk}/", {"action": "delete"})

    assert response.status_code == 302
    assert not SimUser.objects.filter(pk=user.pk).exists()
    assert auth_error(call(client, rbq("DEPARTMENT"))) == "Sign-in information is incorrect"
    assert auth_error(call(client, rbq("DEPARTMENT"), auth=f"<sessionid>{session_id}</sessionid>")) == (
        SESSION_REFUSED_ERROR[2]
    )
    listed = call(client, rbq("USERINFO", pagesize=1000), auth=other_auth).xpath("//userinfo/RECORDNO/text()")
    assert str(user.recordno) not in listed and str(other.recordno) in listed


# --- User types and admin privileges limit writes ---------------------------------------------------
def test_a_view_only_user_cannot_write_even_with_the_edit_right(client, company):
    user = SimUser.objects.get(company=company, login_id="ws_connect")
    user.user_type = "view only user"
    user.save()
    doc = call(client, EMPLOYEE_UPDATE.format(id=employee_id(company)))
    assert text(doc, "//result/status") == "failure"
    assert text(doc, "//result/errormessage/error/errorno") == "PL04000005"
    assert text(doc, "//result/errormessage/error/description2") == (
        "You do not have permission for API operation UPDATE on objects of type employee"
    )
    user.user_type = "business user"
    user.save()
    assert text(call(client, EMPLOYEE_UPDATE.format(id=employee_id(company))), "//result/status") == "success"


@pytest.mark.parametrize(
    ("user_type", "admin", "allowed"),
    [
        ("business user", "Full", True),
        ("business user", "Limited", False),
        ("business user", "Off", False),
        ("employee user", "Full", False),
        ("view only user", "Full", False),
    ],
)
def test_only_a_full_admin_business_user_writes_userinfo(client, company, user_type, admin, allowed):
    create_user(company, "target", password="Target-Pass-2024!")
    SimUser.objects.filter(company=company, login_id="ws_connect").update(user_type=user_type, admin_privileges=admin)
    doc = call(client, USER_UPDATE.format(id="target"))
    assert text(doc, "//result/status") == ("success" if allowed else "failure")
    assert SimUser.objects.get(company=company, login_id="target").status == ("inactive" if allowed else "active")


def test_user_type_is_set_on_the_user_screen(client, company):
    user = SimUser.objects.get(company=company, login_id="ws_connect")
    client.post(
        f"{BASE}/admin/users/{user.pk}/",
        {"user_type": "view only user", "admin_privileges": "Full", "status": "active", "is_web_services_user": "on"},
    )
    user.refresh_from_db()
    assert user.user_type == "view only user"
    assert text(call(client, EMPLOYEE_UPDATE.format(id=employee_id(company))), "//result/status") == "failure"


# --- Entities -------------------------------------------------------------------------------------
def test_entities_screen_adds_and_removes_entities(client, company):
    page = client.get(f"{BASE}/setup/entities/").content.decode()
    assert "E100" in page and "E200" in page
    client.post(f"{BASE}/setup/entities/", {"action": "add", "entity_id": "E300", "name": "West"})
    assert company.entities.filter(entity_id="E300", name="West").exists()
    doc = call(client, session_fn(), auth=login_xml(location="E300"))
    assert text(doc, "//api/locationid") == "E300"
    e300 = company.entities.get(entity_id="E300")
    client.post(f"{BASE}/setup/entities/", {"action": "remove", "entity": str(e300.pk)})
    assert not company.entities.filter(entity_id="E300").exists()
    assert auth_error(call(client, session_fn(), auth=login_xml(location="E300"))) == (
        "Invalid location ID 'E300' for this company or user."
    )


def test_a_user_restricted_to_entities_is_refused_at_top_level(client, company):
    user = SimUser.objects.get(company=company, login_id="ws_connect")
    e100 = company.entities.get(entity_id="E100")
    client.post(
        f"{BASE}/admin/users/{user.pk}/",
        {
            "user_type": "business user",
            "admin_privileges": "Full",
            "status": "active",
            "is_web_services_user": "on",
            "entities": [str(e100.pk)],
            "roles": [str(r.pk) for r in user.roles.all()],
        },
    )
    assert list(user.entities.values_list("entity_id", flat=True)) == ["E100"]

    assert auth_error(call(client, session_fn())) == "Invalid location ID '' for this company or user."
    assert auth_error(call(client, session_fn(), auth=login_xml(location="E200"))) == (
        "Invalid location ID 'E200' for this company or user."
    )
    doc = call(client, session_fn(), auth=login_xml(location="E100"))
    assert text(doc, "//result/status") == "success" and text(doc, "//api/locationid") == "E100"
    # Nor can an entity session move itself to the top level.
    session_id = text(doc, "//api/sessionid")
    doc = call(client, session_fn(location=""), auth=f"<sessionid>{session_id}</sessionid>")
    assert text(doc, "//result/status") == "failure"


# --- Per-application subscriptions -----------------------------------------------------------------
def test_an_unsubscribed_application_makes_its_objects_unknown(client, company):
    page = client.get(f"{BASE}/admin/subscriptions/").content.decode()
    assert "Accounts Payable" in page and "General Ledger" in page
    form = {"web_services_subscribed": "on"}
    from simulator.company_rules import applications

    for index, application in enumerate(applications()):
        if application != "Accounts Payable":
            form[f"app_{index}"] = "on"
    client.post(f"{BASE}/admin/subscriptions/", form)
    company.refresh_from_db()
    assert company.unsubscribed_applications == ["Accounts Payable"]

    doc = call(client, rbq("APBILL", "bills") + rbq("APADJUSTMENT", "adj") + rbq("GLACCOUNT", "gl"))
    statuses = dict(zip(doc.xpath("//result/controlid/text()"), doc.xpath("//result/status/text()"), strict=True))
    assert statuses == {"bills": "failure", "adj": "failure", "gl": "success"}
    assert doc.xpath("//result[controlid='bills']/errormessage/error/description2/text()") == [
        "Object definition APBILL not found"
    ]
    assert "Accounts Payable" in client.get(f"{BASE}/").content.decode()


# --- Several outbound IP addresses ------------------------------------------------------------------
def test_each_of_several_allowed_addresses_gets_in_and_no_other(client, company):
    client.post(
        f"{BASE}/setup/security/",
        {"action": "ip", "ip_filter_enabled": "on", "allowed_ips": "203.0.113.9\n198.51.100.0/24"},
    )
    company.refresh_from_db()
    assert company.allowed_ips == ["203.0.113.9", "198.51.100.0/24"]
    for address in ("203.0.113.9", "198.51.100.77"):
        doc = tree(post(client, envelope(rbq("DEPARTMENT")), REMOTE_ADDR=address))
        assert text(doc, "//result/status") == "success", address
    doc = tree(post(client, envelope(rbq("DEPARTMENT")), REMOTE_ADDR="203.0.113.10"))
    assert auth_error(doc) == "The IP address 203.0.113.10 is not allowed to access company ID 'TEST-CO'."


@pytest.mark.django_db(transaction=True)
def test_two_outbound_addresses_over_real_loopback(live_server):
    """Requests leave from 127.0.0.1 and from 127.0.0.2 (two of our outbound IPs) over real HTTP."""
    demo = build_company("IP-CO", sizes={"APBILL": 5}, ip_filter=["127.0.0.1", "127.0.0.2"])
    body = envelope(rbq("DEPARTMENT"), auth=login_xml(company="IP-CO")).encode()

    def from_address(address: str) -> str:
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(transport=transport, timeout=30) as http:
            answer = http.post(live_server.url + GATEWAY, content=body, headers={"Content-Type": "application/xml"})
        doc = tree(answer)
        errors = doc.xpath("//operation/errormessage/error/description2/text()")
        return errors[0] if errors else text(doc, "//result/status")

    assert from_address("127.0.0.1") == "success"
    assert from_address("127.0.0.2") == "success"
    SimCompany.objects.filter(pk=demo.company.pk).update(allowed_ips=["127.0.0.1"])
    assert from_address("127.0.0.1") == "success"
    assert from_address("127.0.0.2") == "The IP address 127.0.0.2 is not allowed to access company ID 'IP-CO'."


# --- Lock-out after failed sign-ins -------------------------------------------------------------------
def test_repeated_failed_sign_ins_lock_the_user_out_until_an_admin_unlocks(client, company):
    client.post(f"{BASE}/setup/security/", {"action": "login_settings", "lockout_threshold": "3"})
    company.refresh_from_db()
    assert company.lockout_threshold == 3
    wrong = login_xml(password="Wrong-Pass-1!")  # noqa: S106 - a wrong test password
    for _ in range(3):
        assert auth_error(call(client, rbq("DEPARTMENT"), auth=wrong)) == "Sign-in information is incorrect"
    user = SimUser.objects.get(company=company, login_id="ws_connect")
    assert (user.status, user.failed_logins) == ("locked out", 3)
    # Now even the right password is refused, and USERINFO says so.
    assert auth_error(call(client, rbq("DEPARTMENT"))) == (
        "Sign-in information is incorrect. The user 'ws_connect' is locked out."
    )
    page = client.get(f"{BASE}/admin/users/{user.pk}/").content.decode()
    assert "Unlock user" in page and "3 failed sign-ins in a row" in page
    client.post(f"{BASE}/admin/users/{user.pk}/", {"action": "unlock"})
    user.refresh_from_db()
    assert (user.status, user.failed_logins) == ("active", 0)
    assert text(call(client, rbq("DEPARTMENT")), "//result/status") == "success"


def test_a_successful_sign_in_restarts_the_count(client, company):
    SimCompany.objects.filter(pk=company.pk).update(lockout_threshold=3)
    wrong = login_xml(password="Wrong-Pass-1!")  # noqa: S106 - a wrong test password
    for _ in range(2):
        call(client, rbq("DEPARTMENT"), auth=wrong)
    assert text(call(client, rbq("DEPARTMENT")), "//result/status") == "success"
    for _ in range(2):
        call(client, rbq("DEPARTMENT"), auth=wrong)
    user = SimUser.objects.get(company=company, login_id="ws_connect")
    assert (user.status, user.failed_logins) == ("active", 2)


def test_without_a_threshold_nobody_is_locked_out(client, company):
    wrong = login_xml(password="Wrong-Pass-1!")  # noqa: S106 - a wrong test password
    for _ in range(8):
        call(client, rbq("DEPARTMENT"), auth=wrong)
    assert SimUser.objects.get(company=company, login_id="ws_connect").status == "active"


# --- Monthly API quota ------------------------------------------------------------------------------
def test_api_transactions_are_counted_and_overage_is_shown_not_refused(client, company):
    client.post(
        f"{BASE}/setup/company-info/",
        {
            "permission_model": "role",
            "session_lifetime_seconds": "3600",
            "concurrency_limit": "2",
            "concurrency_queue_seconds": "0",
            "monthly_api_quota": "3",
            "login_failure_style": "xml",
            "timezone_name": "America/Los_Angeles",
        },
    )
    company.refresh_from_db()
    assert company.monthly_api_quota == 3
    call(client, rbq("DEPARTMENT", "a") + rbq("LOCATION", "b"))
    assert ApiUsage.objects.get(company=company).transactions == 2
    assert "2 transactions of 3 included" in client.get(f"{BASE}/").content.decode()
    doc = call(client, rbq("DEPARTMENT", "c") + rbq("LOCATION", "d"))
    assert doc.xpath("//result/status/text()") == ["success", "success"]  # over the quota: still served
    assert ApiUsage.objects.get(company=company).transactions == 4
    assert "over the quota" in client.get(f"{BASE}/").content.decode()
    # A request refused before any function ran costs nothing; nor does a session or a failed function.
    call(client, rbq("DEPARTMENT"), auth=login_xml(password="Wrong-Pass-1!"))  # noqa: S106
    call(client, session_fn() + rbq("NOSUCHOBJECT", "x"))
    assert ApiUsage.objects.get(company=company).transactions == 4
    # A write costs one transaction per record written.
    doc = call(client, EMPLOYEE_UPDATE.format(id=employee_id(company)))
    assert text(doc, "//result/status") == "success"
    assert ApiUsage.objects.get(company=company).transactions == 5


def test_transactions_are_one_per_read_call_and_one_per_record_written():
    from simulator.metering import transactions_in

    body = (
        b"<response><operation><result><status>success</status><function>update</function>"
        b'<controlid>u</controlid><data listtype="objects" count="3"><a/><b/><c/></data></result>'
        b"<result><status>success</status><function>readByQuery</function><controlid>r</controlid>"
        b'<data listtype="apbill" count="0" totalcount="9"/></result>'
        b"<result><status>failure</status><function>query</function><controlid>q</controlid></result>"
        b"<result><status>success</status><function>getAPISession</function><controlid>s</controlid></result>"
        b"</operation></response>"
    )
    assert transactions_in(body) == 4


# --- A second integration with its own sender ID --------------------------------------------------------
def test_a_second_sender_registered_and_authorized_shares_the_company(client, company):
    client.post("/simulator/senders/", {"sender_id": "OtherIntegration", "password": "Other-Sender-Pw-1"})
    assert "OtherIntegration" in client.get("/simulator/senders/").content.decode()
    other = {"sender": "OtherIntegration", "sender_password": "Other-Sender-Pw-1"}
    doc = call(client, rbq("DEPARTMENT"), **other)
    assert text(doc, "//operation/errormessage/error/description") == "Invalid Web Services Authorization"
    client.post(f"{BASE}/setup/security/", {"action": "add_sender", "sender_id": "OtherIntegration"})
    assert text(call(client, rbq("DEPARTMENT"), **other), "//result/status") == "success"
    assert text(call(client, rbq("DEPARTMENT")), "//result/status") == "success"
    # Both integrations' requests count against the one company's limit and API usage.
    from simulator.inflight import inflight_stats

    assert inflight_stats("TEST-CO")["accepted"] == 3
    assert ApiUsage.objects.get(company=company).transactions == 2
    # Removing our sender's authorization leaves the other integration working, and the reverse.
    ours = company.sender_authorizations.get(sender_id=settings.INTACCT_SENDER_ID)
    client.post(f"{BASE}/setup/security/", {"action": "remove_sender", "authorization": str(ours.pk)})
    assert text(call(client, rbq("DEPARTMENT"), **other), "//result/status") == "success"
    assert text(call(client, rbq("DEPARTMENT")), "//operation/errormessage/error/description") == (
        "Invalid Web Services Authorization"
    )


def test_a_sender_id_with_spaces_is_refused_on_the_screen(client, db):
    response = client.post("/simulator/senders/", {"sender_id": " Spaced ", "password": "x-Pass-1"})
    assert response.status_code == 200 and "without leading or trailing spaces" in response.content.decode()


def test_new_pages_render(client, company):
    for path in ("/simulator/senders/", f"{BASE}/setup/entities/"):
        assert client.get(path).status_code == 200

