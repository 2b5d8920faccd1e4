"""Beat's schedules: queue the syncs that are due (none during Intacct's maintenance window)."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from connector import services
from connector.models import Connection, SyncRun
from connector.sync.allowance import in_maintenance_window

log = logging.getLogger(__name__)


def connections_due(*, kind: str, older_than: timedelta) -> list[Connection]:
    """Syncable connections whose last sync of this kind (any kind, for incremental) began before the cut."""
    cut = timezone.now() - older_than
    due = []
    for connection in Connection.objects.syncable():
        runs = connection.sync_runs.all()
        if kind == SyncRun.Kind.RECONCILE:
            runs = runs.filter(kind=SyncRun.Kind.RECONCILE)
        last = runs.order_by("-created_at").values_list("created_at", flat=True).first()
        if last is None or last < cut:
            due.append(connection)
    return due


def schedule_due(*, kind: str) -> int:
    """Queue syncs for connections that are due (beat); nothing during Intacct's maintenance window."""
    if in_maintenance_window():
        log.info("Intacct maintenance window: no %s syncs queued", kind)
        return 0
    if kind == SyncRun.Kind.RECONCILE:
        older_than = timedelta(hours=settings.SYNC_RECONCILE_INTERVAL_HOURS)
    else:
        older_than = timedelta(minutes=settings.SYNC_INTERVAL_MINUTES)
    queued = 0
    for connection in connections_due(kind=kind, older_than=older_than):
        _, created = services.sync_request(connection=connection, kind=kind)
        queued += int(created)
    close_old_connections()
    return queued
