"""Every run ends, at the moment it stops, with words saying why: a bug of ours, a missing encryption key,
and a connection that never worked (in setup: no "broken", no stale badge, no e-mail)."""
from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from django.core import mail
from django.test import Client
from django.urls import reverse

from connector import deprovision, services, sync, tasks, validation
from connector.models import MetricCounter, Record, SyncRun, ValidationRun
from simulator.demo import build_company, without
from simulator.services import CONNECT_PERMISSIONS
from tests.validation.conftest import PASSWORD, SMALL, make_connection, validate


@pytest.fixture
def queued(monkeypatch):
    """Syncs and validations the product queues, captured with their delay instead of sent to a broker."""
    sent: list[tuple[str, int, float]] = []
    monkeypatch.setattr(tasks.sync_run, "delay", lambda run_id: sent.append(("sync", run_id, 0)))
    monkeypatch.setattr(tasks.sync_run, "apply_async",
                        lambda args, countdown=0, **_: sent.append(("sync", args[0], countdown)))
    monkeypatch.setattr(tasks.connection_validate, "delay", lambda run_id: sent.append(("validate", run_id, 0)))
    return sent


@pytest.fixture
def connected(simulator, queued):
    demo = build_company("END-CO", sizes=SMALL)
    connection = make_connection("END-CO", wants_deprovisioning=True)
    assert validate(connection).status == "passed"
    # The first sync, queued when it connected, runs as a worker would.
    [(_, first, _)] = queued
    assert sync.run_sync(run_id=first).status == SyncRun.Status.SUCCEEDED
    queued.clear()
    connection.refresh_from_db()
    return demo, connection


def _internal_errors(source: str) -> float:
    counter = MetricCounter.objects.filter(name="intacct_connect_internal_errors_total",
                                           labels=f'source="{source}"').first()
    return counter.value if counter else 0


def test_a_bug_in_the_middle_of_a_sync_ends_it_failed_naming_it_and_says_what_was_not_read(
        connected, monkeypatch, caplog):
    _, connection = connected
    original = sync.SyncEngine._store

    def broken_store(self, definition, *args, **kwargs):
        if definition.name == "LOCATION":
            raise AttributeError("'Connection' object has no attribute 'connection'")
        return original(self, definition, *args, **kwargs)

    monkeypatch.setattr(sync.SyncEngine, "_store", broken_store)
    run = SyncRun.objects.create(connection=connection)
    with caplog.at_level(logging.ERROR, logger="connector.sync"):
        sync.run_sync(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED and run.finished_at is not None
    assert run.summary.startswith("Stopped by an internal error (AttributeError)")
    objects = {o.object_name: o for o in run.object_runs.all()}
    assert objects["DEPARTMENT"].status == "succeeded"
    assert objects["LOCATION"].status == "failed" and "internal error" in objects["LOCATION"].message
    # The objects after it were not read, and say so (with two objects read at once, the one beside it
    # finishes first).
    assert objects["APBILL"].status == "failed" and objects["APBILL"].message.startswith("Not read:")
    assert "Traceback" in caplog.text and _internal_errors("sync") == 1
    connection.refresh_from_db()
    assert connection.status == "connected"  # our bug is not the company's problem


def test_a_bug_during_a_validation_ends_it_failed_and_leaves_the_status_alone(connected, monkeypatch):
    _, connection = connected

    def broken(ctx):
        raise KeyError("boom")

    monkeypatch.setattr(validation.Context, "facts", lambda self: broken(self))
    run = validate(connection)
    assert run.status == "failed" and run.summary.startswith("Stopped by an internal error (KeyError)")
    assert not run.checks.filter(status="running").exists()
    assert run.checks.filter(message__startswith="Not checked:").exists()
    assert _internal_errors("validation") == 1
    connection.refresh_from_db()
    assert connection.status == "connected" and not mail.outbox


def test_a_bug_during_deprovisioning_is_audited_with_words(connected, monkeypatch):
    _, connection = connected
    user = Record.objects.get(connection=connection, object_name="USERINFO", recordno=3)
    monkeypatch.setattr(deprovision, "_refresh_local", lambda *a: (_ for _ in ()).throw(TypeError("bad")))
    details = deprovision.apply(connection=connection, user=user, action=deprovision.DEACTIVATE,
                                with_employee=False, by=None)
    assert not details["verified"]
    assert "internal error (TypeError)" in details["answers"][-1]["words"]
    assert connection.audit_events.filter(action="user.deactivation_failed").exists()


def test_a_worker_without_the_encryption_key_fails_the_sync_with_words_and_queues_a_retry(connected, settings,
                                                                                         queued):
    _, connection = connected
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the new key only: rotation half deployed
    run = SyncRun.objects.create(connection=connection)
    sync.run_sync(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert "does not have the encryption key that the password was stored with" in run.summary
    [(kind, retry_id, countdown)] = queued
    assert kind == "sync" and countdown == settings.SYNC_RETRY_DELAY_SECONDS
    retry = SyncRun.objects.get(pk=retry_id)
    assert retry.attempt == 2 and retry.status == SyncRun.Status.QUEUED
    # The same worker validating: inconclusive (tried again later), never "broken".
    checked = validate(connection)
    assert checked.status == "inconclusive" and "encryption key" in checked.summary
    connection.refresh_from_db()
    assert connection.status == "connected"


def test_a_connection_that_never_worked_stays_in_setup_without_badge_or_email(simulator, queued):
    build_company("SETUP-CO", sizes=SMALL, permissions=without(CONNECT_PERMISSIONS, "Bills"))
    connection = make_connection("SETUP-CO")
    run = validate(connection)
    assert run.status == "failed" and run.failed_check == "read_apbill"
    # Entering other (wrong) credentials of one's own: still in setup, still no e-mail.
    services.connection_set_credentials(connection=connection, company_id="SETUP-CO", user_id="ws_connect",
                                        password="Wrong-Password-1", by=None)
    [(_, run_id, _)] = [q for q in queued if q[0] == "validate"]
    validation.run_validation(run_id=run_id)
    connection.refresh_from_db()
    assert ValidationRun.objects.get(pk=run_id).failed_check == "login"
    assert connection.status == "in_setup" and not mail.outbox
    assert not connection.status_changes.filter(to_status__in=("broken", "needs_attention")).exists()
    support = services.user_create(username="sam", email="sam@op.test", password=PASSWORD)
    services.support_staff_grant(user=support)
    client = Client()
    client.force_login(support)
    page = client.get(reverse("dashboard") + "?stale=on").content.decode()
    assert connection.organisation.name not in page  # never synced, but not "stale": it never connected
