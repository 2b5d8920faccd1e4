"""Every write to organisations, connections, validation runs and the audit log.

Functions are keyword-only. Anything that changes a connection records an AuditEvent; no audit entry,
log line or task argument ever holds a secret.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.db import models, transaction
from django.utils import timezone
from django.utils.text import slugify

from connector import clients, crypto, objects, requeue, rest_tokens
from connector.models import (
    SUPPORT_GROUP,
    ApiToken,
    AuditEvent,
    Connection,
    ConnectionStatusChange,
    Membership,
    Organisation,
    StepCompletion,
    SyncRun,
    SyncSettings,
    ValidationRun,
)

if TYPE_CHECKING:  # the project keeps Django's own user model (no AUTH_USER_MODEL)
    from django.contrib.auth.models import User as UserModel

logger = logging.getLogger(__name__)
User = get_user_model()
Actor = AbstractBaseUser | AnonymousUser | None


def _actor(user: Actor):
    return user if user is not None and user.is_authenticated else None


def audit_record(*, organisation: Organisation, action: str, user: Actor = None,
                 connection: Connection | None = None, ip: str | None = None,
                 details: dict | None = None) -> AuditEvent:
    """Record who did what to an organisation's connection (details must never hold a secret)."""
    return AuditEvent.objects.create(organisation=organisation, connection=connection, actor=_actor(user),
                                     action=action, ip_address=ip or None, details=details or {})


# --- Organisations and people ---------------------------------------------------------------

def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "organisation"
    slug, n = base, 2
    while Organisation.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def organisation_create(*, name: str, admin: UserModel | None = None, slug: str = "",
                        by: Actor = None, ip: str | None = None) -> Organisation:
    """Create an organisation, its (not started) connection and, if given, its first admin's membership."""
    organisation = Organisation.objects.create(name=name, slug=slug or _unique_slug(name))
    connection = Connection.objects.create(organisation=organisation)
    audit_record(organisation=organisation, connection=connection, action="organisation.created", user=by,
                 ip=ip, details={"name": name})
    if admin is not None:
        membership_add(organisation=organisation, user=admin, by=by, ip=ip)
    return organisation


def membership_add(*, organisation: Organisation, user: UserModel, by: Actor = None,
                   ip: str | None = None) -> Membership:
    """Make a user an admin of an organisation."""
    membership, created = Membership.objects.get_or_create(organisation=organisation, user=user)
    if created:
        audit_record(organisation=organisation, action="membership.added", user=by, ip=ip,
                     details={"username": user.get_username(), "role": membership.role})
    return membership


def user_create(*, username: str, email: str, password: str) -> UserModel:
    """Create a login (passwords are hashed by Django's auth)."""
    return User.objects.create_user(username=username, email=email, password=password)


def support_staff_grant(*, user: UserModel) -> None:
    """Make a user support staff: read-only access to every organisation, never to secrets."""
    group, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
    user.groups.add(group)


@transaction.atomic
def signup(*, username: str, email: str, password: str, organisation_name: str,
           ip: str | None = None) -> tuple[UserModel, Organisation]:
    """Self sign-up: a new login that is the first admin of a new organisation."""
    user = user_create(username=username, email=email, password=password)
    organisation = organisation_create(name=organisation_name, admin=user, by=user, ip=ip)
    return user, organisation


# --- The wizard's progress ------------------------------------------------------------------

def connection_get(*, organisation: Organisation) -> Connection:
    """The organisation's connection, created on first use."""
    connection, _ = Connection.objects.get_or_create(organisation=organisation)
    return connection


# The connection's state machine: every status change goes through connection_transition.
_S = Connection.Status
STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    _S.NOT_STARTED: frozenset({_S.IN_SETUP, _S.DISCONNECTED}),
    _S.IN_SETUP: frozenset({_S.CONNECTED, _S.NEEDS_ATTENTION, _S.BROKEN, _S.DISCONNECTED}),
    _S.CONNECTED: frozenset({_S.NEEDS_ATTENTION, _S.BROKEN, _S.DISCONNECTED}),
    _S.NEEDS_ATTENTION: frozenset({_S.CONNECTED, _S.NEEDS_ATTENTION, _S.BROKEN, _S.DISCONNECTED}),
    _S.BROKEN: frozenset({_S.CONNECTED, _S.NEEDS_ATTENTION, _S.BROKEN, _S.DISCONNECTED}),
    _S.DISCONNECTED: frozenset({_S.IN_SETUP}),
}


def connection_transition(*, connection: Connection, to: str, check_key: str = "",
                          run: ValidationRun | None = None, reason: str = "", cause: str = "",
                          sync_run=None) -> bool:
    """Move the connection to a new status (or a new failing check or cause), recording the change; False if no change.

    ``reason`` is the plain-words message shown for a failing status. Raises ValueError for a move the state
    machine does not allow.
    """
    failing = to in Connection.FAILING_STATUSES  # the failing check is recorded with these
    check_key = check_key if failing else ""
    cause = cause if failing else ""
    if connection.status == to and connection.status_check == check_key and connection.status_cause == cause:
        return False
    if to != connection.status and to not in STATUS_TRANSITIONS[connection.status]:
        raise ValueError(f"connection status cannot go from {connection.status} to {to}")
    if to == connection.status and to not in STATUS_TRANSITIONS[connection.status]:
        raise ValueError(f"connection status {to} has no failing check to change")
    now = timezone.now()
    ConnectionStatusChange.objects.create(connection=connection, from_status=connection.status, to_status=to,
                                          check_key=check_key, validation_run=run, sync_run=sync_run, cause=cause,
                                          reason=reason[:500], changed_at=now)
    fields = ["status_check", "status_cause", "status_message"]
    if connection.status != to:
        connection.status_changed_at = now
        fields.append("status_changed_at")
    connection.status, connection.status_check, connection.status_cause = to, check_key, cause
    connection.status_message = reason if failing else ""
    connection.save(update_fields=["status", *fields])
    return True


def _start_setup(connection: Connection) -> None:
    if connection.status == Connection.Status.NOT_STARTED:
        connection_transition(connection=connection, to=Connection.Status.IN_SETUP)


@transaction.atomic
def connection_mark_step(*, connection: Connection, step: int, by: Actor, ip: str | None = None) -> None:
    """Record "I've done this" for a wizard step."""
    _, created = StepCompletion.objects.get_or_create(connection=connection, step=step,
                                                      defaults={"done_by": _actor(by)})
    _start_setup(connection)
    if created:
        audit_record(organisation=connection.organisation, connection=connection, action="step.marked_done",
                     user=by, ip=ip, details={"step": step})


@transaction.atomic
def connection_unmark_step(*, connection: Connection, step: int, by: Actor, ip: str | None = None) -> None:
    """Undo "I've done this" for a wizard step."""
    deleted, _ = StepCompletion.objects.filter(connection=connection, step=step).delete()
    if deleted:
        audit_record(organisation=connection.organisation, connection=connection,
                     action="step.marked_not_done", user=by, ip=ip, details={"step": step})


@transaction.atomic
def connection_set_permission_model(*, connection: Connection, permission_model: str, by: Actor,
                                    ip: str | None = None) -> None:
    """Record the company's permission model (role- or user-based) chosen in step 4."""
    if permission_model not in (objects.ROLE_BASED, objects.USER_BASED):
        raise ValueError(f"unknown permission model {permission_model!r}")
    _start_setup(connection)
    if connection.permission_model != permission_model:
        connection.permission_model = permission_model
        connection.save(update_fields=["permission_model"])
        audit_record(organisation=connection.organisation, connection=connection,
                     action="permission_model.set", user=by, ip=ip,
                     details={"permission_model": permission_model})


@transaction.atomic
def connection_set_deprovisioning(*, connection: Connection, wants_deprovisioning: bool, by: Actor,
                                  ip: str | None = None) -> None:
    """Record whether the organisation wants user deprovisioning (changes required permissions)."""
    _start_setup(connection)
    if connection.wants_deprovisioning != wants_deprovisioning:
        connection.wants_deprovisioning = wants_deprovisioning
        connection.save(update_fields=["wants_deprovisioning"])
        audit_record(organisation=connection.organisation, connection=connection,
                     action="deprovisioning.set", user=by, ip=ip,
                     details={"wants_deprovisioning": wants_deprovisioning})


@transaction.atomic
def connection_choose_protocol(*, connection: Connection, protocol: str, by: Actor, ip: str | None = None) -> None:
    """The wizard's first choice: REST ("Connect with Sage Intacct") or XML. A connection holding credentials
    keeps its protocol (an XML one moves to REST by connecting over REST: connection_switch_to_rest)."""
    if protocol not in Connection.Protocol.values:
        raise ValueError(f"unknown protocol {protocol!r}")
    connection = Connection.objects.select_for_update().get(pk=connection.pk)
    if connection.has_credentials or connection.protocol == protocol:
        return
    _start_setup(connection)
    connection.protocol = protocol
    connection.save(update_fields=["protocol"])
    audit_record(organisation=connection.organisation, connection=connection, action="protocol.chosen", user=by,
                 ip=ip, details={"protocol": protocol})


# --- Credentials ----------------------------------------------------------------------------

@transaction.atomic
def connection_set_credentials(*, connection: Connection, company_id: str, user_id: str, password: str,
                               entity_id: str = "", by: Actor, ip: str | None = None) -> ValidationRun:
    """Save the web services user's credentials (password encrypted) and enqueue a validation."""
    if company_id != connection.company_id:
        # Another company's entities are not this one's: forget them until the next top-level sign-in.
        connection.intacct_entities = []
    connection.company_id = company_id
    connection.user_id = user_id
    connection.entity_id = entity_id
    connection.password_token = crypto.encrypt(password)
    connection.password_set_at = timezone.now()
    # XML credentials make an XML connection (a REST grant's tokens, if any, are not used any more).
    connection.protocol, connection.rest_grant = Connection.Protocol.XML, Connection.RestGrant.NONE
    connection.rest_refresh_token = connection.rest_access_token = ""
    connection.rest_refresh_expires_at = connection.rest_access_expires_at = None
    connection.save(update_fields=["company_id", "user_id", "entity_id", "intacct_entities", "password_token",
                                   "password_set_at", "protocol", "rest_grant", "rest_refresh_token",
                                   "rest_access_token", "rest_refresh_expires_at", "rest_access_expires_at"])
    StepCompletion.objects.get_or_create(connection=connection, step=objects.STEP_CONNECT,
                                         defaults={"done_by": _actor(by)})
    if connection.status in (Connection.Status.NOT_STARTED, Connection.Status.DISCONNECTED):
        connection_transition(connection=connection, to=Connection.Status.IN_SETUP)
    audit_record(organisation=connection.organisation, connection=connection, action="credentials.set",
                 user=by, ip=ip, details={"company_id": company_id, "user_id": user_id,
                                          "entity_id": entity_id, "password": "set (not recorded)"})
    return validation_request(connection=connection, by=by, ip=ip)


@transaction.atomic
def connection_set_password(*, connection: Connection, password: str, by: Actor,
                            ip: str | None = None) -> ValidationRun:
    """Replace the stored password (after an Intacct admin reset it) and re-validate."""
    connection.password_token = crypto.encrypt(password)
    connection.password_set_at = timezone.now()
    connection.save(update_fields=["password_token", "password_set_at"])
    audit_record(organisation=connection.organisation, connection=connection, action="password.changed",
                 user=by, ip=ip, details={"password": "changed (not recorded)"})
    return validation_request(connection=connection, by=by, ip=ip)


@transaction.atomic
def connection_set_entity(*, connection: Connection, entity_id: str, by: Actor,
                          ip: str | None = None) -> ValidationRun:
    """Change the entity (location) ID the connection signs in to, and re-validate."""
    old = connection.entity_id
    connection.entity_id = entity_id
    connection.save(update_fields=["entity_id"])
    audit_record(organisation=connection.organisation, connection=connection, action="entity.changed",
                 user=by, ip=ip, details={"from": old, "to": entity_id})
    return validation_request(connection=connection, by=by, ip=ip)


def connection_record_entities(*, connection: Connection, entities: list[dict[str, str]]) -> None:
    """Keep the entities Intacct listed (id and name, in its order) so the admin can pick one."""
    cleaned = [{"id": str(e.get("id") or "").strip(), "name": str(e.get("name") or "").strip()} for e in entities]
    cleaned = [e for e in cleaned if e["id"]]
    if cleaned != connection.intacct_entities:
        connection.intacct_entities = cleaned
        connection.save(update_fields=["intacct_entities"])


def connection_disconnect(*, connection: Connection, by: Actor, ip: str | None = None) -> None:
    """Delete the connection's secrets and mark it disconnected; history stays.

    A REST connection's refresh token is revoked at Intacct first, so it is not left working there; a
    revocation that fails (Intacct unreachable) is logged and the secrets are deleted all the same."""
    revoked = _rest_revoke(connection) if connection.rest_refresh_token else ""
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection.pk)
        connection.password_token = ""
        connection.password_set_at = None
        connection.rest_grant = Connection.RestGrant.NONE
        connection.save(update_fields=["password_token", "password_set_at", "rest_grant"])
        _clear_rest_tokens(connection)
        StepCompletion.objects.filter(connection=connection, step=objects.STEP_CONNECT).delete()
        connection_transition(connection=connection, to=Connection.Status.DISCONNECTED)
        details = {"password": "deleted", "protocol": connection.protocol}
        if revoked:
            details["refresh_token"] = revoked
        audit_record(organisation=connection.organisation, connection=connection,
                     action="connection.disconnected", user=by, ip=ip, details=details)


def _rest_revoke(connection: Connection) -> str:
    """Revoke the connection's refresh token at Intacct; says what happened (never the token)."""
    from connector.intacct_rest.errors import IntacctError

    # Under the refresh lock, with the tokens stored now: a worker may have rotated the refresh token since the
    # caller read the connection, and revoking the spent one would leave the live one working at Intacct. The
    # tokens are deleted before the lock is let go, so no refresh comes in between.
    with rest_tokens.refresh_lock(connection.pk):
        current = Connection.objects.get(pk=connection.pk)
        try:
            with clients.rest_client_for(current) as client:
                client.revoke()
        except (IntacctError, crypto.InvalidToken) as exc:
            logger.warning("Revoking the refresh token of connection %s failed: %s", connection.pk,
                           type(exc).__name__)
            outcome = f"revocation failed ({type(exc).__name__}); deleted here"
        else:
            outcome = "revoked at Intacct and deleted"
        _clear_rest_tokens(current)
    return outcome


# --- REST connections --------------------------------------------------------------

def _rest_connected(connection: Connection, *, grant: str, company_id: str, user_id: str, entity_id: str,
                    company_timezone: str, by: Actor) -> None:
    """Set the (locked) connection to REST with ``grant`` and mark step 6 done; tokens are the caller's."""
    if company_timezone:
        ZoneInfo(company_timezone)  # raises for a name that is not an IANA time zone
    if company_id != connection.company_id:
        connection.intacct_entities = []
    connection.protocol = Connection.Protocol.REST
    connection.rest_grant = grant
    connection.company_id, connection.user_id, connection.entity_id = company_id, user_id, entity_id
    connection.rest_connected_at = timezone.now()
    connection.company_timezone = company_timezone or connection.company_timezone
    connection.save(update_fields=["protocol", "rest_grant", "company_id", "user_id", "entity_id",
                                   "intacct_entities", "rest_connected_at", "company_timezone"])
    StepCompletion.objects.get_or_create(connection=connection, step=objects.STEP_CONNECT,
                                         defaults={"done_by": _actor(by)})
    if connection.status in (Connection.Status.NOT_STARTED, Connection.Status.DISCONNECTED):
        connection_transition(connection=connection, to=Connection.Status.IN_SETUP)


def _clear_rest_tokens(connection: Connection) -> None:
    connection.rest_refresh_token = connection.rest_access_token = ""
    connection.rest_refresh_expires_at = connection.rest_access_expires_at = None
    connection.save(update_fields=["rest_refresh_token", "rest_refresh_expires_at", "rest_access_token",
                                   "rest_access_expires_at"])


@transaction.atomic
def connection_switch_to_rest(*, connection: Connection, grant: str, company_id: str, user_id: str = "",
                              entity_id: str = "", company_timezone: str, by: Actor, ip: str | None = None) -> None:
    """Move an XML connection to REST with ``grant`` (its tokens, if any, stored already), keeping its synced
    records, feed cursor, runs and status; the next validation judges it over REST.

    The company's time zone is required: REST timestamps are UTC and the sync converts them back to the
    company-local form the stored cursor and records carry. The XML password is deleted (REST never uses it)."""
    if not company_timezone:
        raise ValueError("switching to REST needs the company's time zone")
    connection = Connection.objects.select_for_update().get(pk=connection.pk)
    if connection.protocol != Connection.Protocol.XML:
        raise ValueError("the connection is not an XML connection")
    _rest_connected(connection, grant=grant, company_id=company_id, user_id=user_id, entity_id=entity_id,
                    company_timezone=company_timezone, by=by)
    connection.password_token, connection.password_set_at = "", None
    connection.save(update_fields=["password_token", "password_set_at"])
    audit_record(organisation=connection.organisation, connection=connection, action="connection.switched_to_rest",
                 user=by, ip=ip, details={"grant": grant, "company_id": company_id, "user_id": user_id,
                                          "entity_id": entity_id, "company_timezone": company_timezone,
                                          "password": "deleted"})


def _connect_rest(connection: Connection, *, grant: str, company_id: str, user_id: str, entity_id: str,
                  company_timezone: str, by: Actor, ip: str | None) -> None:
    """Switch an XML connection that has worked, or set up a new one, as REST with ``grant``."""
    if connection.protocol == Connection.Protocol.XML and connection.has_credentials:
        connection_switch_to_rest(connection=connection, grant=grant, company_id=company_id, user_id=user_id,
                                  entity_id=entity_id, company_timezone=company_timezone, by=by, ip=ip)
    else:
        _rest_connected(connection, grant=grant, company_id=company_id, user_id=user_id, entity_id=entity_id,
                        company_timezone=company_timezone, by=by)
    audit_record(organisation=connection.organisation, connection=connection, action="rest_connection.connected",
                 user=by, ip=ip, details={"grant": grant, "company_id": company_id, "user_id": user_id,
                                          "entity_id": entity_id})


def connection_connect_rest_code(*, connection: Connection, code: str, code_verifier: str, company_id: str,
                                 company_timezone: str = "", by: Actor, ip: str | None = None) -> ValidationRun:
    """"Connect with Sage Intacct" came back with a code: exchange it (with the PKCE verifier) for tokens, keep
    them encrypted, make the connection REST and enqueue a validation. Raises the REST client's typed errors
    when Intacct refuses the code; nothing is changed then."""
    with clients.rest_client_without_grant() as client:
        tokens = client.exchange_code(code, redirect_uri=settings.INTACCT_REST_REDIRECT_URI,
                                      code_verifier=code_verifier,
                                      refresh_token_lifetime=clients.refresh_token_lifetime())
    if not tokens.refresh_token:
        raise ValueError("Intacct gave no refresh token: offline access was not granted")
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection.pk)
        _connect_rest(connection, grant=Connection.RestGrant.AUTHORIZATION_CODE, company_id=company_id, user_id="",
                      entity_id="", company_timezone=company_timezone, by=by, ip=ip)
        rest_tokens.store(connection_id=connection.pk, tokens=tokens)
        return validation_request(connection=connection, by=by, ip=ip)


@transaction.atomic
def connection_connect_rest_client_credentials(*, connection: Connection, company_id: str, user_id: str,
                                               entity_id: str = "", company_timezone: str = "", by: Actor,
                                               ip: str | None = None) -> ValidationRun:
    """Connect over REST as a Web Services user (client credentials: ``user@company|entity`` with our
    application's secret, so nothing secret of the company's is stored) and enqueue a validation."""
    connection = Connection.objects.select_for_update().get(pk=connection.pk)
    _clear_rest_tokens(connection)  # an earlier grant's tokens are not this user's
    _connect_rest(connection, grant=Connection.RestGrant.CLIENT_CREDENTIALS, company_id=company_id, user_id=user_id,
                  entity_id=entity_id, company_timezone=company_timezone, by=by, ip=ip)
    return validation_request(connection=connection, by=by, ip=ip)


SECRET_FIELDS = ("password_token", "rest_refresh_token", "rest_access_token")


def encryption_keys_rotate() -> int:
    """Re-encrypt every stored secret under the newest key; returns how many were rewritten."""
    count = 0
    stored = models.Q()
    for name in SECRET_FIELDS:
        stored |= ~models.Q(**{name: ""})
    for connection in Connection.objects.filter(stored).only("id").iterator():
        with transaction.atomic():
            locked = Connection.objects.select_for_update().only("id", *SECRET_FIELDS).get(id=connection.id)
            changed = [name for name in SECRET_FIELDS if getattr(locked, name)]
            for name in changed:
                setattr(locked, name, crypto.rotate(getattr(locked, name)))
            if changed:
                locked.save(update_fields=changed)
                count += len(changed)
    return count


# --- Validation -----------------------------------------------------------------------------

def validation_request(*, connection: Connection, by: Actor = None, ip: str | None = None,
                       trigger: str = ValidationRun.Trigger.MANUAL, attempt: int = 1,
                       countdown: float = 0) -> ValidationRun:
    """Create a queued validation run and enqueue its task (after `countdown` s) once the transaction commits."""
    with transaction.atomic():
        run = validation_run_create(connection=connection, by=by, ip=ip, trigger=trigger, attempt=attempt)
        # A broker that cannot be reached leaves the run queued and marked unsent (connector.requeue sends it later).
        transaction.on_commit(lambda: requeue.run_send(run, countdown=countdown))
    return run


@transaction.atomic
def validation_run_create(*, connection: Connection, trigger: str, attempt: int = 1, by: Actor = None,
                          ip: str | None = None) -> ValidationRun:
    """Record a validation run about to start (queued), audited; the caller runs it or sends its task."""
    run = ValidationRun.objects.create(connection=connection, requested_by=_actor(by), trigger=trigger,
                                       attempt=attempt)
    audit_record(organisation=connection.organisation, connection=connection, action="validation.started",
                 user=by, ip=ip, details={"validation_run": run.id, "trigger": trigger, "attempt": attempt})
    return run


@transaction.atomic
def connection_record_validation(*, connection: Connection, run: ValidationRun, new_status: str | None,
                                 cause: str = "", message: str = "", permission_model: str = "") -> str:
    """Point the connection at a finished run and move its status accordingly; returns the previous status.

    ``permission_model`` is the permission type Intacct reported during the run (kept to notice a switch)."""
    Connection.objects.filter(id=connection.id).update(last_validation=run)
    connection.last_validation = run
    connection = Connection.objects.select_for_update().get(id=connection.id)
    previous = connection.status
    # A disconnected connection stays disconnected whatever a late run found.
    if new_status and connection.status != Connection.Status.DISCONNECTED:
        if connection.status == Connection.Status.NOT_STARTED:
            connection_transition(connection=connection, to=Connection.Status.IN_SETUP)
        connection_transition(connection=connection, to=new_status, check_key=run.failed_check, run=run,
                              reason=message or run.summary, cause=cause)
    if permission_model and permission_model != connection.intacct_permission_model:
        connection.intacct_permission_model = permission_model
        connection.save(update_fields=["intacct_permission_model"])
    audit_record(organisation=connection.organisation, connection=connection, action="validation.finished",
                 details={"validation_run": run.id, "result": run.status, "failed_step": run.failed_step,
                          "failed_check": run.failed_check, "cause": run.cause})
    return previous


@transaction.atomic
def connection_record_sync_failure(*, connection: Connection, sync_run, check_key: str, status: str, cause: str,
                                   message: str) -> str | None:
    """A sync found the company refusing something: move a working connection to ``status`` naming the cause.

    Returns the previous status, or None when nothing changed (a connection that never worked, or one
    disconnected meanwhile, keeps its status)."""
    connection = Connection.objects.select_for_update().get(id=connection.id)
    previous = connection.status
    if previous not in Connection.LIVE_STATUSES:
        return None
    if previous == Connection.Status.BROKEN and status == Connection.Status.NEEDS_ATTENTION:
        return None  # a sign-in refusal already stops everything: an object's refusal adds nothing
    changed = connection_transition(connection=connection, to=status, check_key=check_key, reason=message,
                                    cause=cause, sync_run=sync_run)
    if changed:
        audit_record(organisation=connection.organisation, connection=connection, action="sync.found_problem",
                     details={"sync_run": sync_run.pk, "check": check_key, "cause": cause, "status": status})
    return previous


# --- Syncs ----------------------------------------------------------------------------------

def sync_request(*, connection: Connection, kind: str = SyncRun.Kind.INCREMENTAL, by: Actor = None,
                 ip: str | None = None, reason: str = "", attempt: int = 1,
                 countdown: float = 0) -> tuple[SyncRun, bool]:
    """Queue a sync; if one of this connection is queued or running, join it. Returns (run, queued_now).

    The task is sent once the transaction commits; if the broker cannot be reached the run stays queued,
    marked unsent, and connector.requeue sends it again as soon as the broker is back (the next requests
    join it meanwhile)."""
    active = sync_active_run(connection=connection)
    if active is not None:
        return active, False
    with transaction.atomic():
        run = SyncRun.objects.create(connection=connection, kind=kind, requested_by=_actor(by), attempt=attempt)
        if by is not None or reason:
            audit_record(organisation=connection.organisation, connection=connection, action="sync.requested",
                         user=by, ip=ip, details={"run": run.pk, "kind": kind, "reason": reason or "manual"})
        transaction.on_commit(lambda: requeue.run_send(run, countdown=countdown))
    return run, True


def sync_active_run(*, connection: Connection) -> SyncRun | None:
    """A run to join: one running under a live lease, or queued recently enough to still be picked up."""
    now = timezone.now()
    sync_settings = SyncSettings.objects.filter(connection=connection).select_related("active_run").first()
    if sync_settings and sync_settings.active_run and sync_settings.lease_until and sync_settings.lease_until > now:
        if not sync_settings.active_run.is_finished:
            return sync_settings.active_run
    stale_queue = now - timedelta(seconds=settings.SYNC_QUEUED_STALE_SECONDS)
    return connection.sync_runs.filter(status=SyncRun.Status.QUEUED, created_at__gte=stale_queue).first()


# --- API tokens -----------------------------------------------------------------------------

@transaction.atomic
def api_token_issue(*, organisation: Organisation, name: str, by: Actor, ip: str | None = None,
                    connection: Connection | None = None) -> tuple[ApiToken, str]:
    """Issue a bearer token for the organisation's API; the plaintext key is returned once, never stored."""
    token, key = ApiToken.issue(organisation=organisation, name=name, by=_actor(by))
    audit_record(organisation=organisation, connection=connection, action="api_token.created", user=by, ip=ip,
                 details={"token": token.pk, "prefix": token.prefix, "name": name})
    return token, key


API_TOKEN_USE_PRECISION = timedelta(minutes=1)


def api_token_use(*, key: str, organisation_slug: str) -> ApiToken | None:
    """The live token of this organisation with this key, its use noted; None for any other key."""
    token = (ApiToken.objects.select_related("organisation")
             .filter(key_hash=ApiToken.hash(key), revoked_at__isnull=True).first())
    if token is None or token.organisation.slug != organisation_slug:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > API_TOKEN_USE_PRECISION:
        # "Last used" to the minute: a consumer paging through the feed does not write (and flush) a row a page.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


@transaction.atomic
def api_token_revoke(*, organisation: Organisation, token_id: int, by: Actor, ip: str | None = None,
                     connection: Connection | None = None) -> bool:
    """Revoke one of the organisation's tokens (audited); False when it has none such or it was revoked already."""
    token = (ApiToken.objects.select_for_update()
             .filter(organisation=organisation, pk=token_id, revoked_at__isnull=True).first())
    if token is None:
        return False
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(organisation=organisation, connection=connection, action="api_token.revoked", user=by, ip=ip,
                 details={"token": token.pk, "prefix": token.prefix, "name": token.name})
    return True
