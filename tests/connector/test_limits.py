"""The company request slots of connector/limits.py: a slot taken is always given back."""

from __future__ import annotations

import time

import pytest

from connector import limits
from connector.models import CompanySlot

pytestmark = pytest.mark.django_db


def held_slots(key: str) -> int:
    return CompanySlot.objects.filter(company_key=key).exclude(holder="").count()


def test_a_slot_given_back_for_a_block_and_taken_again_is_released_at_the_end():
    """A full read gives the object's slot back while its range readers run, then takes one again: once
    the object is done no slot may stay held (a leaked slot blocked the company's next object until its
    lease lapsed, ~75 s: seen in the fleet benchmark)."""
    with limits.holding_slot("ACME", 1):
        assert held_slots("ACME") == 1
        with limits.not_holding_slot("ACME"):
            assert held_slots("ACME") == 0
            with limits.holding_slot("ACME", 1):  # a range reader, in effect
                assert held_slots("ACME") == 1
        assert held_slots("ACME") == 1
    assert held_slots("ACME") == 0
    started = time.monotonic()
    slot_id, holder = limits.acquire("ACME", 1, wait=2)
    assert time.monotonic() - started < 1
    limits.release(slot_id, holder)


def test_nested_holding_of_the_same_company_takes_one_slot():
    with limits.holding_slot("ACME", 2), limits.holding_slot("ACME", 2):
        assert held_slots("ACME") == 1
    assert held_slots("ACME") == 0


@pytest.mark.django_db(transaction=True)
def test_a_slot_freed_by_one_thread_goes_straight_to_a_waiting_thread_of_the_same_process():
    """The readers of one sync pass the company's slots to each other: the waiter wakes at once and takes
    the slot without a database write (on SQLite every write waits for the page being stored)."""
    import threading

    from django.db import connection

    slot_id, holder = limits.acquire("HAND", 1, wait=2)
    got: dict = {}

    def waiter() -> None:
        try:
            started = time.monotonic()
            got["slot"] = limits.acquire("HAND", 1, wait=10)
            got["waited"] = time.monotonic() - started
        finally:
            connection.close()

    thread = threading.Thread(target=waiter)
    thread.start()
    deadline = time.monotonic() + 5
    while not limits.waiting_for("HAND") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert limits.waiting_for("HAND") == 1
    time.sleep(0.3)  # the waiter's back-off has grown: only a hand-over wakes it quickly now
    freed_at = time.monotonic()
    limits.release(slot_id, holder, "HAND")
    thread.join(timeout=5)
    assert got["slot"] == (slot_id, holder)  # the same row, untouched: handed over, not written twice
    assert time.monotonic() - freed_at < 0.5
    assert CompanySlot.objects.get(id=slot_id).holder == holder  # still held, by the waiter now
    limits.release(*got["slot"], "HAND")  # nobody waits: back to the database
    assert held_slots("HAND") == 0


@pytest.mark.django_db(transaction=True)
def test_a_waiter_that_gives_up_leaves_no_slot_stranded():
    import threading

    from django.db import connection

    slot_id, holder = limits.acquire("GIVEUP", 1, wait=2)
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            limits.acquire("GIVEUP", 1, wait=0.3)
        except limits.SlotTimeout as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=waiter)
    thread.start()
    thread.join(timeout=5)
    assert errors and limits.waiting_for("GIVEUP") == 0
    limits.release(slot_id, holder, "GIVEUP")
    assert held_slots("GIVEUP") == 0
    again = limits.acquire("GIVEUP", 1, wait=1)
    limits.release(*again, "GIVEUP")
    assert held_slots("GIVEUP") == 0


@pytest.mark.django_db(transaction=True)
def test_a_waiter_gets_a_slot_soon_after_the_company_s_slot_rows_were_removed():
    """Slot rows removed while a sync waits (a database reset under a running worker, an operator clearing a
    stuck company) are made again: the waiter is not left polling nothing until its whole wait is over."""
    import threading

    from django.db import connection

    limits.acquire("GONE", 1, wait=2)  # held by someone who will never give it back
    got: dict = {}

    def waiter() -> None:
        try:
            started = time.monotonic()
            got["slot"] = limits.acquire("GONE", 1, wait=30)
            got["waited"] = time.monotonic() - started
        except limits.SlotTimeout as exc:
            got["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=waiter)
    thread.start()
    deadline = time.monotonic() + 5
    while not limits.waiting_for("GONE") and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)  # the waiter polls the rows it made at its start
    removed_at = time.monotonic()
    CompanySlot.objects.filter(company_key="GONE").delete()
    thread.join(timeout=30)
    assert "slot" in got, got
    assert time.monotonic() - removed_at < 5
    limits.release(*got["slot"], "GONE")
    assert held_slots("GONE") == 0


def test_slot_rows_gone_after_this_process_saw_them_are_made_again_at_once():
    """The slot rows are looked for once per process; rows deleted since (a table emptied) are created again
    on the first wait, not after the whole wait for a slot that can never come free."""
    slot_id, holder = limits.acquire("GONE-CO", 2, wait=2)
    limits.release(slot_id, holder)
    CompanySlot.objects.filter(company_key="GONE-CO").delete()
    started = time.monotonic()
    slot_id, holder = limits.acquire("GONE-CO", 2, wait=5)
    assert time.monotonic() - started < 1
    assert CompanySlot.objects.filter(company_key="GONE-CO").count() == 2
    assert held_slots("GONE-CO") == 1
    limits.release(slot_id, holder)
    assert held_slots("GONE-CO") == 0
