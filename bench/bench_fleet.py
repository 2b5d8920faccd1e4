"""Fleet benchmark: 200 companies' first full syncs through 4 Celery workers against a slow Intacct.

200 simulated companies of realistic, varied sizes (most a few thousand records an object, a few with
100,000+ bills), concurrency limits of 1–3, the simulator's latency profile on (default 1.2 s per
2,000-row page ±20 %, seeded). Every company's full sync is requested at the same moment; 4 real
`celery worker` processes (``--concurrency`` each, default 2) run them on PostgreSQL (a database of the
benchmark's own) with Redis as the broker (a queue of the benchmark's own, on its own Redis database number).

Printed:
- the time until every company has finished its full sync, against the bound: the total page time (the
  sum of the simulator's per-request answer times over all companies) ÷ min(worker slots, 2 × companies)
  — target ≤ 1.25 × the bound;
- the longest wait from the request to a company's sync starting (its first Intacct request), and the
  median;
- each company's in-flight maximum against its limit (target: never over) and the requests refused 429.

Run: `.venv/bin/python bench/bench_fleet.py [--companies 200] [--page-seconds 1.2] [--workers 4]
[--concurrency 2] [--database-url postgres://postgres@127.0.0.1:5432] [--broker-url redis://127.0.0.1:6379/12]`.
The simulator shares the benchmark's database (as in the soak) and runs under gunicorn (2 processes).
"""
from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from serving import free_port  # noqa: E402

GATEWAY_PATH = "/simulator/ia/xml/xmlgw.phtml"
PASSWORD = "Fleet-Bench-2024!"  # noqa: S105 - a simulated company's user, in a throwaway database
BIG_BILLS = (100_000, 120_000, 150_000, 200_000)


def fleet(count: int, seed: int, big: int = len(BIG_BILLS)) -> list[tuple[str, dict[str, int], int]]:
    """(company ID, sizes, concurrency limit) for each company: mostly small, a few big, in a shuffled order."""
    from simulator.demo import SIZES  # Django is set up by now

    rng = random.Random(seed)  # noqa: S311 - a repeatable fleet, not security
    companies = []
    for n in range(count):
        scale = math.exp(rng.uniform(math.log(0.1), math.log(2.0)))  # 0.1x .. 2x a typical company
        sizes = {name: max(1, int(size * scale)) for name, size in SIZES["realistic"].items()}
        if n < min(big, len(BIG_BILLS)):
            sizes["APBILL"] = BIG_BILLS[n]
        limit = rng.choices((1, 2, 3), weights=(1, 6, 2))[0]
        companies.append((f"FLEET-{n:03d}", sizes, limit))
    rng.shuffle(companies)
    return companies


class Fleet:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.var_dir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
        self.queue = f"bench-fleet-{uuid.uuid4().hex[:8]}"
        self.db_name = f"bench_fleet_{os.getpid()}"
        parts = urlsplit(args.database_url)
        self.admin_db_url = urlunsplit(parts._replace(path="/postgres"))
        self.db_url = urlunsplit(parts._replace(path=f"/{self.db_name}"))
        self.port = free_port()
        self.site = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []
        self.profile = (f"page_seconds={args.page_seconds},page_rows=2000,jitter={args.jitter},seed={args.seed},"
                        f"base={args.base_seconds}")

    def environment(self) -> dict[str, str]:
        return {
            "VAR_DIR": str(self.var_dir), "SITE_URL": self.site, "INTACCT_ENDPOINT_URL": self.site + GATEWAY_PATH,
            "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING", "CELERY_QUEUE": self.queue,
            "DATABASE_URL": self.db_url, "CELERY_BROKER_URL": self.args.broker_url,
            "CELERY_RESULT_BACKEND": self.args.broker_url, "SYNC_INTERVAL_MINUTES": "100000",
            "VALIDATION_MONITOR_INTERVAL_SECONDS": str(10 ** 8), "CONN_MAX_AGE": "0",
            "SIMULATOR_LATENCY_PROFILE": self.profile,
        }

    def run(self) -> int:
        os.environ.update(self.environment())
        import psycopg

        with psycopg.connect(self.admin_db_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        try:
            import django

            django.setup()
            from django.core.management import call_command

            call_command("migrate", "--noinput", verbosity=0)
            companies = fleet(self.args.companies, self.args.seed, self.args.big)
            self.build(companies)
            self.start_processes()
            ok = self.measure(companies)
            self.report_cpu()
            return ok
        finally:
            self.stop()
            from django.db import connections

            connections.close_all()
            with psycopg.connect(self.admin_db_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            shutil.rmtree(self.var_dir, ignore_errors=True)

    def build(self, companies) -> None:
        from django.utils import timezone

        from connector import crypto, services
        from connector.models import Connection, SyncSettings, ValidationRun
        from simulator.demo import build_company

        started = time.monotonic()
        token = crypto.encrypt(PASSWORD)
        for n, (company_id, sizes, limit) in enumerate(companies):
            build_company(company_id, sizes=sizes, seed=n + 1, password=PASSWORD, concurrency_limit=limit)
            org = services.organisation_create(name=company_id, slug=company_id.lower())
            connection = services.connection_get(organisation=org)
            Connection.objects.filter(pk=connection.pk).update(
                company_id=company_id, user_id="ws_connect", password_token=token,
                status=Connection.Status.CONNECTED, permission_model="role")
            run = ValidationRun.objects.create(connection=connection, status=ValidationRun.Status.PASSED,
                                               finished_at=timezone.now())
            Connection.objects.filter(pk=connection.pk).update(last_validation=run)
            SyncSettings.objects.update_or_create(connection=connection, defaults={"concurrency_limit": limit})
        records = sum(sum(s.values()) for _, s, _ in companies)
        big = sum(1 for _, s, _ in companies if s["APBILL"] >= 100_000)
        print(f"{len(companies)} companies ({big} with 100k+ bills), {records:,} records; built in "
              f"{time.monotonic() - started:.0f} s", flush=True)

    def start_processes(self) -> None:
        log = open(self.var_dir / "server.log", "w")  # noqa: SIM115 - lives as long as the server
        self.processes.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "2",
             "--threads", "16", "--worker-class", "gthread", "--timeout", "300", "--log-level", "warning"],
            cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        for slot in range(self.args.workers):
            wlog = open(self.var_dir / f"worker-{slot}.log", "w")  # noqa: SIM115
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", self.queue, "-n",
                 f"fleet{slot}-{self.queue}@%h", "--concurrency", str(self.args.concurrency), "--prefetch-multiplier",
                 "1", "-O", "fair", "--without-mingle", "--without-gossip", "--loglevel", "WARNING"],
                cwd=ROOT, env=os.environ.copy(), stdout=wlog, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.site + "/simulator/", timeout=2)  # noqa: S310 - loopback only
                break
            except OSError:
                time.sleep(0.3)
        from config.celery import app

        for _ in range(self.args.workers * 2):
            app.send_task("connector.ping", queue=self.queue).get(timeout=120)

    def report_cpu(self) -> None:
        """CPU seconds the simulator and the workers used (each stopped in turn, its children reaped)."""
        import resource

        def children_cpu() -> float:
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            return usage.ru_utime + usage.ru_stime

        base = children_cpu()
        self.stop(self.processes[:1])
        simulator = children_cpu() - base
        self.stop(self.processes[1:])
        workers = children_cpu() - base - simulator
        own = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.monotonic() - self.started
        cpus = os.cpu_count() or 1
        print(f"CPU used: simulator {simulator:.0f} s, Celery workers {workers:.0f} s, benchmark process "
              f"{own.ru_utime + own.ru_stime:.0f} s (PostgreSQL not counted); {wall:.0f} s wall on "
              f"{cpus} CPUs, load average now {os.getloadavg()[0]:.1f}")
        # On a small machine the CPU, not the schedule, can be what limits: no schedule finishes before the
        # simulator's and the workers' CPU time, spread over every CPU, has been spent.
        print(f"CPU floor: (simulator + workers) {simulator + workers:.0f} CPU-s / {cpus} CPUs = "
              f"{(simulator + workers) / cpus:.1f} s (the page-time bound assumes CPU is free)")

    def stop(self, processes: list[subprocess.Popen] | None = None) -> None:
        for proc in self.processes if processes is None else processes:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=30)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(timeout=30)

    def measure(self, companies) -> int:
        from django.db.models import Max, Min

        from connector import services
        from connector.models import Connection, SyncRun
        from simulator.models import CompanyLoad, SimCompany

        connections = {c.company_id: c for c in Connection.objects.all()}
        self.started = time.monotonic()
        t0 = time.time()
        runs = {}
        for company_id, _, _ in companies:  # the shuffled order: big companies are not all first
            runs[company_id] = services.sync_request(connection=connections[company_id], kind=SyncRun.Kind.FULL)[0].pk
        requested = time.time()
        print(f"{len(runs)} full syncs requested in {requested - t0:.1f} s; latency profile {self.profile}; "
              f"{self.args.workers} workers x {self.args.concurrency}", flush=True)
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            unfinished = SyncRun.objects.filter(pk__in=runs.values(), status__in=SyncRun.ACTIVE).count()
            if not unfinished:
                break
            time.sleep(2)
        else:
            print(f"TIMEOUT: {unfinished} syncs unfinished after {self.args.timeout} s")
        finished = SyncRun.objects.filter(pk__in=runs.values()).aggregate(last=Max("finished_at"),
                                                                           first=Min("started_at"))
        total = finished["last"].timestamp() - t0 if finished["last"] else float("nan")
        statuses: dict[str, int] = {}
        waits = []
        for run in SyncRun.objects.filter(pk__in=runs.values()):
            statuses[run.status] = statuses.get(run.status, 0) + 1
            if run.started_at:
                waits.append(run.started_at.timestamp() - t0)
        loads = {row.company_id: row for row in CompanyLoad.objects.all()}
        limits = dict(SimCompany.objects.values_list("company_id", "concurrency_limit"))
        page_time = sum(row.latency_seconds for row in loads.values())
        slots = self.args.workers * self.args.concurrency
        parallel = min(slots, 2 * len(companies))
        bound = page_time / parallel
        over = [f"{cid}: {row.max_in_flight} > {limits[cid]}" for cid, row in loads.items()
                if row.max_in_flight > limits.get(cid, 0)]
        at_limit = sum(1 for cid, row in loads.items() if row.max_in_flight == limits.get(cid))
        refused = sum(row.rejected for row in loads.values())
        requests = sum(row.accepted for row in loads.values())
        print(f"runs: {statuses}")
        print(f"time until every company finished its full sync: {total:.1f} s")
        print(f"bound: total page time {page_time:.1f} s / min({slots} worker slots, 2 x {len(companies)} "
              f"companies) = {bound:.1f} s; ratio {total / bound:.3f} (target <= 1.25)")
        print(f"wait before a company's sync started (its first request): longest {max(waits):.1f} s, "
              f"median {statistics.median(waits):.1f} s")
        print(f"requests served {requests:,}; refused 429: {refused}; companies over their limit: {len(over)} "
              f"{over[:5]}; companies that reached their limit: {at_limit}/{len(loads)}")
        from django.db.models import Sum

        from connector.models import SyncObjectRun

        totals = SyncRun.objects.filter(pk__in=runs.values()).aggregate(retries=Sum("retries"), calls=Sum("requests"))
        print(f"client: {totals['calls']:,} API calls, {totals['retries']:,} retries")
        per_object: dict[str, list[float]] = {}
        for name, began, ended in SyncObjectRun.objects.filter(run__in=runs.values()).values_list(
                "object_name", "started_at", "finished_at"):
            if began and ended:
                per_object.setdefault(name, []).append((ended - began).total_seconds())
        print("seconds per object sync (mean / max): " + ", ".join(
            f"{name} {statistics.mean(v):.1f}/{max(v):.1f}" for name, v in sorted(per_object.items())))
        ok = (statuses.get(SyncRun.Status.SUCCEEDED, 0) == len(runs) and total <= 1.25 * bound and not over)
        print("target met" if ok else "TARGET NOT MET")
        return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=200)
    parser.add_argument("--page-seconds", type=float, default=1.2)
    parser.add_argument("--base-seconds", type=float, default=0.0, help="added to every request's time")
    parser.add_argument("--jitter", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--big", type=int, default=len(BIG_BILLS), help="companies with 100,000+ bills")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=2, help="task slots per worker process")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432",
                        help="a PostgreSQL server; the benchmark makes (and drops) a database of its own there")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/12",
                        help="Redis for the broker: the benchmark uses a queue of its own on this database number")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    return Fleet(args).run()


if __name__ == "__main__":
    sys.exit(main())
