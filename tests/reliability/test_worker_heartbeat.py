"""Workers publish their own heartbeat: with no beat running, /healthz still sees a live worker, and beat's
health is reported on its own."""
from __future__ import annotations

import time
import uuid

import pytest
from django.db import connection as db_connection
from django.urls import reverse

from connector.models import Heartbeat
from tests.conftest import _database_url, start_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.timeout(180)]


def test_a_worker_is_seen_alive_without_beat_and_seen_stopped_once_killed(transactional_db, client, settings):
    queue = f"hb-{uuid.uuid4().hex[:8]}"
    Heartbeat.objects.all().delete()
    worker = start_worker(queue=queue, name="ownbeat", concurrency=1,
                          env_overrides={"DATABASE_URL": _database_url(db_connection.settings_dict),
                                         "HEARTBEAT_INTERVAL_SECONDS": "1"})
    try:
        # Nobody sends the heartbeat task (no beat): the worker writes its row itself, again and again.
        row = wait_for(lambda: Heartbeat.objects.filter(name__startswith=f"worker:ownbeat-{queue}@").first(),
                       timeout=30, message="the worker's own heartbeat row")
        first_seen = row.seen_at
        wait_for(lambda: Heartbeat.objects.get(pk=row.pk).seen_at > first_seen, timeout=10,
                 message="a second heartbeat")
        # The test session's own worker may beat into this database too: only this worker is judged.
        Heartbeat.objects.exclude(pk=row.pk).filter(name__startswith=Heartbeat.WORKER_PREFIX).delete()
        response = client.get(reverse("healthz"))
        body = response.json()
        assert body["checks"]["worker"]["ok"] is True and body["checks"]["worker"]["fresh_workers"] == 1
        # Beat never ran: said on its own line, and the web process stays healthy.
        assert body["checks"]["beat"]["ok"] is False and body["beat_ok"] is False
        assert response.status_code == 200 and body["ok"] is True
    finally:
        worker.kill()
    settings.HEARTBEAT_STALE_SECONDS = 2
    time.sleep(3)
    Heartbeat.objects.exclude(pk=row.pk).filter(name__startswith=Heartbeat.WORKER_PREFIX).delete()
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["checks"]["worker"]["ok"] is False
