"""Connect through the real stack: view, on_commit, broker, a real Celery worker, the simulator over HTTP."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection as db_connection
from django.test import Client

from connector import services
from connector.models import Connection, ValidationRun
from tests.conftest import PASSWORD, wait_for
from tests.wizard.conftest import simulated_company

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SECRET = "Live-Secret-Pw-5519"  # noqa: S105 - the plaintext the test hunts for


def _admin_client() -> Client:
    admin = services.user_create(username="alice", email="alice@acme.test", password=PASSWORD)
    services.organisation_create(name="Acme Ltd", slug="acme", admin=admin)
    client = Client()
    assert client.login(username="alice", password=PASSWORD)
    return client


def _finished_run() -> ValidationRun:
    return wait_for(lambda: ValidationRun.objects.filter(status__in=ValidationRun.FINISHED).first(),
                    timeout=30, message="the validation run to finish")


def test_connect_is_validated_by_a_real_worker_and_the_secret_leaks_nowhere(celery_worker):
    simulated_company("LIVE-CO", password=SECRET)
    client = _admin_client()
    client.post("/organisations/acme/setup/step-4/",
                {"action": "permission_model", "permission_model": "role"})
    response = client.post("/organisations/acme/setup/step-6/",
                           {"company_id": "LIVE-CO ", "user_id": "ws_connect", "password": SECRET})
    assert response.status_code == 302
    run = _finished_run()
    failed = list(run.checks.exclude(status__in=["passed", "skipped"]).values("key", "message"))
    assert run.status == "passed", failed
    assert Connection.objects.get().status == "connected"
    page = client.get("/organisations/acme/connection/").content.decode()
    assert "Connected" in page and SECRET not in page
    fragment = client.get(f"/organisations/acme/validations/{run.id}/").content.decode()
    assert "Can read bills" in fragment and "data-poll-url" not in fragment

    # The broker's message files, the worker's log and every database column but the token.
    broker = Path(settings.VAR_DIR) / "broker"
    for path in broker.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in celery_worker.log()
    with db_connection.cursor() as cursor:
        for table in db_connection.introspection.table_names():
            if table.startswith("simulator_"):
                continue  # the simulated Intacct stores its own (hashed) user passwords
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from introspection
            for row in cursor.fetchall():
                assert SECRET not in " ".join(map(str, row)), table


def test_a_missing_permission_names_step_4_through_the_worker(celery_worker):
    simulated_company("LIVE-NOBILLS", password=SECRET, skip_policies=("Bills",))
    client = _admin_client()
    client.post("/organisations/acme/setup/step-4/",
                {"action": "permission_model", "permission_model": "role"})
    client.post("/organisations/acme/setup/step-6/",
                {"company_id": "LIVE-NOBILLS", "user_id": "ws_connect", "password": SECRET})
    run = _finished_run()
    assert run.status == "failed" and run.failed_step == 4
    check = run.checks.get(key="read_apbill")
    assert check.status == "failed" and check.errorno == "PL04000005"
    assert Connection.objects.get().status == "in_setup"  # never connected yet: not "needs attention"
    page = client.get("/organisations/acme/setup/step-6/").content.decode()
    assert "Revisit step 4" in page and "Accounts Payable &gt; Bills View" in page
