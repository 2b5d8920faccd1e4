"""The /metrics counters of connector/metrics.py: a histogram observation is one statement, and counts once."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from connector import metrics
from connector.models import MetricCounter

pytestmark = pytest.mark.django_db

NAME = "test_duration_seconds"


def series(suffix: str) -> dict[str, float]:
    return dict(MetricCounter.objects.filter(name=NAME + suffix).values_list("labels", "value"))


def test_observations_fill_every_bucket_sum_and_count_exactly_once():
    metrics.metric_observe(name=NAME, seconds=3.0, labels={"result": "succeeded"})  # creates the series
    metrics.metric_observe(name=NAME, seconds=0.25, labels={"result": "succeeded"})
    metrics.metric_observe(name=NAME, seconds=7200.0, labels={"result": "succeeded"})
    buckets = series("_bucket")
    expected = {bound: sum(1 for s in (3.0, 0.25, 7200.0) if s <= bound) for bound in metrics.DURATION_BUCKETS}
    assert len(buckets) == len(metrics.DURATION_BUCKETS) + 1
    for bound, count in expected.items():
        assert buckets[f'le="{bound}",result="succeeded"'] == count, bound
    assert buckets['le="+Inf",result="succeeded"'] == 3
    assert buckets['le="0.5",result="succeeded"'] == 1 and buckets['le="5",result="succeeded"'] == 2
    assert series("_sum") == {'result="succeeded"': 7203.25}
    assert series("_count") == {'result="succeeded"': 3}


def test_an_observation_of_an_existing_histogram_is_one_statement():
    metrics.metric_observe(name=NAME, seconds=1.0, labels={"result": "failed"})
    with CaptureQueriesContext(connection) as queries:
        metrics.metric_observe(name=NAME, seconds=1.5, labels={"result": "failed"})
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    assert len(writes) == 1, queries.captured_queries
    assert series("_count") == {'result="failed"': 2}
    assert series("_bucket")['le="1",result="failed"'] == 1
    assert series("_bucket")['le="2.5",result="failed"'] == 2


def test_a_series_missing_from_an_existing_histogram_is_created_and_nothing_counts_twice():
    """A half-present histogram (a bucket added later, or one row lost) must not double what the first,
    undone attempt added to the rows that were there."""
    metrics.metric_observe(name=NAME, seconds=1.0, labels={"result": "partial"})
    MetricCounter.objects.filter(name=NAME + "_bucket", labels='le="+Inf",result="partial"').delete()
    metrics.metric_observe(name=NAME, seconds=1.0, labels={"result": "partial"})
    buckets = series("_bucket")
    assert buckets['le="1",result="partial"'] == 2
    assert buckets['le="+Inf",result="partial"'] == 1  # created by the second observation
    assert series("_count") == {'result="partial"': 2}
    assert series("_sum") == {'result="partial"': 2.0}
