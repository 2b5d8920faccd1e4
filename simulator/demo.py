"""Build simulated companies quickly, set up right or wrong in one chosen way (tests, seed, demos)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from simulator.models import Role, SimCompany, SimUser
from simulator.services import (
    CONNECT_PERMISSIONS,
    PermSpec,
    add_entity,
    authorize_sender,
    create_company,
    create_role,
    create_user,
    settings_sender,
)

# Documented simulator-only demo credential (printed by simulator_seed and the README); never a real secret.
DEMO_PASSWORD = "Demo-Connect-2024!"  # noqa: S105 - documented simulator demo credential
DEMO_LOGIN = "ws_connect"
# The one table of demo data sizes (records per object, every synced object in every row): the demo companies,
# the tests and the benchmarks pick a row by name, and change one object at most ({**SIZES["realistic"], ...}).
SIZES: dict[str, dict[str, int]] = {
    # `make run`'s demo companies and the benchmarks' base: a mid-sized company.
    "realistic": {"DEPARTMENT": 50, "LOCATION": 20, "EMPLOYEE": 500, "USERINFO": 40, "CCTRANSACTION": 2000,
                  "GLACCOUNT": 120, "APBILL": 5000, "APADJUSTMENT": 400, "EEXPENSES": 1500, "EXPENSEREPORTBATCH": 60},
    # The soak's companies: many of them on one machine, each synced again and again.
    "soak": {"DEPARTMENT": 15, "LOCATION": 6, "EMPLOYEE": 80, "USERINFO": 10, "CCTRANSACTION": 400,
             "GLACCOUNT": 40, "APBILL": 1000, "APADJUSTMENT": 40, "EEXPENSES": 150, "EXPENSEREPORTBATCH": 8},
    # Paging tests: bills over more than one 2,000-record page.
    "two_pages": {"DEPARTMENT": 12, "LOCATION": 5, "EMPLOYEE": 40, "USERINFO": 10, "CCTRANSACTION": 30,
                  "GLACCOUNT": 20, "APBILL": 2500, "APADJUSTMENT": 10, "EEXPENSES": 25, "EXPENSEREPORTBATCH": 7},
    # Sync tests: every object within one page, enough records for changes and deletes to show.
    "one_page": {"DEPARTMENT": 12, "LOCATION": 5, "EMPLOYEE": 40, "USERINFO": 8, "CCTRANSACTION": 150,
                 "GLACCOUNT": 30, "APBILL": 700, "APADJUSTMENT": 25, "EEXPENSES": 60, "EXPENSEREPORTBATCH": 7},
    # Property tests of the change feed: one company per example, paged by 25.
    "tiny": {"DEPARTMENT": 3, "LOCATION": 2, "EMPLOYEE": 6, "USERINFO": 3, "CCTRANSACTION": 8, "GLACCOUNT": 4,
             "APBILL": 90, "APADJUSTMENT": 3, "EEXPENSES": 4, "EXPENSEREPORTBATCH": 2},
    # Validation, the wizard and the breaks: a few records of each, what a read probe needs.
    "minimal": {"DEPARTMENT": 5, "LOCATION": 3, "EMPLOYEE": 5, "USERINFO": 3, "CCTRANSACTION": 3, "GLACCOUNT": 3,
                "APBILL": 3, "APADJUSTMENT": 3, "EEXPENSES": 3, "EXPENSEREPORTBATCH": 3},
}
REALISTIC_SIZES = SIZES["realistic"]


@dataclass
class DemoCompany:
    company: SimCompany
    user: SimUser | None
    password: str
    role: Role | None


def without(permissions: Iterable[PermSpec], policy: str, right: str | None = None) -> list[PermSpec]:
    """The permissions minus one policy (or minus one right of it)."""
    out = []
    for app, pol, rights in permissions:
        if pol == policy:
            if right is None:
                continue
            rights = "|".join(r for r in rights.split("|") if r != right)
        out.append((app, pol, rights))
    return out


def build_company(
    company_id: str,
    *,
    subscribed: bool = True,
    ip_filter: list[str] | None = None,
    authorize_sender_id: bool = True,
    sender_id: str | None = None,
    needs_login_for_api: bool = False,
    permission_model: str = "role",
    permissions: Iterable[PermSpec] = CONNECT_PERMISSIONS,
    assign_role: bool = True,
    with_role: bool = True,
    with_user: bool = True,
    login_id: str = DEMO_LOGIN,
    password: str = DEMO_PASSWORD,
    user_status: str = "active",
    admin_privileges: str = "Full",
    web_services_user: bool = True,
    sizes: dict[str, int] | None = None,
    seed: int = 1,
    entities: Iterable[str] = ("E100", "E200"),
    **company_fields: object,
) -> DemoCompany:
    """A company whose settings are right unless told otherwise; returns it with its user and password.

    Role-based companies get a role "Intacct Connect" holding ``permissions`` (assigned to the user unless
    ``assign_role`` is False; none at all with ``with_role=False``); user-based companies put ``permissions`` on
    the user.
    """
    settings_sender()
    permissions = list(permissions)
    with transaction.atomic():
        company = create_company(
            company_id,
            web_services_subscribed=subscribed,
            ip_filter_enabled=ip_filter is not None,
            allowed_ips=list(ip_filter or []),
            permission_model=permission_model,
            data_seed=seed,
            data_sizes=dict(sizes or {}),
            **company_fields,
        )
        for entity_id in entities:
            add_entity(company, entity_id, f"Entity {entity_id}")
        if authorize_sender_id:
            authorize_sender(company, sender_id or settings.INTACCT_SENDER_ID, needs_login_for_api=needs_login_for_api)
        role = None
        if permission_model == "role" and with_role:
            role = create_role(company, "Intacct Connect", permissions, "Read access for Intacct Connect")
        user = None
        if with_user:
            user, _ = create_user(
                company,
                login_id,
                first_name="Web",
                last_name="Services",
                email=f"{login_id}@example.com",
                admin_privileges=admin_privileges,
                status=user_status,
                is_web_services_user=web_services_user,
                roles=[role] if role is not None and assign_role else [],
                permissions=permissions if permission_model == "user" else [],
                password=password,
            )
    return DemoCompany(company, user, password, role)


# Each seeded company: (company ID, what is special about it, keyword arguments for build_company).
SEED_COMPANIES: list[tuple[str, str, dict]] = [
    ("DEMO-CO", "Fully set up, role-based permissions", {"sizes": REALISTIC_SIZES}),
    (
        "DEMO-USERBASED",
        "Fully set up, user-based permissions",
        {"sizes": REALISTIC_SIZES, "permission_model": "user"},
    ),
    (
        "NEW-CO",
        "Blank: not subscribed, no sender authorised, no roles or users (set it up with the wizard)",
        {
            "sizes": REALISTIC_SIZES,
            "subscribed": False,
            "authorize_sender_id": False,
            "with_user": False,
            # No role either: an empty "Intacct Connect" beside the role the wizard suggests invites assigning it.
            "with_role": False,
            "permissions": [],
        },
    ),
    ("BAD-NOT-SUBSCRIBED", "Web Services subscription off", {"subscribed": False}),
    ("BAD-IP-FILTERED", "IP address filter on, loopback not allowed", {"ip_filter": ["203.0.113.0/24"]}),
    (
        "BAD-SENDER-NOT-AUTHORIZED",
        "Our sender ID is not in Web Services authorizations",
        {"authorize_sender_id": False},
    ),
    ("BAD-NEEDS-LOGIN", 'Sender authorised with "Needs login for API" on', {"needs_login_for_api": True}),
    (
        "BAD-NO-BILLS",
        "Role lacks Accounts Payable > Bills",
        {"permissions": without(CONNECT_PERMISSIONS, "Bills")},
    ),
    ("BAD-ROLE-NOT-ASSIGNED", "Permissions are on a role the user does not have", {"assign_role": False}),
    ("BAD-USER-INACTIVE", "Web services user is inactive", {"user_status": "inactive"}),
    ("BAD-USER-LOCKED", "Web services user is locked out", {"user_status": "locked out"}),
    (
        "BAD-NO-EMPLOYEE-EDIT",
        "Role has Employees List|View but not Edit",
        {"permissions": without(CONNECT_PERMISSIONS, "Employees", "Edit")},
    ),
    ("BAD-ADMIN-LIMITED", "User's admin privileges are Limited, not Full", {"admin_privileges": "Limited"}),
    (
        "BAD-NOT-WS-USER",
        "User is an ordinary user, not a web services user (password expires)",
        {"web_services_user": False},
    ),
]
