"""The support dashboard's figures: errors per connection and hour, each connection's summary, status per day.

Figures are written where the work finishes (post_save receivers on runs and checks, connected in
ConnectorConfig.ready) and corrected by beat tasks, so no page ever aggregates a year of history.
Every table is shared by all processes through the database: nothing here assumes one process.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.db.models.signals import post_save
from django.utils import timezone

from connector.metrics import INTACCT_ERRORS, SYNC_SECONDS, VALIDATION_SECONDS, metric_increment, metric_observe
from connector.models import (
    Connection,
    ConnectionStatusChange,
    ConnectionSummary,
    IntacctErrorTally,
    Record,
    StatusDay,
    SyncObjectRun,
    SyncRun,
    ValidationCheck,
    ValidationRun,
)

CHART_DAYS = 30


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


# --- Where the work finishes (connected in ConnectorConfig.ready) ----------------------------

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
