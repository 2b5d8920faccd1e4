"""Benchmark: a full sync of 1,000,000 APBILL against a slow Intacct reaches the company's concurrency limit.

With the simulator's latency profile on (default 1.2 s per 2,000-row page, ±20 %, seeded), our real sync
engine (connector.sync, run in a fresh child process exactly as a worker runs it) reads a company with
1,000,000 APBILL and the other objects at realistic sizes. Nothing else talks to that company. Printed:

- the company's concurrency limit, the sync's wall time, and the physical bound: the time the simulator
  spent answering that company (the sum of the profile's per-request times) ÷ the limit — no client could
  finish sooner. Target: time ≤ 1.1 × bound. Also the APBILL-only bound, pages × page time ÷ limit;
- the simulator's in-flight maximum for the company (target: equal to the limit, never above) and the
  requests it refused with 429 (target: 0).

Run: `.venv/bin/python bench/bench_sync_limit.py [--records 1000000] [--page-seconds 1.2] [--postgres]`.
The simulator runs under gunicorn on its own SQLite file; the synced database is SQLite in a throwaway
VAR_DIR, or with --postgres a database of its own (``intacct_bench_sync``, dropped and created again).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_sync import POSTGRES_SERVER, bench_database_url, setup, spawn, where  # noqa: E402

COMPANY = "BLIMIT-1M"


def simulator_stats(site: str, company_id: str) -> dict:
    with urllib.request.urlopen(f"{site}/simulator/companies/{company_id}/stats/", timeout=30) as response:  # noqa: S310
        return json.load(response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--page-seconds", type=float, default=1.2)
    parser.add_argument("--jitter", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--postgres", action="store_true", help=f"sync into PostgreSQL on {POSTGRES_SERVER}")
    parser.add_argument("--fetch-only", action="store_true",
                        help="also read everything with the client alone, one request at a time (the gap per request)")
    args = parser.parse_args()
    profile = f"page_seconds={args.page_seconds},page_rows=2000,jitter={args.jitter},seed={args.seed}"
    os.environ["SIMULATOR_LATENCY_PROFILE"] = profile  # the simulator's server process inherits it
    database_url = bench_database_url(POSTGRES_SERVER) if args.postgres else None
    with tempfile.TemporaryDirectory(prefix="bench-limit-") as tmp:
        server, env = setup(Path(tmp), database_url, {COMPANY: args.records})
        env.pop("SIMULATOR_LATENCY_PROFILE", None)  # the syncing process is our app, not the simulator
        site = env["SITE_URL"]
        try:
            load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
            label = f"PostgreSQL ({where(database_url)})" if database_url else "SQLite"
            print(f"== {label}, latency profile {profile} == {time.strftime('%Y-%m-%d %H:%M')}, load {load}")
            before = simulator_stats(site, COMPANY)
            samples: list[int] = []
            done = threading.Event()

            def sample() -> None:
                # How many of the company's slots are busy, four times a second, while the sync runs.
                while not done.wait(0.25):
                    try:
                        samples.append(simulator_stats(site, COMPANY)["in_flight"])
                    except OSError:
                        pass

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            try:
                full = spawn(env, "full", COMPANY)
            finally:
                done.set()
                sampler.join()
            stats = simulator_stats(site, COMPANY)
            if args.fetch_only:
                # The client alone, one request at a time: what it spends between two answers.
                mid = simulator_stats(site, COMPANY)
                fetch = spawn(env, "fetch", COMPANY)
                after = simulator_stats(site, COMPANY)
                answered_fetch = after["latency_seconds"] - mid["latency_seconds"]
                gap = (fetch["seconds"] - answered_fetch) / max(1, fetch["requests"])
                print(f"fetch-only, one request at a time: {fetch['seconds']:.1f} s for {fetch['requests']} requests "
                      f"whose answers took {answered_fetch:.1f} s: {gap * 1000:.0f} ms per request outside the "
                      f"simulator's answer time")
        finally:
            server.terminate()
            server.wait(timeout=30)
    limit = stats["concurrency_limit"]
    answered = stats["latency_seconds"] - before["latency_seconds"]
    bound = answered / limit
    apbill_pages = math.ceil(args.records / 2000)
    apbill_bound = apbill_pages * args.page_seconds / limit
    print(f"sync: {full['status']}, {full['records']:,} records, {full['requests']} API calls")
    print(f"concurrency limit: {limit}")
    print(f"time: {full['seconds']:.1f} s (the syncing process used {full['cpu_seconds']:.1f} s of CPU)")
    print(f"bound (simulator answer time {answered:.1f} s / limit {limit}): {bound:.1f} s; "
          f"ratio {full['seconds'] / bound:.3f} (target <= 1.1)")
    print(f"APBILL alone: {apbill_pages} pages x {args.page_seconds} s / {limit} = {apbill_bound:.1f} s; "
          f"ratio {full['seconds'] / apbill_bound:.3f}")
    print(f"in flight max: {stats['max_in_flight']} (limit {limit}); refused with 429: {stats['rejected']}; "
          f"served {stats['accepted']}")
    if samples:
        share = ", ".join(f"{n} in flight {samples.count(n) / len(samples):.0%}" for n in range(limit + 1))
        print(f"time at each in-flight count (sampled every 0.25 s): {share}")
    ok = (full["status"] == "succeeded" and full["seconds"] <= 1.1 * bound and stats["max_in_flight"] == limit
          and stats["rejected"] == 0)
    print("target met" if ok else "TARGET NOT MET")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
