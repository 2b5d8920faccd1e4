"""Benchmark: full and incremental syncs from the simulator over loopback HTTP into the Record table.

Prints, per database (SQLite always; PostgreSQL with --postgres or --database-url): records/s end to end for
a full sync of 100,000 APBILL plus the other objects at realistic sizes; end-to-end time against the
client's fetch-only time for the same records (target <= 1.5x); a no-change incremental sync (target < 1 s);
API calls per object against the bound (ceil(n / 2000) + 1); peak RSS of the syncing process for 10,000
vs 1,000,000 APBILL (target: flat). Run: `.venv/bin/python bench/bench_sync.py [--postgres] [--skip-1m]`.

The simulator runs under gunicorn in its own process, on its own SQLite file (it stands for Intacct, which
is remote: sharing the synced database's file would make every page it generates hold SQLite's one write
lock against the sync's writer); each sync runs in a fresh child process so its peak RSS is its own.
PostgreSQL: a database of its own, ``intacct_bench_sync``, dropped and created again on the server given
(default postgres://postgres@127.0.0.1:5432) through its ``postgres`` maintenance database; never the
server's other databases.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from bench_client import GATEWAY_PATH  # noqa: E402
from serving import free_port, gunicorn, site_env, wait_until_up  # noqa: E402

COMPANIES = {"BSYNC-10K": 10_000, "BSYNC-100K": 100_000, "BSYNC-1M": 1_000_000}
POSTGRES_SERVER = "postgres://postgres@127.0.0.1:5432"
BENCH_DATABASE = "intacct_bench_sync"


def _run(cmd: list[str], env: dict) -> str:
    return subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout


def bench_database_url(server_url: str) -> str:
    """The benchmark's own database on the server of ``server_url`` (whatever database that URL names)."""
    parts = urllib.parse.urlsplit(server_url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + BENCH_DATABASE, "", ""))


def where(database_url: str) -> str:
    """host:port/database, for printing: no user name, no password."""
    parts = urllib.parse.urlsplit(database_url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def recreate_database(database_url: str) -> None:
    """DROP and CREATE the benchmark's database, connected to the server's ``postgres`` maintenance database."""
    import psycopg
    from psycopg import sql

    parts = urllib.parse.urlsplit(database_url)
    name = parts.path.lstrip("/")
    assert name == BENCH_DATABASE, name  # never any other database
    maintenance = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup(var_dir: Path, database_url: str | None, companies: dict[str, int]) -> tuple[subprocess.Popen, dict]:
    """The synced database (var_dir/db.sqlite3, or ``database_url``) and the simulator on its own SQLite file,
    var_dir/simulator.sqlite3, served by gunicorn. Returns the server and the environment of the syncing process."""
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    base = {**site_env(var_dir, site), "INTACCT_ENDPOINT_URL": site + GATEWAY_PATH,
            "BENCH_USER_PASSWORD": secrets.token_urlsafe(18)}
    sim_env = {**base, "DATABASE_URL": f"sqlite:///{var_dir / 'simulator.sqlite3'}"}
    env = dict(base)
    if database_url:
        recreate_database(database_url)
        env["DATABASE_URL"] = database_url
    py = sys.executable
    build = ["import os", "from simulator.demo import build_company, REALISTIC_SIZES"]
    connect = ["import os", "from connector import crypto, services", "from connector.models import Connection"]
    for company_id, n in companies.items():
        build.append(f"build_company({company_id!r}, sizes={{**REALISTIC_SIZES, 'APBILL': {n}}}, "
                     "login_id='ws_bench', password=os.environ['BENCH_USER_PASSWORD'])")
        connect += [
            f"org = services.organisation_create(name={company_id!r}, slug={company_id.lower()!r})",
            "c = services.connection_get(organisation=org)",
            f"Connection.objects.filter(pk=c.pk).update(company_id={company_id!r}, user_id='ws_bench', "
            "password_token=crypto.encrypt(os.environ['BENCH_USER_PASSWORD']), status='connected')",
        ]
    for step_env, script in ((sim_env, build), (env, connect)):
        _run([py, "manage.py", "migrate", "--noinput", "-v", "0"], step_env)
        _run([py, "manage.py", "shell", "-c", "\n".join(script)], step_env)
    server = gunicorn(port, sim_env)
    wait_until_up(site)
    return server, env


def child(mode: str, company_id: str) -> None:
    """In a fresh process: one sync (or a fetch-only read) of one company; prints JSON."""
    import django

    django.setup()
    from connector import objects, sync
    from connector.intacct import filters
    from connector.models import Connection, SyncObjectRun, SyncRun

    connection = Connection.objects.get(company_id=company_id)
    started = time.perf_counter()
    if mode == "fetch":
        records = 0
        with sync.client_for_sync(connection, 2) as client:
            for definition in objects.OBJECTS:
                if not definition.incremental:
                    records += sum(1 for _ in client.get_list(definition.name, fields=list(definition.fields),
                                                              page_size=1000))
                    continue
                after = 0
                while True:
                    page = client.query_page(definition.name, list(definition.fields),
                                             filters.GreaterThan("RECORDNO", after), order_by=[("RECORDNO", "asc")],
                                             page_size=2000)
                    records += len(page.records)
                    if not page.records or not page.num_remaining:
                        break
                    after = int(page.records[-1]["RECORDNO"])
            requests = client.stats.requests
        result = {"records": records, "requests": requests}
    else:
        run = SyncRun.objects.create(connection=connection, kind=mode)
        run = sync.run_sync(run_id=run.pk)
        per_object = {o.object_name: [o.records_read, o.requests]
                      for o in SyncObjectRun.objects.filter(run=run)}
        result = {"status": run.status, "summary": run.summary, "records": run.records_read,
                  "requests": run.requests, "objects": per_object}
    result["seconds"] = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    print(json.dumps(result))


def spawn(env: dict, mode: str, company_id: str) -> dict:
    out = _run([sys.executable, str(Path(__file__)), "--child", mode, "--company", company_id], env)
    return json.loads(out.strip().splitlines()[-1])


def bench(database_url: str | None, skip_1m: bool) -> None:
    label = f"PostgreSQL ({where(database_url)})" if database_url else "SQLite"
    companies = {k: v for k, v in COMPANIES.items() if not (skip_1m and v >= 1_000_000)}
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        server, env = setup(Path(tmp), database_url, companies)
        try:
            load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"\n== {label} == {time.strftime('%Y-%m-%d %H:%M')}, load average {load}")
            fetch = spawn(env, "fetch", "BSYNC-100K")
            full = spawn(env, "full", "BSYNC-100K")
            assert full["status"] == "succeeded", full["summary"]
            print(f"full sync, 100,000 APBILL + other objects: {full['records']:,} records in {full['seconds']:.1f}s"
                  f" = {full['records'] / full['seconds']:,.0f} records/s end to end; {full['requests']} API calls")
            print(f"client fetch-only of the same records: {fetch['seconds']:.1f}s ({fetch['requests']} calls); "
                  f"end to end / fetch-only = {full['seconds'] / fetch['seconds']:.2f}x (target <= 1.5x)")
            # A page per 2,000 records (1,000 for get_list) and a last empty one; a full read of more than two
            # pages is split into three ranges (limit 2, one reader more), each may end on a short page; the
            # one sign-in goes to whichever object needed it first.
            for name, (read, calls) in sorted(full["objects"].items()):
                page = 1000 if name.islower() else 2000
                bound = math.ceil(read / page) + 1 + (2 if not name.islower() and read > 2 * page else 0)
                print(f"  {name:<20} {read:>8,} records {calls:>4} calls (bound {bound}, +1 for the sign-in)"
                      f"{'' if calls <= bound + 1 else '  OVER'}")
            incremental = spawn(env, "incremental", "BSYNC-100K")
            print(f"no-change incremental sync, all objects: {incremental['seconds']:.2f}s, "
                  f"{incremental['requests']} API calls (target < 1 s, one per object + sign-in)")
            for company_id in companies:
                if company_id == "BSYNC-100K":
                    continue
                other = spawn(env, "full", company_id)
                print(f"full sync {company_id}: {other['records']:,} records in {other['seconds']:.1f}s "
                      f"({other['records'] / other['seconds']:,.0f}/s), peak RSS {other['peak_rss_mb']:.0f} MB")
            print(f"full sync BSYNC-100K peak RSS {full['peak_rss_mb']:.0f} MB")
        finally:
            server.terminate()
            server.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child")
    parser.add_argument("--company")
    parser.add_argument("--postgres", action="store_true",
                        help=f"also on PostgreSQL: database {BENCH_DATABASE} on {POSTGRES_SERVER}")
    parser.add_argument("--database-url", help=f"also on PostgreSQL: database {BENCH_DATABASE} on this URL's server "
                        "(the URL's own database is not touched)")
    parser.add_argument("--skip-1m", action="store_true", help="leave out the 1,000,000-record company")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.company)
        return
    bench(None, args.skip_1m)
    server_url = args.database_url or (POSTGRES_SERVER if args.postgres else None)
    if server_url:
        bench(bench_database_url(server_url), args.skip_1m)


if __name__ == "__main__":
    main()
