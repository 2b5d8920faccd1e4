"""/healthz, /metrics, JSON logs with request ids (across a real worker), status by day, retention."""
from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from config.logging import JsonFormatter, RequestIdFilter, request_id_var
from connector import health, retention, services, summaries, tasks
from connector.models import (
    AuditEvent,
    Connection,
    ConnectionStatusChange,
    ConnectionSummary,
    Heartbeat,
    IntacctErrorTally,
    StatusDay,
    ValidationRun,
)
from tests.conftest import start_worker, wait_for

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? '
                    r'(-?[0-9.e+]+|\+Inf|NaN)$')


def parse_metrics(text: str) -> dict[str, list[tuple[str, float]]]:
    """A strict reader of the Prometheus text format: every line is a HELP, a TYPE or a sample."""
    samples: dict[str, list[tuple[str, float]]] = {}
    types = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("gauge", "counter", "histogram")
            types[name] = kind
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
        assert any(name == family or name.startswith(family + "_") for family in types), name
        samples.setdefault(name, []).append((labels, value))
    return samples


def fresh_heartbeats(*, worker_age: float = 1, beat_age: float = 1) -> None:
    now = timezone.now()
    health.heartbeat_record(name="worker:celery@test", at=now - timedelta(seconds=worker_age))
    health.heartbeat_record(name=Heartbeat.BEAT, at=now - timedelta(seconds=beat_age))


def test_healthz_is_200_when_database_broker_worker_and_beat_are_fine(client, db):
    fresh_heartbeats()
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert set(body["checks"]) == {"database", "broker", "worker", "beat"}
    assert body["checks"]["worker"]["fresh_workers"] == 1


def test_healthz_reports_a_stopped_worker_as_503(client, db, settings):
    fresh_heartbeats(worker_age=settings.HEARTBEAT_STALE_SECONDS + 30)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["worker"]["ok"] is False and checks["beat"]["ok"] is True
    assert checks["database"]["ok"] and checks["broker"]["ok"]


def test_healthz_without_any_heartbeat_is_503(client, db):
    body = client.get(reverse("healthz")).json()
    assert body["checks"]["worker"]["error"] == "never seen" and body["checks"]["worker"]["ok"] is False


def test_healthz_is_reachable_over_plain_http_in_production(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True
    fresh_heartbeats()
    assert client.get(reverse("healthz")).status_code == 200
    assert client.get(reverse("dashboard")).status_code == 301


def test_metrics_parse_and_count_connections_durations_and_errors(client, organisation, other_organisation):
    connection = organisation.connection
    run = ValidationRun.objects.create(connection=connection, status="failed", started_at=timezone.now())
    run.checks.create(position=1, key="company", label="Company ID found", status="failed", errorno="XL03000006")
    run.finished_at = run.started_at + timedelta(seconds=3)
    run.save(update_fields=["finished_at"])
    summaries.intacct_error_record(connection_id=connection.id, source="sync", code="XL03000006")
    samples = parse_metrics(client.get(reverse("metrics")).content.decode())
    statuses = dict(samples["intacct_connect_connections"])
    assert statuses['{status="not_started"}'] == 2
    errors = dict(samples["intacct_connect_intacct_errors_total"])
    assert errors['{code="XL03000006",source="validation"}'] == 1
    assert errors['{code="XL03000006",source="sync"}'] == 1
    buckets = dict(samples["intacct_connect_validation_duration_seconds_bucket"])
    assert buckets['{le="2.5",result="failed"}'] == 0 and buckets['{le="5",result="failed"}'] == 1
    assert buckets['{le="+Inf",result="failed"}'] == 1
    assert dict(samples["intacct_connect_validation_duration_seconds_sum"])['{result="failed"}'] == 3


def test_metrics_token_when_configured(client, db, settings):
    settings.METRICS_TOKEN = "m3trics-token-for-tests"
    assert client.get(reverse("metrics")).status_code == 401
    assert client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    assert client.get(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}").status_code == 200


def test_errors_in_24_hours_decay_when_refreshed(organisation):
    connection = organisation.connection
    summaries.intacct_error_record(connection_id=connection.id, source="sync", code="BL01001973",
                                    at=timezone.now() - timedelta(hours=30))
    summaries.intacct_error_record(connection_id=connection.id, source="sync", code="BL01001973")
    assert ConnectionSummary.objects.get(connection=connection).errors_24h == 2
    summaries.summaries_refresh()
    assert ConnectionSummary.objects.get(connection=connection).errors_24h == 1
    IntacctErrorTally.objects.all().delete()
    summaries.summaries_refresh()
    assert ConnectionSummary.objects.get(connection=connection).errors_24h == 0


def test_status_days_are_rebuilt_from_the_status_history(organisation, other_organisation):
    now = timezone.now()
    Connection.objects.update(created_at=now - timedelta(days=40))
    acme = organisation.connection
    Connection.objects.filter(id=acme.id).update(status="broken")
    ConnectionStatusChange.objects.create(connection=acme, from_status="not_started", to_status="connected",
                                          changed_at=now - timedelta(days=10))
    ConnectionStatusChange.objects.create(connection=acme, from_status="connected", to_status="broken",
                                          changed_at=now - timedelta(days=2))
    summaries.status_days_refresh(now=now)
    today = timezone.localdate(now)

    def on(days_ago: int) -> dict[str, int]:
        rows = StatusDay.objects.filter(day=today - timedelta(days=days_ago), count__gt=0)
        return {row.status: row.count for row in rows}

    assert on(20) == {"not_started": 2}
    assert on(5) == {"not_started": 1, "connected": 1}
    assert on(0) == {"not_started": 1, "broken": 1}
    assert StatusDay.objects.values("day").distinct().count() == summaries.CHART_DAYS


def test_retention_prunes_old_history_but_keeps_the_last_run(organisation, settings):
    connection = organisation.connection
    old = timezone.now() - timedelta(days=settings.RUN_HISTORY_RETENTION_DAYS + 1)
    kept_last = ValidationRun.objects.create(connection=connection, status="passed", created_at=old)
    ValidationRun.objects.create(connection=connection, status="passed", created_at=old)
    recent = ValidationRun.objects.create(connection=connection, status="passed")
    Connection.objects.filter(id=connection.id).update(last_validation=kept_last)
    services.audit_record(organisation=organisation, action="ancient")
    AuditEvent.objects.filter(action="ancient").update(
        created_at=timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS + 1))
    deleted = retention.history_prune()
    assert deleted["validation_runs"] == 1 and deleted["audit_events"] == 1
    assert set(ValidationRun.objects.values_list("id", flat=True)) == {kept_last.id, recent.id}
    assert not AuditEvent.objects.filter(action="ancient").exists()


def test_json_logs_carry_the_request_id_and_redact_secrets(client, db, settings):
    from connector.intacct.redaction import RedactingFilter, register_secret, unregister_secret

    secret = "Log-Secret-Value-5531"  # noqa: S105
    register_secret(secret)
    try:
        record = logging.LogRecord("connector.test", logging.INFO, __file__, 1, "password is %s", (secret,), None)
        token = request_id_var.set("req-0123456789")
        try:
            RequestIdFilter().filter(record)
        finally:
            request_id_var.reset(token)
        RedactingFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    finally:
        unregister_secret(secret)
    assert line["request_id"] == "req-0123456789" and line["level"] == "INFO"
    assert secret not in json.dumps(line) and "REDACTED" in line["message"]
    response = client.get(reverse("healthz"), HTTP_X_REQUEST_ID="abcdef0123456789")
    assert response["X-Request-ID"] == "abcdef0123456789"
    assert len(client.get(reverse("healthz"), HTTP_X_REQUEST_ID="bad id!")["X-Request-ID"]) == 32


@pytest.mark.worker
def test_request_id_follows_the_task_into_the_worker_log(celery_worker):
    request_id = f"req-{uuid.uuid4().hex[:16]}"
    token = request_id_var.set(request_id)
    try:
        tasks.history_prune_task.delay()
    finally:
        request_id_var.reset(token)
    line = wait_for(lambda: next((line for line in celery_worker.log().splitlines()
                                  if "history pruned" in line and request_id in line), None),
                    message="the worker's log line with the web request's id")
    assert f"[{request_id}]" in line


@pytest.mark.worker
def test_healthz_follows_a_real_worker_then_reports_it_stopped(celery_worker, client, settings, celery_queue):
    from django.db import connection as db_connection

    from tests.conftest import _database_url

    queue = f"hb-{uuid.uuid4().hex[:8]}"
    worker = start_worker(queue=queue, name="heartbeat", concurrency=1,
                          env_overrides={"DATABASE_URL": _database_url(db_connection.settings_dict)})
    try:
        tasks.heartbeat.apply_async(queue=queue)  # as beat would send it (records beat's tick here)
        wait_for(lambda: Heartbeat.objects.filter(name__startswith=f"worker:heartbeat-{queue}@").exists(),
                 message="the worker's heartbeat row")
        assert Heartbeat.objects.filter(name=Heartbeat.BEAT).exists()
        Heartbeat.objects.exclude(name__startswith=f"worker:heartbeat-{queue}@").exclude(name="beat").delete()
        assert client.get(reverse("healthz")).status_code == 200
    finally:
        worker.kill()
    settings.HEARTBEAT_STALE_SECONDS = 1
    health.heartbeat_record(name=Heartbeat.BEAT)
    time.sleep(1.5)
    health.heartbeat_record(name=Heartbeat.BEAT)  # beat still ticks; nobody runs the heartbeat any more
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["checks"]["worker"]["ok"] is False
    assert response.json()["checks"]["beat"]["ok"] is True
