"""The company concurrency limit under gunicorn with several processes (issue 12).

The simulator runs as a real gunicorn server (3 worker processes × 4 threads) on a SQLite file of its own,
with a latency profile that makes every answer take about a second, so concurrent requests overlap.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = "/simulator/ia/xml/xmlgw.phtml"
COMPANY = "MULTI-CO"
LIMIT = 3
# Long enough that all sixteen requests of a burst reach gunicorn while the first ones are still answered, even
# on a loaded CI machine (at 1 s, requests arriving over a second apart were served as a second wave).
ANSWER_SECONDS = 2.5


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn serving the simulator from its own SQLite file; ``shell`` runs code against that database."""

    def __init__(self, var_dir: Path) -> None:
        self.port = _free_port()
        self.site = f"http://127.0.0.1:{self.port}"
        self.sender_password = secrets.token_urlsafe(16)
        self.env = {
            **os.environ,
            "VAR_DIR": str(var_dir),
            "DATABASE_URL": f"sqlite:///{var_dir / 'simulator.sqlite3'}",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "INTACCT_SENDER_ID": "MultiSender",
            "INTACCT_SENDER_PASSWORD": self.sender_password,
            "LOG_LEVEL": "WARNING",
            # Every answer takes a second (no jitter): concurrent requests overlap for sure.
            "SIMULATOR_LATENCY_PROFILE": f"base={ANSWER_SECONDS},page_seconds=0,jitter=0",
            # A crashed worker's ticket lapses after this long if nothing frees it earlier.
            "SIMULATOR_SLOT_LEASE_SECONDS": "600",
        }
        self.process: subprocess.Popen | None = None

    def shell(self, code: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120, check=True,
        )
        return done.stdout

    def start(self) -> None:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env,
                       check=True, timeout=180)
        self.shell(
            "from simulator.demo import build_company\n"
            f"build_company({COMPANY!r}, sizes={{'APBILL': 50}}, concurrency_limit={LIMIT})\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "3", "--threads", "4", "--worker-class", "gthread", "--timeout", "60",
             "--log-level", "warning"],
            cwd=ROOT, env=self.env, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.site + "/simulator/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def stats(self) -> dict:
        return httpx.get(f"{self.site}/simulator/companies/{COMPANY}/stats/", timeout=10).json()

    def reset_stats(self) -> None:
        self.shell(f"from simulator.inflight import inflight_reset; inflight_reset({COMPANY!r})")

    def set_queue(self, seconds: float) -> None:
        self.shell(
            "from simulator.models import SimCompany\n"
            f"SimCompany.objects.filter(company_id={COMPANY!r}).update(concurrency_queue_seconds={seconds})\n"
        )

    def request_xml(self) -> bytes:
        return (
            "<?xml version='1.0' encoding='UTF-8'?><request><control><senderid>MultiSender</senderid>"
            f"<password>{self.sender_password}</password><controlid>c1</controlid><uniqueid>false</uniqueid>"
            "<dtdversion>3.0</dtdversion></control><operation><authentication><login><userid>ws_connect</userid>"
            f"<companyid>{COMPANY}</companyid><password>Demo-Connect-2024!</password></login></authentication>"
            "<content><function controlid='f1'><readByQuery><object>DEPARTMENT</object><fields>RECORDNO</fields>"
            "<query></query><pagesize>1</pagesize></readByQuery></function></content></operation></request>"
        ).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("multiprocess"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def burst(server: Server, count: int) -> list[tuple[int, str, str, float]]:
    """``count`` requests released at the same moment: (status, errorno, process id, seconds) each."""
    gate = threading.Barrier(count)
    results: list[tuple[int, str, str, float]] = []
    lock = threading.Lock()

    def one() -> None:
        with httpx.Client(timeout=120) as http:
            gate.wait()
            started = time.monotonic()
            try:
                response = http.post(server.site + GATEWAY, content=server.request_xml(),
                                     headers={"Content-Type": "application/xml"})
            except httpx.HTTPError:
                with lock:
                    results.append((0, "connection lost", "", time.monotonic() - started))  # a killed worker
                return
            took = time.monotonic() - started
        errorno = "".join(etree.fromstring(response.content).xpath("//errorno/text()"))
        with lock:
            results.append((response.status_code, errorno, response.headers.get("X-Simulator-Process", ""), took))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_sixteen_at_once_exactly_the_limit_is_served_across_processes(server):
    server.set_queue(0)
    server.reset_stats()
    results = burst(server, 16)
    served = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] != 200]
    assert len(served) == LIMIT, results
    assert all(r[0] == 429 and r[1] == "GW-0010" for r in refused), refused
    # The requests reached more than one server process: the limit is not a per-process count.
    assert len({r[2] for r in results}) >= 2, results
    assert all(r[3] >= ANSWER_SECONDS * 0.95 for r in served)
    stats = server.stats()
    assert stats["max_in_flight"] == LIMIT
    assert (stats["accepted"], stats["rejected"], stats["in_flight"]) == (LIMIT, 16 - LIMIT, 0)


def test_with_the_queue_on_every_request_waits_for_a_slot_and_none_is_refused(server):
    server.set_queue(30)
    server.reset_stats()
    started = time.monotonic()
    results = burst(server, 16)
    elapsed = time.monotonic() - started
    server.set_queue(0)
    assert [r[0] for r in results] == [200] * 16, results
    stats = server.stats()
    assert stats["max_in_flight"] == LIMIT and stats["rejected"] == 0 and stats["accepted"] == 16
    assert stats["queued"] >= 1  # some waited (how many depends on when gunicorn picked each one up)
    # Never more than LIMIT at once: 16 one-second answers need at least ceil(16 / 3) = 6 seconds.
    assert elapsed >= 6 * ANSWER_SECONDS * 0.95


def test_a_killed_worker_does_not_keep_its_slots(server):
    """SIGKILL every worker while they hold all the company's slots: the tickets of the dead are freed."""
    server.set_queue(0)
    server.reset_stats()
    holders = threading.Thread(target=burst, args=(server, LIMIT))
    holders.start()
    deadline = time.monotonic() + 10
    while server.stats()["in_flight"] < LIMIT and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.stats()["in_flight"] == LIMIT
    for pid in server.worker_pids():
        os.kill(pid, signal.SIGKILL)
    holders.join()
    # The tickets still look held (their lease runs 10 minutes) until a request finds their processes gone.
    deadline = time.monotonic() + 30
    status = 0
    while time.monotonic() < deadline:
        try:
            status = httpx.post(server.site + GATEWAY, content=server.request_xml(), timeout=30).status_code
            break
        except httpx.HTTPError:
            time.sleep(0.3)  # the master is starting new workers
    assert status == 200
    stats = server.stats()
    assert stats["expired"] == LIMIT and stats["in_flight"] == 0
