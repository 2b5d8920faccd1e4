"""Counters shared by every process, in the database, and the /metrics page that shows them.

The lowest layer of the service: any module may count something without importing what runs it.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import Count, F
from django.utils import timezone

from connector.masking import mask
from connector.models import CompanySlot, Connection, Heartbeat, MetricCounter

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
    series: list[tuple[str, str, float]] = []
    for bound in (*DURATION_BUCKETS, "+Inf"):
        # Every bucket exists from the first observation on, as Prometheus expects of a histogram.
        hit = isinstance(bound, str) or seconds <= bound
        series.append((f"{name}_bucket", labels_text({**labels, "le": str(bound)}), 1 if hit else 0))
    series.append((f"{name}_sum", labels_text(labels), seconds))
    series.append((f"{name}_count", labels_text(labels), 1))
    metric_add_many(series)


class _SeriesMissing(Exception):
    """Some series of an observation do not exist yet (its first): undo the partial update, create them."""


def metric_add_many(series: list[tuple[str, str, float]]) -> None:
    """Add to several counter series (name, rendered labels, amount) in one UPDATE, creating them all on
    first use (safe across processes). A histogram observation is one statement, not one per series."""
    moving = [(name, text, amount) for name, text, amount in series if amount]
    for attempt in range(2):
        try:
            with transaction.atomic():
                updated = _add_in_one_statement(moving)
                if attempt == 0 and updated != len(moving):
                    raise _SeriesMissing
            return
        except _SeriesMissing:
            # Series with nothing to add must exist too: each appears with the first observation.
            MetricCounter.objects.bulk_create([MetricCounter(name=name, labels=text, value=0)
                                               for name, text, _ in series], ignore_conflicts=True)


def _add_in_one_statement(moving: list[tuple[str, str, float]]) -> int:
    if not moving:
        return 0
    table = MetricCounter._meta.db_table
    cases = " ".join("WHEN name = %s AND labels = %s THEN %s" for _ in moving)
    where = " OR ".join("(name = %s AND labels = %s)" for _ in moving)
    params: list[str | float] = [value for name, text, amount in moving for value in (name, text, float(amount))]
    params += [value for name, text, _ in moving for value in (name, text)]
    with db_connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET value = value + CASE {cases} ELSE 0 END WHERE {where}",  # noqa: S608
                       params)
        return cursor.rowcount


def internal_error_count(*, source: str) -> None:
    """Count a run stopped by a bug of ours (shown on /metrics)."""
    metric_increment(name=INTERNAL_ERRORS, labels={"source": source})


# --- The page (Prometheus text) --------------------------------------------------------------

def metrics_text(*, now: datetime | None = None) -> str:
    """Everything /metrics shows, in Prometheus text exposition format (version 0.0.4)."""
    now = now or timezone.now()
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    by_status = dict(Connection.objects.values("status").annotate(n=Count("id")).values_list("status", "n"))
    family("intacct_connect_connections", "gauge", "Connections by status.")
    for status in Connection.Status.values:
        lines.append(f'intacct_connect_connections{{status="{status}"}} {by_status.get(status, 0)}')

    counters: dict[str, list[MetricCounter]] = defaultdict(list)
    for counter in MetricCounter.objects.all():
        counters[counter.name].append(counter)
    for base, help_text in ((VALIDATION_SECONDS, "How long validation runs took."),
                            (SYNC_SECONDS, "How long sync runs took.")):
        family(base, "histogram", help_text)
        for suffix in ("_bucket", "_sum", "_count"):
            series = counters.get(base + suffix, [])
            if suffix == "_bucket":
                series = sorted(series, key=lambda c: (_without_le(c.labels), _le_value(c.labels)))
            for counter in series:
                lines.append(f"{base}{suffix}{{{counter.labels}}} {_number(counter.value)}")
    family(INTACCT_ERRORS, "counter", "Error answers from Intacct, by error code and where they happened.")
    for counter in counters.get(INTACCT_ERRORS, []):
        lines.append(f"{INTACCT_ERRORS}{{{counter.labels}}} {_number(counter.value)}")
    for name, help_text in ((RATE_LIMIT_UNAVAILABLE, "Requests let through unlimited because the cache was down."),
                            (RUNS_UNSENT, "Runs whose task could not be sent at once (the broker was down).")):
        family(name, "counter", help_text)
        for counter in counters.get(name, []):
            lines.append(f"{name}{{{counter.labels}}} {_number(counter.value)}")

    family("intacct_connect_requests_in_flight", "gauge", "Intacct requests in flight now, per company.")
    in_flight = (CompanySlot.objects.exclude(holder="").filter(lease_until__gt=now).values("company_key")
                 .annotate(n=Count("id")).order_by("company_key").values_list("company_key", "n"))
    for company, n in in_flight:
        lines.append(f"intacct_connect_requests_in_flight{{{labels_text({'company': mask(company)})}}} {n}")

    family("intacct_connect_heartbeat_age_seconds", "gauge", "Seconds since each worker and beat was last seen.")
    for beat in Heartbeat.objects.order_by("name"):
        age = max(0.0, (now - beat.seen_at).total_seconds())
        label = labels_text({"name": heartbeat_pseudonym(beat.name)})
        lines.append(f"intacct_connect_heartbeat_age_seconds{{{label}}} {age:.1f}")
    return "\n".join(lines) + "\n"


def heartbeat_pseudonym(name: str) -> str:
    """A worker's stable stand-in for /metrics ("worker-3f9a1c2e"): its host name is not for anonymous eyes."""
    if not name.startswith(Heartbeat.WORKER_PREFIX):
        return name
    return "worker-" + hashlib.sha256(name.encode()).hexdigest()[:8]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _without_le(labels: str) -> str:
    return ",".join(part for part in labels.split(",") if not part.startswith("le="))


def _le_value(labels: str) -> float:
    for part in labels.split(","):
        if part.startswith("le="):
            value = part[4:-1]
            return float("inf") if value == "+Inf" else float(value)
    return 0.0
