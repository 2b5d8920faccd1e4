"""A run's life around the engine: claim the lease, run, end with words saying why whatever stopped it; runs
whose worker died are closed as interrupted and resumed."""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db import connection as db_connection
from django.utils import timezone

from connector import diagnosis, metrics, policy, services
from connector.models import SyncObjectRun, SyncRun, SyncSettings
from connector.sync.allowance import can_sync
from connector.sync.engine import SyncEngine, finish
from connector.sync.lease import Heartbeat, claim, lease_seconds, release

log = logging.getLogger(__name__)

# A run stopped by a transient cause before it read anything (no encryption key) is queued again this many times.
MAX_RUN_ATTEMPTS = 3


def run_sync(*, run_id: int) -> SyncRun | None:
    """Run one queued sync (idempotent: a finished run is left alone; a second concurrent one is refused)."""
    run = SyncRun.objects.select_related("connection", "connection__organisation").filter(pk=run_id).first()
    if run is None or run.is_finished:
        return run
    if not claim(run):
        holder = (SyncSettings.objects.filter(connection_id=run.connection_id)
                  .values_list("active_run", flat=True).first())
        if holder == run.pk:
            return run  # this very run is alive elsewhere (a redelivered message); leave it be
        finish(run, SyncRun.Status.FAILED,
                f"Not run: sync #{holder} of this connection was already running, and only one runs at a time.")
        return run
    # A run left "running" by a killed worker: say so; this run resumes from its last saved page.
    interrupted_close(run.connection.sync_runs.filter(status=SyncRun.Status.RUNNING).exclude(pk=run.pk),
                      resumed_by=run)
    heartbeat = Heartbeat(run)
    heartbeat.start()
    try:
        return SyncEngine(run).execute()
    except DatabaseError as exc:
        log.warning("sync #%s stopped: the database could not be reached (%s)", run.pk, type(exc).__name__)
        fail_after_database_error(run)
        return run
    except Exception as exc:
        _end_after_exception(run, exc)
        return run
    finally:
        heartbeat.stopped.set()
        heartbeat.join(timeout=5)
        try:
            release(run)
        except DatabaseError:
            db_connection.close()  # the lease lapses by itself


def _end_after_exception(run: SyncRun, exc: BaseException) -> None:
    """Whatever stopped the engine, the run ends now with words saying why (never left "running")."""
    action = policy.action_for(exc)
    if action == policy.Action.RETRY:
        words = diagnosis.unreachable(exc)
        log.warning("sync #%s stopped: %s", run.pk, type(exc).__name__)
    else:
        words = diagnosis.internal_error(exc)
        log.exception("sync #%s stopped by an internal error", run.pk)
        metrics.internal_error_count(source="sync")
    now = timezone.now()
    unfinished = (SyncObjectRun.Status.QUEUED, SyncObjectRun.Status.RUNNING)
    SyncObjectRun.objects.filter(run=run, status__in=unfinished).update(
        status=SyncObjectRun.Status.FAILED, finished_at=now, message=f"Not read: {words}")
    run.refresh_from_db()
    finish(run, SyncRun.Status.FAILED, words)
    if action == policy.Action.RETRY and run.attempt < MAX_RUN_ATTEMPTS and can_sync(run.connection):
        release(run)
        services.sync_request(connection=run.connection, kind=run.kind, reason="retry after a transient stop",
                     attempt=run.attempt + 1, countdown=float(settings.SYNC_RETRY_DELAY_SECONDS))


def interrupted_close(runs, *, resumed_by: SyncRun | None = None) -> list[SyncRun]:
    """End runs whose worker stopped (killed, out of memory, host lost) as "interrupted"; returns them."""
    now = timezone.now()
    closed = []
    for run in runs.select_related("connection"):
        then = (f"sync #{resumed_by.pk} resumed from the last saved page" if resumed_by is not None
                else "a new sync resumes from the last saved page")
        summary = f"Interrupted: the worker running this sync stopped before it finished; {then}."
        updated = SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING).update(
            status=SyncRun.Status.INTERRUPTED, finished_at=now, summary=summary)
        if not updated:
            continue
        SyncObjectRun.objects.filter(run=run, status__in=(SyncObjectRun.Status.QUEUED, SyncObjectRun.Status.RUNNING)
                                     ).update(status=SyncObjectRun.Status.FAILED, finished_at=now,
                                              message="Not finished: the worker stopped; the next sync continues from "
                                                      "the last saved page.")
        _announce_finished(run)
        release(run)
        closed.append(run)
    return closed


def interrupted_sweep() -> int:
    """Beat: end every running sync whose lease lapsed (its worker died) and queue its resume at once."""
    now = timezone.now()
    live = SyncSettings.objects.filter(active_run__isnull=False, lease_until__gte=now).values("active_run_id")
    orphans = SyncRun.objects.filter(status=SyncRun.Status.RUNNING).exclude(pk__in=live)
    # A run that has just been claimed writes its lease in the same moment: leave it one lease period.
    orphans = orphans.filter(started_at__lt=now - timedelta(seconds=lease_seconds()))
    closed = interrupted_close(orphans)
    for run in closed:
        log.warning("sync #%s was interrupted (its worker stopped); queuing its resume", run.pk)
        if can_sync(run.connection):
            services.sync_request(connection=run.connection, kind=run.kind, reason="resume after an interrupted sync")
    return len(closed)


def fail_after_database_error(run: SyncRun) -> None:
    """The database went away mid-run: record that on the run once it is back (waiting up to a lease), so the
    run is not left "running". Every page saved before stays saved; the next sync continues from there."""
    deadline = time.monotonic() + lease_seconds()
    while True:
        db_connection.close()
        try:
            now = timezone.now()
            SyncObjectRun.objects.filter(run=run, status__in=(SyncObjectRun.Status.QUEUED,
                                                             SyncObjectRun.Status.RUNNING)).update(
                status=SyncObjectRun.Status.FAILED, finished_at=now,
                message="Not finished: our database could not be reached; the next sync continues from the last "
                        "saved page.")
            SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING).update(
                status=SyncRun.Status.FAILED, finished_at=now,
                summary="Stopped: our database could not be reached during this sync. What was saved is kept; "
                        "the next sync continues from the last saved page.")
            _announce_finished(run)
            release(run)
            return
        except DatabaseError:
            if time.monotonic() > deadline:
                return  # still down: the lease lapses and the next sync says this run stopped
            time.sleep(1)


def _announce_finished(run: SyncRun) -> None:
    """A run ended by a conditional UPDATE (interrupted, database lost) is saved once more as it now stands, so
    what listens for finished runs hears of it like any other: the dashboard's figures, /metrics, the webhooks."""
    run.refresh_from_db()
    if run.is_finished:
        run.save(update_fields=["status", "finished_at", "summary"])

