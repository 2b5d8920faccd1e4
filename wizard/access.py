"""The one place every view checks who may see or change an organisation.

- an organisation's admins (and the operator's superusers) may read and write;
- support staff may read every organisation, never write (403);
- anyone else gets 404, so an outsider cannot even learn that an organisation exists;
- the support dashboard (support_access) is for support staff and superusers only: 404 for the rest.
Anonymous users never get here (views are wrapped in login_required), except a hand-off guest: a
person holding a hand-off link may read and write this one organisation's wizard steps and nothing else
(wizard_access, behind handoff_or_login_required).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from connector import services
from connector.models import SUPPORT_GROUP, Connection, Membership, Organisation


def is_support_staff(user) -> bool:
    return user.is_authenticated and user.groups.filter(name=SUPPORT_GROUP).exists()


def can_see_all_organisations(user) -> bool:
    return user.is_authenticated and (user.is_superuser or is_support_staff(user))


def support_access(request: HttpRequest) -> None:
    """The support dashboard: support staff and superusers only; everyone else (org admins too) gets 404."""
    if not can_see_all_organisations(request.user):
        raise Http404("No such page.")


def is_org_admin(user, organisation: Organisation) -> bool:
    return Membership.objects.filter(user=user, organisation=organisation, role=Membership.ORG_ADMIN).exists()


@dataclass(frozen=True)
class OrgAccess:
    organisation: Organisation
    connection: Connection
    can_write: bool
    # The hand-off link a guest came with (None for people with an account).
    handoff: object = None


def organisation_access(request: HttpRequest, slug: str, *, write: bool | None = None) -> OrgAccess:
    """Load an organisation for this user or raise 404/403. `write` defaults to "is this a POST"."""
    if write is None:
        write = request.method not in ("GET", "HEAD", "OPTIONS")
    user = request.user
    organisation = Organisation.objects.filter(slug=slug).first()
    if organisation is None or not user.is_authenticated:
        raise Http404("No such organisation.")
    if user.is_superuser or is_org_admin(user, organisation):
        can_write = True
    elif is_support_staff(user):
        can_write = False
    else:
        raise Http404("No such organisation.")
    if write and not can_write:
        raise PermissionDenied("Support staff have read-only access.")
    return OrgAccess(organisation=organisation, connection=services.connection_get(organisation=organisation),
                     can_write=can_write)


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address for the audit log (REMOTE_ADDR; a TLS proxy sets it via the WSGI server)."""
    return request.META.get("REMOTE_ADDR") or None


def handoff_or_login_required(view):
    """login_required, except for a browser holding a hand-off link (wizard_access then checks its organisation)."""
    from functools import wraps

    from django.contrib.auth.views import redirect_to_login

    from wizard.handoff import SESSION_KEY

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if request.user.is_authenticated or request.session.get(SESSION_KEY):
            return view(request, *args, **kwargs)
        return redirect_to_login(request.get_full_path())
    return wrapped


def wizard_access(request: HttpRequest, slug: str, *, write: bool | None = None) -> OrgAccess:
    """organisation_access for the wizard's pages, which a hand-off guest may also use (this organisation only)."""
    if request.user.is_authenticated:
        return organisation_access(request, slug, write=write)
    from wizard.handoff import handoff_for

    organisation = Organisation.objects.filter(slug=slug).first()
    handoff = handoff_for(request, organisation) if organisation is not None else None
    if handoff is None:
        raise Http404("This link no longer works: it expired or was revoked. Ask for a new one.")
    return OrgAccess(organisation=organisation, connection=services.connection_get(organisation=organisation),
                     can_write=True, handoff=handoff)
