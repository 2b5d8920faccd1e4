"""Benchmark: the same 100,000 APBILL read over the XML gateway and over the REST API in one run.

Prints, per protocol: records/s, client CPU µs per record, requests (data and sign-in/token), API transactions
the simulator billed, and the peak RSS of a fresh process doing nothing but that read. Both clients read the
fields sync reads (connector/objects.py), in key order, with their largest page (XML query 2,000; REST 4,000),
and REST also at 2,000 for a like-for-like page size. Medians of --rounds runs.

The simulator runs under gunicorn (1 process, 4 threads) on a throwaway SQLite database.
Run: `.venv/bin/python bench/bench_rest_vs_xml.py` (about a minute).
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
from serving import free_port, gunicorn, site_env, wait_until_up  # noqa: E402

COMPANY = "BENCH-100K"
RECORDS = 100_000
USER = "ws_bench"
SENDER_ID = "IntacctConnectDemo"
CLIENT_ID = "bench.app.sage.com"
REDIRECT = "https://bench.example/cb"


def start_simulator(var_dir: Path) -> tuple[subprocess.Popen, str, dict]:
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    env = site_env(var_dir, site)
    # Made for this run, handed over in the environment only.
    env["BENCH_USER_PASSWORD"] = secrets.token_urlsafe(18)
    env["BENCH_CLIENT_SECRET"] = secrets.token_urlsafe(24)
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    make = (
        "import os\nfrom simulator.demo import build_company\nfrom simulator.oauth import register_app\n"
        f"build_company({COMPANY!r}, sizes={{'APBILL': {RECORDS}}}, login_id={USER!r}, "
        "password=os.environ['BENCH_USER_PASSWORD'], concurrency_limit=4)\n"
        f"register_app({CLIENT_ID!r}, os.environ['BENCH_CLIENT_SECRET'], {SENDER_ID!r}, [{REDIRECT!r}])\n")
    subprocess.run([py, "manage.py", "shell", "-c", make], cwd=ROOT, env=env, check=True)
    server = gunicorn(port, env)
    wait_until_up(site)
    return server, site, env


def billed(env: dict) -> int:
    """API transactions the simulator counted for the company this month."""
    code = ("from simulator.models import SimCompany\nfrom simulator.metering import month_usage\n"
            f"print(month_usage(SimCompany.objects.get(company_id={COMPANY!r})))")
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


def read_xml(site: str, var_dir: Path) -> dict:
    from connector.intacct import ClientConfig, Credentials, IntacctClient
    from connector.objects import OBJECTS_BY_NAME

    url = site + "/simulator/ia/xml/xmlgw.phtml"
    config = ClientConfig(endpoint_url=url, allowed_endpoints=(url,), sender_id=SENDER_ID, timeout=120,
                          sender_password=(var_dir / "demo_sender_password").read_text().strip())
    fields = list(OBJECTS_BY_NAME["APBILL"].fields)
    with IntacctClient(config, Credentials(COMPANY, USER, os.environ["BENCH_USER_PASSWORD"])) as client:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        count = sum(1 for _ in client.query("APBILL", fields=fields, page_size=2000,
                                            order_by=[("RECORDNO", "asc")]))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        stats = client.stats.snapshot()
    return {"records": count, "seconds": wall, "cpu": cpu, "data_requests": stats["requests"] - stats["logins"],
            "auth_requests": stats["logins"], "bytes": stats["bytes_received"]}


def read_rest(site: str, size: int) -> dict:
    from connector.intacct_rest import ClientCredentialsGrant, IntacctRestClient, RestConfig, rest_name
    from connector.objects import OBJECTS_BY_NAME

    base = site + "/simulator/ia/api/v1"
    config = RestConfig(client_id=CLIENT_ID, client_secret=os.environ["BENCH_CLIENT_SECRET"], base_url=base,
                        allowed_endpoints=(base,), timeout=120)
    name = rest_name("APBILL")
    assert name is not None
    fields = name.rest_fields(OBJECTS_BY_NAME["APBILL"].fields)
    with IntacctRestClient(config, ClientCredentialsGrant(USER, COMPANY)) as client:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        count = sum(1 for _ in client.query(name.path, fields, order_by=[{"key": "asc"}], size=size))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        stats = client.stats.snapshot()
    return {"records": count, "seconds": wall, "cpu": cpu, "data_requests": stats["requests"] - stats["logins"],
            "auth_requests": stats["logins"], "bytes": stats["bytes_received"]}


def child(kind: str, site: str, var_dir: Path) -> None:
    """A fresh process: one full read, then its own peak RSS."""
    result = read_xml(site, var_dir) if kind == "xml" else read_rest(site, int(kind.split(":")[1]))
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def run(kind: str, site: str, var_dir: Path, env: dict) -> dict:
    before = billed(env)
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--site", site, "--var-dir", str(var_dir)],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["billed"] = billed(env) - before
    assert result["records"] == RECORDS, result
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child")
    parser.add_argument("--site")
    parser.add_argument("--var-dir")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.site, Path(args.var_dir))
        return
    with tempfile.TemporaryDirectory(prefix="bench-rest-") as tmp:
        var_dir = Path(tmp)
        server, site, env = start_simulator(var_dir)
        try:
            rows = []
            for label, kind in (("XML query (2,000)", "xml"), ("REST query (4,000)", "rest:4000"),
                                ("REST query (2,000)", "rest:2000")):
                runs = [run(kind, site, var_dir, env) for _ in range(args.rounds)]
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                rows.append((label, med))
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"{RECORDS:,} APBILL, 12 fields, medians of {args.rounds} fresh processes each")
    print("| protocol (page size) | records/s | client CPU µs/record | data requests | sign-in/token requests "
          "| billed API transactions | KB received | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for label, m in rows:
        print(f"| {label} | {m['records'] / m['seconds']:,.0f} | {m['cpu'] / m['records'] * 1e6:.1f} | "
              f"{m['data_requests']:.0f} | {m['auth_requests']:.0f} | {m['billed']:.0f} | {m['bytes'] / 1024:,.0f} | "
              f"{m['max_rss_mb']:.1f} |")


if __name__ == "__main__":
    main()
