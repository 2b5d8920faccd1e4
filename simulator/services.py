"""Writes an Intacct administrator would make: companies, senders, roles, users, passwords, mail."""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher, check_password, make_password
from django.db import transaction
from django.db.models import Max

from simulator.models import (
    Entity,
    Mail,
    Permission,
    RecordOverride,
    Role,
    Sender,
    SenderAuthorization,
    SimCompany,
    SimUser,
)
from simulator.records import company_sizes

PermSpec = tuple[str, str, str]  # application, policy, pipe-delimited rights

# The permissions the screens offer: what Intacct Connect reads, plus a few it does not need.
PERMISSION_CATALOG: list[tuple[str, str, tuple[str, ...]]] = [
    ("Company", "Departments", ("List", "View", "Add", "Edit", "Delete")),
    ("Company", "Locations", ("List", "View", "Add", "Edit", "Delete")),
    ("Company", "Employees", ("List", "View", "Add", "Edit", "Delete")),
    ("Cash Management", "Credit Card Transactions", ("List", "View", "Add", "Edit", "Delete")),
    ("General Ledger", "Accounts", ("List", "View", "Add", "Edit", "Delete")),
    ("Accounts Payable", "Bills", ("List", "View", "Add", "Edit", "Delete")),
    ("Accounts Payable", "Adjustments", ("List", "View", "Add", "Edit", "Delete")),
    ("Time & Expenses", "Expense Summaries", ("List", "View", "Add", "Edit", "Delete")),
    ("Accounts Receivable", "Invoices", ("List", "View", "Add", "Edit", "Delete")),
    ("Accounts Receivable", "Customers", ("List", "View", "Add", "Edit", "Delete")),
    ("General Ledger", "Journal Entries", ("List", "View", "Add", "Edit", "Delete")),
    ("Purchasing", "Purchase Orders", ("List", "View", "Add", "Edit", "Delete")),
]
# What a web services user of Intacct Connect needs: read everything, edit employees.
CONNECT_PERMISSIONS: list[PermSpec] = [
    ("Company", "Departments", "List|View"),
    ("Company", "Locations", "List|View"),
    ("Company", "Employees", "List|View|Edit"),
    ("Cash Management", "Credit Card Transactions", "List|View"),
    ("General Ledger", "Accounts", "List|View"),
    ("Accounts Payable", "Bills", "List|View"),
    ("Accounts Payable", "Adjustments", "List|View"),
    ("Time & Expenses", "Expense Summaries", "List|View"),
]


class _FastPBKDF2(PBKDF2PasswordHasher):
    """A salted PBKDF2 hash Django's check_password verifies, with fewer rounds: simulated users only."""

    iterations = 20_000


_verified: dict[tuple[str, str], bool] = {}


def hash_password(password: str) -> str:
    return make_password(password, hasher=_FastPBKDF2())


def password_matches(password: str, encoded: str) -> bool:
    """check_password, remembered per (hash, password digest) so a request does not pay PBKDF2 each time."""
    key = (encoded, hashlib.sha256(password.encode()).hexdigest())
    if key not in _verified:
        if len(_verified) > 10_000:
            _verified.clear()
        _verified[key] = bool(encoded) and check_password(password, encoded)
    return _verified[key]


def generate_password(length: int = 14) -> str:
    alphabet = string.ascii_letters + string.digits
    body = "".join(secrets.choice(alphabet) for _ in range(length - 2))
    return body + secrets.choice("!#%*+-=?@") + secrets.choice(string.digits)


# --- Senders ---------------------------------------------------------------------------------
def ensure_sender(sender_id: str, password: str) -> Sender:
    """Register (or re-key) a sender ID in the simulated gateway."""
    sender = Sender.objects.filter(sender_id=sender_id).first()
    if sender is None:
        return Sender.objects.create(sender_id=sender_id, password_hash=hash_password(password))
    if not password_matches(password, sender.password_hash):
        sender.password_hash = hash_password(password)
        sender.save(update_fields=["password_hash"])
    return sender


def settings_sender() -> Sender:
    """Our own sender, from INTACCT_SENDER_ID / INTACCT_SENDER_PASSWORD."""
    return ensure_sender(settings.INTACCT_SENDER_ID, settings.INTACCT_SENDER_PASSWORD)


def authorize_sender(
    company: SimCompany, sender_id: str, *, needs_login_for_api: bool = False, active: bool = True
) -> SenderAuthorization:
    auth, _ = SenderAuthorization.objects.update_or_create(
        company=company,
        sender_id=sender_id,
        defaults={"needs_login_for_api": needs_login_for_api, "active": active},
    )
    return auth


# --- Companies, roles, users -----------------------------------------------------------------
def create_company(company_id: str, **fields: object) -> SimCompany:
    """Create a company (any SimCompany field may be given) with one top-level-only entity list."""
    return SimCompany.objects.create(company_id=company_id, name=str(fields.pop("name", company_id)), **fields)


def add_entity(company: SimCompany, entity_id: str, name: str = "") -> Entity:
    entity, _ = Entity.objects.get_or_create(company=company, entity_id=entity_id, defaults={"name": name or entity_id})
    return entity


def set_permissions(*, role: Role | None = None, user: SimUser | None = None, permissions: Iterable[PermSpec]) -> None:
    """Replace the permissions of a role or of a user."""
    owner = {"role": role} if role is not None else {"user": user}
    with transaction.atomic():
        Permission.objects.filter(**owner).delete()
        Permission.objects.bulk_create(
            [
                Permission(application=app, policy=policy, rights=rights, **owner)
                for app, policy, rights in permissions
                if rights
            ]
        )


def create_role(company: SimCompany, name: str, permissions: Iterable[PermSpec] = (), description: str = "") -> Role:
    role = Role.objects.create(company=company, name=name, description=description)
    set_permissions(role=role, permissions=permissions)
    return role


def _next_user_recordno(company: SimCompany) -> int:
    top = company_sizes(company)["USERINFO"]
    users = SimUser.objects.filter(company=company).aggregate(m=Max("recordno"))["m"] or 0
    stored = RecordOverride.objects.filter(company=company, object="USERINFO").aggregate(m=Max("recordno"))["m"]
    return max(top, users, stored or 0) + 1


def send_mail(company: SimCompany | None, to: str, subject: str, body: str) -> Mail:
    """Put a message in the simulator's mailbox (nothing leaves the machine)."""
    return Mail.objects.create(company=company, to=to, subject=subject, body=body)


def _mail_password(user: SimUser, password: str, reset: bool) -> None:
    action = "has been reset" if reset else "has been created"
    send_mail(
        user.company,
        user.email or f"{user.login_id}@example.com",
        f"Sage Intacct: your password for company {user.company.company_id}",
        f"Hello {user.first_name or user.login_id},\n\nYour user ID {user.login_id} for company "
        f"{user.company.company_id} {action}.\n\nUser ID: {user.login_id}\nCompany ID: "
        f"{user.company.company_id}\nPassword: {password}\n\n(Simulator mailbox: Sage Intacct stand-in.)",
    )


def create_user(
    company: SimCompany,
    login_id: str,
    *,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    user_type: str = "business user",
    admin_privileges: str = "Off",
    status: str = "active",
    is_web_services_user: bool = True,
    roles: Iterable[Role] = (),
    permissions: Iterable[PermSpec] = (),
    password: str | None = None,
) -> tuple[SimUser, str]:
    """Create a user. Without ``password`` a random one is generated and mailed to the simulator mailbox."""
    generated = password is None
    password = generate_password() if password is None else password
    with transaction.atomic():
        user = SimUser.objects.create(
            company=company,
            login_id=login_id,
            first_name=first_name,
            last_name=last_name,
            email=email,
            user_type=user_type,
            admin_privileges=admin_privileges,
            status=status,
            is_web_services_user=is_web_services_user,
            password_hash=hash_password(password),
            recordno=_next_user_recordno(company),
        )
        user.roles.set(list(roles))
        set_permissions(user=user, permissions=permissions)
        if generated:
            _mail_password(user, password, reset=False)
    return user, password


def reset_password(user: SimUser, password: str | None = None) -> str:
    """Give the user a new password (random unless given) and mail it; old sessions keep working."""
    generated = password is None
    password = generate_password() if password is None else password
    user.password_hash = hash_password(password)
    user.save(update_fields=["password_hash", "updated_at"])
    if generated:
        _mail_password(user, password, reset=True)
    return password


def effective_permissions(user: SimUser) -> dict[tuple[str, str], set[str]]:
    """(application, policy) -> rights: from the user's roles (role-based) or the user (user-based)."""
    if user.company.permission_model == "role":
        rows = Permission.objects.filter(role__users=user)
    else:
        rows = Permission.objects.filter(user=user)
    result: dict[tuple[str, str], set[str]] = {}
    for app, policy, rights in rows.values_list("application", "policy", "rights"):
        result.setdefault((app, policy), set()).update(r for r in rights.split("|") if r)
    return result


# --- Company rules: users, entities, senders ----------------------------------------------------
def delete_user(user: SimUser) -> None:
    """Delete a user: its sessions end, it can no longer sign in, and USERINFO no longer lists it."""
    from simulator.records import delete_record

    delete_record(user.company, "USERINFO", user.recordno)


def set_user_entities(user: SimUser, entities: Iterable[Entity]) -> None:
    """Restrict the user to these entities (none: the user may sign in anywhere, top level included)."""
    user.entities.set(list(entities))


def unlock_user(user: SimUser) -> None:
    """Make a locked-out user active again, with a fresh count of failed sign-ins."""
    SimUser.objects.filter(pk=user.pk).update(status="active", failed_logins=0)
    user.status, user.failed_logins = "active", 0


def remove_entity(entity: Entity) -> None:
    """Remove an entity (its sessions end; users restricted to it lose it)."""
    entity.delete()
