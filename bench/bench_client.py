"""Benchmark: the Intacct client reading APBILL from the simulator over loopback HTTP.

Prints: records/s; the client's CPU time per record against a bare lxml iterparse of the same
response bytes (target <= 1.5x); peak RSS streaming 10,000 vs 1,000,000 records (target: within 20 MB);
the simulator's own time per page; hostile answers (20 MB of <x/> inside <data>, 40 MB of junk inside
<control>, ...): what the client did and its peak RSS growth (target: refused, <= ~50 MB).
Run with `make bench` (or `.venv/bin/python bench/bench_client.py`; `--hostile-only` for the last part).

The simulator runs under gunicorn in its own process, on a throwaway SQLite database, so the client
process measured here does nothing but be the client.
"""
from __future__ import annotations

import argparse
import io
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
import httpx  # noqa: E402
from lxml import etree  # noqa: E402
from serving import free_port, gunicorn, site_env, wait_until_up  # noqa: E402

from connector.intacct import ClientConfig, Credentials, IntacctClient  # noqa: E402
from connector.intacct.response import ResponseParser  # noqa: E402

GATEWAY_PATH = "/simulator/ia/xml/xmlgw.phtml"
SENDER_ID = "IntacctConnectDemo"
USER = "ws_bench"
COMPANIES = {"BENCH-10K": 10_000, "BENCH-100K": 100_000, "BENCH-1M": 1_000_000}
FIELDS = ("RECORDNO", "RECORDID", "VENDORID", "VENDORNAME", "DOCNUMBER", "STATE", "WHENCREATED", "WHENPOSTED",
          "WHENDUE", "TOTALENTERED", "TOTALDUE", "CURRENCY", "DESCRIPTION", "WHENMODIFIED")


class Recording(httpx.HTTPTransport):
    """The real HTTP transport, noting the simulator's own time per page and (optionally) the bodies."""

    def __init__(self, keep_bodies: bool = False):
        super().__init__()
        self.keep_bodies = keep_bodies
        self.simulator_ms: list[float] = []
        self.bodies: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if "x-simulator-time-ms" in response.headers:
            self.simulator_ms.append(float(response.headers["x-simulator-time-ms"]))
        if self.keep_bodies:
            raw = response.read()
            self.bodies.append(raw)
            response = httpx.Response(response.status_code, headers=[(k, v) for k, v in response.headers.items()
                                                                      if k.lower() != "content-encoding"],
                                      content=raw, request=request)
        return response


def start_simulator(var_dir: Path) -> tuple[subprocess.Popen, str, dict]:
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    env = site_env(var_dir, site)
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    # The companies' user password is made for this run and handed over in the environment only.
    env["BENCH_USER_PASSWORD"] = secrets.token_urlsafe(18)
    make = ("import os\nfrom simulator.demo import build_company\n"
            + "".join(f"build_company({cid!r}, sizes={{'APBILL': {n}}}, login_id={USER!r}, "
                      "password=os.environ['BENCH_USER_PASSWORD'])\n" for cid, n in COMPANIES.items()))
    subprocess.run([py, "manage.py", "shell", "-c", make], cwd=ROOT, env=env, check=True)
    server = gunicorn(port, env)
    wait_until_up(site)
    return server, site + GATEWAY_PATH, env


def client_for(url: str, company: str, var_dir: Path, transport: httpx.BaseTransport) -> IntacctClient:
    sender_password = (var_dir / "demo_sender_password").read_text().strip()
    config = ClientConfig(endpoint_url=url, allowed_endpoints=(url,), sender_id=SENDER_ID,
                          sender_password=sender_password, transport=transport, timeout=120)
    return IntacctClient(config, Credentials(company, USER, os.environ["BENCH_USER_PASSWORD"]))


def read_all(client: IntacctClient, method: str) -> int:
    count = 0
    if method == "readByQuery":
        records = client.read_by_query("APBILL", fields=FIELDS, page_size=1000)
    else:
        records = client.query("APBILL", fields=list(FIELDS), page_size=2000, order_by=[("RECORDNO", "asc")])
    for _record in records:
        count += 1
    return count


def bare_iterparse_all_cpu(bodies: list[bytes]) -> float:
    """The textbook idiom: iterparse's default end events for every element, each record cleared."""
    started = time.process_time()
    for body in bodies:
        for _event, element in etree.iterparse(io.BytesIO(body)):
            if element.tag in ("apbill", "APBILL"):
                element.clear()
    return time.process_time() - started


def bare_iterparse_cpu(bodies: list[bytes]) -> float:
    """The floor: iterparse told to stop only at record elements, each cleared; no field is read."""
    started = time.process_time()
    for body in bodies:
        for _event, element in etree.iterparse(io.BytesIO(body), events=("end",), tag=("apbill", "APBILL")):
            element.clear()
    return time.process_time() - started


def client_parser_cpu(bodies: list[bytes]) -> float:
    """The client's own response parser fed the same bytes in 64 KiB chunks, as the socket delivers them."""
    started = time.process_time()
    for body in bodies:
        parser = ResponseParser(("APBILL", "apbill"))
        for offset in range(0, len(body), 65536):
            parser.feed(body[offset:offset + 65536])
        parser.close()
    return time.process_time() - started


def measure_throughput(url: str, var_dir: Path, method: str, rounds: int = 3) -> dict:
    """Median of several full reads of 100,000 APBILL: wall time, client CPU, simulator time per page."""
    runs = []
    for _ in range(rounds):
        transport = Recording()
        with client_for(url, "BENCH-100K", var_dir, transport) as client:
            client.get_api_session()
            wall0, cpu0 = time.perf_counter(), time.process_time()
            count = read_all(client, method)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            assert count == 100_000, count
            runs.append({"wall": wall, "cpu": cpu, "requests": client.stats.requests - 1,
                         "sim_ms": statistics.median(transport.simulator_ms[1:])})
    keep = Recording(keep_bodies=True)
    with client_for(url, "BENCH-100K", var_dir, keep) as client:
        client.get_api_session()
        read_all(client, method)
    bodies = keep.bodies[1:]
    bare = statistics.median(bare_iterparse_cpu(bodies) for _ in range(rounds))
    bare_all = statistics.median(bare_iterparse_all_cpu(bodies) for _ in range(rounds))
    parser_only = statistics.median(client_parser_cpu(bodies) for _ in range(rounds))
    wall = statistics.median(r["wall"] for r in runs)
    cpu = statistics.median(r["cpu"] for r in runs)
    return {"method": method, "records": 100_000, "pages": runs[0]["requests"], "seconds": wall,
            "records_per_s": 100_000 / wall, "client_cpu_us_per_record": cpu / 100_000 * 1e6,
            "bare_iterparse_cpu_us_per_record": bare / 100_000 * 1e6, "cpu_ratio": cpu / bare,
            "bare_all_cpu_us_per_record": bare_all / 100_000 * 1e6, "cpu_ratio_all": cpu / bare_all,
            "parser_cpu_us_per_record": parser_only / 100_000 * 1e6, "parser_ratio": parser_only / bare,
            "simulator_ms_per_page": statistics.median(r["sim_ms"] for r in runs),
            "bytes_per_page": sum(len(b) for b in bodies) / len(bodies)}


def stream_only(url: str, company: str, var_dir: Path, expected: int) -> None:
    """Child process: stream every APBILL of one company, print peak RSS (nothing else is held)."""
    with client_for(url, company, var_dir, httpx.HTTPTransport()) as client:
        count = read_all(client, "query")
    assert count == expected, count
    print(json.dumps({"records": count, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure_rss(url: str, var_dir: Path, env: dict) -> dict:
    out = {}
    for company in ("BENCH-10K", "BENCH-1M"):
        n = COMPANIES[company]
        result = subprocess.run([sys.executable, __file__, "--stream-only", company, "--url", url,
                                 "--var-dir", str(var_dir), "--expected", str(n)],
                                cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        out[n] = json.loads(result.stdout.strip().splitlines()[-1])["max_rss_mb"]
    return out


HOSTILE = (("junk-in-data", 20, "20 MB of <x/> inside <data>"),
           ("junk-in-control", 40, "40 MB of <junk>…</junk> inside <control>, then a valid answer"),
           ("text-in-control", 40, "40 MB of text (and <x/>) inside <control>, then a valid answer"),
           ("junk-in-one-element", 40, "40 MB of <x/> inside one open <status> leaf"))


def measure_hostile() -> list[dict]:
    """Each hostile answer streamed through a real client in a fresh process (its peak RSS is its own)."""
    out = []
    for case, megabytes, label in HOSTILE:
        result = subprocess.run([sys.executable, "-m", "tests.intacct.hostile", case, "--mb", str(megabytes)],
                                cwd=ROOT, capture_output=True, text=True, check=True)
        out.append({**json.loads(result.stdout.strip().splitlines()[-1]), "label": label})
    return out


def print_hostile(results: list[dict]) -> None:
    print("\n## Client: hostile answers (mock transport streaming 64 KiB chunks; fresh process each)\n")
    print("| answer | outcome | bytes read before refusing | seconds | peak RSS growth MB |")
    print("|---|---|---|---|---|")
    for r in results:
        outcome = r["result"] if r["result"] == "succeeded" else f"refused: {r['error']}"
        print(f"| {r['label']} | {outcome} | {r['received_mb']} MB | {r['seconds']} | {r['peak_rss_growth_mb']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream-only")
    parser.add_argument("--url")
    parser.add_argument("--var-dir")
    parser.add_argument("--expected", type=int)
    parser.add_argument("--hostile-only", action="store_true")
    args = parser.parse_args()
    if args.stream_only:
        stream_only(args.url, args.stream_only, Path(args.var_dir), args.expected)
        return
    if args.hostile_only:
        print_hostile(measure_hostile())
        return
    with tempfile.TemporaryDirectory(prefix="ic-bench-") as tmp:
        var_dir = Path(tmp)
        server, url, env = start_simulator(var_dir)
        try:
            os.environ["BENCH_USER_PASSWORD"] = env["BENCH_USER_PASSWORD"]
            results = [measure_throughput(url, var_dir, "readByQuery"), measure_throughput(url, var_dir, "query")]
            rss = measure_rss(url, var_dir, env)
        finally:
            server.terminate()
            server.wait(timeout=20)
    print("\n## Client: 100,000 APBILL from the simulator over loopback HTTP (14 fields per record)\n")
    print("| function (page size) | pages | records/s | simulator ms/page | KB/page |")
    print("|---|---|---|---|---|")
    for r in results:
        size = 1000 if r["method"] == "readByQuery" else 2000
        print(f"| {r['method']} ({size}) | {r['pages']} | {r['records_per_s']:,.0f} | "
              f"{r['simulator_ms_per_page']:.1f} | {r['bytes_per_page'] / 1024:.0f} |")
    print("\nCPU µs per record (client process only; the simulator runs in another process):\n")
    print("| function | client end to end (HTTP + parse + dicts) | client parser on the same bytes "
          "| iterparse, every element | iterparse, record tag only |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['method']} | {r['client_cpu_us_per_record']:.1f} | {r['parser_cpu_us_per_record']:.1f} | "
              f"{r['bare_all_cpu_us_per_record']:.1f} | {r['bare_iterparse_cpu_us_per_record']:.1f} |")
    print("\nRatios (target ≤ 1.5):\n")
    print("| function | end to end ÷ iterparse every element | end to end ÷ iterparse record tag only "
          "| parser ÷ iterparse record tag only |")
    print("|---|---|---|---|")
    for r in results:
        print(f"| {r['method']} | {r['cpu_ratio_all']:.2f} | {r['cpu_ratio']:.2f} | {r['parser_ratio']:.2f} |")
    print("\n## Client: peak RSS while streaming (query, 2,000 per page; fresh process each)\n")
    print("| records | peak RSS MB |\n|---|---|")
    for n, mb in rss.items():
        print(f"| {n:,} | {mb:.1f} |")
    difference = rss[1_000_000] - rss[10_000]
    print(f"\nDifference 1,000,000 vs 10,000: {difference:.1f} MB (target: within 20 MB)")
    print_hostile(measure_hostile())


if __name__ == "__main__":
    main()
