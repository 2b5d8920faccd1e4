"""/metrics: company IDs masked as on every page, no worker host name, and a token required in production."""
from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from connector import health, metrics
from connector.masking import mask
from connector.models import CompanySlot, Heartbeat


def test_metrics_mask_company_ids_and_hide_worker_host_names(db):
    now = timezone.now()
    for slot in (0, 1):
        CompanySlot.objects.create(company_key="ACMECORP-PROD", slot=slot, holder=f"sync-{slot}",
                                   lease_until=now + timedelta(minutes=1))
    health.heartbeat_record(name=f"{Heartbeat.WORKER_PREFIX}celery@db-host-17.internal.acme")
    health.heartbeat_record(name=f"{Heartbeat.WORKER_PREFIX}celery@web-host-2.internal.acme")
    health.heartbeat_record(name=Heartbeat.BEAT)
    body = Client().get("/metrics").content.decode()
    assert "ACMECORP" not in body
    assert f'intacct_connect_requests_in_flight{{company="{mask("ACMECORP-PROD")}"}} 2' in body
    assert "host" not in body and "internal.acme" not in body and "celery@" not in body
    # Each worker is still its own series (a stable pseudonym), and beat is named.
    # (A real worker of the test session may beat into the same database: only ours are counted.)
    ours = {metrics.heartbeat_pseudonym(f"{Heartbeat.WORKER_PREFIX}celery@{host}.internal.acme")
            for host in ("db-host-17", "web-host-2")} | {"beat"}
    ages = [line for line in body.splitlines() if line.startswith("intacct_connect_heartbeat_age_seconds{")
            and line.split('name="')[1].split('"')[0] in ours]
    assert len(ages) == 3 and len({line.split("}")[0] for line in ages}) == 3
    assert any('name="beat"' in line for line in ages)
    again = Client().get("/metrics").content.decode()
    assert [line.split("}")[0] for line in again.splitlines() if "heartbeat_age_seconds{" in line
            and line.split('name="')[1].split('"')[0] in ours] == [line.split("}")[0] for line in ages]


def test_healthz_names_no_worker_host(db):
    health.heartbeat_record(name=f"{Heartbeat.WORKER_PREFIX}celery@db-host-17.internal.acme")
    assert "db-host-17" not in Client().get("/healthz").content.decode()
