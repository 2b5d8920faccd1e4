"""Counters shared by every process, in the database (rendered by /metrics in connector.operations).

The lowest layer of the service: any module may count something without importing what runs it.
"""
from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F

from connector.models import MetricCounter

DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600)
VALIDATION_SECONDS = "intacct_connect_validation_duration_seconds"
SYNC_SECONDS = "intacct_connect_sync_duration_seconds"
INTACCT_ERRORS = "intacct_connect_intacct_errors_total"
# Counted when a Redis outage made the rate limiter let a request through, or left a run's task unsent.
RATE_LIMIT_UNAVAILABLE = "intacct_connect_rate_limit_unavailable_total"
RUNS_UNSENT = "intacct_connect_runs_unsent_total"
INTERNAL_ERRORS = "intacct_connect_internal_errors_total"


def labels_text(labels: dict[str, str]) -> str:
    """Prometheus label text, keys sorted and values escaped: `code="XL03000006",source="sync"`."""
    def escape(value: str) -> str:
        return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return ",".join(f'{key}="{escape(value)}"' for key, value in sorted(labels.items()))


def metric_increment(*, name: str, labels: dict[str, str] | None = None, amount: float = 1) -> None:
    """Add to one counter series, creating it on first use (safe across processes)."""
    text = labels_text(labels or {})
    if MetricCounter.objects.filter(name=name, labels=text).update(value=F("value") + amount):
        return
    try:
        with transaction.atomic():
            MetricCounter.objects.create(name=name, labels=text, value=amount)
    except IntegrityError:  # another process created it first
        MetricCounter.objects.filter(name=name, labels=text).update(value=F("value") + amount)


def metric_observe(*, name: str, seconds: float, labels: dict[str, str] | None = None) -> None:
    """Record one observation in a Prometheus histogram (cumulative buckets, _sum and _count)."""
    labels = labels or {}
    for bound in (*DURATION_BUCKETS, "+Inf"):
        # Every bucket exists from the first observation on, as Prometheus expects of a histogram.
        hit = isinstance(bound, str) or seconds <= bound
        metric_increment(name=f"{name}_bucket", labels={**labels, "le": str(bound)}, amount=1 if hit else 0)
    metric_increment(name=f"{name}_sum", labels=labels, amount=seconds)
    metric_increment(name=f"{name}_count", labels=labels)


def internal_error_count(*, source: str) -> None:
    """Count a run stopped by a bug of ours (shown on /metrics)."""
    metric_increment(name=INTERNAL_ERRORS, labels={"source": source})
