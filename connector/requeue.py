"""Runs whose task could not be sent stay queued, and are sent again once the broker is back.

A validation or sync run is saved "queued" and its task is sent after the transaction commits. When the
broker cannot be reached (Redis down), the run keeps its place and is marked `unsent_since`; the page that
asked for it says so instead of failing. `resend_unsent_runs` (beat, every RESEND_UNSENT_INTERVAL_SECONDS)
sends every such run again: beat can only publish it once the broker answers, so the runs go out within one
interval of the broker's return. Sending a run twice is harmless: a run is claimed with a conditional UPDATE
and a second message for it does nothing.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from connector import metrics
from connector.models import SyncRun, ValidationRun

log = logging.getLogger(__name__)

# What the pages say when a run is saved but waiting for the queue.
CREDENTIALS_SAVED_QUEUE_DOWN = ("We can't check your credentials right now: our task queue is unavailable. Your "
                                "credentials are saved; we'll check them as soon as our queue is back, and this page "
                                "shows the result when it is done.")
CHECK_SAVED_QUEUE_DOWN = ("We can't check the connection right now: our task queue is unavailable. The check is "
                          "saved; we'll run it as soon as our queue is back.")
SYNC_SAVED_QUEUE_DOWN = ("We can't start the sync right now: our task queue is unavailable. The sync is saved; it "
                         "starts as soon as our queue is back.")

# What sending a task raises when the broker is away (kombu wraps most; a socket error may come through).
BROKER_ERRORS = (KombuError, RedisError, OSError)


# The tasks the service sends, by name (connector.tasks declares them under these names).
VALIDATE_TASK = "connector.connection_validate"
VALIDATE_LATER_TASK = "connector.connection_validate_later"
SYNC_TASK = "connector.sync_run"


def task_named(name: str):
    """A task of connector.tasks, from Celery's registry.

    connector.tasks imports the modules whose work it runs, so they find their tasks here instead of
    importing it (ConnectorConfig.ready imports connector.tasks, which registers them)."""
    return current_app.tasks[name]


def _task_for(run: ValidationRun | SyncRun):
    return task_named(VALIDATE_TASK if isinstance(run, ValidationRun) else SYNC_TASK)


def _kind(run: ValidationRun | SyncRun) -> str:
    return "validation" if isinstance(run, ValidationRun) else "sync"


def run_send(run: ValidationRun | SyncRun, *, countdown: float = 0) -> bool:
    """Send the run's task (ids only); on a broker error keep the run queued, marked unsent. True if sent."""
    model, task = type(run), _task_for(run)
    try:
        if countdown > 0:
            task.apply_async((run.pk,), countdown=countdown)
        else:
            task.delay(run.pk)
    except BROKER_ERRORS as exc:
        log.warning("%s run #%s not sent: the task queue could not be reached (%s); it is sent again once the "
                    "queue is back", _kind(run), run.pk, type(exc).__name__)
        now = timezone.now()
        model.objects.filter(pk=run.pk, status=model.Status.QUEUED).update(
            unsent_since=Coalesce(F("unsent_since"), now))
        run.unsent_since = run.unsent_since or now
        try:
            metrics.metric_increment(name=metrics.RUNS_UNSENT, labels={"kind": _kind(run)})
        except Exception:  # noqa: BLE001 - a counter must never turn a saved request into an error page
            log.warning("could not count an unsent %s run", _kind(run))
        return False
    if run.unsent_since is not None:
        model.objects.filter(pk=run.pk).update(unsent_since=None)
        run.unsent_since = None
    return True


def is_unsent(run: ValidationRun | SyncRun) -> bool:
    """Whether the run is still waiting for its task to be sent (read from the database)."""
    return type(run).objects.filter(pk=run.pk, unsent_since__isnull=False,
                                    status=type(run).Status.QUEUED).exists()


def resend_unsent_runs(*, min_age_seconds: float | None = None, batch: int = 500) -> dict[str, int]:
    """Send again every queued run whose task could not be sent; returns how many went out and how many did not."""
    age = settings.RESEND_UNSENT_MIN_AGE_SECONDS if min_age_seconds is None else min_age_seconds
    cut = timezone.now() - timedelta(seconds=age)
    sent = failed = 0
    for model in (ValidationRun, SyncRun):
        runs = (model.objects.filter(status=model.Status.QUEUED, unsent_since__isnull=False, unsent_since__lte=cut)
                .order_by("unsent_since", "pk")[:batch])
        for run in runs:
            if run_send(run):
                sent += 1
            else:
                failed += 1
                break  # the broker is still away: the next sweep tries again
    if sent or failed:
        log.info("re-sent %s unsent run(s); %s could not be sent yet", sent, failed)
    return {"sent": sent, "unsent": failed}


def resend_lost_runs(*, now=None) -> int:
    """Send once more each run still queued, with its task sent, RESEND_QUEUED_AFTER_SECONDS after it was made.

    The embedded (filesystem) broker hands a message to a worker for good: a worker SIGKILLed while it held the
    run's message loses it, and the run would stay queued for ever (Redis gives it back after its visibility
    timeout). Each run is sent again once, by the sweep in whose interval it crosses the threshold; a second
    message for a run that did start is a no-op (a run is claimed once). Returns how many were sent."""
    now = now or timezone.now()
    threshold = timedelta(seconds=settings.RESEND_QUEUED_AFTER_SECONDS)
    window = timedelta(seconds=settings.RESEND_UNSENT_INTERVAL_SECONDS)
    newest, oldest = now - threshold, now - threshold - window
    window_of = {"status": "queued", "unsent_since__isnull": True, "created_at__gt": oldest,
                 "created_at__lte": newest}
    sent = 0
    # A validation retry waits for its time (retry_at): it is not lost, only not due.
    for runs in (ValidationRun.objects.filter(retry_at__isnull=True, **window_of), SyncRun.objects.filter(**window_of)):
        for run in runs.order_by("created_at", "pk"):
            if not run_send(run):
                break
            sent += 1
    if sent:
        log.info("sent %s queued run(s) again that no worker had started", sent)
    return sent
