"""Keeping watch on connections: scheduled re-validation, retries of inconclusive runs, telling people.

Beat calls `connections_revalidate` every tick (settings.VALIDATION_MONITOR_TICK_SECONDS). Each connection
that is due (its last run is about one interval old) is enqueued with a stable per-connection delay inside
the tick, so a thousand connections never validate in the same second. A change from connected to failing
e-mails the organisation's admins once; the recovery e-mails them once more. A failure on our side (our
own Sender ID) alerts support, never the admin's to-do list.
"""
from __future__ import annotations

import logging
import zlib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import mail_admins, send_mail
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone

from connector import diagnosis, requeue, services
from connector.models import AuditEvent, Connection, Membership, ValidationCheck, ValidationRun

log = logging.getLogger(__name__)

ACTIVE_RUN_STATUSES = (ValidationRun.Status.QUEUED, ValidationRun.Status.RUNNING)
SUPPORT_ALERT_QUIET = timedelta(hours=1)

# --- Scheduled re-validation ------------------------------------------------------------------

def stable_offset(*, connection_id: int, window: int) -> int:
    """A delay in [0, window) seconds that is always the same for one connection."""
    if window <= 0:
        return 0
    return zlib.crc32(f"connection:{connection_id}".encode()) % window


def connections_due(*, now=None) -> QuerySet[Connection]:
    """Watched connections whose last validation started about one interval ago (or never)."""
    now = now or timezone.now()
    slack = max(0, settings.VALIDATION_MONITOR_INTERVAL_SECONDS - settings.VALIDATION_MONITOR_TICK_SECONDS)
    cutoff = now - timedelta(seconds=slack)
    latest = (ValidationRun.objects.filter(connection=OuterRef("pk")).order_by("-created_at")
              .values("created_at")[:1])
    # Live connections: working ones (to notice a break) and failing ones (to notice a recovery).
    return (Connection.objects.live().with_credentials()
            .annotate(latest_run_at=Subquery(latest))
            .filter(Q(latest_run_at__isnull=True) | Q(latest_run_at__lte=cutoff)))


def abandoned_runs(*, connection_id: int | None = None, now=None) -> QuerySet[ValidationRun]:
    """Queued or running validations a stopped worker left behind: no start, no check for VALIDATION_STALE_SECONDS."""
    cut = (now or timezone.now()) - timedelta(seconds=settings.VALIDATION_STALE_SECONDS)
    last_check = ValidationCheck.objects.filter(run=OuterRef("pk")).order_by("-created_at").values("created_at")[:1]
    # A run whose task could not be sent (broker down) waits for connector.requeue, not for a worker.
    runs = ValidationRun.objects.filter(status__in=ACTIVE_RUN_STATUSES, created_at__lt=cut, unsent_since__isnull=True)
    if connection_id is not None:
        runs = runs.filter(connection_id=connection_id)
    return (runs.filter(Q(started_at__isnull=True) | Q(started_at__lt=cut))
            .annotate(last_check_at=Subquery(last_check))
            .filter(Q(last_check_at__isnull=True) | Q(last_check_at__lt=cut)))


def abandoned_runs_close(*, connection_id: int | None = None) -> int:
    """Close abandoned runs as inconclusive, so they neither block monitoring nor show as running for ever."""
    ids = list(abandoned_runs(connection_id=connection_id).values_list("id", flat=True))
    if not ids:
        return 0
    closed = ValidationRun.objects.filter(id__in=ids, status__in=ACTIVE_RUN_STATUSES).update(
        status=ValidationRun.Status.INCONCLUSIVE, finished_at=timezone.now(),
        summary="This check stopped before it finished (the worker running it stopped); it is run again.")
    log.warning("closed %s validation run(s) left unfinished by a stopped worker", closed)
    return closed


def connections_revalidate(*, spread_seconds: int | None = None) -> int:
    """Enqueue a re-validation of every due connection, each at its own offset; returns how many."""
    abandoned_runs_close()
    window = settings.VALIDATION_MONITOR_TICK_SECONDS if spread_seconds is None else spread_seconds
    count = 0
    later = requeue.task_named(requeue.VALIDATE_LATER_TASK)
    for connection_id in connections_due().values_list("id", flat=True):
        later.apply_async(
            (connection_id, ValidationRun.Trigger.SCHEDULED, 1, None),
            countdown=stable_offset(connection_id=connection_id, window=window))
        count += 1
    log.info("scheduled re-validation of %s connection(s)", count)
    return count


# --- Inconclusive runs ---------------------------------------------------------------------------

def retry_delay(*, attempt: int) -> int | None:
    """Seconds before retrying an inconclusive run, or None when the retries are used up."""
    delays = settings.VALIDATION_RETRY_DELAYS_SECONDS
    return int(delays[attempt - 1]) if 0 < attempt <= len(delays) else None


def retry_schedule(*, run: ValidationRun, delay: int) -> None:
    """Enqueue the next attempt of an inconclusive run after `delay` seconds (ids only)."""
    requeue.task_named(requeue.VALIDATE_LATER_TASK).apply_async(
        (run.connection_id, ValidationRun.Trigger.RETRY, run.attempt + 1, run.id), countdown=delay)


# --- Telling people -----------------------------------------------------------------------------

def _admin_emails(connection: Connection) -> list[str]:
    users = get_user_model().objects.filter(
        memberships__organisation_id=connection.organisation_id, memberships__role=Membership.ORG_ADMIN,
        is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def _connection_url(connection: Connection) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("connection", args=[connection.organisation.slug])


def _failure_mail(connection: Connection, *, cause: str, summary: str, step: int | None, at,
                  source: str) -> tuple[str, str]:
    name = connection.organisation.name
    subject_cause = diagnosis.cause_subject(cause) or "a check failed"
    lines = ["Hello,", ""]
    if cause == ValidationRun.Cause.DEPROVISIONING_UNAVAILABLE:
        # Syncing goes on: do not say the connection stopped.
        lines += [f"The Sage Intacct connection of {name} can no longer deactivate users ({source} at "
                  f"{at:%d %b %Y %H:%M} UTC). Syncing continues.", ""]
        subject = f"[{settings.PRODUCT_NAME}] Deprovisioning unavailable for {name} (syncing continues)"
    else:
        lines += [f"The Sage Intacct connection of {name} stopped working ({source} at {at:%d %b %Y %H:%M} UTC).", ""]
        subject = f"[{settings.PRODUCT_NAME}] The Intacct connection of {name} stopped working: {subject_cause}"
    lines += [f"What we found: {summary}", ""]
    if step:
        lines += [f"The setup step to revisit: step {step}.", ""]
    lines += [f"See the details and fix it here: {_connection_url(connection)}", "",
              "We will check again automatically and tell you once it works again.", "",
              f"-- {settings.PRODUCT_NAME}"]
    return subject, "\n".join(lines)


def _recovery_mail(connection: Connection, run: ValidationRun) -> tuple[str, str]:
    name = connection.organisation.name
    body = "\n".join([
        "Hello,", "",
        f"The Sage Intacct connection of {name} works again (checked {run.finished_at:%d %b %Y %H:%M} UTC). "
        "Nothing more to do.", "",
        f"Connection page: {_connection_url(connection)}", "",
        f"-- {settings.PRODUCT_NAME}"])
    return f"[{settings.PRODUCT_NAME}] The Intacct connection of {name} works again", body


def failure_notify(*, connection: Connection, cause: str, summary: str, step: int | None, source: str,
                   details: dict) -> bool:
    """E-mail the admins that a working connection fails, once per cause (a new cause is one more e-mail).

    Validation and sync both call this; the conditional update makes "once" hold across processes."""
    if not cause:
        return False
    connection = Connection.objects.select_related("organisation").get(id=connection.id)
    if connection.status not in Connection.FAILING_STATUSES:
        return False
    claimed = (Connection.objects.filter(id=connection.id).exclude(notified_cause=cause)
               .update(notified_cause=cause, failure_notified_at=timezone.now()))
    if not claimed:
        return False
    subject, body = _failure_mail(connection, cause=cause, summary=summary, step=step, at=timezone.now(),
                                  source=source)
    _mail_admins_of(connection, subject, body, action="alert.failure_mailed", details={**details, "cause": cause})
    return True


def validation_notify(*, run: ValidationRun, previous_status: str) -> None:
    """After a run: e-mail the admins once per cause when a working connection fails, once when it recovers."""
    connection = Connection.objects.select_related("organisation").get(id=run.connection_id)
    if run.status == ValidationRun.Status.FAILED and connection.status in Connection.FAILING_STATUSES:
        failure_notify(connection=connection, cause=run.cause, summary=run.summary, step=run.failed_step,
                       source="found during a check",
                       details={"validation_run": run.id, "failed_check": run.failed_check})
    elif run.status == ValidationRun.Status.PASSED and connection.status == Connection.Status.CONNECTED:
        claimed = Connection.objects.filter(id=connection.id).exclude(notified_cause="").update(
            notified_cause="", failure_notified_at=None)
        if claimed:
            _mail_admins_of(connection, *_recovery_mail(connection, run), action="alert.recovery_mailed",
                            details={"validation_run": run.id})
    if run.checks.filter(our_side=True, status=ValidationCheck.Status.FAILED).exists():
        support_alert(run=run)


def _mail_admins_of(connection: Connection, subject: str, body: str, *, action: str, details: dict) -> None:
    recipients = _admin_emails(connection)
    if recipients:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
    services.audit_record(organisation=connection.organisation, connection=connection, action=action,
                          details={**details, "recipients": len(recipients), "subject": subject})


def support_alert(*, run: ValidationRun) -> bool:
    """Tell the operator's support team that our own Sender ID was refused (at most once an hour)."""
    since = timezone.now() - SUPPORT_ALERT_QUIET
    recent = AuditEvent.objects.filter(action="support.alerted", created_at__gte=since).exists()
    services.audit_record(organisation=run.connection.organisation, connection=run.connection,
                          action="support.alerted", details={"validation_run": run.id, "check": "sender",
                                                             "mailed": not recent})
    log.warning("support alert: Intacct refused our own Sender ID (validation run %s)", run.id)
    if recent:
        return False
    mail_admins("Intacct refused our Sender ID",
                f"Validation run {run.id} found that Intacct does not accept our own Sender ID and password "
                "(INTACCT_SENDER_ID / INTACCT_SENDER_PASSWORD). Every connection is affected until it is "
                "fixed. Customers are told it is on our side.")
    return True
