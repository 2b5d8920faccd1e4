"""The admin screens: every page renders, every form changes state, a new user gets a password mail."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from simulator.models import Mail, Role, SenderAuthorization, SimCompany, SimUser
from simulator.services import create_user

pytestmark = pytest.mark.django_db
BASE = "/simulator/companies/TEST-CO"


@pytest.mark.parametrize(
    "path",
    [
        "/simulator/",
        "/simulator/mailbox/",
        f"{BASE}/",
        f"{BASE}/admin/subscriptions/",
        f"{BASE}/setup/security/",
        f"{BASE}/setup/company-info/",
        f"{BASE}/admin/roles/",
        f"{BASE}/admin/users/",
        f"{BASE}/faults/",
    ],
)
def test_pages_render(client, company, path):
    response = client.get(path)
    assert response.status_code == 200
    assert "Simulator — Sage Intacct stand-in" in response.content.decode()


def test_role_and_user_pages_render(client, company):
    role = Role.objects.get(company=company)
    user = SimUser.objects.get(company=company)
    assert client.get(f"{BASE}/admin/roles/{role.pk}/").status_code == 200
    assert client.get(f"{BASE}/admin/users/{user.pk}/").status_code == 200
    assert client.get("/simulator/companies/NOPE/").status_code == 404


def test_breadcrumbs(client, company):
    html = client.get(f"{BASE}/setup/security/").content.decode()
    assert "Company &gt; Setup &gt; Company &gt; Security" in html.replace("</span>", "").replace("<span>", "")


def test_create_company(client, db):
    response = client.post("/simulator/", {"company_id": "FRESH-CO", "name": "Fresh"})
    assert response.status_code == 302
    company = SimCompany.objects.get(company_id="FRESH-CO")
    assert not company.web_services_subscribed


def test_subscription_toggle(client, company):
    client.post(f"{BASE}/admin/subscriptions/", {})
    company.refresh_from_db()
    assert not company.web_services_subscribed
    client.post(f"{BASE}/admin/subscriptions/", {"web_services_subscribed": "on"})
    company.refresh_from_db()
    assert company.web_services_subscribed


def test_ip_filter_form(client, company):
    response = client.post(
        f"{BASE}/setup/security/",
        {"action": "ip", "ip_filter_enabled": "on", "allowed_ips": "127.0.0.1\n10.0.0.0/8"},
    )
    assert response.status_code == 302
    company.refresh_from_db()
    assert company.ip_filter_enabled and company.allowed_ips == ["127.0.0.1", "10.0.0.0/8"]
    response = client.post(f"{BASE}/setup/security/", {"action": "ip", "allowed_ips": "not-an-ip"})
    assert response.status_code == 200 and "not an IP address" in response.content.decode()


def test_sender_authorizations(client, company):
    client.post(
        f"{BASE}/setup/security/",
        {"action": "add_sender", "sender_id": "OtherSender", "needs_login_for_api": "on"},
    )
    auth = SenderAuthorization.objects.get(company=company, sender_id="OtherSender")
    assert auth.needs_login_for_api
    client.post(f"{BASE}/setup/security/", {"action": "toggle_login", "authorization": auth.pk})
    auth.refresh_from_db()
    assert not auth.needs_login_for_api
    client.post(f"{BASE}/setup/security/", {"action": "remove_sender", "authorization": auth.pk})
    assert not SenderAuthorization.objects.filter(pk=auth.pk).exists()


def test_company_info(client, company):
    client.post(
        f"{BASE}/setup/company-info/",
        {
            "permission_model": "user",
            "session_lifetime_seconds": 7200,
            "concurrency_limit": 4,
            "login_failure_style": "http401",
            "timezone_name": "Europe/Dublin",
        },
    )
    company.refresh_from_db()
    assert (
        company.permission_model,
        company.session_lifetime_seconds,
        company.concurrency_limit,
        company.login_failure_style,
        company.timezone_name,
    ) == ("user", 7200, 4, "http401", "Europe/Dublin")


def test_create_and_edit_role(client, company):
    client.post(f"{BASE}/admin/roles/", {"name": "Readers", "perm-5-View": "1", "perm-5-List": "1"})
    role = Role.objects.get(company=company, name="Readers")
    assert [(p.application, p.policy, p.rights) for p in role.permissions.all()] == [
        ("Accounts Payable", "Bills", "List|View")
    ]
    client.post(f"{BASE}/admin/roles/{role.pk}/", {"name": "Readers", "perm-0-View": "1"})
    assert [(p.policy, p.rights) for p in role.permissions.all()] == [("Departments", "View")]


def test_create_user_mails_a_password_that_works(client, company):
    role = Role.objects.get(company=company)
    response = client.post(
        f"{BASE}/admin/users/",
        {
            "login_id": "new_ws",
            "first_name": "Nia",
            "last_name": "Ws",
            "email": "nia@example.com",
            "user_type": "business user",
            "admin_privileges": "Full",
            "status": "active",
            "is_web_services_user": "on",
            "roles": [role.pk],
        },
    )
    assert response.status_code == 302
    user = SimUser.objects.get(login_id="new_ws")
    assert list(user.roles.all()) == [role]
    mail = Mail.objects.get(to="nia@example.com")
    assert "new_ws" in mail.body and "TEST-CO" in mail.body
    password = mail.body.split("Password: ")[1].split("\n")[0]
    assert password not in user.password_hash
    assert client.get("/simulator/mailbox/").content.decode().count("nia@example.com") >= 1
    from tests.simulator.conftest import envelope, login_xml, post, text, tree

    doc = tree(
        post(
            client,
            envelope(
                '<function controlid="f"><getAPISession/></function>',
                auth=login_xml(user="new_ws", password=password),
            ),
        )
    )
    assert text(doc, "//authentication/status") == "success"


def test_user_based_create_user_with_permissions(client, company):
    company.permission_model = "user"
    company.save()
    client.post(
        f"{BASE}/admin/users/",
        {
            "login_id": "ub",
            "first_name": "U",
            "last_name": "B",
            "email": "ub@example.com",
            "user_type": "business user",
            "admin_privileges": "Off",
            "status": "active",
            "perm-2-View": "1",
        },
    )
    user = SimUser.objects.get(login_id="ub")
    assert [(p.policy, p.rights) for p in user.permissions.all()] == [("Employees", "View")]


def test_edit_user_and_reset_password(client, company):
    user, _ = create_user(company, "edit_me", email="edit@example.com", password="first-pass-1")  # noqa: S106 - fake credential in a test
    client.post(
        f"{BASE}/admin/users/{user.pk}/",
        {"user_type": "business user", "admin_privileges": "Limited", "status": "locked out"},
    )
    user.refresh_from_db()
    assert (user.status, user.admin_privileges, user.is_web_services_user) == ("locked out", "Limited", False)
    old_hash = user.password_hash
    client.post(f"{BASE}/admin/users/{user.pk}/", {"action": "reset_password"})
    user.refresh_from_db()
    assert user.password_hash != old_hash
    assert Mail.objects.filter(to="edit@example.com", body__contains="has been reset").exists()


def test_faults_page_arms_and_clears(client, company):
    client.post(
        f"{BASE}/faults/",
        {
            "action": "arm",
            "kind": "http5xx",
            "mode": "count",
            "count": 3,
            "delay_ms": 0,
            "status": 502,
            "seed": 0,
        },
    )
    company.refresh_from_db()
    assert company.faults[0]["kind"] == "http5xx" and company.faults[0]["count"] == 3
    assert company.faults[0]["status"] == 502
    client.post(f"{BASE}/faults/", {"action": "clear"})
    company.refresh_from_db()
    assert company.faults == []


def test_stats_json_and_reset(client, company):
    from simulator.inflight import try_enter

    try_enter("TEST-CO", 5)
    data = client.get(f"{BASE}/stats/").json()
    assert data["in_flight"] == 1 and data["max_in_flight"] == 1 and data["concurrency_limit"] == 2
    client.post(f"{BASE}/stats/")
    assert client.get(f"{BASE}/stats/").json()["max_in_flight"] == 0


def test_forms_are_csrf_protected(company):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post(f"{BASE}/admin/subscriptions/", {}).status_code == 403
    # The gateway is not a form: no CSRF token needed.
    from tests.simulator.conftest import envelope

    response = strict.post(
        "/simulator/ia/xml/xmlgw.phtml",
        data=envelope('<function controlid="f"><getAPISession/></function>').encode(),
        content_type="application/xml",
    )
    assert response.status_code == 200


def test_seed_command_is_idempotent(db, capsys):
    call_command("simulator_seed")
    first = SimCompany.objects.count()
    out = capsys.readouterr().out
    assert "DEMO-CO" in out and "BAD-NO-BILLS" in out and "Demo-Connect-2024!" in out
    call_command("simulator_seed")
    assert SimCompany.objects.count() == first
    assert SimUser.objects.filter(company__company_id="DEMO-CO").count() == 1
    demo = SimCompany.objects.get(company_id="DEMO-CO")
    assert demo.data_sizes["APBILL"] == 5000
    new = SimCompany.objects.get(company_id="NEW-CO")
    assert not new.web_services_subscribed and not new.users.exists()
    call_command("simulator_seed", "--reset")
    assert SimCompany.objects.count() == first
    assert SimCompany.objects.get(company_id="DEMO-CO").pk != demo.pk


@pytest.mark.parametrize("field,value,error", [
    ("delay_ms", 10**30, "at most 60000"),
    ("delay_ms", 60001, "at most 60000"),
    ("delay_ms", -1, "at least 0"),
    ("delay_ms", "1e9", "whole number"),
    ("count", 10**30, "at most 1000000"),
    ("seed", 10**30, "at most 4294967295"),
])
def test_faults_page_refuses_unbounded_values_with_a_form_error(client, company, field, value, error):
    """Anyone can reach the simulator in development: a huge delay would hang or crash the gateway."""
    data = {"action": "arm", "kind": "slow", "mode": "count", "count": 1, "delay_ms": 100, "status": 503,
            "seed": 0, field: value}
    response = client.post(f"{BASE}/faults/", data)
    assert response.status_code == 200 and error in response.content.decode()
    company.refresh_from_db()
    assert company.faults == []


def test_set_fault_refuses_a_delay_beyond_a_minute(company):
    from simulator.faults import MAX_DELAY_MS, set_fault

    with pytest.raises(ValueError, match="delay_ms"):
        set_fault(company, "slow", count=1, delay_ms=MAX_DELAY_MS + 1)
    assert set_fault(company, "slow", count=1, delay_ms=MAX_DELAY_MS)["delay_ms"] == 60_000
