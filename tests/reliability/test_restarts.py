"""The broker and the database going away during a sync, and a worker killed during a validation.

The broker is a redis-server of this test's own (the machine's shared Redis is never touched); the
database outage is the worker's connections being terminated (PostgreSQL) or the database file held
under an exclusive lock longer than the worker's lock timeout (SQLite). In every case the run ends
(succeeded, or failed/partial with words saying what happened), nothing is left "running", and the
next sync is exact.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
import redis
from django.db import connection as db_connection
from kombu import pools as kombu_pools

from config.celery import app
from connector import services, tasks, validation
from connector.models import Record, SyncRun, ValidationRun
from simulator import records as sim_records
from simulator.demo import build_company
from simulator.faults import clear_faults, set_fault
from tests.conftest import ARTIFACTS, _database_url, start_worker, wait_for
from tests.sync.conftest import SMALL_SIZES, assert_mirror_exact, connect

pytestmark = [pytest.mark.worker, pytest.mark.timeout(420)]

BIG = {**SMALL_SIZES, "APBILL": 12_000}
FINISHED = (SyncRun.Status.SUCCEEDED, SyncRun.Status.FAILED, SyncRun.Status.PARTIAL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server subprocess of this test's own, on a free port, without persistence."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.binary, self.port = binary, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        log = open(ARTIFACTS / f"redis-{self.port}.log", "a")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        client = redis.Redis(port=self.port)
        wait_for(lambda: self._pings(client), timeout=15, message="the private redis-server")

    @staticmethod
    def _pings(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.exceptions.ConnectionError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def _forget_broker_connections() -> None:
    if app._pool is not None:  # noqa: SLF001 - Celery keeps its pools here
        app._pool.force_close_all()  # noqa: SLF001
    app._pool = None  # noqa: SLF001
    app.amqp._producer_pool = None  # noqa: SLF001
    app._backend_cache = None  # noqa: SLF001
    app._local = threading.local()  # noqa: SLF001
    # kombu also caches producer pools per connection in a process-wide registry; a pool closed above
    # would otherwise be handed out again once the original broker URL is back ("Acquire on closed pool").
    kombu_pools.reset()


@contextmanager
def celery_on(url: str, queue: str):
    """Point this test process's Celery app (tasks sent, results read) at another broker and queue for the block."""
    values = {"broker_url": url, "result_backend": url, "broker_transport_options": {}, "task_default_queue": queue}
    # The app reads Django's CELERY_-prefixed names first (celery 5.6 looks "broker_url" up as CELERY_BROKER_URL).
    values.update({f"CELERY_{name.upper()}": value for name, value in values.items()})
    saved = {name: app.conf.get(name) for name in values}
    # Celery reads CELERY_BROKER_URL / CELERY_RESULT_BACKEND from the environment before its configuration.
    environ = {name: os.environ.get(name) for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
    app.conf.update(values)
    for name, value in environ.items():
        if value is not None:
            os.environ[name] = url
    _forget_broker_connections()
    try:
        yield
    finally:
        app.conf.update(saved)
        for name, value in environ.items():
            if value is not None:
                os.environ[name] = value
        _forget_broker_connections()


def _worker_env(live_server, intacct_endpoint, **extra) -> dict:
    return {"DATABASE_URL": _database_url(db_connection.settings_dict), "INTACCT_ENDPOINT_URL": intacct_endpoint,
            "SITE_URL": live_server.url, **extra}


def _answers_ping(queue: str) -> bool:
    try:
        app.send_task("connector.ping", queue=queue).get(timeout=30)
    except Exception:  # noqa: BLE001 - any failure means no consumer is there
        return False
    return True


def _finished(run: SyncRun) -> SyncRun | None:
    run.refresh_from_db()
    return run if run.status in FINISHED else None


def _next_sync_is_exact(connection, company, kind=SyncRun.Kind.RECONCILE) -> None:
    clear_faults(company)
    run, queued = services.sync_request(connection=connection, kind=kind)
    assert queued, f"a sync was still active: {run}"
    wait_for(lambda: _finished(run), timeout=180, message="the next sync")
    assert run.status == SyncRun.Status.SUCCEEDED, run.summary
    assert not SyncRun.objects.filter(connection=connection, status__in=SyncRun.ACTIVE).exists()
    assert_mirror_exact(connection, company)


def test_broker_restarted_during_a_sync(transactional_db, live_server, intacct_endpoint, organisation,
                                        private_redis):
    company = build_company("BROKER-CO", sizes=BIG).company
    connection = connect(organisation, "BROKER-CO")
    queue = f"restart-{uuid.uuid4().hex[:8]}"
    env = _worker_env(live_server, intacct_endpoint, CELERY_BROKER_URL=private_redis.url,
                      CELERY_RESULT_BACKEND=private_redis.url)
    with celery_on(private_redis.url, queue):
        worker = start_worker(queue=queue, env_overrides=env, name="broker")
        try:
            set_fault(company, "slow", rate=1.0, delay_ms=250)
            run, _ = services.sync_request(connection=connection)
            wait_for(lambda: Record.objects.filter(connection=connection, object_name="APBILL").count() >= 2000,
                     timeout=120, message="part of APBILL synced")
            # The broker dies mid-sync (its queues with it) and comes back empty a few seconds later.
            private_redis.kill()
            time.sleep(3)
            private_redis.start()
            clear_faults(company)
            wait_for(lambda: _finished(run), timeout=180, message="the sync that saw the broker restart")
            # The broker is not needed to run a sync that already started: it completes.
            assert run.status == SyncRun.Status.SUCCEEDED, run.summary
            # The same worker process reconnected and goes on (celery 5.7.0 exited here: "Unrecoverable error:
            # 'NoneType' object has no attribute 'hostname'", hence the cap in pyproject.toml).
            assert _answers_ping(queue), worker.log()[-3000:]
            assert worker.proc.poll() is None, worker.log()[-3000:]
            assert "Unrecoverable error" not in worker.log(), worker.log()[-3000:]
            # The next sync goes through the restarted broker and is exact.
            sim_records.modify_record(company, "APBILL", 17, {"STATE": "Paid"})
            sim_records.delete_record(company, "APBILL", 18)
            _next_sync_is_exact(connection, company)
        finally:
            worker.stop()


@contextmanager
def database_outage(application_name: str, seconds: float):
    """Take the database away from the worker (only the worker) for a while."""
    if db_connection.vendor == "postgresql":
        deadline = time.monotonic() + seconds
        killed = 0
        with db_connection.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND application_name = %s "
                               "AND pid <> pg_backend_pid()", [application_name])
                killed += cursor.fetchone()[0]
                time.sleep(0.05)
        yield killed
    else:
        # Longer than the worker's SQLite lock timeout (30 s): its writes fail instead of waiting.
        lock = sqlite3.connect(db_connection.settings_dict["NAME"], timeout=60, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        lock.execute("ROLLBACK")
        lock.close()
        yield 1


def test_database_outage_during_a_sync(transactional_db, live_server, intacct_endpoint, organisation):
    company = build_company("DBDOWN-CO", sizes=BIG).company
    connection = connect(organisation, "DBDOWN-CO")
    queue = f"restart-{uuid.uuid4().hex[:8]}"
    application_name = f"worker_{uuid.uuid4().hex[:8]}"
    extra = {}
    if db_connection.vendor == "postgresql":
        extra["DATABASE_URL"] = _database_url(db_connection.settings_dict) + f"?application_name={application_name}"
    env = {**_worker_env(live_server, intacct_endpoint), **extra}
    worker = start_worker(queue=queue, env_overrides=env, name="dbdown")
    try:
        set_fault(company, "slow", rate=1.0, delay_ms=150)
        run = SyncRun.objects.create(connection=connection)
        tasks.sync_run.apply_async(args=[run.pk], queue=queue)
        wait_for(lambda: Record.objects.filter(connection=connection, object_name="APBILL").count() >= 2000,
                 timeout=120, message="part of APBILL synced")
        outage = 8 if db_connection.vendor == "postgresql" else 35
        with database_outage(application_name, outage) as killed:
            assert killed >= 1
        clear_faults(company)
        # The run ends on its own (no later sync needed to take it over): done, or failed with plain words.
        wait_for(lambda: _finished(run), timeout=120, message="the sync that lost its database to end")
        if run.status != SyncRun.Status.SUCCEEDED:
            assert "database" in run.summary.lower(), run.summary
        assert worker.proc.poll() is None, worker.log()[-3000:]
        # No half-written page: every stored bill is whole, and the next sync (through the same worker) is exact.
        assert not Record.objects.filter(connection=connection, object_name="APBILL", data={}).exists()
        run2 = SyncRun.objects.create(connection=connection, kind=SyncRun.Kind.RECONCILE)
        tasks.sync_run.apply_async(args=[run2.pk], queue=queue)
        wait_for(lambda: _finished(run2), timeout=180, message="the next sync")
        assert run2.status == SyncRun.Status.SUCCEEDED, run2.summary
        assert not SyncRun.objects.filter(connection=connection, status__in=SyncRun.ACTIVE).exists()
        assert_mirror_exact(connection, company)
    finally:
        worker.stop()


def test_worker_killed_during_a_validation_does_not_stop_monitoring(transactional_db, live_server,
                                                                   intacct_endpoint, organisation, settings):
    company = build_company("VALKILL-CO", sizes=SMALL_SIZES).company
    connection = connect(organisation, "VALKILL-CO")
    queue = f"restart-{uuid.uuid4().hex[:8]}"
    worker = start_worker(queue=queue, env_overrides=_worker_env(live_server, intacct_endpoint), name="valkill")
    try:
        set_fault(company, "slow", rate=1.0, delay_ms=1500)
        run = ValidationRun.objects.create(connection=connection)
        tasks.connection_validate.apply_async(args=[run.pk], queue=queue)
        wait_for(lambda: ValidationRun.objects.filter(pk=run.pk, status="running").exists(), timeout=60,
                 message="the validation to start")
    finally:
        worker.kill()
    clear_faults(company)
    run.refresh_from_db()
    assert run.status == ValidationRun.Status.RUNNING  # what a SIGKILL leaves behind
    # While it could still be alive it blocks a second one; once stale, monitoring closes it and validates again.
    settings.VALIDATION_STALE_SECONDS = 3600
    assert validation.connection_validate_later(connection_id=connection.pk, trigger="scheduled") is None
    settings.VALIDATION_STALE_SECONDS = 2
    time.sleep(2.5)
    fresh = validation.connection_validate_later(connection_id=connection.pk, trigger="manual")
    assert fresh is not None and fresh.status == ValidationRun.Status.PASSED, fresh and fresh.summary
    run.refresh_from_db()
    assert run.status == ValidationRun.Status.INCONCLUSIVE and "stopped" in run.summary
    assert not ValidationRun.objects.filter(connection=connection, status__in=("queued", "running")).exists()
