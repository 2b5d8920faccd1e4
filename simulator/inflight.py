"""In-memory count of requests in flight per company (per process), with the highest count seen."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_stats: dict[str, dict[str, int]] = {}


def _entry(company_id: str) -> dict[str, int]:
    return _stats.setdefault(company_id, {"in_flight": 0, "max_in_flight": 0, "accepted": 0, "rejected": 0})


def try_enter(company_id: str, limit: int) -> bool:
    """Count a request in; False (and nothing counted in flight) when the company's limit is reached."""
    with _lock:
        entry = _entry(company_id)
        if entry["in_flight"] >= limit:
            entry["rejected"] += 1
            return False
        entry["in_flight"] += 1
        entry["accepted"] += 1
        entry["max_in_flight"] = max(entry["max_in_flight"], entry["in_flight"])
        return True


def leave(company_id: str) -> None:
    with _lock:
        entry = _entry(company_id)
        entry["in_flight"] = max(0, entry["in_flight"] - 1)


def inflight_stats(company_id: str) -> dict[str, int]:
    """Current in-flight count, the maximum ever seen, accepted and rejected request counts."""
    with _lock:
        return dict(_entry(company_id))


def inflight_reset(company_id: str | None = None) -> None:
    """Forget the counters of one company (or all)."""
    with _lock:
        if company_id is None:
            _stats.clear()
        else:
            _stats.pop(company_id, None)


@contextmanager
def holding(company_id: str, count: int = 1) -> Iterator[None]:
    """Pretend ``count`` requests are in flight (tests of the concurrency limit)."""
    with _lock:
        entry = _entry(company_id)
        entry["in_flight"] += count
        entry["max_in_flight"] = max(entry["max_in_flight"], entry["in_flight"])
    try:
        yield
    finally:
        with _lock:
            _entry(company_id)["in_flight"] = max(0, _entry(company_id)["in_flight"] - count)
