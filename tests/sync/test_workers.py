"""Real Celery workers: the per-company cap across workers, SIGKILL mid-sync and an exact resume, page boundaries."""
from __future__ import annotations

import time

from connector import services, sync, tasks
from connector.models import Record, SyncCursor, SyncObjectRun, SyncRun
from simulator import records as sim_records
from simulator.demo import build_company
from simulator.faults import clear_faults, set_fault
from simulator.inflight import inflight_reset, inflight_stats
from tests.conftest import start_worker, wait_for
from tests.sync.conftest import SMALL_SIZES, assert_mirror_exact, connect

BIG = {**SMALL_SIZES, "APBILL": 12_000}


def test_company_concurrency_cap_holds_across_workers(celery_worker, organisation):
    company = build_company("CAP-CO", sizes=BIG).company
    connections = [connect(organisation, "CAP-CO")]
    for n in range(2):
        org = services.organisation_create(name=f"Sister {n}", slug=f"sister-{n}")
        connections.append(connect(org, "CAP-CO"))
    extra = [start_worker(queue=celery_worker.queue, env_overrides=celery_worker.env, name=f"cap{n}")
             for n in range(2)]
    try:
        inflight_reset("CAP-CO")
        runs = [services.sync_request(connection=c)[0] for c in connections]
        wait_for(lambda: all(r.is_finished for r in SyncRun.objects.filter(pk__in=[r.pk for r in runs])),
                 timeout=240, message="three syncs of one company on three workers")
    finally:
        for worker in extra:
            worker.stop()
    stats = inflight_stats("CAP-CO")
    assert stats["max_in_flight"] <= 2, stats
    assert stats["rejected"] == 0, stats  # no 429: the limit was kept, not retried into
    assert stats["max_in_flight"] == 2  # and it was used: the two-range read overlapped requests
    for run in SyncRun.objects.filter(pk__in=[r.pk for r in runs]):
        assert run.status == SyncRun.Status.SUCCEEDED, run.summary
        assert run.retries == 0
    for connection in connections:
        assert_mirror_exact(connection, company)
    bills = SyncObjectRun.objects.filter(run=runs[0], object_name="APBILL").get()
    assert bills.requests <= 12_000 // 2000 + 2  # three ranges (limit 2, one reader more), short last pages


def kill_mid_sync(celery_worker, organisation, company_id: str, *, lease: int, bills_before_kill: int):
    """A sync on a worker of its own (short lease), SIGKILLed once part of APBILL is saved; faults cleared."""
    company = build_company(company_id, sizes=BIG).company
    connection = connect(organisation, company_id)
    queue = f"{celery_worker.queue}-{company_id.lower()}"
    worker = start_worker(queue=queue, env_overrides={**celery_worker.env, "SYNC_LEASE_SECONDS": str(lease)},
                          name=company_id.lower())
    set_fault(company, "slow", rate=1.0, delay_ms=300)
    run = SyncRun.objects.create(connection=connection, kind=SyncRun.Kind.INCREMENTAL)
    tasks.sync_run.apply_async(args=[run.pk], queue=queue)
    try:
        wait_for(lambda: Record.objects.filter(connection=connection, object_name="APBILL").count()
                 >= bills_before_kill, timeout=120, message="part of APBILL synced")
    finally:
        worker.kill()
    clear_faults(company)
    return company, connection, run


def test_sigkill_mid_sync_then_resume_is_exact(celery_worker, organisation, settings):
    company, connection, run = kill_mid_sync(celery_worker, organisation, "KILL-CO", lease=2, bills_before_kill=4000)
    kept = set(Record.objects.filter(connection=connection, object_name="APBILL").values_list("recordno", flat=True))
    saved = len(kept)
    assert 0 < saved < 12_000
    assert SyncCursor.objects.get(connection=connection, object_name="APBILL").full_progress
    # Changes while nobody is syncing, on both sides of the saved positions: a record read and one not read
    # yet are changed, a record read is deleted, and one deleted before it was ever read.
    unread = sorted(set(range(1, 12_001)) - kept)
    read_then_deleted, deleted_unread = max(kept), unread[-2]
    sim_records.modify_record(company, "APBILL", 2, {"STATE": "Paid"})
    sim_records.modify_record(company, "APBILL", unread[-1], {"STATE": "Paid"})
    sim_records.delete_record(company, "APBILL", read_then_deleted)
    sim_records.delete_record(company, "APBILL", deleted_unread)

    settings.SYNC_LEASE_SECONDS = 2
    resumed = SyncRun.objects.create(connection=connection)
    wait_for(lambda: sync.claim(resumed) and sync.release(resumed) is None, timeout=30,
             message="the killed worker's lease to lapse")
    result = sync.run_sync(run_id=resumed.pk)
    assert result.status == SyncRun.Status.SUCCEEDED, result.summary
    run.refresh_from_db()
    assert run.status == SyncRun.Status.INTERRUPTED and "worker running this sync stopped" in run.summary
    bills = SyncObjectRun.objects.get(run=resumed, object_name="APBILL")
    # Resumed from the last saved page: only what was left was read again (plus at most one page per range).
    assert bills.records_read <= 12_000 - saved + 2 * 2000
    # No duplicate (one row per RECORDNO) and none lost: all but the record deleted before it was read.
    assert Record.objects.filter(connection=connection, object_name="APBILL").count() == 12_000 - 1
    assert not Record.objects.filter(connection=connection, object_name="APBILL", recordno=deleted_unread).exists()
    reconcile = SyncRun.objects.create(connection=connection, kind=SyncRun.Kind.RECONCILE)
    assert sync.run_sync(run_id=reconcile.pk).status == SyncRun.Status.SUCCEEDED
    # Deleted after it was read: the reconciliation (keys only) marks it.
    assert Record.objects.get(connection=connection, object_name="APBILL", recordno=read_then_deleted).deleted_at
    assert_mirror_exact(connection, company)


def test_a_killed_sync_is_ended_interrupted_by_the_sweep_and_resumed_at_once(celery_worker, organisation, settings):
    """Issue 11: a killed worker's sync is reclaimed within one lease period, not at the next schedule."""
    company, connection, run = kill_mid_sync(celery_worker, organisation, "SWEEP-CO", lease=3, bills_before_kill=2000)
    killed_at = time.monotonic()
    settings.SYNC_LEASE_SECONDS = 3
    # Beat's sweep, every few seconds: nothing to do while the lease holds, then the run is ended and resumed.
    wait_for(lambda: tasks.runs_sweep() or SyncRun.objects.get(pk=run.pk).status != SyncRun.Status.RUNNING,
             timeout=30, interval=0.5, message="the sweep to end the killed run")
    reclaimed_after = time.monotonic() - killed_at
    run.refresh_from_db()
    assert run.status == SyncRun.Status.INTERRUPTED and run.finished_at is not None
    assert "Interrupted" in run.summary and "resumes from the last saved page" in run.summary
    assert reclaimed_after < 3 + 10
    assert not SyncObjectRun.objects.filter(run=run, status__in=("queued", "running")).exists()
    resume = SyncRun.objects.filter(connection=connection).exclude(pk=run.pk).get()
    # The resume went to the session's worker (the default queue) and finishes the job.
    wait_for(lambda: SyncRun.objects.get(pk=resume.pk).is_finished, timeout=120, message="the resumed sync")
    resume.refresh_from_db()
    assert resume.status == SyncRun.Status.SUCCEEDED, resume.summary
    assert_mirror_exact(connection, company)


def test_page_boundary_during_a_change(synced, monkeypatch):
    company = synced.company
    company.data_sizes = {**company.data_sizes, "APBILL": 4500}
    company.save(update_fields=["data_sizes"])
    first = SyncRun.objects.create(connection=synced.connection)
    sync.run_sync(run_id=first.pk)
    SyncCursor.objects.filter(connection=synced.connection, object_name="APBILL").update(
        modified_after="2000-01-01 00:00:00", recordno_after=0)
    original = sync.SyncEngine._store
    changed = []

    def store_then_change(self, definition, records, *args, **kwargs):
        counts = original(self, definition, records, *args, **kwargs)
        if definition.name == "APBILL" and not changed:
            # Between page 1 and page 2: one record already read, one on the next page, one far ahead.
            for recordno in (10, 2001, 4400):
                sim_records.modify_record(company, "APBILL", recordno, {"STATE": f"Changed {recordno}"})
            changed.append(True)
        return counts

    monkeypatch.setattr(sync.SyncEngine, "_store", store_then_change)
    again = SyncRun.objects.create(connection=synced.connection)
    assert sync.run_sync(run_id=again.pk).status == SyncRun.Status.SUCCEEDED
    bills = SyncObjectRun.objects.get(run=again, object_name="APBILL")
    assert bills.records_read == 4500 + 1  # record 10 moved behind the keyset and was read again
    assert_mirror_exact(synced.connection, company)
    assert Record.objects.get(connection=synced.connection, object_name="APBILL", recordno=10).data["STATE"] \
        == "Changed 10"
