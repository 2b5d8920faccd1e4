"""An optional latency profile: how long the simulated Intacct takes to answer, for benchmarks and the soak.

Off unless ``SIMULATOR_LATENCY_PROFILE`` is set (tests leave it off). The profile is a comma-separated list
of ``name=value`` pairs, for example::

    page_seconds=1.2,page_rows=2000,base=0.05,jitter=0.2,seed=7,objects=EMPLOYEE:1.5;GLACCOUNT:0.8

A request takes ``base`` seconds plus, for each result that returned records, ``page_seconds`` ×
(records ÷ ``page_rows``) × the object's factor (default 1), the whole multiplied by a factor drawn
uniformly from [1 − jitter, 1 + jitter]. The draw comes from an RNG seeded with ``seed``, the company and
the request's operations (its control block left out), so the same request always takes the same time,
whichever process answers it. It is the request's whole time: the simulator's own work counts towards
it, and the rest is waited while the request holds its concurrency slot, as a slow Intacct would hold it.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings

_DATA_HEAD = re.compile(rb"<data\b([^>]*)>")
_ATTR = re.compile(rb'(?<![\w-])(listtype|count)="([^"]*)"')


@dataclass(frozen=True)
class LatencyProfile:
    page_seconds: float = 1.2
    page_rows: int = 2000
    base: float = 0.0
    jitter: float = 0.2
    seed: int = 0
    objects: dict[str, float] = field(default_factory=dict)

    def nominal(self, results: list[tuple[str, int]]) -> float:
        """The time without jitter for answers holding ``(object, records)`` results."""
        per_record = self.page_seconds / max(1, self.page_rows)
        return self.base + sum(per_record * n * self.objects.get(obj.upper(), 1.0) for obj, n in results)

    def seconds(self, company_id: str, request_body: bytes, results: list[tuple[str, int]]) -> float:
        """The time this answer takes: nominal × the seeded jitter factor."""
        nominal = self.nominal(results)
        if nominal <= 0:
            return 0.0
        operations = request_body.split(b"</control>", 1)[-1]
        digest = hashlib.sha256(f"{self.seed}:{company_id.upper()}:".encode() + operations).hexdigest()
        rng = random.Random(int(digest[:16], 16))  # noqa: S311 - simulated latency, not security
        return max(0.0, nominal * rng.uniform(1 - self.jitter, 1 + self.jitter))


def parse_profile(text: str) -> LatencyProfile | None:
    """The profile a ``SIMULATOR_LATENCY_PROFILE`` value describes; None when empty. ValueError if invalid."""
    text = text.strip()
    if not text or text.lower() in ("off", "0", "none"):
        return None
    values: dict[str, object] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep:
            raise ValueError(f"latency profile: {part!r} is not name=value")
        if name == "objects":
            factors = {}
            for item in value.split(";"):
                obj, _, factor = item.partition(":")
                if obj.strip():
                    factors[obj.strip().upper()] = float(factor)
            values["objects"] = factors
        elif name in ("page_seconds", "base", "jitter"):
            values[name] = float(value)
        elif name in ("page_rows", "seed"):
            values[name] = int(value)
        else:
            raise ValueError(f"latency profile: unknown setting {name!r}")
    profile = LatencyProfile(**values)  # type: ignore[arg-type]
    if not 0 <= profile.jitter < 1 or profile.page_seconds < 0 or profile.base < 0:
        raise ValueError("latency profile: jitter must be in [0, 1), times must not be negative")
    return profile


@lru_cache(maxsize=8)
def _cached(text: str) -> LatencyProfile | None:
    return parse_profile(text)


def active_profile() -> LatencyProfile | None:
    """The profile from settings, or None (off)."""
    return _cached(settings.SIMULATOR_LATENCY_PROFILE or "")


def results_of(body: bytes) -> list[tuple[str, int]]:
    """(listtype, count) of every ``<data>`` element with a count in a response body."""
    found = []
    for match in _DATA_HEAD.finditer(body):
        attrs = dict(_ATTR.findall(match.group(1)))
        if b"count" in attrs and attrs[b"count"].isdigit():
            found.append((attrs.get(b"listtype", b"").decode(errors="replace"), int(attrs[b"count"])))
    return found
