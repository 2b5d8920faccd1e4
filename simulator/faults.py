"""Fault injection per company: each fault hits the next N requests, or each request with a probability.

Probabilities come from an RNG seeded by the fault's seed and its draw count, so a run is repeatable.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from simulator.models import SimCompany

FAULT_KINDS = {
    "slow": "Slow response (delay in ms, then a normal answer)",
    "http5xx": "HTTP 5xx with a plain-text body (status 500, 502 or 503)",
    "http524": "HTTP 524 with an HTML body (the CDN gave up; the gateway may still be working)",
    "http429": "HTTP 429 GW-0010 rate limit",
    "html_error": "An HTML error page from the CDN in front of the gateway (Cloudflare-style 403, 503 or 520)",
    "drop": "Dropped connection (the body stops part-way)",
    "malformed": "Malformed XML (a truncated document, HTTP 200)",
    "expire_session": "Expire the company's sessions early (applies to requests that use a session)",
    "offline": "Every function fails with XL03000012 The Service is Temporarily Off-line (HTTP 200)",
}
# Bounds of what may be armed: the simulator is reachable by anyone in development, and a huge delay would
# hold a gateway thread for ever (or overflow time.sleep into a 500).
MAX_DELAY_MS = 60_000
MAX_COUNT = 1_000_000
MAX_SEED = 2**32 - 1
# Faults that replace the answer entirely, in the order they win when several trigger at once.
TERMINAL_KINDS = ("http429", "html_error", "http524", "http5xx")
_lock = threading.Lock()


def set_fault(
    company: SimCompany,
    kind: str,
    *,
    count: int | None = None,
    rate: float | None = None,
    delay_ms: int = 2000,
    status: int = 503,
    seed: int = 0,
) -> dict[str, Any]:
    """Arm a fault for the next ``count`` requests or with probability ``rate`` (replaces that kind)."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"Unknown fault kind {kind!r}")
    if (count is None) == (rate is None):
        raise ValueError("Give exactly one of count or rate")
    if count is not None and not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be between 1 and {MAX_COUNT}")
    if not 0 <= delay_ms <= MAX_DELAY_MS:
        raise ValueError(f"delay_ms must be between 0 and {MAX_DELAY_MS}")
    if rate is not None and not 0 < rate <= 1:
        raise ValueError("rate must be in (0, 1]")
    if kind == "http5xx" and status not in (500, 502, 503, 504):
        raise ValueError("status must be 500, 502, 503 or 504")
    if kind == "html_error" and status not in (403, 503, 520):
        raise ValueError("status must be 403, 503 or 520")
    fault = {
        "kind": kind,
        "count": count,
        "rate": rate,
        "delay_ms": int(delay_ms),
        "status": int(status),
        "seed": int(seed),
        "draws": 0,
        "hits": 0,
    }
    with _lock:
        company.refresh_from_db(fields=["faults"])
        company.faults = [f for f in company.faults if f.get("kind") != kind] + [fault]
        company.save(update_fields=["faults"])
    return fault


def clear_faults(company: SimCompany, kind: str | None = None) -> None:
    """Disarm every fault of the company, or only one kind."""
    with _lock:
        company.refresh_from_db(fields=["faults"])
        company.faults = [f for f in company.faults if kind is not None and f.get("kind") != kind]
        company.save(update_fields=["faults"])


def draw_faults(company: SimCompany, *, uses_session: bool) -> list[dict[str, Any]]:
    """The faults that hit this request; counts and draws are saved so the next request sees them."""
    if not company.faults:
        return []
    hit: list[dict[str, Any]] = []
    with _lock:
        company.refresh_from_db(fields=["faults"])
        remaining = []
        for fault in company.faults:
            if fault["kind"] == "expire_session" and not uses_session:
                remaining.append(fault)
                continue
            if fault.get("count") is not None:
                fault["count"] -= 1
                fault["hits"] = fault.get("hits", 0) + 1
                hit.append(fault)
                if fault["count"] > 0:
                    remaining.append(fault)
                continue
            rng = random.Random(f"{fault.get('seed', 0)}:{fault.get('draws', 0)}")
            fault["draws"] = fault.get("draws", 0) + 1
            if rng.random() < float(fault["rate"]):
                fault["hits"] = fault.get("hits", 0) + 1
                hit.append(fault)
            remaining.append(fault)
        company.faults = remaining
        company.save(update_fields=["faults"])
    return hit
