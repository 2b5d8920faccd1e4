"""A transient fault that outlasts the client's retries ends the run inconclusive, with a retry scheduled."""
from __future__ import annotations

import pytest

from connector import tasks
from connector.models import Connection
from simulator.demo import build_company
from simulator.faults import clear_faults, set_fault
from tests.validation.conftest import SMALL, make_connection, statuses, validate


@pytest.fixture
def enqueued(monkeypatch):
    calls = []
    monkeypatch.setattr(tasks.connection_validate_later, "apply_async",
                        lambda args, countdown=None: calls.append((args, countdown)))
    return calls


# Each transient cause has its own words (a 429 is not "could not be reached", a 503 is not the limit).
WORDS = {"http5xx": "answered with an error (HTTP 503)", "http429": "asked us to slow down",
         "offline": "temporarily off-line"}


@pytest.mark.parametrize("kind", ["http5xx", "http429", "offline"])
def test_a_persistent_transient_fault_is_inconclusive_and_retried_later(kind, simulator, settings, enqueued):
    settings.VALIDATION_RETRY_DELAYS_SECONDS = [60, 300]
    demo = build_company(f"V-FAULT-{kind.upper()}", sizes=SMALL)
    connection = make_connection(demo.company.company_id, status=Connection.Status.CONNECTED)
    set_fault(demo.company, kind, count=100)

    run = validate(connection)

    assert run.status == "inconclusive" and run.failed_check == "" and run.retry_at is not None
    checks = list(run.checks.all())
    assert {c.status for c in checks} == {"skipped"}
    assert WORDS[kind] in checks[0].message and checks[0].errorno
    assert all("Skipped because Intacct could not be reached" in c.message for c in checks[1:])
    connection.refresh_from_db()
    assert connection.status == "connected" and not connection.status_changes.exists()
    # The next attempt is enqueued with ids only, after the first delay.
    assert enqueued == [((connection.id, "retry", 2, run.id), 60)]

    # The last allowed attempt schedules nothing more.
    last = validate(connection, trigger="retry", attempt=3)
    assert last.status == "inconclusive" and last.retry_at is None and len(enqueued) == 1

    # The retry task, once Intacct is back, connects.
    clear_faults(demo.company)
    from connector import validation

    retried = validation.connection_validate_later(connection_id=connection.id, trigger="retry", attempt=2,
                                                   after_run_id=last.id)
    assert retried.status == "passed" and retried.trigger == "retry" and retried.attempt == 2
    assert set(statuses(retried).values()) == {"passed", "skipped"}


def test_a_retry_is_dropped_when_a_newer_run_exists(simulator, enqueued):
    from connector import validation

    build_company("V-NEWER", sizes=SMALL)
    connection = make_connection("V-NEWER")
    old = validate(connection)
    validate(connection)
    assert validation.connection_validate_later(connection_id=connection.id, trigger="retry", attempt=2,
                                                after_run_id=old.id) is None
