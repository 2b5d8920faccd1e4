"""'Connect with Sage Intacct' (OAuth 2.0 authorization code with PKCE): the attempts' service functions.

The state and the PKCE verifier stay on the server (wizard.models.OAuthAttempt): the browser carries only the
state and the challenge, in the URL to Intacct, as OAuth requires. The callback finds the attempt by the state's
hash, once, within its lifetime, for the same person who started it.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from connector import clients, crypto, services
from connector.intacct_rest import Pkce, authorization_url
from connector.models import Organisation
from wizard.models import HandOff, OAuthAttempt

ATTEMPT_MINUTES = 15
RETURN_TO = ("setup", "connection")


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


@transaction.atomic
def attempt_start(*, organisation: Organisation, company_id: str, company_timezone: str, return_to: str, by,
                  handoff: HandOff | None, ip: str | None) -> str:
    """Record an attempt and return the URL of Intacct's sign-in page to send the browser to."""
    if return_to not in RETURN_TO:
        raise ValueError(f"unknown return_to {return_to!r}")
    state, pkce = secrets.token_urlsafe(32), Pkce.new()
    OAuthAttempt.objects.create(
        organisation=organisation, state_hash=_hash(state), verifier_token=crypto.encrypt(pkce.verifier),
        company_id=company_id, company_timezone=company_timezone, return_to=return_to,
        started_by=by if by is not None and by.is_authenticated else None, handoff=handoff,
        expires_at=timezone.now() + timedelta(minutes=ATTEMPT_MINUTES))
    services.audit_record(organisation=organisation, connection=organisation.connection, user=by, ip=ip,
                          action="rest_connection.started",
                          details={"company_id": company_id, "by_handoff": handoff.pk if handoff else None})
    return authorization_url(clients.rest_config(), redirect_uri=settings.INTACCT_REST_REDIRECT_URI, state=state,
                             pkce=pkce)


def last_attempt(*, organisation: Organisation) -> OAuthAttempt | None:
    """The organisation's latest attempt (its company ID and time zone prefill the form again)."""
    return OAuthAttempt.objects.filter(organisation=organisation).order_by("-created_at", "-id").first()


def attempt_find(*, state: str) -> OAuthAttempt | None:
    """The attempt a callback's state names (unused, not expired), without taking it."""
    if not state:
        return None
    return (OAuthAttempt.objects.select_related("organisation", "handoff")
            .filter(state_hash=_hash(state), used_at__isnull=True, expires_at__gt=timezone.now()).first())


@dataclass(frozen=True)
class TakenAttempt:
    attempt: OAuthAttempt
    verifier: str


@transaction.atomic
def attempt_take(*, attempt: OAuthAttempt) -> TakenAttempt | None:
    """Use the attempt up (a state works once); None when it was used meanwhile (a second tab, a replay)."""
    taken = OAuthAttempt.objects.filter(pk=attempt.pk, used_at__isnull=True).update(used_at=timezone.now())
    if taken != 1:
        return None
    return TakenAttempt(attempt, crypto.decrypt(attempt.verifier_token))


def started_by_this_browser(attempt: OAuthAttempt, *, user, handoff: HandOff | None) -> bool:
    """The callback comes from whoever started the attempt (the same login, or the same hand-off link)."""
    if attempt.handoff_id is not None:
        return handoff is not None and handoff.pk == attempt.handoff_id
    return user is not None and user.is_authenticated and attempt.started_by_id == user.pk
