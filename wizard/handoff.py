"""Hand-off links: create, open, check on every request, revoke. Every use is written to the audit log.

The person who connects is often not the company's Intacct admin. An org admin hands the setup over with a link
for a named person: it opens this organisation's wizard (steps 1-6, nothing else) without an account, for
HANDOFF_DAYS days, until revoked. The link's token is shown once and e-mailed; only its SHA-256 is stored.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from connector import services
from connector.models import Organisation
from wizard.models import HandOff

HANDOFF_DAYS = 7
SESSION_KEY = "handoff_id"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_for(token: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("handoff_open", args=[token])


@transaction.atomic
def handoff_create(*, organisation: Organisation, name: str, email: str, by, ip: str | None) -> tuple[HandOff, str]:
    """A new hand-off and its link (shown once). E-mails the link when an address is given."""
    token = secrets.token_urlsafe(32)
    handoff = HandOff.objects.create(organisation=organisation, name=name, email=email, token_hash=_hash(token),
                                     created_by=by if by is not None and by.is_authenticated else None,
                                     expires_at=timezone.now() + timedelta(days=HANDOFF_DAYS))
    services.audit_record(organisation=organisation, connection=organisation.connection, action="handoff.created",
                          user=by, ip=ip, details={"handoff": handoff.id, "name": name, "email": email,
                                                   "expires_at": handoff.expires_at.isoformat()})
    link = link_for(token)
    if email:
        who = by.get_username() if by is not None and by.is_authenticated else "An administrator"
        transaction.on_commit(lambda: send_mail(
            f"{who} asked you to connect {organisation.name} to {settings.PRODUCT_NAME}",
            f"Hello {name},\n\n{who} asked you to connect {organisation.name}'s Sage Intacct company to "
            f"{settings.PRODUCT_NAME}. The link below walks you through six short steps in Intacct; you need no "
            f"account with us.\n\n{link}\n\nThe link works for {HANDOFF_DAYS} days, for {organisation.name} only.\n",
            settings.DEFAULT_FROM_EMAIL, [email]))
    return handoff, link


def handoff_open(*, request: HttpRequest, token: str) -> HandOff | None:
    """The hand-off a link opens (and remember it in this browser's session), or None if it no longer works."""
    handoff = HandOff.objects.select_related("organisation").filter(token_hash=_hash(token)).first()
    if handoff is None or not handoff.is_active:
        return None
    request.session.cycle_key()  # a fresh session id: the link never shares one with another browser
    request.session[SESSION_KEY] = handoff.id
    handoff_used(request=request, handoff=handoff, what="opened the link")
    return handoff


def handoff_for(request: HttpRequest, organisation: Organisation) -> HandOff | None:
    """The active hand-off this browser holds for this organisation (checked on every request)."""
    handoff_id = request.session.get(SESSION_KEY)
    if not handoff_id:
        return None
    handoff = HandOff.objects.filter(id=handoff_id, organisation=organisation).first()
    return handoff if handoff is not None and handoff.is_active else None


def handoff_used(*, request: HttpRequest, handoff: HandOff, what: str, step: int | None = None) -> None:
    """Note a use (the org admin's live view) and audit it."""
    HandOff.objects.filter(id=handoff.id).update(last_used_at=timezone.now(),
                                                 **({"last_step": step} if step else {}))
    services.audit_record(organisation=handoff.organisation, connection=handoff.organisation.connection,
                          action="handoff.used", ip=request.META.get("REMOTE_ADDR"),
                          details={"handoff": handoff.id, "name": handoff.name, "what": what, "step": step})


def handoff_revoke(*, handoff: HandOff, by, ip: str | None) -> None:
    if handoff.revoked_at is None:
        HandOff.objects.filter(id=handoff.id).update(revoked_at=timezone.now())
        services.audit_record(organisation=handoff.organisation, connection=handoff.organisation.connection,
                              action="handoff.revoked", user=by, ip=ip,
                              details={"handoff": handoff.id, "name": handoff.name})
