"""Celery tasks. They stay thin: load by id, call one service, record the outcome."""
from __future__ import annotations

import os
import socket

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from connector import feed, health, monitoring, requeue, retention, summaries, sync, validation, webhooks

# A run's task that cannot reach the database before it has claimed the run (PostgreSQL restarting, SQLite
# locked) is tried again later instead of failing: a failed task's message is acknowledged, and the run would
# stay "queued" for ever. Trying again is safe: a run is claimed with a conditional UPDATE.
DATABASE_AWAY_RETRY = {"autoretry_for": (OperationalError, InterfaceError), "retry_backoff": 2,
                       "retry_backoff_max": 60, "retry_jitter": True, "max_retries": 40}


@shared_task(name="connector.ping", ignore_result=False)
def ping() -> dict:
    """Prove a worker is alive and reading this broker: answer with the worker's identity."""
    return {"pong": True, "host": socket.gethostname(), "pid": os.getpid()}


@shared_task(name=requeue.VALIDATE_TASK, ignore_result=True, **DATABASE_AWAY_RETRY)
def connection_validate(run_id: int) -> None:
    """Run the checks of one queued validation run (arguments are ids only, never secrets)."""
    validation.run_validation(run_id=run_id)


@shared_task(name=requeue.SYNC_TASK, ignore_result=True, acks_late=True,
             soft_time_limit=settings.SYNC_TASK_SOFT_TIME_LIMIT, time_limit=settings.SYNC_TASK_TIME_LIMIT,
             **DATABASE_AWAY_RETRY)
def sync_run(run_id: int) -> None:
    """Run one queued sync (ids only). Idempotent: a finished run is left alone, a duplicate is refused."""
    sync.run_sync(run_id=run_id)


@shared_task(name="connector.sync_schedule_incremental", ignore_result=True)
def sync_schedule_incremental() -> int:
    """Beat: queue incremental syncs for connections due one (skipping Intacct's maintenance window)."""
    return sync.schedule_due(kind="incremental")


@shared_task(name="connector.sync_schedule_reconcile", ignore_result=True)
def sync_schedule_reconcile() -> int:
    """Beat: queue delete reconciliation (keys only, the costly kind) for connections due one."""
    return sync.schedule_due(kind="reconcile")


@shared_task(name="connector.connections_revalidate", ignore_result=True)
def connections_revalidate(spread_seconds: int | None = None) -> int:
    """Beat: enqueue a re-validation of every connection that is due, spread over the tick."""
    return monitoring.connections_revalidate(spread_seconds=spread_seconds)


@shared_task(name=requeue.VALIDATE_LATER_TASK, ignore_result=True)
def connection_validate_later(connection_id: int, trigger: str, attempt: int = 1,
                              after_run_id: int | None = None) -> None:
    """Run a scheduled or retry validation of one connection (ids only, never secrets)."""
    validation.connection_validate_later(connection_id=connection_id, trigger=trigger, attempt=attempt,
                                         after_run_id=after_run_id)


@shared_task(name="connector.runs_sweep", ignore_result=True)
def runs_sweep() -> int:
    """Beat: end runs whose worker died ("interrupted") and queue their resume; close abandoned validations."""
    closed = sync.interrupted_sweep()
    return closed + monitoring.abandoned_runs_close()


# --- Beat: the dashboard's figures, heartbeats, retention, runs whose task was not sent ---------

@shared_task(name="connector.heartbeat", ignore_result=True, bind=True)
def heartbeat(self) -> None:
    """Sent by beat every HEARTBEAT_INTERVAL_SECONDS: the worker that runs it is alive."""
    health.heartbeat_record(name=health.worker_heartbeat_name(self.request.hostname))


@shared_task(name="connector.summaries_refresh", ignore_result=True)
def summaries_refresh_task() -> None:
    summaries.summaries_refresh()


@shared_task(name="connector.status_days_refresh", ignore_result=True)
def status_days_refresh_task() -> None:
    summaries.status_days_refresh()


@shared_task(name="connector.history_prune", ignore_result=True)
def history_prune_task() -> None:
    retention.history_prune()


@shared_task(name="connector.resend_unsent_runs", ignore_result=True)
def resend_unsent_runs_task() -> dict[str, int]:
    """Beat: send again the runs whose task could not be sent while the broker was down, and once more those
    queued so long that their message was lost (a worker killed holding it)."""
    outcome = requeue.resend_unsent_runs()
    requeue.resend_lost_runs()
    return outcome


@shared_task(name="connector.feed_purge_tombstones", ignore_result=True)
def feed_purge_tombstones() -> int:
    """Beat: drop deletions older than the change feed's retention (consumers behind them get 410)."""
    return feed.purge_tombstones()


@shared_task(name="connector.webhook_deliver", ignore_result=True, **DATABASE_AWAY_RETRY)
def webhook_deliver(message_id: int) -> None:
    """One attempt of one webhook message (its id only; the secret is read and used inside the worker)."""
    webhooks.deliver(message_id)


@shared_task(name="connector.webhooks_due", ignore_result=True)
def webhooks_due() -> int:
    """Beat: queue the webhook messages whose next attempt is due."""
    return webhooks.due_sweep()
