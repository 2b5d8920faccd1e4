"""Many connections with long histories, written in bulk: for the query-count tests and bench_dashboard."""
from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from connector import crypto, summaries
from connector.models import (
    AuditEvent,
    Connection,
    ConnectionStatusChange,
    ConnectionSummary,
    Organisation,
    StepCompletion,
    SyncObjectRun,
    SyncRun,
    ValidationCheck,
    ValidationRun,
)
from connector.validation import CHECKS

PLANTED_PASSWORD = "Bulk-Plaintext-Secret-4417"  # noqa: S105 - the plaintext the secret scan hunts for
STATUSES = [Connection.Status.CONNECTED] * 6 + [Connection.Status.NEEDS_ATTENTION, Connection.Status.BROKEN,
                                                Connection.Status.IN_SETUP, Connection.Status.NOT_STARTED,
                                                Connection.Status.DISCONNECTED]
OBJECT_NAMES = ("DEPARTMENT", "LOCATION", "EMPLOYEE", "APBILL", "GLACCOUNT")


def populate(*, connections: int, days: int, validation_every_days: int = 7, sync_every_days: int = 7,
             batch: int = 5000, seed: int = 7, prefix: str = "bulk") -> list[int]:
    """Create `connections` organisations with connections and `days` of runs, checks, syncs and audit."""
    rng = random.Random(seed)  # noqa: S311 - test data
    now = timezone.now()
    token = crypto.encrypt(PLANTED_PASSWORD)
    orgs = Organisation.objects.bulk_create(
        [Organisation(name=f"{prefix.title()} Company {n:05d}", slug=f"{prefix}-{n:05d}") for n in range(connections)],
        batch_size=batch)
    conns = Connection.objects.bulk_create([
        Connection(organisation=org, status=rng.choice(STATUSES), company_id=f"{prefix.upper()}{n:05d}",
                   user_id="ws_connect", password_token=token, password_set_at=now - timedelta(days=days),
                   status_changed_at=now - timedelta(hours=rng.randint(1, 24 * 30)),
                   created_at=now - timedelta(days=days))
        for n, org in enumerate(orgs)], batch_size=batch)
    ids = [c.id for c in conns]

    runs: list[ValidationRun] = []
    for conn in conns:
        for age in range(days, -1, -validation_every_days):
            started = now - timedelta(days=age, minutes=rng.randint(0, 600))
            # The newest run of a failing connection is the failed one.
            failed = (conn.status in (Connection.Status.NEEDS_ATTENTION, Connection.Status.BROKEN)
                      and age == days % validation_every_days)
            runs.append(ValidationRun(
                connection=conn, status=ValidationRun.Status.FAILED if failed else ValidationRun.Status.PASSED,
                created_at=started, started_at=started, finished_at=started + timedelta(seconds=rng.randint(2, 9)),
                summary="Every check passed." if not failed else "The role lacks Accounts Payable > Bills View.",
                failed_check="read_apbill" if failed else "", failed_step=4 if failed else None))
    ValidationRun.objects.bulk_create(runs, batch_size=batch)
    last_run = {}
    for run in runs:
        last_run[run.connection_id] = run
    for conn in conns:
        conn.last_validation = last_run[conn.id]
        conn.status_check = last_run[conn.id].failed_check
    Connection.objects.bulk_update(conns, ["last_validation", "status_check"], batch_size=batch)

    checks = []
    for run in last_run.values():
        for position, check in enumerate(CHECKS, start=1):
            failing = run.failed_check == check.key
            checks.append(ValidationCheck(
                run=run, position=position, key=check.key, label=check.label,
                status=ValidationCheck.Status.FAILED if failing else ValidationCheck.Status.PASSED,
                duration_ms=rng.randint(20, 400), message="Permission missing." if failing else "Accepted.",
                wizard_step=4 if failing else None, errorno="BL34000061" if failing else "",
                description="Permission denied" if failing else "",
                description2="You do not have permission for API operation READ_BY_QUERY on objects of type apbill"
                if failing else "", created_at=run.finished_at))
    ValidationCheck.objects.bulk_create(checks, batch_size=batch)

    syncing = [c for c in conns if c.status in (Connection.Status.CONNECTED, Connection.Status.NEEDS_ATTENTION)]
    sync_runs = []
    for conn in syncing:
        for age in range(days, -1, -sync_every_days):
            started = now - timedelta(days=age, minutes=rng.randint(0, 600))
            sync_runs.append(SyncRun(connection=conn, status=SyncRun.Status.SUCCEEDED, created_at=started,
                                     started_at=started, finished_at=started + timedelta(seconds=40),
                                     records_read=rng.randint(0, 5000), requests=rng.randint(5, 50),
                                     duration_ms=40_000))
    SyncRun.objects.bulk_create(sync_runs, batch_size=batch)
    last_syncs: dict[int, list[SyncRun]] = {}
    for run in sync_runs:
        last_syncs.setdefault(run.connection_id, []).append(run)
    objects = []
    for runs_of_conn in last_syncs.values():
        for run in runs_of_conn[-3:]:
            for position, name in enumerate(OBJECT_NAMES):
                objects.append(SyncObjectRun(run=run, position=position, object_name=name, mode="incremental",
                                             status=SyncObjectRun.Status.SUCCEEDED, started_at=run.started_at,
                                             finished_at=run.finished_at, records_read=rng.randint(0, 1000),
                                             requests=rng.randint(1, 10)))
    SyncObjectRun.objects.bulk_create(objects, batch_size=batch)

    ConnectionSummary.objects.bulk_create([
        ConnectionSummary(connection_id=conn.id,
                          last_successful_sync_at=last_syncs[conn.id][-1].finished_at if conn.id in last_syncs
                          else None,
                          last_sync_status=SyncRun.Status.SUCCEEDED if conn.id in last_syncs else "",
                          records_held=rng.randint(0, 200_000) if conn.id in last_syncs else 0,
                          errors_24h=rng.choice([0, 0, 0, 1, 3]))
        for conn in conns], batch_size=batch, ignore_conflicts=True)

    StepCompletion.objects.bulk_create([StepCompletion(connection=conn, step=step, done_at=conn.created_at)
                                        for conn in conns for step in range(1, 7)], batch_size=batch)
    audit = []
    for conn, org in zip(conns, orgs, strict=True):
        for age in range(days, -1, -max(1, days // 12 or 1)):
            audit.append(AuditEvent(organisation=org, connection=conn, action="validation.started",
                                    details={"trigger": "scheduled"}, created_at=now - timedelta(days=age)))
    AuditEvent.objects.bulk_create(audit, batch_size=batch)
    changes = []
    for conn in conns:
        if conn.status in (Connection.Status.NEEDS_ATTENTION, Connection.Status.BROKEN):
            changes.append(ConnectionStatusChange(connection=conn, from_status=Connection.Status.CONNECTED,
                                                  to_status=conn.status, check_key="read_apbill",
                                                  changed_at=conn.status_changed_at))
    ConnectionStatusChange.objects.bulk_create(changes, batch_size=batch)
    summaries.status_days_refresh()
    return ids
