"""The connection's one sync lease: a run claims it with a conditional UPDATE of the connection's SyncSettings
row, a heartbeat thread extends it while the run lives, and the run releases it at the end (a killed worker's
lease lapses by itself)."""
from __future__ import annotations

import threading
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db import connection as db_connection
from django.db.models import Q
from django.utils import timezone

from connector.models import Connection, SyncRun, SyncSettings


def lease_seconds() -> int:
    return settings.SYNC_LEASE_SECONDS


def sync_settings_for(connection: Connection) -> SyncSettings:
    sync_settings, _ = SyncSettings.objects.get_or_create(
        connection=connection, defaults={"concurrency_limit": settings.SYNC_CONCURRENCY_LIMIT})
    return sync_settings



def claim(run: SyncRun) -> bool:
    """Take the connection's one sync lease with a conditional UPDATE; True if this run now holds it."""
    sync_settings_for(run.connection)
    now = timezone.now()
    taken = SyncSettings.objects.filter(connection_id=run.connection_id).filter(
        Q(active_run__isnull=True) | Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    ).update(active_run=run, lease_until=now + timedelta(seconds=lease_seconds()))
    if taken == 0:
        # A lease still held by a finished run (its release was lost, e.g. to a database outage) is free:
        # take it over from that very run only (compare-and-swap on the holder).
        holder = (SyncSettings.objects.filter(connection_id=run.connection_id)
                  .values_list("active_run", flat=True).first())
        if holder and SyncRun.objects.filter(pk=holder).exclude(status__in=SyncRun.ACTIVE).exists():
            taken = SyncSettings.objects.filter(connection_id=run.connection_id, active_run_id=holder).update(
                active_run=run, lease_until=now + timedelta(seconds=lease_seconds()))
    return taken == 1


def release(run: SyncRun) -> None:
    SyncSettings.objects.filter(connection_id=run.connection_id, active_run=run).update(
        active_run=None, lease_until=None)


class Heartbeat(threading.Thread):
    """Extends the run's lease while it runs; a killed worker stops beating and its lease lapses."""

    def __init__(self, run: SyncRun) -> None:
        super().__init__(daemon=True, name=f"sync-heartbeat-{run.pk}")
        self.run_id, self.connection_id = run.pk, run.connection_id
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = max(0.5, lease_seconds() / 3)
        try:
            while not self.stopped.wait(interval):
                try:
                    SyncSettings.objects.filter(connection_id=self.connection_id, active_run_id=self.run_id).update(
                        lease_until=timezone.now() + timedelta(seconds=lease_seconds()))
                except DatabaseError:
                    db_connection.close()  # the database went away for a moment: beat again on a new connection
        finally:
            db_connection.close()

