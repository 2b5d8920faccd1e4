"""The write path of a full read: timestamps, the range split's estimate, multi-row upserts."""
from __future__ import annotations

import math
from datetime import datetime

import pytest

from connector import sync
from connector.intacct import timestamps
from connector.models import Record, SyncObjectRun, SyncRun
from connector.sync import engine, upsert
from simulator import records as sim_records
from tests.sync.conftest import assert_mirror_exact


def _strptime_iso(value: object) -> str:
    """What iso_from_intacct returned before its fast path: strptime on both of Intacct's forms."""
    if not isinstance(value, str) or not value.strip():
        return ""
    for pattern in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y"):
        try:
            return datetime.strptime(value.strip(), pattern).strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
    return ""


@pytest.mark.parametrize("value", [
    "01/04/2025 11:22:33", " 12/31/1999 23:59:59 ", "02/29/2024 00:00:00", "02/30/2025 10:00:00",
    "13/01/2025 00:00:00", "00/10/2025 00:00:00", "01/04/2025 24:00:00", "1/4/2025 1:02:03", "01/04/2025", "",
    "   ", None, 20250104, "garbage", "01/04/2025 11:22:33 PM",
])
def test_timestamp_fast_path_agrees_with_strptime(value):
    assert timestamps.iso_from_intacct(value) == _strptime_iso(value)


def test_range_span_follows_the_first_pages_density():
    dense = [{"RECORDNO": str(n)} for n in range(1, 2001)]
    assert sync.range_span(dense, 10_000, "RECORDNO") == 5_000
    sparse = [{"RECORDNO": str(n)} for n in range(3, 6001, 3)]  # every third number taken by other objects
    assert sync.range_span(sparse, 10_000, "RECORDNO") == 14_995
    assert sync.range_span([{"RECORDNO": "7"}], 1, "RECORDNO") == 1
    assert sync.range_span(dense, 9_000, "RECORDNO", parts=3) == 3_000


def _full_sync(connection) -> SyncRun:
    queued = SyncRun.objects.create(connection=connection, kind=SyncRun.Kind.FULL)
    result = sync.run_sync(run_id=queued.pk)
    assert result is not None and result.status == SyncRun.Status.SUCCEEDED, result and result.summary
    return result


@pytest.mark.parametrize("estimate", ["first range empty", "second range empty"])
def test_a_wrong_split_estimate_costs_neither_a_record_nor_a_call(synced, monkeypatch, estimate):
    company = synced.company
    company.data_sizes = {**company.data_sizes, "APBILL": 9_000}
    company.save(update_fields=["data_sizes"])
    monkeypatch.setattr(engine, "range_span", lambda *args: 1 if estimate == "first range empty" else 10**9)
    first = _full_sync(synced.connection)
    bills = SyncObjectRun.objects.get(run=first, object_name="APBILL")
    assert (bills.records_read, bills.records_created) == (9_000, 9_000)
    # Limit 2: three ranges, each may end on a short (or empty) page.
    assert bills.requests <= math.ceil(9_000 / 2000) + 2
    assert_mirror_exact(synced.connection, company)


def test_a_reader_done_early_takes_over_half_of_the_longest_range(synced, monkeypatch):
    # The first page's density says the bills are spread thin: the first of the three ranges holds them all,
    # and the two other readers find theirs empty at once. They must not sit idle while one reads alone.
    company = synced.company
    company.data_sizes = {**company.data_sizes, "APBILL": 30_000}
    company.save(update_fields=["data_sizes"])
    real_span = engine.range_span
    take_overs: list[int] = []

    def span(records, remaining, rn_field, parts=2):
        if parts == 3:
            return 10**9  # the initial split: everything lands in the first range
        take_overs.append(remaining)
        return real_span(records, remaining, rn_field, parts)

    monkeypatch.setattr(engine, "range_span", span)
    first = _full_sync(synced.connection)
    bills = SyncObjectRun.objects.get(run=first, object_name="APBILL")
    assert take_overs, "no reader took over part of the long range"
    assert all(remaining >= sync.TAKE_OVER_MIN_PAGES * sync.PAGE_SIZE for remaining in take_overs)
    # Nothing read twice is counted twice, nothing is missed, and each take-over costs at most a short page.
    assert (bills.records_read, bills.records_created) == (30_000, 30_000)
    assert bills.requests <= math.ceil(30_000 / 2000) + 2 + 2 + len(take_overs)
    assert_mirror_exact(synced.connection, company)


def test_pages_upserted_over_many_statements_keep_exact_counts(synced, monkeypatch):
    # A database that takes few parameters a statement: each 2,000-record page is many INSERTs.
    monkeypatch.setattr(upsert, "rows_per_statement", lambda raw: 7)
    company = synced.company
    company.data_sizes = {**company.data_sizes, "APBILL": 4_500}
    company.save(update_fields=["data_sizes"])
    first = _full_sync(synced.connection)
    assert SyncObjectRun.objects.get(run=first, object_name="APBILL").records_created == 4_500
    sim_records.modify_record(company, "APBILL", 3, {"STATE": "Paid"})
    sim_records.modify_record(company, "APBILL", 4_499, {"STATE": "Paid"})
    sim_records.delete_record(company, "APBILL", 2_500)
    again = _full_sync(synced.connection)
    bills = SyncObjectRun.objects.get(run=again, object_name="APBILL")
    assert (bills.records_read, bills.records_created, bills.records_updated, bills.records_deleted) == \
        (4_499, 0, 2, 1)
    assert Record.objects.filter(connection=synced.connection, object_name="APBILL").count() == 4_500
    assert_mirror_exact(synced.connection, company)
