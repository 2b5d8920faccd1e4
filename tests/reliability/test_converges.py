"""The simulator's data changing while a (slow) sync reads it: the following sync converges exactly."""
from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import close_old_connections

from connector import sync
from connector.models import SyncRun
from simulator import records as sim_records
from simulator.demo import build_company
from simulator.faults import clear_faults, set_fault
from tests.sync.conftest import SMALL_SIZES, assert_mirror_exact, connect

pytestmark = pytest.mark.timeout(300)

SIZES = {**SMALL_SIZES, "APBILL": 9_000, "CCTRANSACTION": 2_500}
EDITS = {"APBILL": ("STATE", ("Paid", "Posted", "Partially paid")),
         "CCTRANSACTION": ("DESCRIPTION", ("changed mid-sync", "re-coded")),
         "GLACCOUNT": ("TITLE", ("Renamed account",))}


def run(connection, kind=SyncRun.Kind.INCREMENTAL) -> SyncRun:
    queued = SyncRun.objects.create(connection=connection, kind=kind)
    return sync.run_sync(run_id=queued.pk)


def change_while(company, stop: threading.Event, done: list[tuple[str, str, int]], seed: int) -> None:
    """Modify, delete and create records of several objects, on both sides of the reader, until stopped."""
    rng = random.Random(seed)  # noqa: S311 - repeatable test data
    try:
        while not stop.is_set():
            name = rng.choice(sorted(EDITS))
            field_name, values = EDITS[name]
            top = sim_records.next_recordno(company, name) - 1
            action = rng.choice(("modify", "modify", "delete", "create"))
            recordno = rng.choice((rng.randint(1, 50), rng.randint(1, top), rng.randint(max(1, top - 50), top)))
            try:
                if action == "modify":
                    sim_records.modify_record(company, name, recordno, {field_name: rng.choice(values)})
                elif action == "delete":
                    sim_records.delete_record(company, name, recordno)
                else:
                    recordno = sim_records.create_record(company, name, {field_name: rng.choice(values)})
            except KeyError:
                continue  # deleted already
            done.append((action, name, recordno))
            time.sleep(0.02)
    finally:
        close_old_connections()


@pytest.mark.parametrize("first_kind", ["full", "incremental"])
def test_changes_during_a_sync_converge_on_the_next(first_kind, transactional_db, intacct_endpoint, organisation):
    company = build_company(f"CONVERGE-{first_kind.upper()}", sizes=SIZES).company
    connection = connect(organisation, company.company_id)
    if first_kind == "incremental":
        assert run(connection).status == SyncRun.Status.SUCCEEDED
    set_fault(company, "slow", rate=1.0, delay_ms=250)  # a slow sync, so the changes land while it reads
    stop, done = threading.Event(), []
    changer = threading.Thread(target=change_while, args=(company, stop, done, len(first_kind)), daemon=True)
    changer.start()
    try:
        during = run(connection, SyncRun.Kind.FULL if first_kind == "full" else SyncRun.Kind.INCREMENTAL)
    finally:
        stop.set()
        changer.join(timeout=30)
    clear_faults(company)
    assert during.status == SyncRun.Status.SUCCEEDED, during.summary
    kinds = {action for action, _, _ in done}
    assert {"modify", "delete", "create"} <= kinds and len(done) >= 30, done
    # Changes landed while it read: the copy it made is (in general) not exact yet. The next incremental
    # sync brings every change; a delete reconciliation brings the deletes an incremental read cannot see.
    incremental = run(connection)
    assert incremental.status == SyncRun.Status.SUCCEEDED, incremental.summary
    reconcile = run(connection, SyncRun.Kind.RECONCILE)
    assert reconcile.status == SyncRun.Status.SUCCEEDED, reconcile.summary
    assert_mirror_exact(connection, company)
    # Converged for good: one more incremental sync changes nothing.
    again = run(connection)
    assert again.records_created == again.records_updated == again.records_deleted == 0
    assert_mirror_exact(connection, company)


def test_modified_only_changes_converge_with_an_incremental_sync_alone(transactional_db, intacct_endpoint,
                                                                       organisation):
    company = build_company("CONVERGE-MOD", sizes=SIZES).company
    connection = connect(organisation, company.company_id)
    assert run(connection).status == SyncRun.Status.SUCCEEDED
    set_fault(company, "slow", rate=1.0, delay_ms=250)
    stop = threading.Event()
    changed: list[tuple[str, int]] = []

    def modify() -> None:
        rng = random.Random(3)  # noqa: S311
        try:
            while not stop.is_set():
                recordno = rng.randint(1, SIZES["APBILL"])
                sim_records.modify_record(company, "APBILL", recordno, {"STATE": rng.choice(("Paid", "Posted"))})
                changed.append(("APBILL", recordno))
                created = sim_records.create_record(company, "CCTRANSACTION", {"DESCRIPTION": "new mid-sync"})
                changed.append(("CCTRANSACTION", created))
                time.sleep(0.03)
        finally:
            close_old_connections()

    changer = threading.Thread(target=modify, daemon=True)
    changer.start()
    try:
        during = run(connection, SyncRun.Kind.FULL)
    finally:
        stop.set()
        changer.join(timeout=30)
    clear_faults(company)
    assert during.status == SyncRun.Status.SUCCEEDED, during.summary
    assert len(changed) >= 20
    # Only modifications and creations: the incremental keyset (with its overlap) alone converges.
    assert run(connection).status == SyncRun.Status.SUCCEEDED
    assert_mirror_exact(connection, company)


def test_a_second_change_in_the_same_second_as_the_copy_we_hold_is_still_synced(transactional_db, intacct_endpoint,
                                                                                organisation):
    """Intacct's WHENMODIFIED has whole seconds. A record we read between two changes made within one second
    keeps the same WHENMODIFIED after the second change: the next sync must still bring the second change
    (met in CI: a full sync read APBILL 20 between two such changes, and no later sync corrected it)."""
    from simulator.models import RecordOverride

    company = build_company("SAME-SECOND", sizes=SMALL_SIZES).company
    connection = connect(organisation, company.company_id)
    assert run(connection).status == SyncRun.Status.SUCCEEDED
    sim_records.modify_record(company, "APBILL", 20, {"STATE": "Partially paid"})
    assert run(connection).status == SyncRun.Status.SUCCEEDED  # we hold "Partially paid"
    override = RecordOverride.objects.get(company=company, object="APBILL", recordno=20)
    sim_records.modify_record(company, "APBILL", 20, {"STATE": "Posted"})
    RecordOverride.objects.filter(pk=override.pk).update(whenmodified=override.whenmodified)  # the same second
    assert sim_records.get_record(company, "APBILL", 20)["STATE"] == "Posted"
    again = run(connection)
    assert again.status == SyncRun.Status.SUCCEEDED
    assert_mirror_exact(connection, company)
    assert again.records_updated >= 1
