"""The concurrency queue, lapsed slots and the latency profile, in one process (issue 12).

The multi-process proof is test_multiprocess.py; these pin the rules down quickly.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from simulator.inflight import holding, inflight_stats, set_holder, try_enter
from simulator.latency import LatencyProfile, parse_profile, results_of
from simulator.models import CompanyLoad, SimCompany
from tests.simulator.conftest import envelope, post, text, tree

pytestmark = pytest.mark.django_db(transaction=True)
RBQ = (
    '<function controlid="q"><readByQuery><object>DEPARTMENT</object><fields>RECORDNO</fields>'
    "<query></query><pagesize>{n}</pagesize></readByQuery></function>"
)
GLACCOUNTS = RBQ.format(n=10).replace("DEPARTMENT", "GLACCOUNT")


def release_after(company_id: str, tickets: int, seconds: float) -> threading.Thread:
    """Hold ``tickets`` slots in another thread for ``seconds``."""
    ready = threading.Event()

    def run() -> None:
        from django.db import connection

        with holding(company_id, tickets):
            ready.set()
            time.sleep(seconds)
        connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    ready.wait(5)
    return thread


def test_queued_request_waits_for_a_slot_then_is_served(client, company):
    SimCompany.objects.filter(pk=company.pk).update(concurrency_queue_seconds=5)
    holder = release_after("TEST-CO", 2, 0.6)
    started = time.monotonic()
    response = post(client, envelope(RBQ.format(n=1)))
    waited = time.monotonic() - started
    holder.join()
    assert response.status_code == 200 and text(tree(response), "//result/status") == "success"
    assert waited >= 0.5
    stats = inflight_stats("TEST-CO")
    assert (stats["queued"], stats["rejected"], stats["max_in_flight"]) == (1, 0, 2)
    # The wait is not the simulator's own work time.
    assert float(response["X-Simulator-Time-Ms"]) < waited * 1000 - 300


def test_queue_gives_up_after_its_wait_with_429(client, company):
    SimCompany.objects.filter(pk=company.pk).update(concurrency_queue_seconds=0.3)
    holder = release_after("TEST-CO", 2, 1.5)
    started = time.monotonic()
    response = post(client, envelope(RBQ.format(n=1)))
    waited = time.monotonic() - started
    holder.join()
    assert response.status_code == 429 and text(tree(response), "//errorno") == "GW-0010"
    assert 0.3 <= waited < 1.2
    assert inflight_stats("TEST-CO")["rejected"] == 1


def test_without_a_queue_the_refusal_is_immediate(client, company):
    with holding("TEST-CO", 2):
        started = time.monotonic()
        response = post(client, envelope(RBQ.format(n=1)))
    assert response.status_code == 429 and time.monotonic() - started < 0.5


def test_a_slot_whose_lease_lapsed_is_freed(client, company):
    SimCompany.objects.filter(pk=company.pk).update(concurrency_limit=1)
    set_holder("TEST-CO", "another-host:4242:abc", time.time() - 1)  # a crashed host's request
    assert post(client, envelope(RBQ.format(n=1))).status_code == 200
    assert inflight_stats("TEST-CO")["expired"] == 1


def test_a_live_lease_of_another_host_is_respected(client, company):
    SimCompany.objects.filter(pk=company.pk).update(concurrency_limit=1)
    set_holder("TEST-CO", "another-host:4242:abc", time.time() + 60)
    assert post(client, envelope(RBQ.format(n=1))).status_code == 429


def test_a_slot_of_a_dead_process_on_this_host_is_freed_at_once(client, company):
    import socket

    SimCompany.objects.filter(pk=company.pk).update(concurrency_limit=1)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    set_holder("TEST-CO", f"{socket.gethostname()}:{gone.stdout.strip()}:abc", time.time() + 600)
    assert post(client, envelope(RBQ.format(n=1))).status_code == 200
    assert inflight_stats("TEST-CO")["expired"] == 1


def test_tickets_are_counted_exactly_under_threads(company):
    """40 threads racing for 3 slots: never more than 3 held, and the maximum is exactly 3."""
    SimCompany.objects.filter(pk=company.pk).update(concurrency_limit=3)
    from django.db import connection

    held: list[int] = []
    lock = threading.Lock()
    current = [0]

    def one() -> None:
        ticket = try_enter("TEST-CO", 3, wait=10)
        assert ticket is not None
        with lock:
            current[0] += 1
            held.append(current[0])
        time.sleep(0.02)
        with lock:
            current[0] -= 1
        from simulator.inflight import leave

        leave("TEST-CO", ticket)
        connection.close()

    threads = [threading.Thread(target=one) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = inflight_stats("TEST-CO")
    assert max(held) <= 3 and stats["max_in_flight"] == 3 and stats["accepted"] == 40 and stats["in_flight"] == 0


# --- Latency profile --------------------------------------------------------------------------------
def test_profile_parses_and_refuses_nonsense():
    profile = parse_profile("page_seconds=1.2,page_rows=2000,base=0.05,jitter=0.2,seed=7,objects=EMPLOYEE:1.5")
    assert profile == LatencyProfile(1.2, 2000, 0.05, 0.2, 7, {"EMPLOYEE": 1.5})
    assert parse_profile("") is None and parse_profile("off") is None
    for bad in ("page_seconds", "speed=3", "jitter=1.5", "page_seconds=-1"):
        with pytest.raises(ValueError):
            parse_profile(bad)


def test_time_follows_page_size_object_and_seeded_jitter():
    profile = LatencyProfile(page_seconds=1.2, page_rows=2000, base=0.0, jitter=0.2, seed=7, objects={"EMP": 2.0})
    assert profile.nominal([("APBILL", 2000)]) == pytest.approx(1.2)
    assert profile.nominal([("APBILL", 500)]) == pytest.approx(0.3)
    assert profile.nominal([("EMP", 500)]) == pytest.approx(0.6)
    times = [profile.seconds("CO", f"<request><control/>{i}</request>".encode(), [("APBILL", 2000)])
             for i in range(200)]
    assert all(0.96 <= t <= 1.44 for t in times)
    assert 1.1 < sum(times) / len(times) < 1.3 and len({round(t, 6) for t in times}) > 150
    # Seeded: the same request takes the same time in any process; another seed, another time.
    again = profile.seconds("CO", b"<request><control/>5</request>", [("APBILL", 2000)])
    assert again == times[5]
    other = LatencyProfile(seed=8).seconds("CO", b"<request><control/>5</request>", [("APBILL", 2000)])
    assert other != again


def test_results_are_read_from_the_answer():
    body = (b'<response><operation><result><data listtype="APBILL" totalcount="9" offset="0" count="2" '
            b'numremaining="7"><APBILL/></data></result><result><data listtype="department" count="0" '
            b'totalcount="40" numremaining="0" resultId=""/></result></operation></response>')
    assert results_of(body) == [("APBILL", 2), ("department", 0)]


def test_the_gateway_answers_after_the_profile_time_and_counts_it(client, company, settings):
    settings.SIMULATOR_LATENCY_PROFILE = "page_seconds=0.5,page_rows=10,jitter=0.1,seed=3"
    started = time.monotonic()
    response = post(client, envelope(GLACCOUNTS))
    took = time.monotonic() - started
    assert text(tree(response), "//result/data/@count") == "10"
    assert 0.45 <= took < 1.5
    added = CompanyLoad.objects.get(company_id="TEST-CO").latency_seconds
    assert 0.45 <= added <= 0.55 and took >= added
    # Half the page, half the time.
    post(client, envelope(GLACCOUNTS.replace("<pagesize>10<", "<pagesize>5<")))
    assert 0.45 + 0.225 <= CompanyLoad.objects.get(company_id="TEST-CO").latency_seconds <= 0.55 + 0.275
    # Held while its slot is held: the profile's time is inside the in-flight window.
    assert float(response["X-Simulator-Time-Ms"]) < 400


def test_latency_is_off_by_default(client, company):
    started = time.monotonic()
    post(client, envelope(RBQ.format(n=10)))
    assert time.monotonic() - started < 0.5
    assert CompanyLoad.objects.get(company_id="TEST-CO").latency_seconds == 0
