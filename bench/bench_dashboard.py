"""Benchmark: the support dashboard with 10,000 connections and a year of run history.

Builds a throwaway database (SQLite by default, or PostgreSQL with --database-url), fills it in bulk
(tests/dashboard/data.py: weekly validations and syncs for a year, checks, per-object sync figures,
wizard steps, audit events, status history), then requests every dashboard page, the status API,
/metrics and /healthz through Django's full stack (middleware, sessions, templates) as a support user.
Prints, per page: SQL queries, p50, p95 and max in milliseconds; the target is p95 < 150 ms and the same
query count on every page whatever the data size.

    .venv/bin/python bench/bench_dashboard.py
    .venv/bin/python bench/bench_dashboard.py --database-url postgres://postgres@127.0.0.1:5432/intacct_bench
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def prepare_database(url: str | None, workdir: Path) -> str:
    if not url:
        return f"sqlite:///{workdir / 'bench-dashboard.sqlite3'}"
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="a PostgreSQL URL; the database is dropped and re-created")
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--every-days", type=int, default=7, help="validation and sync interval in the history")
    parser.add_argument("--requests", type=int, default=40, help="requests per page")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    os.environ["DATABASE_URL"] = prepare_database(args.database_url, workdir)
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection as db_connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from connector import services
    from connector.models import (
        ApiToken,
        AuditEvent,
        Connection,
        SyncObjectRun,
        SyncRun,
        ValidationCheck,
        ValidationRun,
    )
    from tests.dashboard.data import populate

    call_command("migrate", verbosity=0)
    started = time.monotonic()
    populate(connections=args.connections, days=args.days, validation_every_days=args.every_days,
             sync_every_days=args.every_days)
    if db_connection.vendor == "postgresql":
        with db_connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(f"database: {db_connection.vendor} ({db_connection.settings_dict['NAME']})")
    print(f"filled in {time.monotonic() - started:.0f} s: {Connection.objects.count():,} connections, "
          f"{ValidationRun.objects.count():,} validation runs, {ValidationCheck.objects.count():,} checks, "
          f"{SyncRun.objects.count():,} sync runs, {SyncObjectRun.objects.count():,} per-object rows, "
          f"{AuditEvent.objects.count():,} audit events")

    from connector import health
    from connector.models import Heartbeat

    # A worker and beat that just reported in, so /healthz measures its healthy path.
    health.heartbeat_record(name="worker:celery@bench")
    health.heartbeat_record(name=Heartbeat.BEAT)
    user = services.user_create(username="bench-support", email="support@bench.test", password="bench-pw-1")
    services.support_staff_grant(user=user)
    client = Client()
    client.force_login(user)
    failing = Connection.objects.filter(status="needs_attention").order_by("id").first()
    _, key = ApiToken.issue(organisation=failing.organisation, name="bench")
    middle_page = max(1, args.connections // 50 // 2)
    pages = [
        ("list", reverse("dashboard"), {}),
        ("list sorted by errors", reverse("dashboard") + "?sort=-errors", {}),
        ("list sorted by last sync", reverse("dashboard") + "?sort=synced", {}),
        ("list status=broken", reverse("dashboard") + "?status=broken", {}),
        ("list failing check + stale", reverse("dashboard") + "?check=read_apbill&stale=on", {}),
        ("list search", reverse("dashboard") + "?q=company+0042", {}),
        (f"list page {middle_page}", reverse("dashboard") + f"?page={middle_page}&sort=-records", {}),
        ("connection detail", reverse("dashboard_connection", args=[failing.id]), {}),
        ("status API", reverse("api_connection_status", args=[failing.organisation.slug]),
         {"HTTP_AUTHORIZATION": f"Bearer {key}"}),
        ("metrics", reverse("metrics"), {}),
        ("healthz", reverse("healthz"), {}),
    ]
    print(f"\n{'page':32} {'queries':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    worst = 0.0
    for label, url, headers in pages:
        for _ in range(3):  # warm caches and connections
            client.get(url, **headers)
        timings = []
        for _ in range(args.requests):
            with CaptureQueriesContext(db_connection) as queries:
                begun = time.perf_counter()
                response = client.get(url, **headers)
                timings.append((time.perf_counter() - begun) * 1000)
            assert response.status_code in (200, 503), (url, response.status_code)
        timings.sort()
        p95 = timings[max(0, int(round(0.95 * len(timings))) - 1)]
        worst = max(worst, p95)
        print(f"{label:32} {len(queries):>7} {statistics.median(timings):>8.1f} {p95:>8.1f} {timings[-1]:>8.1f}")
    print(f"\nworst p95: {worst:.1f} ms (target < 150 ms): {'OK' if worst < 150 else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
