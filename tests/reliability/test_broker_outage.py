"""Redis (broker and rate-limit counters) down: every page still answers, and nothing asked for is lost.

Login lets the admin in (the limiter fails open, logged and counted), Connect saves the credentials and says it
cannot check them yet, Re-validate and Sync now say the same; the runs stay queued, marked unsent, and beat's
sweep (connector.requeue) sends them within a minute of Redis coming back, with no manual step.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test import Client
from django.utils import timezone

from connector import monitoring, requeue, services
from connector.models import Connection, MetricCounter, SyncRun, ValidationRun
from simulator.demo import build_company
from tests.conftest import ARTIFACTS, PASSWORD, ROOT, _database_url, start_worker, wait_for
from tests.reliability.test_restarts import celery_on
from tests.sync.conftest import SMALL_SIZES, assert_mirror_exact, connect
from tests.wizard.conftest import simulated_company

pytestmark = [pytest.mark.worker, pytest.mark.timeout(300)]

STEP_6 = "/organisations/acme/setup/step-6/"


@pytest.fixture
def counters_on_redis(settings, private_redis):
    """The rate-limit counters in the private Redis, as in production (they share the broker's server)."""
    settings.RATE_LIMIT_ENABLED = True
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": private_redis.url, "KEY_PREFIX": "outage-test"}}
    return private_redis


def _env(live_server, intacct_endpoint, redis_url: str, queue: str, **extra) -> dict:
    return {"DATABASE_URL": _database_url(db_connection.settings_dict), "INTACCT_ENDPOINT_URL": intacct_endpoint,
            "SITE_URL": live_server.url, "CELERY_BROKER_URL": redis_url, "CELERY_RESULT_BACKEND": redis_url,
            "CELERY_QUEUE": queue, **extra}


def start_beat(env: dict, schedule_dir) -> subprocess.Popen:
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / f"beat-{env['CELERY_QUEUE']}.log", "w")  # noqa: SIM115 - lives as long as beat
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
                             "--schedule", str(schedule_dir / "celerybeat-schedule")],
                            cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _counted(name: str, label: str) -> float:
    row = MetricCounter.objects.filter(name=name, labels__contains=label).first()
    return row.value if row else 0


def _finished_validations(connection) -> bool:
    return not ValidationRun.objects.filter(connection=connection, status__in=("queued", "running")).exists()


def test_pages_answer_while_redis_is_down_and_the_sweep_sends_the_runs_when_it_is_back(
        transactional_db, live_server, intacct_endpoint, organisation, counters_on_redis, tmp_path):
    simulated_company("OUTAGE-CO", password="Sim-Passw0rd!")  # noqa: S106 - simulator only
    queue = f"outage-{uuid.uuid4().hex[:8]}"
    redis_server = counters_on_redis
    with celery_on(redis_server.url, queue):
        redis_server.kill()
        client = Client()
        # Login works: the limiter cannot read its counters, lets the request through and says so in /metrics.
        response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD},
                               REMOTE_ADDR="203.0.113.7")
        assert response.status_code == 302, response.status_code
        assert "_auth_user_id" in client.session
        assert _counted("intacct_connect_rate_limit_unavailable_total", 'action="login"') >= 1
        # Connect saves the credentials and says it cannot check them yet.
        started = time.monotonic()
        response = client.post(STEP_6, {"company_id": "OUTAGE-CO", "user_id": "ws_connect",
                                        "password": "Sim-Passw0rd!", "entity_id": ""}, follow=True)
        assert time.monotonic() - started < 30
        assert response.status_code == 200
        html = response.content.decode()
        assert "We can&#x27;t check your credentials right now" in html, html[-3000:]
        assert "credentials are saved" in html and "as soon as our queue is back" in html
        connection = Connection.objects.get(organisation=organisation)
        assert connection.has_credentials and connection.company_id == "OUTAGE-CO"
        first = ValidationRun.objects.get(connection=connection)
        assert first.status == ValidationRun.Status.QUEUED and first.unsent_since is not None
        assert _counted("intacct_connect_runs_unsent_total", 'kind="validation"') >= 1
        # Re-validate says the same and keeps its run too.
        response = client.post("/organisations/acme/connection/revalidate/", follow=True)
        assert response.status_code == 200
        assert "We can&#x27;t check the connection right now" in response.content.decode()
        assert ValidationRun.objects.filter(connection=connection, unsent_since__isnull=False).count() == 2
        # Nothing is lost while Redis is away: monitoring does not close the waiting runs as abandoned either.
        assert not monitoring.abandoned_runs(now=timezone.now() + timedelta(days=1)).exists()
        assert ValidationRun.objects.filter(connection=connection, status="queued").count() == 2

        # Redis comes back; a worker and beat run as usual. Nobody presses anything.
        redis_server.start()
        back = time.monotonic()
        env = _env(live_server, intacct_endpoint, redis_server.url, queue, RESEND_UNSENT_INTERVAL_SECONDS="5")
        worker = start_worker(queue=queue, env_overrides=env, name="outage")
        beat = start_beat(env, tmp_path)
        try:
            wait_for(lambda: _finished_validations(connection), timeout=60, interval=0.5,
                     message="beat's sweep to send the waiting validations and a worker to run them")
            assert time.monotonic() - back < 60
        finally:
            beat.terminate()
            beat.wait(timeout=20)
            worker.stop()
    runs = ValidationRun.objects.filter(connection=connection)
    assert set(runs.values_list("status", flat=True)) == {ValidationRun.Status.PASSED}
    assert not runs.filter(unsent_since__isnull=False).exists()
    connection.refresh_from_db()
    assert connection.status == Connection.Status.CONNECTED


def test_a_sync_asked_for_while_redis_is_down_runs_once_it_is_back(transactional_db, live_server, intacct_endpoint,
                                                                   organisation, private_redis):
    company = build_company("UNSENT-SYNC-CO", sizes=SMALL_SIZES).company
    connection = connect(organisation, "UNSENT-SYNC-CO")
    queue = f"outage-{uuid.uuid4().hex[:8]}"
    with celery_on(private_redis.url, queue):
        private_redis.kill()
        run, queued = services.sync_request(connection=connection)
        assert queued
        run.refresh_from_db()
        # Kept queued for the sweep (not failed, not lost), and the next request joins it instead of piling up.
        assert run.status == SyncRun.Status.QUEUED and run.unsent_since is not None
        assert requeue.is_unsent(run)
        assert services.sync_request(connection=connection) == (run, False)
        # While the broker is still down the sweep leaves it as it is.
        assert requeue.resend_unsent_runs(min_age_seconds=0) == {"sent": 0, "unsent": 1}
        private_redis.start()
        env = _env(live_server, intacct_endpoint, private_redis.url, queue)
        worker = start_worker(queue=queue, env_overrides=env, name="unsentsync")
        try:
            assert requeue.resend_unsent_runs(min_age_seconds=0) == {"sent": 1, "unsent": 0}
            wait_for(lambda: SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.SUCCEEDED).exists(),
                     timeout=120, message="the re-sent sync")
        finally:
            worker.stop()
    run.refresh_from_db()
    assert run.unsent_since is None
    assert_mirror_exact(connection, company)
