"""Validation's ordered checks, table-driven against a fake client (the live simulator is in test_live)."""
from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from connector import crypto, objects, services, validation
from connector.intacct import BatchOutcome, Permission, errors
from connector.intacct.errors import ErrorDetail
from connector.models import Connection, ValidationRun

LOGIN_KEYS = [stage.key for stage in validation.LOGIN_STAGES]


class FakeClient:
    def __init__(self, *, login_error=None, denied=(), permissions=None, admin="Full", roles=("Connect API",)):
        self.login_error, self.denied = login_error, {d.lower() for d in denied}
        self.permissions = permissions or []
        self.admin = admin
        self.roles = list(roles)
        self.calls: list[tuple] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def get_api_session(self):
        self.calls.append(("getAPISession",))
        if self.login_error:
            raise self.login_error

    def _probe(self, name):
        self.calls.append(("probe", name))
        if name.lower() in self.denied:
            text = f"You do not have permission for API operation QUERY on objects of type {name}"
            raise errors.PermissionDenied(errors=[ErrorDetail("PL04000005", "", text)])

    def query_page(self, name, fields, filter=None, page_size=100):
        if name == "USERROLES":
            self.calls.append(("roles",))
            return SimpleNamespace(records=[{"USERID": "ws_connect", "ROLENAME": r} for r in self.roles])
        if name == "LOCATIONENTITY":  # the entities, listed at a top-level sign-in (none here)
            self.calls.append(("entities",))
            return SimpleNamespace(records=[])
        assert page_size == 1
        self._probe(name)

    def get_list(self, name, fields, page_size):
        self._probe(name)
        yield {"recordno": "1"}

    def get_user_permissions(self, user_id):
        return self.permissions

    def read_by_name(self, obj, names, fields):
        return [{"LOGINID": names[0], "ADMIN": self.admin, "LOGINDISABLED": "true"}]

    # The batch the validation sends after the sign-in: each function answered on its own.
    def read_by_name_call(self, key, obj, names, fields=("*",)):
        return key, lambda: self.read_by_name(obj, list(names), fields)

    def query_call(self, key, obj, fields, filter=None, page_size=1):
        return key, lambda: (self.query_page(obj, fields, filter, page_size) or SimpleNamespace(records=[])).records

    def get_list_call(self, key, obj, fields=None, page_size=1):
        return key, lambda: list(self.get_list(obj, fields, page_size))

    def get_user_permissions_call(self, key, user_id):
        return key, lambda: self.get_user_permissions(user_id)

    def batch(self, calls):
        self.calls.append(("batch", len(calls)))
        outcomes = {}
        for key, answer in calls:
            try:
                value = answer()
            except errors.IntacctError as exc:
                outcomes[key] = BatchOutcome(key, error=exc)
                continue
            outcomes[key] = BatchOutcome(key, records=value, permissions=value if key == "permissions" else [])
        return outcomes


@pytest.fixture
def connection(db):
    organisation = services.organisation_create(name="Acme")
    conn = organisation.connection
    conn.company_id, conn.user_id, conn.password_token = "ACME", "ws_connect", crypto.encrypt("pw")
    conn.permission_model = "role"
    conn.save()
    return conn


@contextmanager
def fake(monkeypatch, client):
    monkeypatch.setattr(validation.clients, "client_for", lambda connection, **_options: client)
    yield client


def run_with(monkeypatch, connection, client) -> ValidationRun:
    run = ValidationRun.objects.create(connection=connection)
    with fake(monkeypatch, client):
        validation.run_validation(run_id=run.id)
    run.refresh_from_db()
    return run


def statuses(run) -> dict[str, str]:
    return dict(run.checks.values_list("key", "status"))


def error(cls, description="", description2="", correction="", errorno="XL03000006"):
    return cls(errors=[ErrorDetail(errorno, description, description2, correction)])


def test_healthy_company_passes_every_check_and_connects(monkeypatch, connection):
    client = FakeClient()
    run = run_with(monkeypatch, connection, client)
    assert run.status == "passed" and run.failed_step is None
    assert set(statuses(run).values()) == {"passed", "skipped"}  # deprovisioning is off: skipped
    assert statuses(run)["deprovisioning"] == "skipped"
    probed = [c[1] for c in client.calls if c[0] == "probe"]
    assert probed == [o.name for o in objects.OBJECTS]
    connection.refresh_from_db()
    assert connection.status == "connected" and connection.last_validation == run


@pytest.mark.parametrize(("exc", "failing", "step", "connection_status", "words"), [
    (error(errors.SenderCredentialsInvalid, description2="Incorrect Intacct XML Partner ID or password."),
     "sender", None, "in_setup", "on our side"),
    (error(errors.CompanyNotFound, "Invalid Request", errorno="GW-0011"), "company", 6, "in_setup",
     "no company"),
    (error(errors.WebServicesNotSubscribed, "Web Services not subscribed"), "subscription", 1,
     "in_setup", "Subscriptions"),
    (error(errors.IPAddressRejected, "IP address not allowed"), "ip_address", 2, "in_setup",
     "IP address filters"),
    (error(errors.SenderNotAuthorized, "Invalid Web Services Authorization",
           "The sender ID 'X' is not authorized to make Web Services requests to company ID 'Y'."),
     "sender_authorised", 3, "in_setup", "case-sensitive"),
    (error(errors.SenderNotAuthorized, "Invalid Web Services Authorization",
           "The sender ID 'X' requires a user login for API requests to company ID 'Y'."),
     "sender_authorised", 3, "in_setup", "Needs login for API"),
    (error(errors.LoginFailed, "", "Sign-in information is incorrect"), "login", 6, "in_setup", "user ID"),
    (error(errors.UserInactive, "", "Sign-in information is incorrect. The user 'U' is inactive."),
     "login", 5, "in_setup", "inactive"),
    (error(errors.UserLockedOut, "", "Sign-in information is incorrect. The user 'U' is locked out."),
     "login", 5, "in_setup", "locked out"),
    (error(errors.InvalidEntity, "", "Invalid location ID 'E9' for this company or user."),
     "entity", 5, "in_setup", "restricted to some entities"),
])
def test_each_login_failure_names_its_check_and_step(monkeypatch, connection, exc, failing, step,
                                                     connection_status, words):
    run = run_with(monkeypatch, connection, FakeClient(login_error=exc))
    result = statuses(run)
    position = LOGIN_KEYS.index(failing)
    assert all(result[key] == "passed" for key in LOGIN_KEYS[:position])
    assert result[failing] == "failed"
    assert all(status == "skipped" for key, status in result.items() if key not in LOGIN_KEYS[:position + 1])
    check = run.checks.get(key=failing)
    assert check.wizard_step == step and words in check.message
    assert check.errorno == exc.errorno and check.description2 == exc.description2
    assert run.status == "failed" and run.failed_step == step
    connection.refresh_from_db()
    assert connection.status == connection_status


@pytest.mark.parametrize(("model", "step", "where"),
                         [("role", 4, "Roles"), ("user", 5, "Web Services users")])
def test_a_missing_read_permission_names_the_object_and_the_step(monkeypatch, connection, model, step, where):
    connection.permission_model = model
    connection.save()
    # What Intacct shows decides the words: roles held (role-based), or rights without roles (user-based).
    rights = [Permission(application="Company", policy="Departments", rights=frozenset({"View"}))]
    company = FakeClient(denied=["APBILL"], roles=("Connect API",)) if model == "role" else FakeClient(
        denied=["APBILL"], roles=(), permissions=rights)
    run = run_with(monkeypatch, connection, company)
    check = run.checks.get(key="read_apbill")
    assert check.status == "failed" and check.wizard_step == step
    assert "Accounts Payable > Bills View" in check.message and where in check.message
    assert check.errorno == "PL04000005"
    assert statuses(run)["read_glaccount"] == "passed"  # the others still run
    connection.refresh_from_db()
    assert connection.status == "in_setup" and run.failed_step == step  # never connected: still in setup


def test_a_transient_fault_ends_inconclusive_and_keeps_the_status(monkeypatch, connection):
    exc = errors.RateLimited(errors=[ErrorDetail("GW-0010", "Rate limit exceeded")])
    run = run_with(monkeypatch, connection, FakeClient(login_error=exc))
    assert run.status == "inconclusive"
    assert set(statuses(run).values()) == {"skipped"}
    connection.refresh_from_db()
    assert connection.status == "not_started"


@pytest.mark.parametrize("exc", [
    errors.SessionExpired(errors=[ErrorDetail("XL03000006", "", "Invalid session")]),
    errors.InvalidResponse("truncated answer", permanent=False),
], ids=["session-expired-after-re-login", "unreadable-answer"])
def test_a_transient_fault_during_a_probe_is_inconclusive_not_a_failure(monkeypatch, connection, exc):
    """Found by the soak: these two are not permanent, so they must never blame the admin's setup."""
    client = FakeClient()
    real_probe = client._probe

    def flaky_probe(name):
        if name == "APBILL":
            raise exc
        real_probe(name)

    client._probe = flaky_probe
    run = run_with(monkeypatch, connection, client)
    result = statuses(run)
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
    permissions = [Permission(application="Company", policy="Employees", rights=frozenset(rights))]
    run = run_with(monkeypatch, connection, FakeClient(permissions=permissions, admin=admin))
    check = run.checks.get(key="deprovisioning")
    assert check.status == expected and words in check.message


def test_a_run_is_claimed_once(monkeypatch, connection):
    run = run_with(monkeypatch, connection, FakeClient())
    count = run.checks.count()
    with fake(monkeypatch, FakeClient()):
        assert validation.run_validation(run_id=run.id) is None
    assert run.checks.count() == count


def test_a_late_run_does_not_revive_a_disconnected_connection(monkeypatch, connection):
    run = ValidationRun.objects.create(connection=connection)
    services.connection_disconnect(connection=connection, by=None)
    with fake(monkeypatch, FakeClient()):
        validation.run_validation(run_id=run.id)
    assert Connection.objects.get().status == "disconnected"
