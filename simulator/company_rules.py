"""Company rules real Intacct companies have, beyond the setup steps: see docs/protocol-choices.md.

- lock-out after repeated failed sign-ins (Company > Setup > Company > Security);
- user types and admin privileges that limit writes;
- users restricted to some entities (no top-level sign-in for them);
- per-application subscriptions (an object of an application the company does not subscribe to is unknown);

The gateway asks these questions; the admin screens change the answers.
"""

from __future__ import annotations

from django.db.models import F

from simulator.models import SimCompany, SimUser

# User types that may not change any record through the API.
READ_ONLY_USER_TYPES = frozenset({"view only user", "dashboard user"})
# Objects whose writes are user administration: an admin business user only.
USER_ADMIN_OBJECTS = frozenset({"USERINFO"})


def applications() -> list[str]:
    """The applications a company can subscribe to: those the simulated objects belong to."""
    from simulator.records import OBJECTS

    # Company (departments, locations, employees, users) is the core every company has.
    return sorted({obj.application for obj in OBJECTS.values() if obj.application and obj.application != "Company"})


def application_subscribed(company: SimCompany, application: str) -> bool:
    return application not in (company.unsubscribed_applications or [])


def sign_in_failed(company: SimCompany, user: SimUser) -> bool:
    """Count a wrong password; True when this failure locked the user out."""
    SimUser.objects.filter(pk=user.pk).update(failed_logins=F("failed_logins") + 1)
    if not company.lockout_threshold:
        return False
    locked = (
        SimUser.objects.filter(
            pk=user.pk, status="active", failed_logins__gte=company.lockout_threshold
        ).update(status="locked out")
        == 1
    )
    return locked


def sign_in_succeeded(user: SimUser) -> None:
    """A correct password ends the run of failures."""
    if user.failed_logins:
        SimUser.objects.filter(pk=user.pk).update(failed_logins=0)
        user.failed_logins = 0


def write_refused(user: SimUser, object_name: str) -> bool:
    """True when the user's type or admin privileges forbid changing records of the object."""
    if user.user_type in READ_ONLY_USER_TYPES:
        return True
    if object_name.upper() in USER_ADMIN_OBJECTS:
        return user.user_type != "business user" or user.admin_privileges != "Full"
    return False


def top_level_refused(user: SimUser) -> bool:
    """A user restricted to some entities may sign in to those entities only, never at the top level."""
    return user.entities.exists()
