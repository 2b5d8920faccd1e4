"""Soak: companies syncing and re-validating through two real Celery workers while Intacct misbehaves.

For N minutes: a gunicorn simulator, 20 simulated companies (modest sizes, concurrency limits 1-3), two
real `celery worker` processes; syncs (incremental, reconcile, now and then a full re-read) and
re-validations are requested again and again while the simulator answers a set share of requests with
HTTP 5xx, 524, 429, dropped connections, malformed XML and early session expiry (seeded rates), the
simulated companies' data changes (modify, delete, create), and a worker is SIGKILLed and restarted at
random intervals. Then the faults are cleared, each connection gets a final validation and a final
sync + delete reconciliation through the workers, and the soak checks:

- every record in our store equals the simulator's (count and content, per object, per company);
- no request ever exceeded a company's concurrency limit (the simulator's max in flight <= limit and no
  request refused for concurrency);
- no sync or validation run is left "running" (or "queued");

and prints the figures (runs by kind and status, faults injected, retries, recoveries, kills,
mismatches). Exit status 1 on any mismatch, stuck run or limit breach.

Run: `make soak` or `.venv/bin/python bench/soak.py --minutes 5`. Everything lives in a throwaway
VAR_DIR (SQLite and a filesystem broker). `--database-url postgres://...` uses that PostgreSQL server with
a database of the soak's own (created, then dropped; never the named one), `--broker-url redis://...` a
Redis broker with a queue of the soak's own.

`--stack postgres-redis` is the production stack: PostgreSQL (a database of the soak's own on
`--database-url`, default the local server), a redis-server of the soak's own (append-only file, as in
docker-compose.yml) as broker and rate-limit cache, three workers, beat, and the web under gunicorn with three
processes. Besides the worker kills and faults, it stops Redis (SIGTERM, 20 s) twice and takes PostgreSQL
away once: the machine's server cannot be restarted, so the soak refuses new connections to its database
(`ALTER DATABASE ... ALLOW_CONNECTIONS false`) and terminates every open one (`pg_terminate_backend`) for
20 s, which is what clients see of a restart. The simulator shares that database, so "Intacct" is down too
during it. A probe meanwhile logs in, opens the connection and support pages, asks for re-validations and
reads /healthz through gunicorn; the soak prints the pages by status (500s fail it), the lost validations
and, per outage, how long until /healthz was 200 and a task went through the queue again.
`--latency-profile page_seconds=1.2,page_rows=2000,jitter=0.2,seed=1` makes the simulator answer as slowly
as a real Intacct (see simulator/latency.py; off by default).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.db import DatabaseError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from serving import free_port  # noqa: E402

GATEWAY_PATH = "/simulator/ia/xml/xmlgw.phtml"
FAULT_KINDS = ("http5xx", "http524", "http429", "drop", "malformed", "expire_session")
LIMITS = (2, 1, 3, 2)
# Modest, varied sizes; every fourth company's bills are big enough for the two-range full read.
APBILL_SIZES = (600, 1500, 3000, 7000)
MUTABLE = {"APBILL": ("STATE", ("Paid", "Posted", "Draft", "Partially paid")),
           "CCTRANSACTION": ("DESCRIPTION", ("soak edit", "card fix", "re-coded")),
           "EEXPENSES": ("DESCRIPTION", ("soak edit", "trip", "lunch"))}


@dataclass
class Config:
    minutes: float = 5.0
    companies: int = 20
    seed: int = 8
    fault_rate: float = 0.02          # per kind, per request
    kill_min: float = 20.0            # seconds between worker kills (uniform in [min, max])
    kill_max: float = 60.0
    sync_every: tuple[float, float] = (3.0, 10.0)
    validate_every: tuple[float, float] = (20.0, 45.0)
    mutations_per_second: float = 2.0
    database_url: str | None = None
    broker_url: str | None = None
    latency_profile: str = ""         # the simulator's latency profile (simulator/latency.py); off by default
    keep: bool = False
    quiet: bool = False
    stack: str = "sqlite"             # or "postgres-redis"
    workers: int = 2
    outage_seconds: float = 20.0


@dataclass
class Figures:
    minutes: float = 0.0
    companies: int = 0
    records: int = 0
    sync_runs: dict = field(default_factory=dict)
    validation_runs: dict = field(default_factory=dict)
    faults_injected: dict = field(default_factory=dict)
    api_calls: int = 0
    retries: int = 0
    recoveries: int = 0
    validation_retries: int = 0
    kills: int = 0
    mutations: dict = field(default_factory=dict)
    max_in_flight_over_limit: list = field(default_factory=list)
    refused_for_concurrency: int = 0
    stuck_runs: list = field(default_factory=list)
    final_failures: list = field(default_factory=list)
    mismatches: int = 0
    mismatch_examples: list = field(default_factory=list)
    worker_self_exits: int = 0
    outages: list = field(default_factory=list)
    pages: dict = field(default_factory=dict)
    server_error_pages: list = field(default_factory=list)
    lost_validations: int = 0
    runs_unsent: dict = field(default_factory=dict)
    rate_limit_fail_open: int = 0

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.stuck_runs or self.max_in_flight_over_limit
                    or self.refused_for_concurrency or self.final_failures or self.server_error_pages
                    or self.lost_validations or any(o.get("recover_s") is None for o in self.outages))


def own_database(url: str, name: str) -> tuple[str, str]:
    """(admin URL on the server's 'postgres' database, the URL of a database of our own on the same server)."""
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    return admin, urlunsplit(parts._replace(path=f"/{name}"))


class RedisServer:
    """A redis-server of the soak's own on a free port, with an append-only file like docker-compose.yml's."""

    def __init__(self, directory: Path) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise SystemExit("--stack postgres-redis needs redis-server (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        log = open(self.dir / "redis.log", "a")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                                      str(self.dir), "--appendonly", "yes", "--save", ""],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.exceptions.RedisError:
                time.sleep(0.1)
        raise RuntimeError("the soak's redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # as `docker compose restart redis` does: SIGTERM, the AOF is flushed
            self.proc.wait(timeout=30)


class PageProbe:
    """Pages through gunicorn while the soak runs: login, the connection and support pages, re-validate, /healthz."""

    PASSWORD = "Soak-probe-Passw0rd!"  # noqa: S105 - a throwaway user of the soak's throwaway database

    def __init__(self, site: str, slug: str) -> None:
        import threading

        self.site, self.slug = site, slug
        self.stopped = threading.Event()
        self.statuses: Counter = Counter()
        self.server_errors: list[str] = []
        self.healthz: list[tuple[float, int]] = []
        self.thread = threading.Thread(target=self.run, daemon=True, name="page-probe")
        self.started = time.monotonic()

    def _record(self, path: str, status: int) -> None:
        self.statuses[status] += 1
        if status >= 500 and status != 503:
            self.server_errors.append(f"{time.monotonic() - self.started:.0f}s {path} {status}")

    @staticmethod
    def _token(html: str) -> str:
        marker = 'name="csrfmiddlewaretoken" value="'
        start = html.find(marker)
        return html[start + len(marker):html.find('"', start + len(marker))] if start >= 0 else ""

    def _get(self, client, path: str):
        response = client.get(path)
        self._record(path, response.status_code)
        return response

    def _post(self, client, path: str, form_path: str, data: dict):
        form = self._get(client, form_path)
        if form.status_code != 200:
            return form  # no form to fill in (the database is away): a person would not post either
        token = self._token(form.text)
        response = client.post(path, data={**data, "csrfmiddlewaretoken": token},
                               headers={"Referer": self.site + form_path})
        self._record(path, response.status_code)
        return response

    def cycle(self, n: int) -> None:
        import httpx

        with httpx.Client(base_url=self.site, timeout=30) as anonymous:
            response = anonymous.get("/healthz")
            self.healthz.append((time.monotonic(), response.status_code))
        for username, pages in (("soak-admin", (f"/organisations/{self.slug}/connection/",)),
                                ("soak-support", ("/support/",))):
            with httpx.Client(base_url=self.site, timeout=30) as client:
                self._post(client, "/accounts/login/", "/accounts/login/",
                           {"username": username, "password": self.PASSWORD})
                for path in pages:
                    self._get(client, path)
                if username == "soak-admin" and n % 8 == 0:
                    self._post(client, f"/organisations/{self.slug}/connection/revalidate/",
                               f"/organisations/{self.slug}/connection/", {})

    def run(self) -> None:
        import httpx

        n = 0
        while not self.stopped.wait(1.0):
            n += 1
            try:
                self.cycle(n)
            except httpx.HTTPError as exc:
                self.statuses[f"no answer ({type(exc).__name__})"] += 1

    def healthy_since(self, since: float) -> float | None:
        """Seconds from `since` to the first 200 from /healthz after it."""
        for at, status in self.healthz:
            if at >= since and status == 200:
                return at - since
        return None


class Soak:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.rng = random.Random(config.seed)  # noqa: S311 - a repeatable schedule, not security
        self.var_dir = Path(tempfile.mkdtemp(prefix="soak-"))
        self.queue = f"soak-{uuid.uuid4().hex[:8]}"
        self.db_name = f"soak_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.admin_db_url: str | None = None
        self.server: subprocess.Popen | None = None
        self.workers: dict[int, subprocess.Popen] = {}
        self.generation = 0
        self.figures = Figures(companies=config.companies)
        self.mutations: Counter = Counter()
        self.started = time.monotonic()
        self.redis: RedisServer | None = None
        self.web: subprocess.Popen | None = None
        self.beat: subprocess.Popen | None = None
        self.probe: PageProbe | None = None

    def say(self, text: str) -> None:
        if not self.config.quiet:
            print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    # --- processes ------------------------------------------------------------------------

    def environment(self) -> dict:
        port = free_port()
        self.site = f"http://127.0.0.1:{port}"
        self.port = port
        env = {
            "VAR_DIR": str(self.var_dir), "SITE_URL": self.site, "INTACCT_ENDPOINT_URL": self.site + GATEWAY_PATH,
            "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING", "CELERY_QUEUE": self.queue,
            # A killed worker's sync is taken over quickly; retries of inconclusive validations come soon.
            "SYNC_LEASE_SECONDS": "10", "VALIDATION_RETRY_DELAYS_SECONDS": "5,15,30",
            "INTACCT_TIMEOUT_SECONDS": "20", "INTACCT_RETRY_BUDGET_SECONDS": "60",
            "SYNC_INTERVAL_MINUTES": "100000", "VALIDATION_MONITOR_INTERVAL_SECONDS": str(10 ** 8),
            # A validation a killed worker left behind is closed after this long without progress.
            "VALIDATION_STALE_SECONDS": "45",
        }
        if self.config.database_url:
            self.admin_db_url, env["DATABASE_URL"] = own_database(self.config.database_url, self.db_name)
        if self.config.latency_profile:
            env["SIMULATOR_LATENCY_PROFILE"] = self.config.latency_profile
        if self.config.stack == "postgres-redis":
            self.redis = RedisServer(self.var_dir / "redis")
            self.redis.start()
            env["CELERY_BROKER_URL"] = env["CELERY_RESULT_BACKEND"] = self.redis.url
            # A task taken by a SIGKILLed worker comes back after a minute (production: 10), inside the soak.
            env["REDIS_VISIBILITY_TIMEOUT_SECONDS"] = "60"
            # The probe logs in twice a second or so: keep the login limits out of its way (they still run).
            env["LOGIN_RATE_LIMIT_PER_IP"] = env["LOGIN_RATE_LIMIT_PER_ACCOUNT"] = "1000000"
        elif self.config.broker_url:
            env["CELERY_BROKER_URL"] = self.config.broker_url
            env["CELERY_RESULT_BACKEND"] = self.config.broker_url
        return env

    def create_database(self) -> None:
        if not self.admin_db_url:
            return
        import psycopg

        with psycopg.connect(self.admin_db_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')

    def drop_database(self) -> None:
        if not self.admin_db_url:
            return
        import psycopg
        from django.db import connections

        connections.close_all()
        with psycopg.connect(self.admin_db_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    def start_server(self) -> None:
        log = open(self.var_dir / "server.log", "w")  # noqa: SIM115 - lives as long as the server
        # Threads enough for every slot (the in-flight counters live in the database: any number of processes).
        self.server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
             "--threads", "24", "--worker-class", "gthread", "--timeout", "120", "--log-level", "warning"],
            cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.site + "/simulator/", timeout=2)  # noqa: S310 - loopback only
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the simulator did not start:\n" + (self.var_dir / "server.log").read_text()[-3000:])

    def start_web(self) -> None:
        """The web as production runs it: gunicorn, three processes (DEBUG off, so errors are real pages)."""
        self.web_port = free_port()
        self.web_site = f"http://127.0.0.1:{self.web_port}"
        log = open(self.var_dir / "web.log", "w")  # noqa: SIM115 - lives as long as the server
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.web_port}", "--workers",
             "3", "--threads", "2", "--timeout", "60", "--log-level", "warning"],
            cwd=ROOT, env={**os.environ, "DEBUG": "false"}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.web_site + "/accounts/login/", timeout=2)  # noqa: S310 - loopback
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the web did not start:\n" + (self.var_dir / "web.log").read_text()[-3000:])

    def start_beat(self) -> None:
        log = open(self.var_dir / "beat.log", "w")  # noqa: SIM115 - lives as long as beat
        self.beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING", "--schedule",
             str(self.var_dir / "celerybeat-schedule")],
            cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start_worker(self, slot: int, *, wait: bool = False) -> None:
        self.generation += 1
        name = f"soak{slot}g{self.generation}-{self.queue}@%h"
        log = open(self.var_dir / f"worker-{slot}-{self.generation}.log", "w")  # noqa: SIM115
        self.workers[slot] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", self.queue, "-n", name,
             "--concurrency", "2", "--without-mingle", "--without-gossip", "--loglevel", "WARNING"],
            cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            from config.celery import app

            app.send_task("connector.ping", queue=self.queue).get(timeout=90)

    def kill_worker(self, slot: int) -> None:
        proc = self.workers[slot]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        self.figures.kills += 1

    def stop_all(self) -> None:
        if self.probe is not None:
            self.probe.stopped.set()
        for proc in [*self.workers.values(), self.server, self.web, self.beat,
                     self.redis.proc if self.redis else None]:
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(timeout=10)

    # --- data -----------------------------------------------------------------------------

    def build(self) -> None:
        from django.utils import timezone

        from connector import crypto, services
        from connector.models import Connection, SyncSettings, ValidationCheck, ValidationRun
        from simulator.demo import DEMO_PASSWORD, SIZES, build_company
        from simulator.models import SimCompany

        self.companies: list[tuple[str, int]] = []
        for n in range(self.config.companies):
            company_id = f"SOAK-{n:02d}"
            limit = LIMITS[n % len(LIMITS)]
            sizes = {**SIZES["soak"], "APBILL": APBILL_SIZES[n % len(APBILL_SIZES)],
                     "CCTRANSACTION": self.rng.choice((200, 400, 900)), "EEXPENSES": self.rng.choice((60, 150, 300))}
            build_company(company_id, sizes=sizes, seed=n + 1)
            SimCompany.objects.filter(company_id=company_id).update(concurrency_limit=limit)
            admin = None
            if n == 0 and self.config.stack == "postgres-redis":
                admin = services.user_create(username="soak-admin", email="admin@soak.test",
                                             password=PageProbe.PASSWORD)
                support = services.user_create(username="soak-support", email="support@soak.test",
                                               password=PageProbe.PASSWORD)
                services.support_staff_grant(user=support)
            org = services.organisation_create(name=f"Soak {n:02d}", slug=f"soak-{n:02d}", admin=admin)
            connection = services.connection_get(organisation=org)
            Connection.objects.filter(pk=connection.pk).update(
                company_id=company_id, user_id="ws_connect", password_token=crypto.encrypt(DEMO_PASSWORD),
                status=Connection.Status.CONNECTED, permission_model="role")
            run = ValidationRun.objects.create(connection=connection, status=ValidationRun.Status.PASSED,
                                               finished_at=timezone.now())
            ValidationCheck.objects.create(run=run, position=0, key="deprovisioning", label="Write permission",
                                           status=ValidationCheck.Status.SKIPPED)
            Connection.objects.filter(pk=connection.pk).update(last_validation=run)
            SyncSettings.objects.update_or_create(connection=connection, defaults={"concurrency_limit": limit})
            self.companies.append((company_id, limit))
            self.figures.records += sum(sizes.values())

    def arm_faults(self) -> None:
        from simulator.faults import set_fault
        from simulator.models import SimCompany

        for n, (company_id, _) in enumerate(self.companies):
            company = SimCompany.objects.get(company_id=company_id)
            for k, kind in enumerate(FAULT_KINDS):
                set_fault(company, kind, rate=self.config.fault_rate, seed=self.config.seed * 1000 + n * 10 + k,
                          status=(500, 502, 503, 504)[n % 4])

    def clear_faults(self) -> None:
        """Read the hit counts, then disarm every fault (again, until no request's draw writes them back)."""
        from simulator.faults import clear_faults
        from simulator.models import SimCompany

        hits: Counter = Counter()
        for company in SimCompany.objects.filter(company_id__startswith="SOAK-"):
            for fault in company.faults:
                hits[fault["kind"]] += int(fault.get("hits", 0))
        self.figures.faults_injected = {kind: hits[kind] for kind in FAULT_KINDS}
        self.figures.faults_injected["total"] = sum(hits.values())
        for _ in range(20):
            for company in SimCompany.objects.filter(company_id__startswith="SOAK-"):
                clear_faults(company)
            time.sleep(1.0)
            if not any(c.faults for c in SimCompany.objects.filter(company_id__startswith="SOAK-")):
                return
        raise RuntimeError("the simulator's faults could not be cleared")

    def mutate(self) -> None:
        from simulator import records as sim_records
        from simulator.models import SimCompany

        company_id, _ = self.rng.choice(self.companies)
        company = SimCompany.objects.get(company_id=company_id)
        name = self.rng.choice(sorted(MUTABLE))
        action = self.rng.choices(("modify", "delete", "create"), weights=(6, 2, 2))[0]
        top = sim_records.next_recordno(company, name) - 1
        try:
            if action == "modify":
                field_name, values = MUTABLE[name]
                recordno = self.rng.randint(1, top)
                sim_records.modify_record(company, name, recordno, {field_name: self.rng.choice(values)})
            elif action == "delete":
                sim_records.delete_record(company, name, self.rng.randint(1, top))
            else:
                field_name, values = MUTABLE[name]
                sim_records.create_record(company, name, {field_name: self.rng.choice(values)})
        except KeyError:
            return  # that record was deleted already
        self.mutations[action] += 1

    # --- the soak -------------------------------------------------------------------------

    def connections(self):
        from connector.models import Connection

        return list(Connection.objects.filter(company_id__startswith="SOAK-").order_by("company_id"))

    def request_sync(self, connection) -> None:
        from connector import services
        from connector.models import SyncRun

        kind = self.rng.choices((SyncRun.Kind.INCREMENTAL, SyncRun.Kind.RECONCILE, SyncRun.Kind.FULL),
                                weights=(75, 20, 5))[0]
        services.sync_request(connection=connection, kind=kind)

    def request_validation(self, connection) -> None:
        from connector import services
        from connector.models import ValidationRun

        busy = ValidationRun.objects.filter(connection=connection, status__in=("queued", "running"),
                                            created_at__gte=datetime.now(UTC) - timedelta(minutes=2)).exists()
        if not busy:
            services.validation_request(connection=connection)

    def churn(self) -> None:
        """The timed part: syncs, validations, data changes and worker kills until the deadline."""
        deadline = time.monotonic() + self.config.minutes * 60
        connections = self.connections()
        now = time.monotonic()
        next_sync = {c.pk: now + self.rng.uniform(0, 2) for c in connections}
        next_validation = {c.pk: now + self.rng.uniform(5, self.config.validate_every[1]) for c in connections}
        next_kill = now + self.rng.uniform(self.config.kill_min, self.config.kill_max)
        next_report = now + 30
        while (now := time.monotonic()) < deadline:
            try:
                self.request_some(connections, now, next_sync, next_validation)
            except DatabaseError:
                # The soak's own database is away (the PostgreSQL outage): this process waits like the others.
                from django.db import connections as db_connections

                db_connections.close_all()
                time.sleep(1.0)
            if now >= next_kill:
                slot = self.rng.choice(sorted(self.workers))
                self.kill_worker(slot)
                self.say(f"SIGKILLed worker {slot} (kill #{self.figures.kills}); restarting it")
                time.sleep(self.rng.uniform(0.5, 3.0))
                self.start_worker(slot)
                next_kill = time.monotonic() + self.rng.uniform(self.config.kill_min, self.config.kill_max)
            for slot, proc in self.workers.items():
                if proc.poll() is not None:
                    self.say(f"worker {slot} exited by itself ({proc.returncode}); restarting it")
                    self.figures.worker_self_exits += 1
                    self.start_worker(slot)
            if now >= next_report:
                try:
                    self.say(self.progress())
                except DatabaseError:
                    self.say("progress: the database is away")
                next_report = now + 30
            time.sleep(0.5)

    def request_some(self, connections, now: float, next_sync: dict, next_validation: dict) -> None:
        for connection in connections:
            if now >= next_sync[connection.pk]:
                self.request_sync(connection)
                next_sync[connection.pk] = now + self.rng.uniform(*self.config.sync_every)
            if now >= next_validation[connection.pk]:
                self.request_validation(connection)
                next_validation[connection.pk] = now + self.rng.uniform(*self.config.validate_every)
        if self.rng.random() < self.config.mutations_per_second * 0.5:
            self.mutate()

    # --- outages (--stack postgres-redis) -------------------------------------------------

    def outage_plan(self, began: float) -> list[tuple[float, str]]:
        if self.config.stack != "postgres-redis":
            return []
        span = self.config.minutes * 60
        return [(began + span * 0.2, "redis"), (began + span * 0.45, "postgres"), (began + span * 0.7, "redis")]

    def run_outages(self, plan: list[tuple[float, str]]) -> None:
        for at, what in plan:
            while time.monotonic() < at:
                time.sleep(0.2)
            seconds = self.config.outage_seconds
            began = time.monotonic()
            self.say(f"OUTAGE: {what} away for {seconds:.0f}s")
            if what == "redis":
                self.redis.stop()
                time.sleep(seconds)
                self.redis.start()
            else:
                self.postgres_away(seconds)
            restored = time.monotonic()
            recovery = self.time_to_recover(restored)
            self.figures.outages.append({"what": what, "at_s": round(began - self.began), "down_s":
                                         round(restored - began, 1), **recovery})
            self.say(f"{what} back; every worker answering and /healthz 200 after {recovery['recover_s']}s; a new "
                     f"task through the queue after {recovery['queue_s']}s")

    def postgres_away(self, seconds: float) -> None:
        """What a PostgreSQL restart looks like to clients: open connections cut, new ones refused, for a while."""
        import psycopg

        with psycopg.connect(self.admin_db_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{self.db_name}" ALLOW_CONNECTIONS false')
            try:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                                 "AND pid <> pg_backend_pid()", [self.db_name])
                    time.sleep(1.0)
            finally:
                conn.execute(f'ALTER DATABASE "{self.db_name}" ALLOW_CONNECTIONS true')

    def time_to_recover(self, restored: float, timeout: float = 240) -> dict:
        """Seconds from the service's return until every worker answers (its consumer reconnected) and /healthz
        is 200 ("recover_s"), and until a new task went through the queue, behind whatever waited there
        ("queue_s")."""
        from config.celery import app

        reconnected = through_queue = pending = None
        while time.monotonic() - restored < timeout and (reconnected is None or through_queue is None):
            if reconnected is None:
                try:
                    replies = app.control.ping(timeout=1.0)
                except Exception:  # noqa: BLE001 - the broker is still coming back
                    replies = []
                healthy = self.probe.healthy_since(restored) if self.probe else 0.0
                if len(replies) >= self.config.workers and healthy is not None:
                    reconnected = round(max(time.monotonic() - restored, healthy), 1)
            try:
                if pending is None:
                    pending = app.send_task("connector.ping", queue=self.queue)  # one, waiting its turn
                elif through_queue is None and pending.ready():
                    through_queue = round(time.monotonic() - restored, 1)
            except Exception:  # noqa: BLE001 - the broker or the result store is still coming back
                self.say("recovery probe: the queue is not answering yet")
            time.sleep(0.5)
        return {"recover_s": reconnected, "queue_s": through_queue}

    def progress(self) -> str:
        from connector.models import SyncRun, ValidationRun

        syncs = Counter(SyncRun.objects.values_list("status", flat=True))
        validations = Counter(ValidationRun.objects.values_list("status", flat=True))
        return f"sync runs {dict(syncs)}; validation runs {dict(validations)}; kills {self.figures.kills}"

    def wait_until(self, predicate, timeout: float, what: str) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.5)
        self.say(f"gave up waiting for {what} after {timeout:.0f}s")
        return False

    def settle(self) -> None:
        """Faults off, every worker up, what is in flight done; then a final validation and sync per connection."""
        from connector import monitoring, services, tasks
        from connector.models import Connection, SyncRun, SyncSettings, ValidationRun

        self.clear_faults()
        for slot, proc in self.workers.items():
            if proc.poll() is not None:
                self.start_worker(slot)

        def drained() -> bool:
            live = SyncSettings.objects.filter(active_run__isnull=False, lease_until__gt=datetime.now(UTC)).exists()
            active = ValidationRun.objects.filter(status__in=monitoring.ACTIVE_RUN_STATUSES)
            left = active.exclude(pk__in=monitoring.abandoned_runs().values("pk"))  # a killed worker's: closed below
            return not live and not left.exists() and not SyncRun.objects.filter(status="queued").exists()
        self.wait_until(drained, 240, "the syncs and validations in flight to finish")

        # The final validation goes the monitor's way (which also closes runs a killed worker left behind).
        marker = ValidationRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        connections = self.connections()
        for connection in connections:
            tasks.connection_validate_later.delay(connection.pk, ValidationRun.Trigger.MANUAL, 1, None)

        def validated() -> bool:
            done = ValidationRun.objects.filter(pk__gt=marker).exclude(status__in=monitoring.ACTIVE_RUN_STATUSES)
            return done.values("connection_id").distinct().count() == len(connections)
        self.wait_until(validated, 240, "the final validations")
        for connection in connections:
            run = ValidationRun.objects.filter(pk__gt=marker, connection=connection).order_by("-pk").first()
            if run is None or run.status != ValidationRun.Status.PASSED:
                self.figures.final_failures.append(f"final validation of {connection.company_id}: "
                                                   f"{run.status if run else 'not run'} ({run.summary if run else ''})")
        finals = {}
        for connection in self.connections():
            connection.refresh_from_db()
            if connection.status != Connection.Status.CONNECTED:
                self.figures.final_failures.append(f"{connection.company_id} is {connection.status} at the end")
            finals[connection.pk] = services.sync_request(connection=connection, kind=SyncRun.Kind.RECONCILE)[0]
        self.wait_until(lambda: all(SyncRun.objects.get(pk=r.pk).is_finished for r in finals.values()), 600,
                        "the final syncs")
        for run in SyncRun.objects.filter(pk__in=[r.pk for r in finals.values()]).select_related("connection"):
            if run.status != SyncRun.Status.SUCCEEDED:
                self.figures.final_failures.append(f"final sync of {run.connection.company_id}: {run.status} "
                                                   f"({run.summary})")

    def verify(self) -> None:
        from connector.models import SyncRun, ValidationRun

        for company_id, limit in self.companies:
            with urllib.request.urlopen(f"{self.site}/simulator/companies/{company_id}/stats/",  # noqa: S310
                                        timeout=10) as response:
                stats = json.load(response)
            if stats["max_in_flight"] > limit:
                self.figures.max_in_flight_over_limit.append(f"{company_id}: {stats['max_in_flight']} > {limit}")
            self.figures.refused_for_concurrency += stats["rejected"]
        for run in SyncRun.objects.filter(status__in=SyncRun.ACTIVE).select_related("connection"):
            self.figures.stuck_runs.append(f"sync #{run.pk} of {run.connection.company_id} {run.status}")
        for run in ValidationRun.objects.filter(status__in=("queued", "running")).select_related("connection"):
            self.figures.stuck_runs.append(f"validation #{run.pk} of {run.connection.company_id} {run.status}")
            self.figures.lost_validations += 1
        for connection in self.connections():
            for problem in mirror_mismatches(connection):
                self.figures.mismatches += 1
                if len(self.figures.mismatch_examples) < 20:
                    self.figures.mismatch_examples.append(problem)

    def tally(self) -> None:
        from django.db.models import Sum

        from connector.models import SyncRun, ValidationRun

        figures = self.figures
        figures.sync_runs = {}
        for kind, status in SyncRun.objects.values_list("kind", "status"):
            figures.sync_runs.setdefault(kind, Counter())[status] += 1
        figures.sync_runs = {kind: dict(counts) for kind, counts in figures.sync_runs.items()}
        figures.validation_runs = dict(Counter(ValidationRun.objects.values_list("status", flat=True)))
        figures.validation_retries = ValidationRun.objects.filter(trigger=ValidationRun.Trigger.RETRY).count()
        totals = SyncRun.objects.aggregate(calls=Sum("requests"), retries=Sum("retries"))
        figures.api_calls, figures.retries = totals["calls"] or 0, totals["retries"] or 0
        previous: dict[int, str] = {}
        for connection_id, status in SyncRun.objects.order_by("created_at", "id").values_list("connection_id",
                                                                                                "status"):
            if status == SyncRun.Status.SUCCEEDED and previous.get(connection_id) in ("failed", "partial"):
                figures.recoveries += 1
            if status in ("succeeded", "failed", "partial"):
                previous[connection_id] = status
        figures.mutations = dict(self.mutations)
        from connector import metrics
        from connector.models import MetricCounter

        figures.runs_unsent = {row.labels: int(row.value)
                               for row in MetricCounter.objects.filter(name=metrics.RUNS_UNSENT)}
        figures.rate_limit_fail_open = int(sum(MetricCounter.objects.filter(
            name=metrics.RATE_LIMIT_UNAVAILABLE).values_list("value", flat=True)))

    def run(self) -> Figures:
        env = self.environment()
        os.environ.update(env)
        if not self.config.database_url:
            os.environ.pop("DATABASE_URL", None)
        if not self.config.broker_url and self.redis is None:
            for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
                os.environ.pop(name, None)
        try:
            self.create_database()
            import django

            django.setup()
            from django.core.management import call_command

            call_command("migrate", "--noinput", verbosity=0)
            self.build()
            self.say(f"{len(self.companies)} companies, {self.figures.records:,} records; VAR_DIR {self.var_dir}")
            self.start_server()
            for slot in range(1, self.config.workers + 1):
                self.start_worker(slot, wait=True)
            if self.config.stack == "postgres-redis":
                self.start_web()
                self.start_beat()
                self.probe = PageProbe(self.web_site, "soak-00")
                self.probe.thread.start()
            self.arm_faults()
            self.say(f"faults armed ({self.config.fault_rate:.0%} per kind); soaking {self.config.minutes} min")
            began = self.began = time.monotonic()
            import threading

            outages = threading.Thread(target=self.run_outages, args=(self.outage_plan(began),), daemon=True)
            outages.start()
            self.churn()
            outages.join()
            self.figures.minutes = round((time.monotonic() - began) / 60, 2)
            if self.probe is not None:
                self.probe.stopped.set()
                self.probe.thread.join(timeout=60)
                self.figures.pages = {"requests": sum(self.probe.statuses.values()),
                                      "by_status": {str(k): v for k, v in sorted(self.probe.statuses.items(),
                                                                                  key=str)},
                                      "healthz_non_200": sum(1 for _, status in self.probe.healthz
                                                             if status != 200)}
                self.figures.server_error_pages = self.probe.server_errors
            self.say("churn over; clearing faults, final validation and sync per connection")
            self.settle()
            self.verify()
            self.tally()
            return self.figures
        finally:
            self.stop_all()
            if self.config.keep:
                print(f"kept {self.var_dir}")
            else:
                try:
                    self.drop_database()
                finally:
                    shutil.rmtree(self.var_dir, ignore_errors=True)


def mirror_mismatches(connection) -> list[str]:
    """How our live records of a connection differ from its simulated company, object by object."""
    from connector.models import Record
    from connector.objects import OBJECTS
    from simulator.models import SimCompany
    from simulator.records import current_records

    company = SimCompany.objects.get(company_id=connection.company_id)
    problems: list[str] = []
    for definition in OBJECTS:
        truth = current_records(company, definition.name)
        ours = {r.recordno: r.data for r in Record.objects.filter(connection=connection, object_name=definition.name,
                                                                   deleted_at__isnull=True)}
        for recordno in sorted(set(ours) ^ set(truth)):
            where = "only ours" if recordno in ours else "missing"
            problems.append(f"{company.company_id} {definition.name} #{recordno} {where}")
        for recordno in sorted(set(ours) & set(truth)):
            lowered = {k.lower(): v for k, v in truth[recordno].items()}
            for name in definition.fields:
                expected = str(lowered.get(name.lower(), "") or "")
                got = str(ours[recordno].get(name) or "")
                if got != expected:
                    problems.append(f"{company.company_id} {definition.name} #{recordno} {name}: {got!r} != "
                                    f"{expected!r}")
    return problems


def report(figures: Figures, config: Config) -> str:
    lines = [
        f"soak ({config.stack}): {figures.companies} companies, {figures.records:,} records, {figures.minutes} min "
        f"of faults ({config.fault_rate:.0%} of requests per fault kind), {config.workers} workers",
        f"sync runs: {json.dumps(figures.sync_runs, sort_keys=True)}",
        f"validation runs: {json.dumps(figures.validation_runs, sort_keys=True)} "
        f"(of which retries of inconclusive runs: {figures.validation_retries})",
        f"faults injected: {json.dumps(figures.faults_injected)}",
        f"API calls: {figures.api_calls:,}; client retries: {figures.retries:,}; "
        f"recoveries (succeeded after a failed/partial run): {figures.recoveries}",
        f"workers SIGKILLed and restarted: {figures.kills}; data changes: {json.dumps(figures.mutations)}",
        f"concurrency: over the limit {len(figures.max_in_flight_over_limit)} "
        f"{figures.max_in_flight_over_limit or ''}, refused for concurrency {figures.refused_for_concurrency}",
        f"stuck runs: {len(figures.stuck_runs)} {figures.stuck_runs[:10] or ''}",
        f"final validation/sync failures: {len(figures.final_failures)} {figures.final_failures[:10] or ''}",
        f"mismatches: {figures.mismatches} {figures.mismatch_examples[:10] or ''}",
        f"lost validations (queued or running at the end): {figures.lost_validations}; "
        f"workers that exited by themselves: {figures.worker_self_exits}",
    ]
    if config.stack == "postgres-redis":
        lines += [f"outage: {o['what']} at {o['at_s']}s, away {o['down_s']}s; every worker answering and "
                  f"/healthz 200 after {o['recover_s']}s; a new task through the queue (behind the backlog) after "
                  f"{o['queue_s']}s" for o in figures.outages]
        lines.append(f"runs whose task could not be sent at once (re-sent by the sweep): "
                     f"{json.dumps(figures.runs_unsent)}; logins/connects let through by the limiter with "
                     f"Redis down: {figures.rate_limit_fail_open}")
        lines.append(f"pages through gunicorn: {json.dumps(figures.pages)}; 5xx other than 503: "
                     f"{len(figures.server_error_pages)} {figures.server_error_pages[:10] or ''}")
    lines.append("RESULT: " + ("OK" if figures.ok else "FAILED"))
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> tuple[Config, str | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--companies", type=int, default=20)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--fault-rate", type=float, default=0.02, help="probability per fault kind per request")
    parser.add_argument("--kill-every", type=float, nargs=2, default=(20.0, 60.0), metavar=("MIN", "MAX"),
                        help="seconds between worker SIGKILLs")
    parser.add_argument("--database-url", help="a PostgreSQL server URL; the soak makes a database of its own there")
    parser.add_argument("--broker-url", help="a Redis URL for the Celery broker (a queue of the soak's own)")
    parser.add_argument("--stack", choices=("sqlite", "postgres-redis"), default="sqlite",
                        help="postgres-redis: PostgreSQL + a private Redis, 3 workers, beat, gunicorn web; Redis "
                             "stopped twice and PostgreSQL taken away once during the run")
    parser.add_argument("--latency-profile", default="",
                        help="the simulator's latency profile, e.g. page_seconds=1.2,page_rows=2000,jitter=0.2,seed=1")
    parser.add_argument("--json", help="also write the figures to this file as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the VAR_DIR (and database) for a look afterwards")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    database_url = args.database_url
    if args.stack == "postgres-redis":
        database_url = database_url or "postgres://postgres@127.0.0.1:5432/postgres"
    config = Config(minutes=args.minutes, companies=args.companies, seed=args.seed, fault_rate=args.fault_rate,
                    kill_min=args.kill_every[0], kill_max=args.kill_every[1], database_url=database_url,
                    broker_url=args.broker_url, latency_profile=args.latency_profile, keep=args.keep, quiet=args.quiet,
                    stack=args.stack, workers=3 if args.stack == "postgres-redis" else 2)
    return config, args.json


def main(argv: list[str] | None = None) -> int:
    config, json_path = parse_args(argv)
    started = datetime.now(UTC)
    figures = Soak(config).run()
    print(f"\n== soak finished {started:%Y-%m-%d %H:%M} UTC ==")
    print(report(figures, config))
    if json_path:
        Path(json_path).write_text(json.dumps({**asdict(figures), "ok": figures.ok, "started": started.isoformat()},
                                              indent=2, default=str))
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
