"""Validation's ordered checks, table-driven against a scripted gateway on the mock transport (the live simulator
is in test_live): the real client sends every request, the gateway answers as one company would."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from xml.etree import ElementTree as ET  # noqa: N817 - the standard library, to read our own request

import pytest
from django.utils import timezone

from connector import clients, crypto, objects, services, validation
from connector.intacct import ClientConfig, RetryPolicy
from connector.models import Connection, ValidationRun
from tests.intacct.fakes import (
    ENDPOINT,
    SENDER_ID,
    SENDER_PASSWORD,
    Gateway,
    SleepRecorder,
    answer_each,
    auth_failure,
    control_failure,
    error_xml,
    function_object,
    get_list_data,
    permission_denied,
    permissions_data,
    query_data,
    result_xml,
    session_body,
)

LOGIN_KEYS = [stage.key for stage in validation.LOGIN_STAGES]
# Sessions that last eight hours from now: the limits check then has nothing to note.
SESSION_TIMEOUT = (timezone.now() + timedelta(hours=8)).isoformat(timespec="seconds")
# Read for what they say, not as probes: the user's roles and the company's entities (the user's own record is a
# readByName, its permissions a getUserPermissions).
LOOKUPS = {"USERROLES", "LOCATIONENTITY"}


@dataclass
class Company:
    """What one company answers: each function of the validation's batch on its own, as the gateway does."""

    login_error: bytes | None = None  # the whole answer to every sign-in
    denied: tuple[str, ...] = ()
    roles: tuple[str, ...] = ("Connect API",)
    permissions: list[tuple[str, str, set[str]]] = field(default_factory=list)
    admin: str = "Full"
    unanswered: str = ""  # an object whose probe the gateway leaves out of its answer
    session_refused: bool = False  # every request made with a session is refused at sign-in
    gateway: Gateway = field(init=False)

    def __post_init__(self) -> None:
        refused = auth_failure(error_xml("XL03000006", "", "Invalid session"))
        self.gateway = Gateway(login_answer=self.login_error or session_body(session_timeout=SESSION_TIMEOUT),
                               otherwise=refused if self.session_refused else answer_each(
                                   self.answer, session_timeout=SESSION_TIMEOUT))

    def answer(self, function: ET.Element, controlid: str) -> str | None:
        name, obj = function.tag, function_object(function)
        if name == "getUserPermissions":
            return result_xml(name, permissions_data(self.permissions), controlid=controlid)
        if name == "readByName":
            return result_xml(name, query_data(obj, [{"LOGINID": function.findtext("keys"), "ADMIN": self.admin,
                                                      "LOGINDISABLED": "true"}]), controlid=controlid)
        if obj == "USERROLES":
            return result_xml(name, query_data(obj, [{"USERID": "ws_connect", "ROLENAME": r} for r in self.roles]),
                              controlid=controlid)
        if obj == "LOCATIONENTITY":  # the entities, listed at a top-level sign-in (none here)
            return result_xml(name, query_data(obj), controlid=controlid)
        assert function.findtext("pagesize") in (None, "1") and function.get("maxitems") in (None, "1")
        if obj.lower() == self.unanswered.lower():
            return None
        if obj.lower() in {d.lower() for d in self.denied}:
            return permission_denied(name, obj, controlid)
        data = (get_list_data(obj, [{"recordno": "1"}]) if name == "get_list"
                else query_data(obj, [{"RECORDNO": "1"}], total=5))
        return result_xml(name, data, controlid=controlid)

    @property
    def probed(self) -> list[str]:
        """The objects read, in the order the requests named them."""
        return [function_object(f[0]) for call in self.gateway.calls
                for f in call.xml.findall("operation/content/function")
                if f[0].tag in ("query", "get_list") and function_object(f[0]) not in LOOKUPS]


@pytest.fixture
def connection(db):
    organisation = services.organisation_create(name="Acme")
    conn = organisation.connection
    conn.company_id, conn.user_id, conn.password_token = "ACME", "ws_connect", crypto.encrypt("pw")
    conn.permission_model = "role"
    conn.save()
    return conn


@contextmanager
def fake(monkeypatch, company: Company):
    """The real client of the connection, talking to the company's gateway through the mock transport."""
    config = ClientConfig(endpoint_url=ENDPOINT, sender_id=SENDER_ID, sender_password=SENDER_PASSWORD,
                          retry=RetryPolicy(max_attempts=3, jitter=False), transport=company.gateway.transport,
                          sleep=SleepRecorder())
    monkeypatch.setattr(clients, "client_config", lambda: config)
    yield company


def run_with(monkeypatch, connection, company: Company) -> ValidationRun:
    run = ValidationRun.objects.create(connection=connection)
    with fake(monkeypatch, company):
        validation.run_validation(run_id=run.id)
    run.refresh_from_db()
    return run


def statuses(run) -> dict[str, str]:
    return dict(run.checks.values_list("key", "status"))


def refused(level: str, errorno: str, description: str = "", description2: str = "") -> bytes:
    """Intacct's answer to a sign-in refused at ``level`` (control: the sender or the gateway; else the login)."""
    detail = error_xml(errorno, description, description2)
    return control_failure(detail) if level == "control" else auth_failure(detail)


def test_healthy_company_passes_every_check_and_connects(monkeypatch, connection):
    company = Company()
    run = run_with(monkeypatch, connection, company)
    assert run.status == "passed" and run.failed_step is None
    assert set(statuses(run).values()) == {"passed", "skipped"}  # deprovisioning is off: skipped
    assert statuses(run)["deprovisioning"] == "skipped"
    assert company.probed == [o.name for o in objects.OBJECTS]
    assert len(company.gateway.logins) == 1 and len(company.gateway.calls) == 1  # a sign-in, then one batch
    connection.refresh_from_db()
    assert connection.status == "connected" and connection.last_validation == run


@pytest.mark.parametrize(("level", "errorno", "description", "description2", "failing", "step", "connection_status",
                          "words"), [
    ("control", "XL03000006", "", "Incorrect Intacct XML Partner ID or password.", "sender", None, "in_setup",
     "on our side"),
    ("control", "GW-0011", "Invalid Request", "", "company", 6, "in_setup", "no company"),
    ("authentication", "XL03000006", "Web Services not subscribed", "", "subscription", 1, "in_setup",
     "Subscriptions"),
    ("authentication", "XL03000006", "IP address not allowed", "", "ip_address", 2, "in_setup",
     "IP address filters"),
    ("authentication", "XL03000006", "Invalid Web Services Authorization",
     "The sender ID 'X' is not authorized to make Web Services requests to company ID 'Y'.",
     "sender_authorised", 3, "in_setup", "case-sensitive"),
    ("authentication", "XL03000006", "Invalid Web Services Authorization",
     "The sender ID 'X' requires a user login for API requests to company ID 'Y'.",
     "sender_authorised", 3, "in_setup", "Needs login for API"),
    ("authentication", "XL03000006", "", "Sign-in information is incorrect", "login", 6, "in_setup", "user ID"),
    ("authentication", "XL03000006", "", "Sign-in information is incorrect. The user 'U' is inactive.",
     "login", 5, "in_setup", "inactive"),
    ("authentication", "XL03000006", "", "Sign-in information is incorrect. The user 'U' is locked out.",
     "login", 5, "in_setup", "locked out"),
    ("authentication", "XL03000006", "", "Invalid location ID 'E9' for this company or user.",
     "entity", 5, "in_setup", "restricted to some entities"),
])
def test_each_login_failure_names_its_check_and_step(monkeypatch, connection, level, errorno, description,
                                                     description2, failing, step, connection_status, words):
    run = run_with(monkeypatch, connection, Company(login_error=refused(level, errorno, description, description2)))
    result = statuses(run)
    position = LOGIN_KEYS.index(failing)
    assert all(result[key] == "passed" for key in LOGIN_KEYS[:position])
    assert result[failing] == "failed"
    assert all(status == "skipped" for key, status in result.items() if key not in LOGIN_KEYS[:position + 1])
    check = run.checks.get(key=failing)
    assert check.wizard_step == step and words in check.message
    assert check.errorno == errorno and check.description2 == description2
    assert run.status == "failed" and run.failed_step == step
    connection.refresh_from_db()
    assert connection.status == connection_status


@pytest.mark.parametrize(("model", "step", "where"),
                         [("role", 4, "Roles"), ("user", 5, "Web Services users")])
def test_a_missing_read_permission_names_the_object_and_the_step(monkeypatch, connection, model, step, where):
    connection.permission_model = model
    connection.save()
    # What Intacct shows decides the words: roles held (role-based), or rights without roles (user-based).
    rights = [("Company", "Departments", {"View"})]
    company = Company(denied=("APBILL",), roles=("Connect API",)) if model == "role" else Company(
        denied=("APBILL",), roles=(), permissions=rights)
    run = run_with(monkeypatch, connection, company)
    check = run.checks.get(key="read_apbill")
    assert check.status == "failed" and check.wizard_step == step
    assert "Accounts Payable > Bills View" in check.message and where in check.message
    assert check.errorno == "PL04000005"
    assert statuses(run)["read_glaccount"] == "passed"  # the others still run
    connection.refresh_from_db()
    assert connection.status == "in_setup" and run.failed_step == step  # never connected: still in setup


def test_a_transient_fault_ends_inconclusive_and_keeps_the_status(monkeypatch, connection):
    run = run_with(monkeypatch, connection, Company(login_error=refused("control", "GW-0010", "Rate limit exceeded")))
    assert run.status == "inconclusive"
    assert set(statuses(run).values()) == {"skipped"}
    connection.refresh_from_db()
    assert connection.status == "not_started"


@pytest.mark.parametrize("company", [
    Company(session_refused=True),  # refused at sign-in again right after a new session: SessionExpired
    Company(unanswered="APBILL"),  # the gateway's answer lacks the probe's result: an unreadable answer
], ids=["session-expired-after-re-login", "unreadable-answer"])
def test_a_transient_fault_during_a_probe_is_inconclusive_not_a_failure(monkeypatch, connection, company):
    """Found by the soak: these two are not permanent, so they must never blame the admin's setup."""
    run = run_with(monkeypatch, connection, company)
    result = statuses(run)
    # Refused sessions: the client signed in again once, then gave up; else one sign-in and one batch.
    assert (len(company.gateway.logins), len(company.gateway.calls)) == ((2, 2) if company.session_refused else (1, 1))
    assert run.status == "inconclusive"
    assert result["read_apbill"] == "skipped" and "failed" not in result.values()
    connection.refresh_from_db()
    assert connection.status == "not_started"


@pytest.mark.parametrize(("rights", "admin", "expected", "words"), [
    ({"View", "Edit"}, "Full", "passed", ""),
    ({"View"}, "Full", "failed", "Company > Employees Edit"),
    ({"View", "Edit"}, "Off", "failed", "admin privileges Full"),
])
def test_deprovisioning_reads_rights_and_admin_privileges(monkeypatch, connection, rights, admin, expected,
                                                          words):
    connection.wants_deprovisioning = True
    connection.save()
    run = run_with(monkeypatch, connection, Company(permissions=[("Company", "Employees", rights)], admin=admin))
    check = run.checks.get(key="deprovisioning")
    assert check.status == expected and words in check.message


def test_a_run_is_claimed_once(monkeypatch, connection):
    run = run_with(monkeypatch, connection, Company())
    count = run.checks.count()
    with fake(monkeypatch, Company()):
        assert validation.run_validation(run_id=run.id) is None
    assert run.checks.count() == count


def test_a_late_run_does_not_revive_a_disconnected_connection(monkeypatch, connection):
    run = ValidationRun.objects.create(connection=connection)
    services.connection_disconnect(connection=connection, by=None)
    with fake(monkeypatch, Company()):
        validation.run_validation(run_id=run.id)
    assert Connection.objects.get().status == "disconnected"
