"""No more than a company's concurrency limit of Intacct requests in flight, across every worker.

A DB-backed counting semaphore: one row per slot (company, n); a request takes a slot with a conditional
UPDATE that succeeds only if the slot is free or its lease lapsed, and frees it with another. It works
the same on SQLite and PostgreSQL and needs no broker. A worker killed while holding a slot loses it when
the lease lapses (a little longer than the client's request timeout), or at once when the holder was a
process on this host that no longer exists.
"""
from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from connector.models import CompanySlot

_HOST = socket.gethostname()
_random = random.Random()  # noqa: S311 - back-off jitter, not security
# A slot given back by a thread of this process wakes this process's waiters at once (the readers of one
# sync hand slots to each other many times a second); slots freed by other processes are seen by polling.
_freed = threading.Condition()
_freed_count = 0
_waiting: dict[str, int] = {}  # company key -> threads of this process waiting for one of its slots
_handed: dict[str, list[tuple[int, str]]] = {}  # slots released to those waiters: (id, holder)
_renewed: dict[int, float] = {}  # slot id -> when this process last set its lease (monotonic)
_ensured: set[tuple[str, int]] = set()  # (company key, limit) whose slot rows this process has seen exist


class SlotTimeout(Exception):
    """No slot came free in time (the company is saturated by other syncs)."""


def company_key(company_id: str) -> str:
    """Intacct company IDs are case-insensitive and often pasted with spaces."""
    return company_id.strip().upper()


def _ensure_slots(key: str, limit: int) -> int:
    """Create the company's slot rows up to ``limit`` (looked for once per process: a sync takes a slot a dozen
    times); returns how many this call created."""
    if (key, limit) in _ensured:
        return 0
    created = 0
    existing = set(CompanySlot.objects.filter(company_key=key).values_list("slot", flat=True))
    for number in range(limit):
        if number not in existing:
            try:
                with transaction.atomic():
                    CompanySlot.objects.create(company_key=key, slot=number)
                created += 1
            except IntegrityError:
                pass  # another process created it first
    _ensured.add((key, limit))
    return created


def _holder() -> str:
    return f"{_HOST}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


def _free_dead_local_holders(key: str) -> None:
    """Free slots held by processes of this host that no longer exist (a SIGKILLed worker)."""
    for slot_id, holder in CompanySlot.objects.filter(company_key=key).exclude(holder="").values_list("id", "holder"):
        host, _, rest = holder.partition(":")
        pid = rest.partition(":")[0]
        if host != _HOST or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            CompanySlot.objects.filter(id=slot_id, holder=holder).update(holder="", lease_until=None)
        except PermissionError:
            continue


def acquire(key: str, limit: int, *, wait: float | None = None) -> tuple[int, str]:
    """Take one of the company's ``limit`` slots, waiting (with jittered back-off) until one is free."""
    with _freed:
        _waiting[key] = _waiting.get(key, 0) + 1
    try:
        return _acquire(key, limit, wait)
    finally:
        with _freed:
            _waiting[key] -= 1
            leftovers = _handed.pop(key, []) if not _waiting[key] else []
        for slot_id, holder in leftovers:  # handed over as this waiter took another: back to everyone
            _release_row(slot_id, holder)


def _acquire(key: str, limit: int, wait: float | None) -> tuple[int, str]:
    lease = timedelta(seconds=settings.SYNC_SLOT_LEASE_SECONDS)
    wait = settings.SYNC_SLOT_WAIT_SECONDS if wait is None else wait
    holder = _holder()
    deadline = time.monotonic() + wait
    delay = 0.005
    last_sweep = time.monotonic()
    # Rows seen once may have gone since (a table emptied between tests): looked for again when none is free.
    checked = (key, limit) not in _ensured
    _ensure_slots(key, limit)
    while True:
        with _freed:
            seen = _freed_count
            handed = _handed.get(key)
            taken_over = handed.pop() if handed else None
        if taken_over is not None:
            slot_id, holder_of_slot = taken_over
            if time.monotonic() - _renewed.get(slot_id, 0.0) > settings.SYNC_SLOT_LEASE_SECONDS / 3:
                CompanySlot.objects.filter(id=slot_id, holder=holder_of_slot).update(lease_until=timezone.now() + lease)
                _renewed[slot_id] = time.monotonic()
            return slot_id, holder_of_slot
        now = timezone.now()
        free = (CompanySlot.objects.filter(company_key=key, slot__lt=limit)
                .filter(Q(holder="") | Q(lease_until__lt=now)).values_list("id", flat=True))
        for slot_id in free:
            taken = CompanySlot.objects.filter(id=slot_id).filter(Q(holder="") | Q(lease_until__lt=now)).update(
                holder=holder, lease_until=now + lease)
            if taken == 1:
                _renewed[slot_id] = time.monotonic()
                return slot_id, holder
        if not checked:
            checked = True
            _ensured.discard((key, limit))
            if _ensure_slots(key, limit):
                continue
        if time.monotonic() > deadline:
            raise SlotTimeout(f"no request slot of {limit} came free within {wait:.0f}s")
        if time.monotonic() - last_sweep > 1.0:
            _free_dead_local_holders(key)
            _ensured.discard((key, limit))  # rows removed while we wait (a reset) are made again
            _ensure_slots(key, limit)
            last_sweep = time.monotonic()
        with _freed:
            if _freed_count == seen:
                _freed.wait(timeout=_random.uniform(0, delay))
        delay = min(0.1, delay * 2)


def waiting_for(key: str) -> int:
    """Threads of this process waiting for one of the company's slots."""
    with _freed:
        return _waiting.get(key, 0)


def release(slot_id: int, holder: str, key: str | None = None) -> None:
    """Give a slot back (only if we still hold it). With the company's ``key``, a thread of this process
    waiting for one of its slots gets it directly: no database write for either (the readers of one sync
    pass slots to each other several times a second, and on SQLite every write waits for the page being
    stored)."""
    global _freed_count
    with _freed:
        if key is not None and _waiting.get(key):
            _handed.setdefault(key, []).append((slot_id, holder))
            _freed_count += 1
            _freed.notify_all()
            return
    _release_row(slot_id, holder)


def _release_row(slot_id: int, holder: str) -> None:
    global _freed_count
    CompanySlot.objects.filter(id=slot_id, holder=holder).update(holder="", lease_until=None)
    _renewed.pop(slot_id, None)
    with _freed:
        _freed_count += 1
        _freed.notify_all()


_held = threading.local()


@contextmanager
def company_slot(key: str, limit: int) -> Iterator[None]:
    """Hold one of the company's request slots for the duration of the block (one request).

    Inside ``holding_slot`` for the same company the thread already holds a slot: nothing to take, the
    lease is only renewed now and then. That spares a busy reader two writes per request.
    """
    held = getattr(_held, "slots", {}).get(key)
    if held is not None:
        slot_id, holder, renewed = held
        if time.monotonic() - renewed > settings.SYNC_SLOT_LEASE_SECONDS / 3:
            CompanySlot.objects.filter(id=slot_id, holder=holder).update(
                lease_until=timezone.now() + timedelta(seconds=settings.SYNC_SLOT_LEASE_SECONDS))
            _held.slots[key] = (slot_id, holder, time.monotonic())
        yield
        return
    slot_id, holder = acquire(key, limit)
    try:
        yield
    finally:
        release(slot_id, holder, key)


@contextmanager
def holding_slot(company_id: str, limit: int) -> Iterator[None]:
    """Keep one of the company's slots for this thread across many requests (a sequential reader)."""
    key = company_key(company_id)
    slots = _held.__dict__.setdefault("slots", {})
    if key in slots:
        yield
        return
    slot_id, holder = acquire(key, max(1, limit))
    slots[key] = (slot_id, holder, time.monotonic())
    try:
        yield
    finally:
        # Give back the slot held now: not_holding_slot may have swapped the first one for another.
        held = slots.pop(key, None)
        if held is not None:
            slot_id, holder = held[0], held[1]
        release(slot_id, holder, key)


def request_slot_for(company_id: str, limit: int) -> Callable[[], AbstractContextManager[object]]:
    """The client's ``request_slot`` hook for one company."""
    key = company_key(company_id)
    return lambda: company_slot(key, max(1, limit))


@contextmanager
def not_holding_slot(company_id: str) -> Iterator[None]:
    """Give this thread's held slot back for the block (while helper threads take the slots)."""
    key = company_key(company_id)
    held = getattr(_held, "slots", {}).pop(key, None)
    if held is not None:
        release(held[0], held[1], key)
    try:
        yield
    finally:
        if held is not None:
            slot_id, holder = acquire(key, 1 if held is None else _limit_of(key))
            _held.slots[key] = (slot_id, holder, time.monotonic())


def _limit_of(key: str) -> int:
    return CompanySlot.objects.filter(company_key=key).count() or 1

