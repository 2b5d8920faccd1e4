"""A run's task that reaches a worker while the database is away is tried again, never dropped.

A failed task's message is acknowledged: before the fix, a sync delivered during a database outage failed
before it could claim its run, and the run stayed "queued" for ever (seen in the PostgreSQL + Redis soak).
"""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.db import connection as db_connection

from connector import tasks
from connector.models import SyncRun
from simulator.demo import build_company
from tests.conftest import _database_url, start_worker, wait_for
from tests.reliability.test_restarts import database_outage
from tests.sync.conftest import SMALL_SIZES, assert_mirror_exact, connect

pytestmark = [pytest.mark.worker, pytest.mark.timeout(300)]


def test_a_sync_delivered_during_a_database_outage_runs_once_the_database_is_back(
        transactional_db, live_server, intacct_endpoint, organisation):
    company = build_company("DBAWAY-CO", sizes=SMALL_SIZES).company
    connection = connect(organisation, "DBAWAY-CO")
    queue = f"dbaway-{uuid.uuid4().hex[:8]}"
    application_name = f"worker_{uuid.uuid4().hex[:8]}"
    database_url = _database_url(db_connection.settings_dict)
    if db_connection.vendor == "postgresql":
        database_url += f"?application_name={application_name}"
    worker = start_worker(queue=queue, name="dbaway", env_overrides={
        "DATABASE_URL": database_url, "INTACCT_ENDPOINT_URL": intacct_endpoint, "SITE_URL": live_server.url})
    try:
        run = SyncRun.objects.create(connection=connection, kind=SyncRun.Kind.FULL)
        seconds = 8 if db_connection.vendor == "postgresql" else 35  # SQLite: longer than the 30 s lock timeout
        outage = threading.Thread(target=lambda: database_outage(application_name, seconds).__enter__())
        outage.start()
        time.sleep(1)  # the database is away when the task arrives
        tasks.sync_run.apply_async(args=[run.pk], queue=queue)
        outage.join()
        ended = wait_for(lambda: SyncRun.objects.filter(pk=run.pk, status__in=(
            SyncRun.Status.SUCCEEDED, SyncRun.Status.FAILED)).first(), timeout=150, interval=0.5,
            message="the sync delivered during the outage to end once the database is back")
        if ended.status == SyncRun.Status.FAILED:
            # The task reached the database between two cut connections and claimed its run, then lost it
            # mid-run: the run ends saying so, and the next sync continues from what was saved.
            assert "database could not be reached" in ended.summary, ended.summary
            again = SyncRun.objects.create(connection=connection, kind=SyncRun.Kind.FULL)
            tasks.sync_run.apply_async(args=[again.pk], queue=queue)
            wait_for(lambda: SyncRun.objects.filter(pk=again.pk, status=SyncRun.Status.SUCCEEDED).exists(),
                     timeout=150, interval=0.5, message="the next sync once the database is back")
        else:
            assert "Retry in" in worker.log() or db_connection.vendor == "postgresql", worker.log()[-3000:]
    finally:
        worker.stop()
    assert not SyncRun.objects.filter(connection=connection, status__in=SyncRun.ACTIVE).exists()
    assert_mirror_exact(connection, company)
