"""Sync tests: a simulated company with small realistic sizes, and a connected organisation pointing at it."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.utils import timezone

from connector import crypto, services, sync
from connector.models import Connection, Organisation, Record, SyncRun, ValidationCheck, ValidationRun
from connector.objects import OBJECTS
from simulator.demo import DEMO_PASSWORD, SIZES, build_company
from simulator.models import SimCompany
from simulator.records import current_records

SMALL_SIZES = SIZES["one_page"]


@dataclass
class Synced:
    company: SimCompany
    organisation: Organisation
    connection: Connection


def connect(org: Organisation, company_id: str, *, deprovisioning: bool = False) -> Connection:
    """Point the organisation's connection at the simulated company, connected as after a passed validation."""
    connection = services.connection_get(organisation=org)
    Connection.objects.filter(pk=connection.pk).update(
        company_id=company_id, user_id="ws_connect", password_token=crypto.encrypt(DEMO_PASSWORD),
        status=Connection.Status.CONNECTED, permission_model="role", wants_deprovisioning=deprovisioning)
    connection.refresh_from_db()
    run = ValidationRun.objects.create(connection=connection, status=ValidationRun.Status.PASSED,
                                       finished_at=timezone.now())
    ValidationCheck.objects.create(run=run, position=0, key="deprovisioning", label="Write permission",
                                   status=ValidationCheck.Status.PASSED if deprovisioning
                                   else ValidationCheck.Status.SKIPPED)
    connection.last_validation = run
    connection.save(update_fields=["last_validation"])
    return connection


@pytest.fixture
def synced(transactional_db, intacct_endpoint, organisation) -> Synced:
    demo = build_company("SYNC-CO", sizes=SMALL_SIZES)
    return Synced(demo.company, organisation, connect(organisation, "SYNC-CO"))


def assert_mirror_exact(connection: Connection, company: SimCompany) -> None:
    """Our Record table holds exactly the simulator's records (live ones; gone ones marked deleted)."""
    for definition in OBJECTS:
        truth = current_records(company, definition.name)
        ours = {r.recordno: r.data for r in Record.objects.filter(connection=connection, object_name=definition.name,
                                                                   deleted_at__isnull=True)}
        assert set(ours) == set(truth), (definition.name, sorted(set(ours) ^ set(truth))[:10])
        for recordno, record in truth.items():
            lowered = {k.lower(): v for k, v in record.items()}
            for name in definition.fields:
                expected = str(lowered.get(name.lower(), "") or "")
                got = str(ours[recordno].get(name) or "")
                assert got == expected, (definition.name, recordno, name, got, expected)


def sync_now(connection: Connection, kind: str = SyncRun.Kind.INCREMENTAL) -> SyncRun:
    """Run one sync of the connection in this process, as the worker would, and return it finished."""
    run = SyncRun.objects.create(connection=connection, kind=kind)
    sync.run_sync(run_id=run.pk)
    run.refresh_from_db()
    return run
