"""Running the service: dashboard summaries, counters for /metrics, heartbeats, health, retention, step links.

Figures are written where the work finishes (signal receivers on runs and checks, connected in
ConnectorConfig.ready) and corrected by beat tasks, so no page ever aggregates a year of history.
Every table is shared by all processes through the database: nothing here assumes one web process,
one worker or one beat.
"""
from __future__ import annotations

import hashlib
import logging
import socket
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

from celery import current_app, shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import Count, F, Sum
from django.db.models.signals import post_save
from django.urls import reverse
from django.utils import timezone

from connector import services, steps
from connector.masking import mask
from connector.metrics import (
    INTACCT_ERRORS,
    RATE_LIMIT_UNAVAILABLE,
    RUNS_UNSENT,
    SYNC_SECONDS,
    VALIDATION_SECONDS,
    labels_text,
    metric_increment,
    metric_observe,
)
from connector.models import (
    AuditEvent,
    CompanySlot,
    Connection,
    ConnectionStatusChange,
    ConnectionSummary,
    Heartbeat,
    IntacctErrorTally,
    Membership,
    MetricCounter,
    Record,
    StatusDay,
    SyncObjectRun,
    SyncRun,
    ValidationCheck,
    ValidationRun,
)

log = logging.getLogger(__name__)

CHART_DAYS = 30


# --- Intacct errors and the dashboard summary -----------------------------------------------

def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def intacct_error_record(*, connection_id: int, source: str, code: str, at: datetime | None = None) -> None:
    """Count one Intacct error answer: per connection and hour (errors in 24 h) and per code (/metrics)."""
    code = (code or "unknown")[:60]
    hour = _hour(at or timezone.now())
    updated = IntacctErrorTally.objects.filter(connection_id=connection_id, hour=hour, source=source,
                                               code=code).update(count=F("count") + 1)
    if not updated:
        try:
            with transaction.atomic():
                IntacctErrorTally.objects.create(connection_id=connection_id, hour=hour, source=source, code=code,
                                                 count=1)
        except IntegrityError:
            IntacctErrorTally.objects.filter(connection_id=connection_id, hour=hour, source=source,
                                             code=code).update(count=F("count") + 1)
    summary_ensure(connection_id=connection_id)
    ConnectionSummary.objects.filter(connection_id=connection_id).update(errors_24h=F("errors_24h") + 1)
    metric_increment(name=INTACCT_ERRORS, labels={"code": code, "source": source})


def summary_ensure(*, connection_id: int) -> None:
    """Make sure a connection has its summary row."""
    if not ConnectionSummary.objects.filter(connection_id=connection_id).exists():
        try:
            with transaction.atomic():
                ConnectionSummary.objects.create(connection_id=connection_id)
        except IntegrityError:
            pass


def summary_refresh_sync(*, connection_id: int) -> None:
    """Recompute one connection's sync figures: last successful sync, last sync status, records held."""
    summary_ensure(connection_id=connection_id)
    last = (SyncRun.objects.filter(connection_id=connection_id).exclude(status__in=SyncRun.ACTIVE)
            .order_by("-created_at", "-id").values("status").first())
    last_success = (SyncRun.objects.filter(connection_id=connection_id, status=SyncRun.Status.SUCCEEDED)
                    .order_by("-finished_at").values_list("finished_at", flat=True).first())
    held = Record.objects.filter(connection_id=connection_id, deleted_at__isnull=True).count()
    ConnectionSummary.objects.filter(connection_id=connection_id).update(
        last_successful_sync_at=last_success, last_sync_status=last["status"] if last else "", records_held=held,
        updated_at=timezone.now())


def summaries_refresh(*, now: datetime | None = None) -> int:
    """Create missing summary rows and recompute every connection's errors in the last 24 hours."""
    now = now or timezone.now()
    missing = Connection.objects.filter(summary__isnull=True).values_list("id", flat=True)
    ConnectionSummary.objects.bulk_create([ConnectionSummary(connection_id=cid) for cid in missing],
                                          ignore_conflicts=True, batch_size=1000)
    window = _hour(now) - timedelta(hours=23)
    counts = dict(IntacctErrorTally.objects.filter(hour__gte=window).values("connection_id")
                  .annotate(total=Sum("count")).values_list("connection_id", "total"))
    changed = 0
    with transaction.atomic():
        stale = ConnectionSummary.objects.filter(errors_24h__gt=0).exclude(connection_id__in=list(counts))
        changed += stale.update(errors_24h=0, updated_at=now)
        by_total: dict[int, list[int]] = defaultdict(list)
        for connection_id, total in counts.items():
            by_total[total].append(connection_id)
        for total, ids in by_total.items():
            changed += ConnectionSummary.objects.filter(connection_id__in=ids).exclude(errors_24h=total).update(
                errors_24h=total, updated_at=now)
    return changed


# --- Status over the last 30 days -----------------------------------------------------------

def status_days_refresh(*, days: int = CHART_DAYS, now: datetime | None = None) -> None:
    """Rebuild the per-day status counts of the last `days` days from the status history.

    Start from every connection's current status and walk the history backwards: at each day's end,
    a connection was in the status it had before the first change after that moment.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    day_ends = [(today - timedelta(days=offset)) for offset in range(days)]
    current: dict[int, str] = {}
    created: dict[int, datetime] = {}
    for cid, status, created_at in Connection.objects.values_list("id", "status", "created_at").iterator(2000):
        current[cid] = status
        created[cid] = created_at
    since = _day_end(day_ends[-1])
    changes = (ConnectionStatusChange.objects.filter(changed_at__gt=since).order_by("-changed_at", "-id")
               .values_list("connection_id", "from_status", "changed_at").iterator(2000))
    rows: list[StatusDay] = []
    pending = next(changes, None)
    for day in day_ends:  # newest first
        end = _day_end(day) if day != today else now
        while pending is not None and pending[2] > end:
            cid, from_status, _ = pending
            if cid in current:
                current[cid] = from_status
            pending = next(changes, None)
        tally = Counter(status for cid, status in current.items() if created[cid] <= end)
        rows.extend(StatusDay(day=day, status=status, count=tally.get(status, 0))
                    for status in Connection.Status.values)
    with transaction.atomic():
        StatusDay.objects.filter(day__gte=day_ends[-1]).delete()
        StatusDay.objects.bulk_create(rows)
    StatusDay.objects.filter(day__lt=day_ends[-1]).delete()


def _day_end(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), datetime.min.time())) - timedelta(
        microseconds=1)


# --- Heartbeats and health ------------------------------------------------------------------

def heartbeat_record(*, name: str, at: datetime | None = None) -> None:
    """Note that a worker (or beat) is alive now."""
    Heartbeat.objects.update_or_create(name=name, defaults={"seen_at": at or timezone.now()})


def worker_heartbeat_name(nodename: str | None = None) -> str:
    """One row per worker: its Celery node name (several workers may share a host)."""
    return f"{Heartbeat.WORKER_PREFIX}{nodename or socket.gethostname()}"


def _check_database() -> dict:
    started = time.monotonic()
    try:
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not healthy"; the type is enough to act on
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def _check_broker() -> dict:
    started = time.monotonic()
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # the broker's own errors vary by transport
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def health_report(*, now: datetime | None = None) -> dict:
    """Database, broker, newest worker heartbeat and beat's last tick. "ok" covers what serving needs (database,
    broker, a live worker); beat only schedules, so its health is reported beside it ("beat_ok")."""
    now = now or timezone.now()
    checks = {"database": _check_database(), "broker": _check_broker()}
    limit = settings.HEARTBEAT_STALE_SECONDS
    if checks["database"]["ok"]:
        beats = {row.name: row.seen_at for row in Heartbeat.objects.all()}
        workers = {name.removeprefix(Heartbeat.WORKER_PREFIX): seen for name, seen in beats.items()
                   if name.startswith(Heartbeat.WORKER_PREFIX)}
        newest_worker = max(workers.values(), default=None)
        checks["worker"] = _age_check(newest_worker, now, limit)
        checks["worker"]["fresh_workers"] = sum(1 for seen in workers.values()
                                                if (now - seen).total_seconds() <= limit)
        checks["beat"] = _age_check(beats.get(Heartbeat.BEAT), now, limit)
    else:
        checks["worker"] = checks["beat"] = {"ok": False, "error": "database unavailable"}
    serving = ("database", "broker", "worker")
    return {"ok": all(checks[name]["ok"] for name in serving), "beat_ok": checks["beat"]["ok"], "checks": checks,
            "time": now.isoformat(timespec="seconds")}


def _age_check(seen: datetime | None, now: datetime, limit: int) -> dict:
    if seen is None:
        return {"ok": False, "error": "never seen"}
    age = (now - seen).total_seconds()
    return {"ok": age <= limit, "age_seconds": round(age, 1), "last_seen": seen.isoformat(timespec="seconds")}


# --- Metrics --------------------------------------------------------------------------------

def metrics_text(*, now: datetime | None = None) -> str:
    """Everything /metrics shows, in Prometheus text exposition format (version 0.0.4)."""
    now = now or timezone.now()
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    by_status = dict(Connection.objects.values("status").annotate(n=Count("id")).values_list("status", "n"))
    family("intacct_connect_connections", "gauge", "Connections by status.")
    for status in Connection.Status.values:
        lines.append(f'intacct_connect_connections{{status="{status}"}} {by_status.get(status, 0)}')

    counters: dict[str, list[MetricCounter]] = defaultdict(list)
    for counter in MetricCounter.objects.all():
        counters[counter.name].append(counter)
    for base, help_text in ((VALIDATION_SECONDS, "How long validation runs took."),
                            (SYNC_SECONDS, "How long sync runs took.")):
        family(base, "histogram", help_text)
        for suffix in ("_bucket", "_sum", "_count"):
            series = counters.get(base + suffix, [])
            if suffix == "_bucket":
                series = sorted(series, key=lambda c: (_without_le(c.labels), _le_value(c.labels)))
            for counter in series:
                lines.append(f"{base}{suffix}{{{counter.labels}}} {_number(counter.value)}")
    family(INTACCT_ERRORS, "counter", "Error answers from Intacct, by error code and where they happened.")
    for counter in counters.get(INTACCT_ERRORS, []):
        lines.append(f"{INTACCT_ERRORS}{{{counter.labels}}} {_number(counter.value)}")
    for name, help_text in ((RATE_LIMIT_UNAVAILABLE, "Requests let through unlimited because the cache was down."),
                            (RUNS_UNSENT, "Runs whose task could not be sent at once (the broker was down).")):
        family(name, "counter", help_text)
        for counter in counters.get(name, []):
            lines.append(f"{name}{{{counter.labels}}} {_number(counter.value)}")

    family("intacct_connect_requests_in_flight", "gauge", "Intacct requests in flight now, per company.")
    in_flight = (CompanySlot.objects.exclude(holder="").filter(lease_until__gt=now).values("company_key")
                 .annotate(n=Count("id")).order_by("company_key").values_list("company_key", "n"))
    for company, n in in_flight:
        lines.append(f"intacct_connect_requests_in_flight{{{labels_text({'company': mask(company)})}}} {n}")

    family("intacct_connect_heartbeat_age_seconds", "gauge", "Seconds since each worker and beat was last seen.")
    for beat in Heartbeat.objects.order_by("name"):
        age = max(0.0, (now - beat.seen_at).total_seconds())
        label = labels_text({"name": heartbeat_pseudonym(beat.name)})
        lines.append(f"intacct_connect_heartbeat_age_seconds{{{label}}} {age:.1f}")
    return "\n".join(lines) + "\n"


def heartbeat_pseudonym(name: str) -> str:
    """A worker's stable stand-in for /metrics ("worker-3f9a1c2e"): its host name is not for anonymous eyes."""
    if not name.startswith(Heartbeat.WORKER_PREFIX):
        return name
    return "worker-" + hashlib.sha256(name.encode()).hexdigest()[:8]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _without_le(labels: str) -> str:
    return ",".join(part for part in labels.split(",") if not part.startswith("le="))


def _le_value(labels: str) -> float:
    for part in labels.split(","):
        if part.startswith("le="):
            value = part[4:-1]
            return float("inf") if value == "+Inf" else float(value)
    return 0.0


# --- Retention ------------------------------------------------------------------------------

def _delete_in_batches(queryset, batch: int = 5000) -> int:
    total = 0
    model = queryset.model
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:batch])
        if not ids:
            return total
        with transaction.atomic():
            model.objects.filter(pk__in=ids).delete()
        total += len(ids)


def history_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Delete run history and audit events older than the configured ages (never a connection's last run)."""
    now = now or timezone.now()
    runs_before = now - timedelta(days=settings.RUN_HISTORY_RETENTION_DAYS)
    audit_before = now - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    keep = Connection.objects.exclude(last_validation__isnull=True).values("last_validation_id")
    deleted = {
        "validation_runs": _delete_in_batches(
            ValidationRun.objects.filter(created_at__lt=runs_before).exclude(id__in=keep)),
        "sync_runs": _delete_in_batches(SyncRun.objects.filter(created_at__lt=runs_before)
                                        .exclude(status__in=SyncRun.ACTIVE)),
        "status_changes": _delete_in_batches(ConnectionStatusChange.objects.filter(changed_at__lt=runs_before)),
        "error_tallies": _delete_in_batches(IntacctErrorTally.objects.filter(hour__lt=runs_before)),
        "audit_events": _delete_in_batches(AuditEvent.objects.filter(created_at__lt=audit_before)),
        "heartbeats": Heartbeat.objects.filter(seen_at__lt=now - timedelta(days=7)).delete()[0],
    }
    log.info("history pruned", extra={"deleted": deleted})
    return deleted


# --- Support actions ------------------------------------------------------------------------

def step_link_send(*, connection: Connection, step: int, by, ip: str | None = None) -> int:
    """E-mail the organisation's admins a link straight to wizard step `step`; returns how many got it."""
    organisation = connection.organisation
    admins = [m.user for m in Membership.objects.filter(organisation=organisation, role=Membership.ORG_ADMIN)
              .select_related("user") if m.user.email]
    link = settings.SITE_URL.rstrip("/") + reverse("setup_step", args=[organisation.slug, step])
    title = steps.step(step).title
    if admins:
        send_mail(
            subject=f"{settings.PRODUCT_NAME}: please look at step {step}, {title}",
            message=(f"Hello,\n\nOur support team looked at {organisation.name}'s Sage Intacct connection and "
                     f"asks you to revisit step {step} of the setup, \"{title}\":\n\n{link}\n\n"
                     f"Sign in with your usual login. Nobody will ever ask you for the password by e-mail.\n\n"
                     f"— {settings.PRODUCT_NAME} support\n"),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[user.email for user in admins],
        )
    services.audit_record(organisation=organisation, connection=connection, action="support.step_link_sent",
                          user=by, ip=ip, details={"step": step, "recipients": [u.get_username() for u in admins]})
    return len(admins)


# --- Where the work finishes (connected in ConnectorConfig.ready) ---------------------------

def _validation_run_saved(sender, instance: ValidationRun, created: bool, update_fields=None, **_kwargs) -> None:
    finishing = created or (update_fields is not None and "finished_at" in update_fields)
    if not finishing or instance.status not in ValidationRun.FINISHED or not instance.finished_at:
        return
    started = instance.started_at or instance.created_at
    seconds = max(0.0, (instance.finished_at - started).total_seconds())
    metric_observe(name=VALIDATION_SECONDS, seconds=seconds, labels={"result": instance.status})


def _validation_check_saved(sender, instance: ValidationCheck, created: bool, **_kwargs) -> None:
    if created and instance.errorno:
        connection_id = ValidationRun.objects.filter(id=instance.run_id).values_list("connection_id", flat=True)[0]
        intacct_error_record(connection_id=connection_id, source="validation", code=instance.errorno)


def _sync_run_saved(sender, instance: SyncRun, created: bool, update_fields=None, **_kwargs) -> None:
    if instance.status in SyncRun.ACTIVE:
        return
    finishing = created or update_fields is None or "status" in update_fields or "finished_at" in update_fields
    if not finishing:
        return
    seconds = instance.duration_ms / 1000 if instance.duration_ms else (
        (instance.finished_at - (instance.started_at or instance.created_at)).total_seconds()
        if instance.finished_at else 0.0)
    metric_observe(name=SYNC_SECONDS, seconds=max(0.0, seconds), labels={"result": instance.status})
    summary_refresh_sync(connection_id=instance.connection_id)


def _sync_object_run_saved(sender, instance: SyncObjectRun, created: bool, update_fields=None, **_kwargs) -> None:
    if instance.status != SyncObjectRun.Status.FAILED or not instance.errorno:
        return
    if update_fields is not None and "status" not in update_fields and "errorno" not in update_fields:
        return
    connection_id = SyncRun.objects.filter(id=instance.run_id).values_list("connection_id", flat=True)[0]
    intacct_error_record(connection_id=connection_id, source="sync", code=instance.errorno)


def _connection_saved(sender, instance: Connection, created: bool, **_kwargs) -> None:
    if created:
        ConnectionSummary.objects.get_or_create(connection=instance)


def connect_signals() -> None:
    post_save.connect(_validation_run_saved, sender=ValidationRun, dispatch_uid="ops_validation_run")
    post_save.connect(_validation_check_saved, sender=ValidationCheck, dispatch_uid="ops_validation_check")
    post_save.connect(_sync_run_saved, sender=SyncRun, dispatch_uid="ops_sync_run")
    post_save.connect(_sync_object_run_saved, sender=SyncObjectRun, dispatch_uid="ops_sync_object_run")
    post_save.connect(_connection_saved, sender=Connection, dispatch_uid="ops_connection")

    from celery import signals

    signals.before_task_publish.connect(_heartbeat_published, weak=False, dispatch_uid="ops_beat_tick")
    signals.worker_ready.connect(_worker_ready, weak=False, dispatch_uid="ops_worker_ready")


def _heartbeat_published(sender=None, **_kwargs) -> None:
    # Only beat sends the heartbeat task, so its publication is beat's tick.
    if sender == "connector.heartbeat":
        try:
            heartbeat_record(name=Heartbeat.BEAT)
        except Exception:  # a database hiccup must never stop beat from publishing
            log.warning("could not record beat's heartbeat")


def _worker_ready(sender=None, **_kwargs) -> None:
    heartbeat_record(name=worker_heartbeat_name(getattr(sender, "hostname", None)))


# --- Beat tasks -----------------------------------------------------------------------------

@shared_task(name="connector.heartbeat", ignore_result=True, bind=True)
def heartbeat(self) -> None:
    """Sent by beat every HEARTBEAT_INTERVAL_SECONDS: the worker that runs it is alive."""
    heartbeat_record(name=worker_heartbeat_name(self.request.hostname))


@shared_task(name="connector.summaries_refresh", ignore_result=True)
def summaries_refresh_task() -> None:
    summaries_refresh()


@shared_task(name="connector.status_days_refresh", ignore_result=True)
def status_days_refresh_task() -> None:
    status_days_refresh()


@shared_task(name="connector.history_prune", ignore_result=True)
def history_prune_task() -> None:
    history_prune()
