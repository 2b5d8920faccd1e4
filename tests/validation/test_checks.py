"""Every check failing alone (and a few together) on its own simulated company, through the real client."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from connector import validation
from connector.models import AuditEvent, Connection
from simulator.demo import build_company, without
from simulator.services import CONNECT_PERMISSIONS
from tests.validation.conftest import SMALL, make_connection, statuses, validate

LOGIN_ORDER = [stage.key for stage in validation.LOGIN_STAGES]
ALL_KEYS = [check.key for check in validation.CHECKS]


@dataclass
class Case:
    name: str
    company: dict = field(default_factory=dict)       # build_company arguments
    connection: dict = field(default_factory=dict)    # make_connection arguments
    failing: str = ""                                 # the first failing check ("" when the run passes)
    step: int | None = None
    words: tuple[str, ...] = ()
    other: dict = field(default_factory=dict)         # other checks whose state is not the default
    run_status: str = "failed"
    # Never connected before: a failing check leaves it "in setup" (the break matrix covers working ones).
    connection_status: str = "in_setup"
    sender_password: str | None = None


CASES = [
    Case("sender", sender_password="not-our-password", failing="sender", step=None,  # noqa: S106
         words=("on our side", "Nothing for you to change")),
    Case("company", connection={"company_id": "NO-SUCH-COMPANY"}, failing="company", step=6,
         words=('no company with the ID "NO-SUCH-COMPANY"',)),
    Case("company-expired", company={"demo_expired": True}, failing="company", step=6,
         words=("has expired", "demo or sandbox")),
    Case("subscription", company={"subscribed": False}, failing="subscription", step=1,
         words=("Company > Admin > Subscriptions",)),
    Case("ip", company={"ip_filter": ["203.0.113.0/24"]}, failing="ip_address", step=2,
         words=("IP address filters",)),
    Case("sender-not-authorised", company={"authorize_sender_id": False}, failing="sender_authorised", step=3,
         words=("not authorised", "case-sensitive")),
    Case("needs-login-for-api", company={"needs_login_for_api": True}, failing="sender_authorised", step=3,
         words=('"Needs login for API"', "switch it off")),
    Case("wrong-password", connection={"password": "Wrong-Passw0rd!"}, failing="login", step=6,  # noqa: S106
         words=("did not accept the user ID and password",)),
    Case("inactive", company={"user_status": "inactive"}, failing="login", step=5,
         words=('"ws_connect" is inactive', "Status to Active")),
    Case("locked-out", company={"user_status": "locked out"}, failing="login", step=5,
         words=('"ws_connect" is locked out', "unlock")),
    Case("entity", connection={"entity_id": "E999"}, failing="entity", step=6,
         words=('refused the entity "E999"',)),
    Case("not-web-services-user", company={"web_services_user": False}, failing="web_services_user", step=5,
         words=("ordinary Intacct user", "expires every 90 days", "Company > Admin > Web Services users")),
    Case("no-bills", company={"permissions": without(CONNECT_PERMISSIONS, "Bills")}, failing="read_apbill",
         step=4, words=('The role "Intacct Connect" assigned to user "ws_connect" lacks Accounts Payable > '
                        "Bills View", 'Company > Admin > Roles > "Intacct Connect"', "tick Bills: View")),
    Case("role-not-assigned", company={"assign_role": False}, failing="read_department", step=5,
         words=('"ws_connect" holds no role', "assign the role"),
         other={**{f"read_{o}": "failed" for o in ("location", "employee", "cctransaction", "glaccount",
                                                   "apbill", "apadjustment", "eexpenses", "expensereportbatch")},
                "permission_model": "skipped"}),
    Case("user-based-no-bills", company={"permission_model": "user",
                                         "permissions": without(CONNECT_PERMISSIONS, "Bills")},
         connection={"permission_model": "user"}, failing="read_apbill", step=5,
         words=('The user "ws_connect" lacks Accounts Payable > Bills View', "Web Services users")),
    Case("no-employee-edit", company={"permissions": without(CONNECT_PERMISSIONS, "Employees", "Edit")},
         connection={"wants_deprovisioning": True}, failing="deprovisioning", step=4,
         words=("Company > Employees Edit",)),
    Case("admin-limited", company={"admin_privileges": "Limited"}, connection={"wants_deprovisioning": True},
         failing="deprovisioning", step=5, words=("admin privileges Full",)),
    Case("chose-user-but-role-based", connection={"permission_model": "user"},
         other={"permission_model": "warning"}, run_status="passed", connection_status="connected",
         words=("you chose user-based", "role-based", '"Intacct Connect"')),
    Case("chose-role-but-user-based", company={"permission_model": "user"},
         other={"permission_model": "warning"}, run_status="passed", connection_status="connected",
         words=("you chose role-based", "this company's are user-based", "user-based instructions")),
    Case("short-sessions", company={"session_lifetime_seconds": 300}, other={"limits": "warning"},
         run_status="passed", connection_status="connected", words=("Sessions last about 5 minutes",)),
    # Combinations: the first failure is named, what cannot run is skipped, what can still runs.
    Case("unsubscribed-and-no-bills", company={"subscribed": False,
                                               "permissions": without(CONNECT_PERMISSIONS, "Bills")},
         failing="subscription", step=1, words=("subscribe to Web Services",)),
    Case("inactive-and-not-ws-user", company={"user_status": "inactive", "web_services_user": False},
         failing="login", step=5, words=("inactive",)),
    Case("no-bills-and-no-employee-edit",
         company={"permissions": without(without(CONNECT_PERMISSIONS, "Bills"), "Employees", "Edit")},
         connection={"wants_deprovisioning": True}, failing="read_apbill", step=4,
         words=("Accounts Payable > Bills View",), other={"deprovisioning": "failed"}),
]


def expected_states(case: Case, connection: Connection) -> dict[str, str]:
    states = dict.fromkeys(ALL_KEYS, "passed")
    if not connection.wants_deprovisioning:
        states["deprovisioning"] = "skipped"
    if case.failing in LOGIN_ORDER:
        after = LOGIN_ORDER.index(case.failing) + 1
        states.update(dict.fromkeys(ALL_KEYS[after:], "skipped"))
    if case.failing:
        states[case.failing] = "failed"
    states.update(case.other)
    return states


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_misconfiguration_names_its_check_step_and_fix(case, simulator, settings):
    company_id = f"V-{case.name.upper()}"[:60]
    company_args = dict(case.company)
    lifetime = company_args.pop("session_lifetime_seconds", None)
    demo = build_company(company_id, sizes=SMALL, **company_args)
    if lifetime:
        demo.company.session_lifetime_seconds = lifetime
        demo.company.save(update_fields=["session_lifetime_seconds"])
    if case.sender_password:
        settings.INTACCT_SENDER_PASSWORD = case.sender_password
    connection = make_connection(**{"company_id": company_id, **case.connection})

    run = validate(connection)

    states = statuses(run)
    assert states == expected_states(case, connection), {k: v for k, v in states.items()}
    assert run.status == case.run_status
    if case.failing:
        check = run.checks.get(key=case.failing)
        assert check.wizard_step == case.step
        assert run.failed_check == case.failing and run.failed_step == case.step
        message = check.message
    else:
        message = " ".join(run.checks.exclude(status="passed").exclude(status="skipped")
                           .values_list("message", flat=True))
        assert run.failed_check == "" and run.failed_step is None
    for words in case.words:
        assert words.lower() in message.lower(), message
    connection.refresh_from_db()
    assert connection.status == case.connection_status
    assert connection.status_check == ""
    change = connection.status_changes.first()
    if case.connection_status == "connected":
        assert change.to_status == "connected" and change.validation_run_id == run.id
    else:
        assert change is None or change.to_status == "in_setup"


def test_a_healthy_company_passes_every_check_and_shows_its_role(simulator):
    build_company("V-HEALTHY", sizes=SMALL)
    connection = make_connection("V-HEALTHY", wants_deprovisioning=True)
    run = validate(connection)
    assert set(statuses(run).values()) == {"passed"}, statuses(run)
    assert '"Intacct Connect"' in run.checks.get(key="permission_model").message
    # One sign-in, then every read as one request of several functions (issue 11: at most 5).
    assert run.requests == 2
    assert (run.finished_at - run.started_at).total_seconds() < 3


def test_our_sender_refused_alerts_support_not_the_admin(simulator, settings, mailoutbox):
    settings.ADMINS = [("Support", "support@operator.test")]
    build_company("V-OURSIDE", sizes=SMALL)
    settings.INTACCT_SENDER_PASSWORD = "not-our-password"  # noqa: S105
    for _ in range(2):
        run = validate(make_connection("V-OURSIDE"))
        check = run.checks.get(key="sender")
        assert check.our_side and check.wizard_step is None and "on our side" in check.message
        assert check.errorno == "XL03000006" and "Partner ID or password" in check.description2
    # Support is told once an hour, however many connections hit it; admins get nothing.
    assert [m.to for m in mailoutbox] == [["support@operator.test"]]
    assert "Sender ID" in mailoutbox[0].subject
    assert AuditEvent.objects.filter(action="support.alerted").count() == 2
