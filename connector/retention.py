"""How long history is kept: run history and audit events older than the configured ages are deleted."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from connector.models import (
    AuditEvent,
    Connection,
    ConnectionStatusChange,
    Heartbeat,
    IntacctErrorTally,
    SyncRun,
    ValidationRun,
)

log = logging.getLogger(__name__)


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
