"""The sync engine against the simulator over loopback HTTP: exact copies, keyset paging, API-call bounds."""
from __future__ import annotations

import math

from connector import sync
from connector.models import Record, SyncCursor, SyncObjectRun, SyncRun
from connector.objects import OBJECTS
from simulator import records as sim_records
from simulator.inflight import inflight_reset, inflight_stats
from tests.sync.conftest import SMALL_SIZES, assert_mirror_exact

DEFINITIONS = {d.name: d for d in OBJECTS}


def run(connection, kind=SyncRun.Kind.INCREMENTAL) -> SyncRun:
    queued = SyncRun.objects.create(connection=connection, kind=kind)
    result = sync.run_sync(run_id=queued.pk)
    assert result is not None
    return result


def objects_of(sync_run: SyncRun) -> dict[str, SyncObjectRun]:
    return {o.object_name: o for o in sync_run.object_runs.all()}


def test_first_sync_copies_every_object_exactly_within_the_call_bound(synced):
    inflight_reset(synced.company.company_id)
    first = run(synced.connection)
    assert first.status == SyncRun.Status.SUCCEEDED, first.summary
    assert_mirror_exact(synced.connection, synced.company)
    per_object = objects_of(first)
    for name, object_run in per_object.items():
        size = SMALL_SIZES[name.upper()] + (1 if name == "USERINFO" else 0)
        assert object_run.records_created == size, name
        page = 1000 if not DEFINITIONS[name].incremental else 2000
        assert object_run.requests <= math.ceil(size / page) + 1, (name, object_run.requests)
    # Every call is accounted to an object (the login to the one that needed it first); no count pre-query.
    assert first.requests == sum(o.requests for o in per_object.values())
    assert inflight_stats(synced.company.company_id)["rejected"] == 0


def test_incremental_sync_brings_changes_and_reconcile_brings_deletes(synced):
    company = synced.company
    assert run(synced.connection).status == SyncRun.Status.SUCCEEDED
    sim_records.modify_record(company, "APBILL", 5, {"STATE": "Paid", "DESCRIPTION": "changed"})
    sim_records.modify_record(company, "DEPARTMENT", 3, {"TITLE": "Renamed department"})
    created = sim_records.create_record(company, "APBILL", {"VENDORID": "V-NEW", "STATE": "Posted"})
    sim_records.delete_record(company, "APBILL", 9)
    sim_records.delete_record(company, "GLACCOUNT", 2)

    incremental = run(synced.connection)
    assert incremental.status == SyncRun.Status.SUCCEEDED, incremental.summary
    bills = objects_of(incremental)["APBILL"]
    assert bills.mode == "incremental"
    assert bills.records_created == 1 and bills.records_updated == 1
    assert Record.objects.get(connection=synced.connection, object_name="APBILL", recordno=created).data["VENDORID"] \
        == "V-NEW"
    # Deletes are invisible to an incremental read; reconciliation (keys only) finds them.
    reconcile = run(synced.connection, SyncRun.Kind.RECONCILE)
    assert reconcile.status == SyncRun.Status.SUCCEEDED, reconcile.summary
    assert objects_of(reconcile)["APBILL"].records_deleted == 1
    assert objects_of(reconcile)["GLACCOUNT"].records_deleted == 1
    assert Record.objects.get(connection=synced.connection, object_name="APBILL", recordno=9).deleted_at is not None
    assert_mirror_exact(synced.connection, company)


def test_no_change_incremental_costs_one_call_per_object(synced):
    run(synced.connection)
    again = run(synced.connection)
    assert again.status == SyncRun.Status.SUCCEEDED
    per_object = objects_of(again)
    # One query per object, plus the one sign-in (counted to the object whose request needed it first:
    # two objects are read at once).
    assert again.requests == len(OBJECTS) + 1, {n: o.requests for n, o in per_object.items()}
    assert sorted(o.requests for o in per_object.values()) == [1] * (len(OBJECTS) - 1) + [2]
    assert again.records_created == again.records_updated == again.records_deleted == 0


def test_keyset_pages_across_ties_in_whenmodified(synced, settings):
    # 2,000-record pages over generated APBILL whose WHENMODIFIED has several records per second:
    # a full re-read by (WHENMODIFIED, RECORDNO) keyset must neither skip nor repeat a tied record.
    company = synced.company
    company.data_sizes = {**company.data_sizes, "APBILL": 4500}
    company.save(update_fields=["data_sizes"])
    run(synced.connection)
    SyncCursor.objects.filter(connection=synced.connection, object_name="APBILL").update(
        modified_after="2000-01-01 00:00:00", recordno_after=0)
    incremental = run(synced.connection)
    bills = objects_of(incremental)["APBILL"]
    assert bills.records_read == 4500
    assert bills.requests == 3
    gen = sim_records.gen_for(company, sim_records.OBJECTS["APBILL"])
    assert gen.ties > 1 and gen.t(1) == gen.t(2)
    assert_mirror_exact(synced.connection, company)
