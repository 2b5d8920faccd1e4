"""Every worker writes its own heartbeat while it is connected to the broker; beat is not needed for it.

A consumer bootstep (added to the Celery app in config/celery.py) starts a small thread when the worker's
consumer has connected to the broker and stops it when the connection is lost or the worker stops: the row
`worker:<node name>` (connector.health.heartbeat_record) then tells /healthz that this worker is alive
and consuming, every HEARTBEAT_INTERVAL_SECONDS. Beat's own tick is recorded separately (the row "beat").
"""
from __future__ import annotations

import logging
import threading

from celery import bootsteps

log = logging.getLogger(__name__)


class _Beating(threading.Thread):
    def __init__(self, nodename: str, interval: float) -> None:
        super().__init__(daemon=True, name="worker-heartbeat")
        self.nodename, self.interval = nodename, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        from django.db import DatabaseError
        from django.db import connection as db_connection

        from connector import health

        name = health.worker_heartbeat_name(self.nodename)
        try:
            while not self.stopped.is_set():
                try:
                    health.heartbeat_record(name=name)
                except DatabaseError:
                    # The database is away for a moment: try again on a new connection at the next beat.
                    log.warning("could not record this worker's heartbeat (database unavailable)")
                    db_connection.close()
                self.stopped.wait(self.interval)
        finally:
            db_connection.close()


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Consumer bootstep: beat while connected to the broker (restarted with the consumer on reconnection)."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def __init__(self, parent, **kwargs) -> None:
        self.beating: _Beating | None = None
        super().__init__(parent, **kwargs)

    def start(self, parent) -> None:
        from django.conf import settings

        self.stop(parent)
        self.beating = _Beating(parent.hostname, float(settings.HEARTBEAT_INTERVAL_SECONDS))
        self.beating.start()

    def stop(self, parent) -> None:
        if self.beating is not None:
            self.beating.stopped.set()
            self.beating = None

    def shutdown(self, parent) -> None:
        self.stop(parent)
