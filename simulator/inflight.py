"""A company's requests in flight, held in the database so every server process and host sees one count.

Each admitted request holds a *ticket* in the company's ``CompanyLoad`` row until it has answered. The
row is locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's write lock, taken at ``BEGIN IMMEDIATE``)
while a ticket is taken or given back, so the limit holds across gunicorn workers and hosts, and the
in-flight count and its maximum are exact, not per process.

A ticket carries a lease: a process that dies while answering (SIGKILL, a crashed host) cannot give its
ticket back, so the ticket lapses when its lease ends (``SIMULATOR_SLOT_LEASE_SECONDS``), or at once when
its holder was a process of this host that no longer exists.

The optional queue: a request may wait up to the company's ``concurrency_queue_seconds`` for a ticket
before it is answered 429 GW-0010.
"""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import IntegrityError, transaction

from simulator.models import CompanyLoad

_HOST = socket.gethostname()
_jitter = random.Random()  # noqa: S311 - poll spacing, not security
STAT_FIELDS = ("max_in_flight", "accepted", "rejected", "queued", "expired", "latency_seconds")


def lease_seconds() -> float:
    return float(settings.SIMULATOR_SLOT_LEASE_SECONDS)


def _key(company_id: str) -> str:
    return company_id.strip().upper()


def _ticket() -> str:
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex}"


def _holder_gone(ticket: str) -> bool:
    """True when the ticket's holder was a process of this host that no longer exists."""
    host, _, rest = ticket.partition(":")
    pid = rest.partition(":")[0]
    if host != _HOST or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _locked_row(key: str) -> CompanyLoad:
    """The company's row, locked until the surrounding transaction ends (created on first use)."""
    row = CompanyLoad.objects.select_for_update().filter(company_id=key).first()
    if row is None:
        try:
            with transaction.atomic():
                CompanyLoad.objects.create(company_id=key)
        except IntegrityError:
            pass  # another process created it first
        row = CompanyLoad.objects.select_for_update().get(company_id=key)
    return row


def _prune(row: CompanyLoad, now: float) -> None:
    """Drop tickets whose lease lapsed or whose process is gone (a crashed holder)."""
    alive = {t: until for t, until in row.holders.items() if until > now and not _holder_gone(t)}
    row.expired += len(row.holders) - len(alive)
    row.holders = alive


def _attempt(key: str, ticket: str, limit: int, *, final: bool, waited: bool) -> bool:
    with transaction.atomic():
        row = _locked_row(key)
        now = time.time()
        _prune(row, now)
        if len(row.holders) < limit:
            row.holders[ticket] = now + lease_seconds()
            row.accepted += 1
            row.queued += 1 if waited else 0
            row.max_in_flight = max(row.max_in_flight, len(row.holders))
            row.save()
            return True
        if final:
            row.rejected += 1
            row.save()
        return False


def try_enter(company_id: str, limit: int, *, wait: float = 0.0) -> str | None:
    """A ticket for one request (give it back with ``leave``), or None when the company's limit is reached.

    With ``wait`` > 0 the request queues: it tries again until a ticket comes free or ``wait`` seconds pass.
    """
    key, ticket = _key(company_id), _ticket()
    deadline = time.monotonic() + max(0.0, wait)
    delay = 0.005
    waited = False
    while True:
        final = time.monotonic() >= deadline
        if _attempt(key, ticket, max(1, limit), final=final, waited=waited):
            return ticket
        if final:
            return None
        waited = True
        time.sleep(min(_jitter.uniform(delay / 2, delay), max(0.0, deadline - time.monotonic())))
        delay = min(0.05, delay * 2)


def leave(company_id: str, ticket: str) -> None:
    """Give a request's ticket back."""
    with transaction.atomic():
        row = _locked_row(_key(company_id))
        if row.holders.pop(ticket, None) is not None:
            row.save(update_fields=["holders"])


def inflight_stats(company_id: str) -> dict[str, int]:
    """Requests in flight now (live tickets), the maximum ever held at once, and the counters."""
    row = CompanyLoad.objects.filter(company_id=_key(company_id)).first()
    if row is None:
        return {"in_flight": 0, **dict.fromkeys(STAT_FIELDS, 0)}
    now = time.time()
    live = sum(1 for until in row.holders.values() if until > now)
    return {"in_flight": live, **{f: getattr(row, f) for f in STAT_FIELDS}}


def inflight_reset(company_id: str | None = None) -> None:
    """Zero the counters of one company (or all); tickets held now stay held."""
    rows = CompanyLoad.objects.all() if company_id is None else CompanyLoad.objects.filter(company_id=_key(company_id))
    rows.update(**dict.fromkeys(STAT_FIELDS, 0))


@contextmanager
def holding(company_id: str, count: int = 1, *, ticket_prefix: str | None = None) -> Iterator[list[str]]:
    """Hold ``count`` tickets as if that many requests were in flight (tests of the limit)."""
    key = _key(company_id)
    prefix = ticket_prefix or f"{_HOST}:{os.getpid()}"
    tickets = [f"{prefix}:{uuid.uuid4().hex}" for _ in range(count)]
    with transaction.atomic():
        row = _locked_row(key)
        for ticket in tickets:
            row.holders[ticket] = time.time() + lease_seconds()
        row.max_in_flight = max(row.max_in_flight, len(row.holders))
        row.save()
    try:
        yield tickets
    finally:
        for ticket in tickets:
            leave(company_id, ticket)


def set_holder(company_id: str, ticket: str, lease_until: float) -> None:
    """Record a ticket with a given lease end (tests of lapsed leases and crashed holders)."""
    with transaction.atomic():
        row = _locked_row(_key(company_id))
        row.holders[ticket] = lease_until
        row.max_in_flight = max(row.max_in_flight, len(row.holders))
        row.save()

