"""Signed webhooks for the platform, per the Standard Webhooks specification.

- Every message carries ``webhook-id`` (``msg_...``, the same on every attempt: receivers de-duplicate on it),
  ``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of
  "<id>.<timestamp>.<body>">`` under the endpoint's secret. A secret is ``whsec_`` + base64 of 32 random bytes;
  the HMAC key is the decoded bytes. After a rotation both secrets sign (two space-separated signatures) until
  the overlap ends, so a receiver can switch at its own pace.
- Delivery is at least once, by Celery: the first attempt at once, then after RETRY_SCHEDULE (about 24 h in
  all); after the last failure the endpoint is disabled and the organisation's admins are e-mailed.
- Safety: https only (http only to a loopback address, and only outside production); every address the host
  name resolves to is checked on every attempt (no private, loopback, link-local, multicast or reserved
  address), and the request goes to the address that was checked (no second look-up to rebind); no redirect
  is followed; 5 s timeout; at most 1 KB of the answer is kept.
- Events: connection.status_changed, sync.finished, validation.finished, records.changed, raised from the
  models' post_save signals (as connector.operations does), never from inside the sync engine.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Max, Min
from django.db.models.signals import post_save
from django.utils import timezone

from connector import crypto, feed, requeue
from connector.models import (
    AuditEvent,
    Connection,
    ConnectionStatusChange,
    Membership,
    Organisation,
    Record,
    SyncObjectRun,
    SyncRun,
    ValidationRun,
    WebhookEndpoint,
    WebhookMessage,
    WebhookNotice,
)
from connector.models.webhooks import EVENT_TYPES

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
TIMEOUT_SECONDS = 5.0
RESPONSE_KEEP_BYTES = 1024
# Seconds after each failed attempt (Standard Webhooks' suggested schedule, cut to about 24 h in all).
DEFAULT_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 22000)
CLAIM_SECONDS = 60  # a message being sent is not picked again by the sweep for this long


def retry_schedule() -> tuple[int, ...]:
    return tuple(settings.WEBHOOK_RETRY_SCHEDULE_SECONDS)


def rotation_overlap() -> timedelta:
    return timedelta(hours=float(settings.WEBHOOK_SECRET_OVERLAP_HOURS))


# --- secrets and signatures -------------------------------------------------------------------------------

def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """``v1,<signature>`` for one secret (``whsec_...``)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signing_secrets(endpoint: WebhookEndpoint, now: datetime | None = None) -> list[str]:
    """The current secret, and the previous one while its overlap lasts."""
    now = now or timezone.now()
    found = [crypto.decrypt(endpoint.secret_token)]
    if endpoint.previous_secret_token and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
        found.append(crypto.decrypt(endpoint.previous_secret_token))
    return found


def headers_for(endpoint: WebhookEndpoint, message: WebhookMessage, timestamp: int) -> dict[str, str]:
    signatures = " ".join(sign(s, message.msg_id, timestamp, message.payload) for s in signing_secrets(endpoint))
    return {"webhook-id": message.msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures,
            "content-type": "application/json", "user-agent": "IntacctConnect-Webhooks/1"}


# --- endpoints ----------------------------------------------------------------------------------------------

class EndpointRefused(ValueError):
    """The URL or the events are not acceptable; the message says why."""


def check_url(url: str) -> str:
    """The URL as it will be stored, or EndpointRefused with words (the address is checked again on send)."""
    url = (url or "").strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise EndpointRefused("The URL must start with https:// and name a host.")
    if parts.username or parts.password:
        raise EndpointRefused("The URL may not contain a user name or password.")
    if parts.scheme == "http" and not _loopback_http_allowed(parts.hostname):
        raise EndpointRefused("The URL must use https:// (plain http is accepted only for this machine's own "
                              "address, and only in development).")
    if len(url) > 500:
        raise EndpointRefused("The URL is longer than 500 characters.")
    return url


def check_events(events) -> list[str]:
    chosen = sorted({str(e) for e in (events or [])})
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown or not chosen:
        raise EndpointRefused(f"Pick one or more events among {', '.join(EVENT_TYPES)}"
                              + (f" (unknown: {', '.join(unknown)[:200]})." if unknown else "."))
    return chosen


def endpoint_create(*, organisation: Organisation, url: str, events, description: str = "",
                    by=None) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its secret, which is shown this once and stored encrypted."""
    secret = new_secret()
    endpoint = WebhookEndpoint.objects.create(
        organisation=organisation, url=check_url(url), events=check_events(events),
        description=" ".join(str(description or "").split())[:200], secret_token=crypto.encrypt(secret),
        created_by=by if by is not None and by.pk else None)
    return endpoint, secret


def secret_rotate(endpoint: WebhookEndpoint, *, now: datetime | None = None) -> str:
    """A new secret; the old one keeps signing beside it for the overlap. Returns the new one (shown once)."""
    now = now or timezone.now()
    secret = new_secret()
    endpoint.previous_secret_token = endpoint.secret_token
    endpoint.previous_secret_until = now + rotation_overlap()
    endpoint.secret_token = crypto.encrypt(secret)
    endpoint.save(update_fields=["previous_secret_token", "previous_secret_until", "secret_token"])
    return secret


def endpoint_enable(endpoint: WebhookEndpoint) -> None:
    endpoint.enabled, endpoint.disabled_reason = True, ""
    endpoint.save(update_fields=["enabled", "disabled_reason"])


# --- events ---------------------------------------------------------------------------------------------

def emit(organisation_id: int, event_type: str, data: dict, *, now: datetime | None = None) -> list[WebhookMessage]:
    """One message per enabled endpoint of the organisation that picked this event; sent after commit."""
    now = now or timezone.now()
    created = []
    for endpoint in WebhookEndpoint.objects.filter(organisation_id=organisation_id, enabled=True):
        if event_type not in endpoint.events:
            continue
        msg_id = "msg_" + secrets.token_urlsafe(18)
        body = json.dumps({"type": event_type, "timestamp": now.isoformat(), "data": data}, separators=(",", ":"))
        created.append(WebhookMessage.objects.create(endpoint=endpoint, msg_id=msg_id, event_type=event_type,
                                                     payload=body, next_attempt_at=now))
    if created:
        ids = [m.pk for m in created]
        transaction.on_commit(lambda: _send_tasks(ids))
    return created


def _send_tasks(message_ids: list[int]) -> None:
    deliver_task = requeue.task_named("connector.webhook_deliver")
    for message_id in message_ids:
        try:
            deliver_task.delay(message_id)
        except Exception:  # the broker is away: the sweep sends it when it is back (next_attempt_at is due)
            log.warning("webhook message %s not queued now; the sweep will send it", message_id)


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def _status_changed(sender, instance: ConnectionStatusChange, created: bool, **_kwargs) -> None:
    if not created:
        return
    connection = instance.connection
    step = instance.validation_run.failed_step if instance.validation_run_id and instance.validation_run else None
    emit(connection.organisation_id, "connection.status_changed", {
        "organisation": connection.organisation.slug, "from": instance.from_status, "to": instance.to_status,
        "cause": instance.cause, "failing_check": instance.check_key, "wizard_step": step,
        "message": instance.reason, "changed_at": _iso(instance.changed_at)})


def _validation_saved(sender, instance: ValidationRun, **_kwargs) -> None:
    if instance.finished_at is None or instance.status not in ValidationRun.FINISHED:
        return
    connection = instance.connection
    if not _first_time(connection.organisation_id, "validation.finished", "validation_id", instance.pk):
        return
    emit(connection.organisation_id, "validation.finished", {
        "organisation": connection.organisation.slug, "validation_id": instance.pk, "status": instance.status,
        "trigger": instance.trigger, "summary": instance.summary, "failed_check": instance.failed_check,
        "wizard_step": instance.failed_step, "finished_at": _iso(instance.finished_at)})


def _sync_saved(sender, instance: SyncRun, **_kwargs) -> None:
    if not instance.is_finished or instance.finished_at is None:
        return
    connection = instance.connection
    if not WebhookEndpoint.objects.filter(organisation_id=connection.organisation_id, enabled=True).exists():
        return
    if not _first_time(connection.organisation_id, "sync.finished", "run_id", instance.pk):
        return
    slug = connection.organisation.slug
    cursor = feed.Cursor(connection.pk, "", feed.head(connection.pk)).encode()
    emit(connection.organisation_id, "sync.finished", {
        "organisation": slug, "run_id": instance.pk, "kind": instance.kind, "status": instance.status,
        "summary": instance.summary, "finished_at": _iso(instance.finished_at), "feed_cursor": cursor,
        "objects": [{"object": o.object_name, "status": o.status, "read": o.records_read,
                     "created": o.records_created, "updated": o.records_updated, "deleted": o.records_deleted}
                    for o in SyncObjectRun.objects.filter(run=instance)]})
    records_changed_announce(connection)


def records_changed_announce(connection: Connection) -> int:
    """records.changed per object for the changes numbered since the last announcement (no data: the range
    to read from the feed). Returns how many objects were announced."""
    with transaction.atomic():
        notice, _ = WebhookNotice.objects.select_for_update().get_or_create(connection=connection)
        since = notice.announced_through
        rows = list(Record.objects.filter(connection=connection, change_seq__gt=since).values("object_name")
                    .annotate(first=Min("change_seq"), last=Max("change_seq"), n=Count("id")))
        if not rows:
            return 0
        notice.announced_through = max(row["last"] for row in rows)
        notice.save(update_fields=["announced_through"])
        for row in sorted(rows, key=lambda r: r["first"]):
            emit(connection.organisation_id, "records.changed", {
                "organisation": connection.organisation.slug, "object": row["object_name"], "changes": row["n"],
                "first_seq": row["first"], "last_seq": row["last"],
                "after": feed.Cursor(connection.pk, row["object_name"], since).encode(),
                "until": feed.Cursor(connection.pk, row["object_name"], row["last"]).encode()})
    return len(rows)


def _first_time(organisation_id: int, event_type: str, field: str, pk: int) -> bool:
    """A run saved again after it finished (a counter updated) is announced once: the message of an earlier
    save is looked for in the database, so every process agrees."""
    return not WebhookMessage.objects.filter(endpoint__organisation_id=organisation_id, event_type=event_type,
                                             payload__contains=f'"{field}":{pk},').exists()


def _guarded(handler):
    """A webhook's trouble never stops the save that raised the event (a sync's or a validation's end): the
    handler runs in a savepoint, and a failure is logged and rolled back, the caller's transaction intact."""
    def run(sender, **kwargs) -> None:
        try:
            with transaction.atomic():
                handler(sender, **kwargs)
        except Exception:
            log.exception("webhook event from %s not recorded", getattr(sender, "__name__", sender))
    run.__name__ = handler.__name__
    return run


# The audit entries of a deprovisioning that changed a user (and our copy of it, numbered in the feed).
_RECORD_CHANGING_ACTIONS = frozenset({"user.deactivated", "user.reactivated"})


def _audit_saved(sender, instance: AuditEvent, created: bool, **_kwargs) -> None:
    """A user deactivated or reactivated from our pages changed our copy at once: the platform hears of it
    then (records.changed), not only after the next sync."""
    if not created or instance.action not in _RECORD_CHANGING_ACTIONS or instance.connection_id is None:
        return
    connection = Connection.objects.select_related("organisation").get(pk=instance.connection_id)
    if WebhookEndpoint.objects.filter(organisation_id=connection.organisation_id, enabled=True).exists():
        records_changed_announce(connection)


_HANDLERS = {"status": _guarded(_status_changed), "validation": _guarded(_validation_saved),
             "sync": _guarded(_sync_saved), "audit": _guarded(_audit_saved)}


def connect_signals() -> None:
    post_save.connect(_HANDLERS["status"], sender=ConnectionStatusChange, dispatch_uid="webhooks_status")
    post_save.connect(_HANDLERS["validation"], sender=ValidationRun, dispatch_uid="webhooks_validation")
    post_save.connect(_HANDLERS["sync"], sender=SyncRun, dispatch_uid="webhooks_sync")
    post_save.connect(_HANDLERS["audit"], sender=AuditEvent, dispatch_uid="webhooks_audit")


# --- safety -----------------------------------------------------------------------------------------------

class AddressRefused(Exception):
    """The endpoint's host resolves to an address we never send to; the message says which kind."""


def _loopback_http_allowed(host: str) -> bool:
    if not settings.WEBHOOK_ALLOW_LOOPBACK_HTTP:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_checked(url: str) -> tuple[str, int, str]:
    """(host, port, address to connect to) after checking every address the host resolves to, now."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    plain_http = parts.scheme == "http"
    if plain_http and not _loopback_http_allowed(host):
        raise AddressRefused("plain http is refused (https only)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise AddressRefused(f"the host name {host[:100]} does not resolve") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise AddressRefused(f"the host name {host[:100]} does not resolve")
    for address in addresses:
        if plain_http and address.is_loopback:
            continue  # development only: http to this machine
        kind = _forbidden_kind(address)
        if kind:
            raise AddressRefused(f"{host[:100]} resolves to a {kind} address ({address}), which we never call")
    return host, port, str(addresses[0])


def _forbidden_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    for kind, flag in (("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
                       ("link-local", address.is_link_local), ("private", address.is_private),
                       ("multicast", address.is_multicast), ("reserved", address.is_reserved)):
        if flag:
            return kind
    if not address.is_global:
        return "non-public"
    return ""


# --- delivery ---------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    ok: bool
    status_code: int | None
    latency_ms: int
    response: str
    error: str


def send_once(endpoint: WebhookEndpoint, message: WebhookMessage) -> Outcome:
    """One attempt: check the address, POST the signed body to it, keep at most 1 KB of the answer."""
    started = time.monotonic()
    try:
        host, port, address = resolve_checked(endpoint.url)
    except AddressRefused as exc:
        return Outcome(False, None, 0, "", f"Not sent: {exc}.")
    parts = urllib.parse.urlsplit(endpoint.url)
    literal = f"[{address}]" if ":" in address else address
    target = urllib.parse.urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    headers = headers_for(endpoint, message, int(time.time()))
    headers["host"] = parts.netloc.rpartition("@")[2]
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    try:
        # No proxies from the environment, no redirects: the checked address is the one called.
        with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as client:
            request = client.build_request("POST", target, content=message.payload.encode(), headers=headers,
                                           extensions=extensions)
            response = client.send(request, stream=True)
            try:
                kept = b""
                for chunk in response.iter_bytes():
                    kept += chunk
                    if len(kept) >= RESPONSE_KEEP_BYTES:
                        break  # the rest is never read
            finally:
                response.close()
            latency = int((time.monotonic() - started) * 1000)
            text = kept[:RESPONSE_KEEP_BYTES].decode("utf-8", "replace")
            ok = 200 <= response.status_code < 300
            error = "" if ok else (f"Answered {response.status_code}"
                                   + (" (a redirect, not followed)" if 300 <= response.status_code < 400 else ""))
            return Outcome(ok, response.status_code, latency, text, error)
    except httpx.TimeoutException:
        return Outcome(False, None, int((time.monotonic() - started) * 1000), "",
                       f"No answer within {TIMEOUT_SECONDS:.0f} s.")
    except httpx.HTTPError as exc:
        return Outcome(False, None, int((time.monotonic() - started) * 1000), "",
                       f"Could not connect: {type(exc).__name__}.")


def claim(message_id: int, now: datetime) -> WebhookMessage | None:
    """Take a due message for one attempt (a conditional UPDATE: two workers never send the same attempt)."""
    taken = WebhookMessage.objects.filter(pk=message_id, status=WebhookMessage.Status.PENDING,
                                          next_attempt_at__lte=now).update(
        next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
    if not taken:
        return None
    return WebhookMessage.objects.select_related("endpoint", "endpoint__organisation").get(pk=message_id)


def deliver(message_id: int, *, now: datetime | None = None) -> WebhookMessage | None:
    """One attempt of a due message; schedules the next one, or gives up, disables and tells the admins."""
    now = now or timezone.now()
    message = claim(message_id, now)
    if message is None:
        return None
    endpoint = message.endpoint
    if not endpoint.enabled:
        WebhookMessage.objects.filter(pk=message.pk).update(
            status=WebhookMessage.Status.FAILED, next_attempt_at=None,
            last_error="Not sent: the endpoint is disabled.")
        return message
    outcome = send_once(endpoint, message)
    message.attempts += 1
    message.last_attempt_at = timezone.now()
    message.last_status_code = outcome.status_code
    message.last_latency_ms = outcome.latency_ms
    message.last_response = outcome.response
    message.last_error = outcome.error[:300]
    schedule = retry_schedule()
    if outcome.ok:
        message.status, message.next_attempt_at = WebhookMessage.Status.DELIVERED, None
    elif message.attempts <= len(schedule):
        message.next_attempt_at = message.last_attempt_at + timedelta(seconds=schedule[message.attempts - 1])
    else:
        message.status, message.next_attempt_at = WebhookMessage.Status.FAILED, None
    message.save()
    if message.status == WebhookMessage.Status.FAILED:
        endpoint_give_up(endpoint, message)
    return message


def endpoint_give_up(endpoint: WebhookEndpoint, message: WebhookMessage) -> None:
    """After the last retry: disable the endpoint (once) and e-mail the organisation's admins."""
    reason = (f"Disabled {timezone.now():%Y-%m-%d %H:%M} UTC: message {message.msg_id} failed {message.attempts} "
              f"times over about a day ({message.last_error or 'no success'}).")
    if not WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(enabled=False,
                                                                               disabled_reason=reason[:300]):
        return
    WebhookMessage.objects.filter(endpoint=endpoint, status=WebhookMessage.Status.PENDING).update(
        status=WebhookMessage.Status.FAILED, next_attempt_at=None, last_error="Not sent: the endpoint was disabled.")
    recipients = list(Membership.objects.filter(organisation=endpoint.organisation, role=Membership.ORG_ADMIN)
                      .exclude(user__email="").values_list("user__email", flat=True))
    if recipients:
        base = str(settings.SITE_URL).rstrip("/")
        body = (f"We stopped sending webhooks to {endpoint.url}: {reason}\n\nSee the delivery log, fix the receiver, "
                f"then enable it again: {base}/organisations/{endpoint.organisation.slug}/webhooks/{endpoint.pk}/\n")
        send_mail("Webhook endpoint disabled", body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=True)


def resend(message: WebhookMessage) -> WebhookMessage:
    """Send a message again (same webhook-id), from the delivery log; it gets a fresh set of retries."""
    WebhookMessage.objects.filter(pk=message.pk).update(status=WebhookMessage.Status.PENDING, attempts=0,
                                                        next_attempt_at=timezone.now())
    transaction.on_commit(lambda: _send_tasks([message.pk]))
    message.refresh_from_db()
    return message


def due_sweep(*, now: datetime | None = None, limit: int = 500) -> int:
    """Beat: queue every message whose next attempt is due (retries, and any whose task was lost)."""
    now = now or timezone.now()
    ids = list(WebhookMessage.objects.filter(status=WebhookMessage.Status.PENDING, next_attempt_at__lte=now,
                                             endpoint__enabled=True).order_by("next_attempt_at")
               .values_list("pk", flat=True)[:limit])
    _send_tasks(ids)
    return len(ids)
