"""Benchmark: CPU seconds per small sync (our worker side) and per 2,000-row page (the simulator side).

CPU-seconds, not wall time: they stay meaningful on a busy machine, where the wall time of the fleet
benchmark (bench/bench_fleet.py) mostly measures the other processes. Printed:

- worker CPU-s per small company's first full sync (the ten objects at a typical fleet company's half size,
  about 14 requests), the median of ``--syncs`` syncs in one long-lived process after a warm-up sync, as a
  Celery worker runs them one after another; with the database queries one such sync makes (every query
  through Django, in every thread; the page upserts go on the DB-API connection and are counted apart);
- the simulator's CPU-s for the same syncs (its gunicorn process, read from /proc);
- the simulator's CPU-s per 2,000-row APBILL page of a keyset read (the request our client sends), and our
  client's CPU-s per page (receive and parse, nothing stored); then a full sync of that company (every
  object, APBILL 40,000) and the worker's CPU-s per 2,000 records stored.

The simulator runs under gunicorn (1 process, 4 threads) with a latency profile of 1 ms a page, so every
request goes through the profile's bookkeeping (as in the fleet) without waiting. SQLite by default (the
simulator on a file of its own); with ``--database-url postgres://...`` both share a database of the
benchmark's own on that server (``bench_sync_cpu``, dropped and created again), as in the fleet, with
``CONN_MAX_AGE=0`` as the fleet sets it.

Run: `.venv/bin/python bench/bench_sync_cpu.py [--syncs 8] [--pages 20] [--database-url postgres://postgres@127.0.0.1:5432]`.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from serving import free_port, gunicorn, wait_until_up  # noqa: E402

GATEWAY_PATH = "/simulator/ia/xml/xmlgw.phtml"
BENCH_DATABASE = "bench_sync_cpu"
# A typical fleet company at half size (the realistic row of simulator.demo.SIZES, halved as bench_fleet
# scales it): 13 requests and a sign-in.
SMALL_SCALE = 0.5
PAGES_COMPANY = "CPU-PAGES"
PAGES_BILLS = 40_000
SMALL_REQUESTS = 40


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) of a process and its live children, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1] is the parent's pid
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def small_companies(count: int) -> list[str]:
    return [f"CPU-SMALL-{n:02d}" for n in range(count)]


def setup(var_dir: Path, database_url: str | None, syncs: int) -> tuple[subprocess.Popen, dict]:
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    password = secrets.token_urlsafe(18)
    env = {**os.environ, "VAR_DIR": str(var_dir), "SITE_URL": site, "LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "config.settings", "INTACCT_ENDPOINT_URL": site + GATEWAY_PATH,
           "BENCH_USER_PASSWORD": password, "CONN_MAX_AGE": "0", "SYNC_INTERVAL_MINUTES": "100000"}
    env.pop("SIMULATOR_LATENCY_PROFILE", None)
    if database_url:
        recreate_database(database_url)
        env["DATABASE_URL"] = sim_url = database_url
    else:
        env["DATABASE_URL"] = f"sqlite:///{var_dir / 'db.sqlite3'}"
        sim_url = f"sqlite:///{var_dir / 'simulator.sqlite3'}"
    sim_env = {**env, "DATABASE_URL": sim_url, "SIMULATOR_LATENCY_PROFILE": "page_seconds=0.001,page_rows=2000"}
    companies = {name: {} for name in small_companies(syncs + 1)}
    companies[PAGES_COMPANY] = {"APBILL": PAGES_BILLS}
    build = ["import os", "from simulator.demo import SIZES, build_company",
             f"small = {{name: max(1, int(n * {SMALL_SCALE})) for name, n in SIZES['realistic'].items()}}"]
    connect = ["import os", "from connector import crypto, services",
               "from connector.models import Connection, SyncSettings"]
    for n, (company_id, sizes) in enumerate(companies.items()):
        build.append(f"build_company({company_id!r}, sizes={{**small, **{sizes!r}}}, seed={n + 1}, "
                     "login_id='ws_bench', "
                     "password=os.environ['BENCH_USER_PASSWORD'], concurrency_limit=2)")
        connect += [
            f"org = services.organisation_create(name={company_id!r}, slug={company_id.lower()!r})",
            "c = services.connection_get(organisation=org)",
            f"Connection.objects.filter(pk=c.pk).update(company_id={company_id!r}, user_id='ws_bench', "
            "password_token=crypto.encrypt(os.environ['BENCH_USER_PASSWORD']), status='connected')",
            "SyncSettings.objects.update_or_create(connection=c, defaults={'concurrency_limit': 2})",
        ]
    steps = [(sim_env, build), (env, connect)]
    for step_env, script in steps:
        run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], step_env)
        run([sys.executable, "manage.py", "shell", "-c", "\n".join(script)], step_env)
    server = gunicorn(port, sim_env)
    wait_until_up(site)
    env["BENCH_SIMULATOR_PID"] = str(server.pid)
    return server, env


def recreate_database(database_url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urllib.parse.urlsplit(database_url)
    assert parts.path.lstrip("/") == BENCH_DATABASE  # never any other database
    maintenance = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DATABASE)))


def run(cmd: list[str], env: dict) -> str:
    return subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout


class QueryCounter:
    """Counts every query Django runs, on every connection of every thread (an execute wrapper per connection)."""

    def __init__(self) -> None:
        import threading

        from django.db.backends.signals import connection_created

        self.lock = threading.Lock()
        self.count = 0
        self.log: list[str] | None = [] if os.environ.get("BENCH_QUERY_LOG") else None
        connection_created.connect(self._attach, weak=False)

    def _attach(self, sender, connection, **_kwargs) -> None:
        if self._wrap not in connection.execute_wrappers:
            connection.execute_wrappers.append(self._wrap)

    def _wrap(self, execute, sql, params, many, context):
        with self.lock:
            self.count += 1
            if self.log is not None:
                self.log.append(sql)
        return execute(sql, params, many, context)


def child(syncs: int, pages: int) -> None:
    """In a fresh process, as a long-lived worker: the small syncs, the page read, the big sync; prints JSON."""
    import django

    django.setup()
    from django.db import connection as db_connection

    from connector import objects, sync
    from connector.intacct import filters
    from connector.models import Connection, SyncRun

    simulator = int(os.environ["BENCH_SIMULATOR_PID"])
    counter = QueryCounter()
    db_connection.close()  # the next query opens a connection the counter sees
    upserts = [0]
    real_upsert = sync.upsert_page

    def counting_upsert(*args, **kwargs):
        upserts[0] += 1
        return real_upsert(*args, **kwargs)

    sync.upsert_page = counting_upsert

    def one_sync(company_id: str) -> dict:
        connection = Connection.objects.get(company_id=company_id)
        run_row = SyncRun.objects.create(connection=connection, kind=SyncRun.Kind.FULL)
        queries, upserts[0] = counter.count, 0
        sim, cpu = process_cpu(simulator), time.process_time()
        done = sync.run_sync(run_id=run_row.pk)
        cpu, sim = time.process_time() - cpu, process_cpu(simulator) - sim
        assert done is not None and done.status == SyncRun.Status.SUCCEEDED, done and done.summary
        return {"cpu": cpu, "simulator": sim, "queries": counter.count - queries, "upserts": upserts[0],
                "requests": done.requests, "records": done.records_read}

    warm = one_sync(small_companies(syncs + 1)[0])
    if os.environ.get("BENCH_PROFILE"):  # cProfile of one small sync, every object in this thread (limit 1)
        import cProfile

        from connector.models import SyncSettings

        company_id = PAGES_COMPANY if os.environ.get("BENCH_PROFILE_BIG") else small_companies(syncs + 1)[1]
        SyncSettings.objects.filter(connection__company_id=company_id).update(concurrency_limit=1)
        profiler = cProfile.Profile(time.process_time)
        profiler.runcall(one_sync, company_id)
        profiler.dump_stats(os.environ["BENCH_PROFILE"])
        return
    if counter.log is not None:
        counter.log.clear()
    small = [one_sync(company_id) for company_id in small_companies(syncs + 1)[1:]]
    if counter.log is not None:  # the statements of the small syncs, most frequent first
        from collections import Counter

        with open(os.environ["BENCH_QUERY_LOG"], "w") as out:
            for sql, n in Counter(counter.log).most_common():
                out.write(f"{n / len(small):6.1f} {sql[:300]}\n")

    connection = Connection.objects.get(company_id=PAGES_COMPANY)
    with sync.client_for_sync(connection, 2) as client:
        client.get_api_session()
        after, read, rows = 0, 0, 0
        sim, cpu = process_cpu(simulator), time.process_time()
        while read < pages:
            page = client.query_page("APBILL", list(objects.OBJECTS_BY_NAME["APBILL"].fields),
                                     filters.GreaterThan("RECORDNO", after), order_by=[("RECORDNO", "asc")],
                                     page_size=2000)
            read += 1
            rows += len(page.records)
            if not page.num_remaining:
                after = 0
                continue
            after = int(page.records[-1]["RECORDNO"])
        cpu, sim = time.process_time() - cpu, process_cpu(simulator) - sim
        # The simulator's cost of a request apart from its records: 10-row pages.
        small_sim = process_cpu(simulator)
        for n in range(SMALL_REQUESTS):
            client.query_page("APBILL", list(objects.OBJECTS_BY_NAME["APBILL"].fields),
                              filters.GreaterThan("RECORDNO", n * 10), order_by=[("RECORDNO", "asc")], page_size=10)
        small_sim = process_cpu(simulator) - small_sim
    big = one_sync(PAGES_COMPANY)
    pages_read = {"pages": read, "rows": rows, "cpu": cpu, "simulator": sim, "small_requests": small_sim}
    print(json.dumps({"warm": warm, "small": small, "pages": pages_read, "big": big}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--syncs", type=int, default=8, help="small syncs measured (after one warm-up sync)")
    parser.add_argument("--pages", type=int, default=20, help="2,000-row pages read for the per-page figures")
    parser.add_argument("--database-url", help="a PostgreSQL server (its database bench_sync_cpu is used)")
    parser.add_argument("--profile", help="write a cProfile of one small sync (limit 1) to this file, nothing else")
    parser.add_argument("--query-log", help="write the small syncs' statements, by frequency, to this file")
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.syncs, args.pages)
        return
    database_url = None
    if args.database_url:
        parts = urllib.parse.urlsplit(args.database_url)
        database_url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + BENCH_DATABASE, "", ""))
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
        server, env = setup(Path(tmp), database_url, args.syncs)
        if args.query_log:
            env["BENCH_QUERY_LOG"] = str(Path(args.query_log).resolve())
        if args.profile:
            env["BENCH_PROFILE"] = str(Path(args.profile).resolve())
        try:
            load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
            out = run([sys.executable, str(Path(__file__)), "--child", "--syncs", str(args.syncs), "--pages",
                       str(args.pages)], env)
        finally:
            server.terminate()
            server.wait(timeout=15)
            if database_url:
                recreate_database(database_url)  # leave it empty
    if args.profile:
        return
    result = json.loads(out.strip().splitlines()[-1])
    small, warm, pages, big = result["small"], result["warm"], result["pages"], result["big"]
    where = "PostgreSQL" if database_url else "SQLite"
    print(f"bench_sync_cpu ({where}), {time.strftime('%Y-%m-%d %H:%M')}, load average {load}")
    print(f"small full sync ({small[0]['records']:,} records, {small[0]['requests']} requests), median of "
          f"{len(small)} after a warm-up sync ({warm['cpu']:.3f} CPU-s):")
    print(f"  worker CPU-s per sync {statistics.median(s['cpu'] for s in small):.3f} "
          f"(min {min(s['cpu'] for s in small):.3f}, max {max(s['cpu'] for s in small):.3f})")
    print(f"  queries per sync {statistics.median(s['queries'] for s in small):.0f} through Django "
          f"+ {statistics.median(s['upserts'] for s in small):.0f} page upserts")
    print(f"  simulator CPU-s per sync {statistics.median(s['simulator'] for s in small):.3f}")
    per_page = pages["simulator"] / pages["pages"]
    print(f"2,000-row APBILL pages ({pages['pages']} pages, {pages['rows']:,} rows): simulator CPU-s per page "
          f"{per_page:.4f}, client CPU-s per page (receive + parse) {pages['cpu'] / pages['pages']:.4f}")
    print(f"10-row APBILL pages ({SMALL_REQUESTS} requests): simulator CPU-s per request "
          f"{pages['small_requests'] / SMALL_REQUESTS:.4f}")
    per_2000 = big["cpu"] / (big["records"] / 2000)
    print(f"full sync of {PAGES_COMPANY} ({big['records']:,} records, {big['requests']} requests): worker CPU-s "
          f"{big['cpu']:.2f} = {per_2000:.4f} per 2,000 records stored; {big['queries']} queries + "
          f"{big['upserts']} page upserts; simulator CPU-s {big['simulator']:.2f}")


if __name__ == "__main__":
    main()
