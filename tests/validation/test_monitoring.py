"""A working connection broken later on the simulator is caught by the scheduled re-validation run by a real
worker; the admins get exactly one e-mail when it breaks and one when it recovers."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from connector import monitoring, tasks
from connector.models import Connection, ValidationRun
from simulator.demo import build_company, without
from simulator.services import CONNECT_PERMISSIONS, reset_password, set_permissions
from tests.conftest import mail_text, mails_to, wait_for
from tests.validation.conftest import SMALL, make_connection, validate

NEW_PASSWORD = "Reset-By-Admin-2025!"  # noqa: S105 - simulator test credential


def run_schedule(connection: Connection) -> ValidationRun:
    """Make the connection due, let beat's task run on the worker, wait for the scheduled run to finish."""
    before = set(ValidationRun.objects.filter(connection=connection).values_list("id", flat=True))
    ValidationRun.objects.filter(connection=connection).update(created_at=timezone.now() - timedelta(days=2))
    tasks.connections_revalidate.apply_async(kwargs={"spread_seconds": 0})

    def finished():
        return (ValidationRun.objects.filter(connection=connection, trigger="scheduled",
                                             status__in=ValidationRun.FINISHED).exclude(id__in=before).first())
    return wait_for(finished, timeout=30, message="the scheduled validation to finish")


def _password_reset(demo, connection):
    reset_password(demo.user, NEW_PASSWORD)


def _deactivate(demo, connection):
    demo.user.status = "inactive"
    demo.user.save()


def _remove_bills(demo, connection):
    set_permissions(role=demo.role, permissions=without(CONNECT_PERMISSIONS, "Bills"))


def _fix_password(demo, connection):
    from connector import services

    services.connection_set_password(connection=connection, password=NEW_PASSWORD, by=None)


def _reactivate(demo, connection):
    demo.user.status = "active"
    demo.user.save()


def _restore_bills(demo, connection):
    set_permissions(role=demo.role, permissions=CONNECT_PERMISSIONS)


BREAKS = [
    ("password-reset", _password_reset, _fix_password, "login", "broken", "password_reset",
     "an Intacct administrator most likely reset it"),
    ("user-deactivated", _deactivate, _reactivate, "login", "broken", "user_deactivated",
     "is inactive in Intacct"),
    ("permission-removed", _remove_bills, _restore_bills, "read_apbill", "needs_attention", "permission_removed",
     "Accounts Payable > Bills View"),
]


@pytest.mark.parametrize(("name", "breaks", "fixes", "check", "status", "cause", "words"), BREAKS,
                         ids=[b[0] for b in BREAKS])
def test_a_break_is_caught_by_the_schedule_and_mailed_once(name, breaks, fixes, check, status, cause, words,
                                                           celery_worker, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                                 "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    demo = build_company(f"MON-{name.upper()}", sizes=SMALL)
    connection = make_connection(demo.company.company_id)
    assert validate(connection).status == "passed"
    admin = connection.organisation.memberships.get().user.email

    breaks(demo, connection)
    run = run_schedule(connection)

    assert run.status == "failed" and run.failed_check == check and run.cause == cause
    connection.refresh_from_db()
    assert connection.status == status and connection.status_check == check
    assert connection.failure_notified_at is not None
    # The e-mail goes out just after the run is saved as finished.
    wait_for(lambda: mails_to(admin, "stopped working") == 1, timeout=10, message="the failure e-mail")
    mail = mail_text(admin, "stopped working")
    assert words in mail and f"/organisations/{connection.organisation.slug}/connection/" in mail
    assert NEW_PASSWORD not in mail and "Demo-Connect" not in mail

    # Still broken at the next scheduled check: no second e-mail.
    assert run_schedule(connection).status == "failed"
    time.sleep(1)  # what the worker does after saving the run (no e-mail expected) has surely finished
    assert mails_to(admin, "stopped working") == 1

    fixes(demo, connection)
    if fixes is _fix_password:
        wait_for(lambda: Connection.objects.get(id=connection.id).status == "connected", timeout=30,
                 message="the re-validation after the new password")
    else:
        assert run_schedule(connection).status == "passed"
    wait_for(lambda: mails_to(admin, "works again") == 1, timeout=10, message="the recovery e-mail")
    connection.refresh_from_db()
    assert connection.status == "connected" and connection.failure_notified_at is None
    assert mails_to(admin, "stopped working") == 1
    history = list(connection.status_changes.order_by("changed_at", "id").values_list("from_status", "to_status"))
    assert history == [("in_setup", "connected"), ("connected", status), (status, "connected")]


def test_due_connections_get_a_stable_spread_out_delay(db, settings):
    settings.VALIDATION_MONITOR_TICK_SECONDS = 3600
    offsets = [monitoring.stable_offset(connection_id=i, window=3600) for i in range(1, 201)]
    assert offsets == [monitoring.stable_offset(connection_id=i, window=3600) for i in range(1, 201)]
    assert all(0 <= o < 3600 for o in offsets) and len(set(offsets)) > 150
    connected = make_connection("DUE-CO", status=Connection.Status.CONNECTED)
    make_connection("SETUP-CO", status=Connection.Status.IN_SETUP)
    fresh = make_connection("FRESH-CO", status=Connection.Status.CONNECTED)
    ValidationRun.objects.create(connection=fresh)
    assert list(monitoring.connections_due()) == [connected]
