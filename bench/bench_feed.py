"""Benchmark: the change feed with 1,000,000 APBILL in one connection (issue 16).

Prints, on PostgreSQL (database ``intacct_bench_feed`` of its own, dropped and created again on the server
given, default postgres://postgres@127.0.0.1:5432; never another database):

- the sync write path's throughput without and with the sequence: a sample of the APBILL (the simulator's own
  generated records, the fields the sync asks for; 200,000 by default) stored in 2,000-record pages by the
  function the sync uses (``connector.sync.upsert_page`` in a transaction). "Without" is the table as it was
  before the feed: no ``change_seq`` index and no counter; "with" reserves the page's numbers from the
  connection's counter row, with one feed index and with both. Each starts from an empty table; best of two
  rounds taken in turns (the machine is shared). Target: the sequence costs < 10 %.
- loading all 1,000,000 with the sequence, then:
- reading the whole feed through GET /api/v1/organisations/<slug>/changes/ (Django's test client in this
  process: token check, view, JSON) in pages of 1,000: per-page p50 / p95 / max (target p95 < 50 ms) and the
  SQL queries per page (target: the same on every page).
- the same feed read after 50,000 of the records changed again (the feed's tail, behind most of the table).

Run: `.venv/bin/python bench/bench_feed.py [--records N] [--database-url postgres://...]`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POSTGRES_SERVER = "postgres://postgres@127.0.0.1:5432"
BENCH_DATABASE = "intacct_bench_feed"
PAGE = 2000


def recreate_database(server_url: str) -> str:
    import psycopg
    from psycopg import sql

    parts = urllib.parse.urlsplit(server_url)
    maintenance = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DATABASE)))
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + BENCH_DATABASE, "", ""))


def pages_of_bills(count: int):
    """The simulator's APBILL records 1..count, as the sync receives them, in pages of 2,000 rows ready to
    upsert: (recordno, key, whenmodified ISO, JSON text)."""
    from connector import objects
    from connector.intacct.timestamps import iso_from_intacct
    from simulator.demo import build_company
    from simulator.records import OBJECTS as SIM_OBJECTS
    from simulator.records import gen_for

    company = build_company("BFEED", sizes={"APBILL": count}).company
    obj = SIM_OBJECTS["APBILL"]
    gen = gen_for(company, obj)
    fields = objects.OBJECTS_BY_NAME["APBILL"].fields
    for start in range(1, count + 1, PAGE):
        rows = []
        for i in range(start, min(count, start + PAGE - 1) + 1):
            generated = obj.generate(gen, i)
            record = {name: generated.get(name, "") for name in fields}
            rows.append((int(record["RECORDNO"]), str(record["RECORDNO"]),
                         iso_from_intacct(record.get("WHENMODIFIED")), json.dumps(record, separators=(",", ":"))))
        yield rows


def store_all(connection_id: int, pages: list[list[tuple]], *, with_sequence: bool) -> float:
    """The sync's write of every page (one transaction a page); returns seconds."""
    from django.db import transaction
    from django.utils import timezone

    from connector import feed, sync

    started = time.perf_counter()
    for rows in pages:
        with transaction.atomic():
            first = feed.reserve(connection_id, len(rows)) if with_sequence else 0
            sync.upsert_page(connection_id, "APBILL", rows, timezone.now(), first_seq=first)
    return time.perf_counter() - started


def read_feed(slug: str, token: str) -> tuple[list[float], list[int], int]:
    from django.db import connection as db_connection
    from django.db import reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    url = f"/api/v1/organisations/{slug}/changes/"
    cursor, times, queries, changes = None, [], [], 0
    while True:
        params = {"object": "APBILL", "limit": 1000}
        if cursor:
            params["after"] = cursor
        reset_queries()  # the query log is bounded: counting on a full one would count nothing
        with CaptureQueriesContext(db_connection) as captured:
            started = time.perf_counter()
            response = client.get(url, params, **headers)
            times.append((time.perf_counter() - started) * 1000)  # the server's side; the consumer parses after
        body = json.loads(response.content)
        assert response.status_code == 200, response.content[:200]
        queries.append(len(captured.captured_queries))
        changes += len(body["changes"])
        cursor = body["next_cursor"]
        if not body["has_more"]:
            return times, queries, changes


def describe(label: str, times: list[float], queries: list[int], changes: int) -> None:
    ordered = sorted(times)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    print(f"{label}: {changes:,} changes in {len(times)} pages; per page p50 {statistics.median(times):.1f} ms, "
          f"p95 {p95:.1f} ms, max {ordered[-1]:.1f} ms (target p95 < 50 ms); SQL queries per page "
          f"{min(queries)}-{max(queries)}")


def read_again(server_url: str) -> None:
    parts = urllib.parse.urlsplit(server_url)
    os.environ["DATABASE_URL"] = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + BENCH_DATABASE, "", ""))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from connector.models import ApiToken, Organisation

    _, token = ApiToken.issue(organisation=Organisation.objects.get(slug="bench-feed"), name="bench again")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"== feed reads again, {time.strftime('%Y-%m-%d %H:%M')}, load average {load}")
    describe("whole feed, object=APBILL, limit=1000", *read_feed("bench-feed", token))
    for _ in range(2):
        times, queries, changes = read_feed("bench-feed", token)
        describe("whole feed again", times, queries, changes)


def main() -> None:  # noqa: PLR0915 - one benchmark, step by step
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--write-sample", type=int, default=200_000, help="records per write-cost measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database-url", default=POSTGRES_SERVER,
                        help="the server to use (a database of its own is made on it)")
    parser.add_argument("--read-only", action="store_true",
                        help="only the feed reads, on the database a previous run loaded")
    args = parser.parse_args()
    if args.read_only:
        read_again(args.database_url)
        return
    os.environ["DATABASE_URL"] = recreate_database(args.database_url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection as db_connection

    call_command("migrate", verbosity=0)
    from django.test import Client

    from connector import services
    from connector.models import ApiToken, Record

    organisation = services.organisation_create(name="Bench feed", slug="bench-feed")
    connection = services.connection_get(organisation=organisation)
    _, token = ApiToken.issue(organisation=organisation, name="bench")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"== PostgreSQL {db_connection.pg_version // 10000} ({BENCH_DATABASE}) == "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load average {load}")
    started = time.perf_counter()
    pages = list(pages_of_bills(args.records))
    print(f"generated {args.records:,} APBILL in {time.perf_counter() - started:.0f}s (not timed below)")

    table = Record._meta.db_table
    feed_indexes = {"record_feed": "(connection_id, change_seq)",
                    "record_feed_object": "(connection_id, object_name, change_seq)"}  # the latter: not shipped

    def reset(indexes: list[str]) -> None:
        with db_connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {table}")  # noqa: S608 - our own table name
            for name, columns in feed_indexes.items():
                cursor.execute(f"DROP INDEX IF EXISTS {name}")
                if name in indexes:
                    cursor.execute(f"CREATE INDEX {name} ON {table} {columns}")  # noqa: S608
            cursor.execute("VACUUM ANALYZE")

    # The write path's cost, variant by variant on the same sample, twice in turns (the machine is shared).
    sample = pages[: max(1, args.write_sample // PAGE)]
    sampled = sum(len(rows) for rows in sample)
    variants = {"without the sequence (no feed index, no counter)": ([], False),
                "with the sequence and its index (connection, seq), as shipped": (["record_feed"], True),
                "with also an index (connection, object, seq), not shipped": (list(feed_indexes), True)}
    timings: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (indexes, with_sequence) in variants.items():
            reset(indexes)
            timings[name].append(store_all(connection.pk, sample, with_sequence=with_sequence))
    base = min(timings[next(iter(variants))])
    print(f"write path, {sampled:,} APBILL in pages of {PAGE:,}, best of {args.rounds}:")
    for name, seconds in timings.items():
        best = min(seconds)
        print(f"  {name}: {best:.1f}s = {sampled / best:,.0f} records/s ({(best - base) / base * 100:+.1f} %)")

    reset(["record_feed"])
    seconds = store_all(connection.pk, pages, with_sequence=True)
    print(f"loaded {args.records:,} APBILL with the sequence in {seconds:.0f}s ({args.records / seconds:,.0f}/s)")
    with db_connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")  # noqa: S608

    describe("whole feed, object=APBILL, limit=1000", *read_feed("bench-feed", token))
    # 5 % of the records change again (every 20th): they move to the feed's tail, read again once each.
    again = [[row for row in rows if row[0] % 20 == 0] for rows in pages]
    store_all(connection.pk, [rows for rows in again if rows], with_sequence=True)
    describe("whole feed after 5 % changed again", *read_feed("bench-feed", token))
    # A small object behind a million bills: a feed filtered on it walks the connection's index past them.
    from django.db import transaction
    from django.utils import timezone

    from connector import feed, sync

    departments = [(n, f"D{n}", "2026-01-01 00:00:00", json.dumps({"RECORDNO": str(n), "DEPARTMENTID": f"D{n}"}))
                   for n in range(1, 101)]
    with transaction.atomic():
        sync.upsert_page(connection.pk, "DEPARTMENT", departments, timezone.now(),
                         first_seq=feed.reserve(connection.pk, len(departments)))
    times = []
    for _ in range(20):
        started = time.perf_counter()
        body = Client(HTTP_HOST="127.0.0.1").get("/api/v1/organisations/bench-feed/changes/",
                                                 {"object": "DEPARTMENT"}, HTTP_AUTHORIZATION=f"Bearer {token}").json()
        times.append((time.perf_counter() - started) * 1000)
        assert len(body["changes"]) == 100
    print(f"object=DEPARTMENT (100 records after 1,050,000 bill changes), from the beginning: median "
          f"{statistics.median(times):.0f} ms, max {max(times):.0f} ms (the cost of having no per-object index)")


if __name__ == "__main__":
    main()
