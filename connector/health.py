"""Is the service alive: heartbeats of workers and beat, and the report /healthz serves.

Every worker writes its own row (connector.heartbeats, and the heartbeat task); beat's tick is recorded
when it publishes that task. The report covers what serving needs: the database, the broker, a live worker.
"""
from __future__ import annotations

import logging
import socket
import time
from datetime import datetime

from celery import current_app, signals
from django.conf import settings
from django.db import connection as db_connection
from django.utils import timezone

from connector.models import Heartbeat

log = logging.getLogger(__name__)


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


def connect_signals() -> None:
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
