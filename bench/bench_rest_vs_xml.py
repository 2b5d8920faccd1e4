"""Benchmark: a full sync of the same 100,000 APBILL (plus the other objects at realistic sizes) over the XML
gateway and over the REST API, in one run.

Two connections of two organisations point at one simulated company: one reads over XML (Web Services user and
password), the other over REST (client credentials as the same user; the company's time zone recorded). Each
full sync runs through the product's own engine (``connector.sync.run_sync``: range readers, the company's
concurrency cap of 2, pages upserted into the Record table and the change feed) in a fresh process, so its CPU
time and peak RSS are its own. Printed per protocol: records/s end to end, CPU µs per record (the syncing
process, user + system), API calls the run counted, API transactions the simulator billed, peak RSS; and the
same for APBILL alone (its object run).

The simulator runs under gunicorn (1 process, 4 threads) on its own SQLite file; the synced database is another
SQLite file (as bench/bench_sync.py, whose setup this follows). Rounds alternate XML and REST.
Run: `.venv/bin/python bench/bench_rest_vs_xml.py [--rounds N]` (a few minutes a round).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_client import GATEWAY_PATH  # noqa: E402
from serving import free_port, gunicorn, site_env, wait_until_up  # noqa: E402

COMPANY = "BENCH-100K"
RECORDS = 100_000
USER = "ws_bench"
REST_PATH = "/simulator/ia/api/v1"
TIME_ZONE = "America/Los_Angeles"  # the simulated company's (SimCompany.timezone_name default)
ORGS = {"xml": "bench-xml", "rest": "bench-rest"}


def _run(cmd: list[str], env: dict) -> str:
    return subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout


def setup(var_dir: Path) -> tuple[subprocess.Popen, dict, dict]:
    """The simulator (its own SQLite file, served by gunicorn) and the synced database with both connections."""
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    base = {**site_env(var_dir, site), "INTACCT_ENDPOINT_URL": site + GATEWAY_PATH,
            "INTACCT_REST_BASE_URL": site + REST_PATH, "INTACCT_REST_CLIENT_ID": "bench.app.sage.com",
            # Made for this run, handed over in the environment only.
            "INTACCT_REST_CLIENT_SECRET": secrets.token_urlsafe(24), "BENCH_USER_PASSWORD": secrets.token_urlsafe(18)}
    sim_env = {**base, "DATABASE_URL": f"sqlite:///{var_dir / 'simulator.sqlite3'}"}
    env = dict(base)
    build = "\n".join([
        "import os", "from django.conf import settings",
        "from simulator.demo import SIZES, build_company", "from simulator.oauth import register_app",
        f"build_company({COMPANY!r}, sizes={{**SIZES['realistic'], 'APBILL': {RECORDS}}}, login_id={USER!r}, "
        "password=os.environ['BENCH_USER_PASSWORD'])",
        "register_app(settings.INTACCT_REST_CLIENT_ID, settings.INTACCT_REST_CLIENT_SECRET, "
        "settings.INTACCT_SENDER_ID, ['https://bench.example/cb'])"])
    connections = {
        "xml": "password_token=crypto.encrypt(os.environ['BENCH_USER_PASSWORD'])",
        "rest": f"protocol='rest', rest_grant='client_credentials', company_timezone={TIME_ZONE!r}",
    }
    connect_lines = ["import os", "from connector import crypto, services", "from connector.models import Connection"]
    for kind, slug in ORGS.items():
        connect_lines += [
            f"org = services.organisation_create(name={slug!r}, slug={slug!r})",
            "c = services.connection_get(organisation=org)",
            f"Connection.objects.filter(pk=c.pk).update(company_id={COMPANY!r}, user_id={USER!r}, "
            f"status='connected', {connections[kind]})"]
    connect = "\n".join(connect_lines)
    for step_env, script in ((sim_env, build), (env, connect)):
        _run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], step_env)
        _run([sys.executable, "manage.py", "shell", "-c", script], step_env)
    server = gunicorn(port, sim_env)
    wait_until_up(site)
    return server, env, sim_env


def billed(sim_env: dict) -> int:
    """API transactions the simulator counted for the company this month."""
    code = ("from simulator.models import SimCompany\nfrom simulator.metering import month_usage\n"
            f"print(month_usage(SimCompany.objects.get(company_id={COMPANY!r})))")
    return int(_run([sys.executable, "manage.py", "shell", "-c", code], sim_env).strip().splitlines()[-1])


def child(kind: str) -> None:
    """In a fresh process: one full sync of the connection reading over ``kind``; prints JSON."""
    import django

    django.setup()
    from connector import sync
    from connector.models import Connection, SyncObjectRun, SyncRun

    connection = Connection.objects.get(organisation__slug=ORGS[kind])
    assert connection.protocol == kind
    run = SyncRun.objects.create(connection=connection, kind=SyncRun.Kind.FULL)
    wall0 = time.perf_counter()
    run = sync.run_sync(run_id=run.pk)
    seconds = time.perf_counter() - wall0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    bills = SyncObjectRun.objects.get(run=run, object_name="APBILL")
    print(json.dumps({
        "status": run.status, "summary": run.summary, "records": run.records_read, "requests": run.requests,
        "seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
        "apbill_records": bills.records_read, "apbill_requests": bills.requests,
        "apbill_seconds": (bills.finished_at - bills.started_at).total_seconds()}))


def one(kind: str, env: dict, sim_env: dict) -> dict:
    before = billed(sim_env)
    out = _run([sys.executable, str(Path(__file__)), "--child", kind], env)
    result = json.loads(out.strip().splitlines()[-1])
    result["billed"] = billed(sim_env) - before
    assert result["status"] == "succeeded", result["summary"]
    assert result["apbill_records"] == RECORDS, result
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory(prefix="bench-rest-") as tmp:
        server, env, sim_env = setup(Path(tmp))
        try:
            load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"{time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} CPUs, load average {load}")
            runs: dict[str, list[dict]] = {"xml": [], "rest": []}
            for _ in range(args.rounds):
                for kind in ("xml", "rest"):
                    runs[kind].append(one(kind, env, sim_env))
        finally:
            server.terminate()
            server.wait(timeout=15)
    print(f"Full sync of {RECORDS:,} APBILL + the other objects at realistic sizes, medians of {args.rounds} "
          "fresh process(es) per protocol")
    print("| protocol | records | records/s | CPU µs/record | API calls (run) | billed API transactions | peak RSS MB "
          "| APBILL records/s | APBILL calls |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, results in runs.items():
        m = {k: statistics.median(r[k] for r in results) for k in results[0] if k not in ("status", "summary")}
        print(f"| {kind.upper()} | {m['records']:,.0f} | {m['records'] / m['seconds']:,.0f} | "
              f"{m['cpu'] / m['records'] * 1e6:.0f} | {m['requests']:.0f} | {m['billed']:.0f} | "
              f"{m['peak_rss_mb']:.0f} | "
              f"{m['apbill_records'] / m['apbill_seconds']:,.0f} | {m['apbill_requests']:.0f} |")


if __name__ == "__main__":
    main()
