"""Deprovisioning on the simulator: the confirmation page, the write, the read-back, the audit, reactivation."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.urls import reverse

from connector import deprovision, sync
from connector.models import AuditEvent, Connection, Record, SyncRun
from simulator import records as sim_records
from simulator.faults import set_fault
from tests.sync.conftest import connect


def test_deactivate_then_reactivate_user_and_employee_verified_on_the_simulator(synced, admin_client):
    company = synced.company
    Connection.objects.filter(pk=synced.connection.pk).update(wants_deprovisioning=True)
    connection = connect(synced.organisation, "SYNC-CO", deprovisioning=True)
    user = sim_records.get_record(company, "USERINFO", 3)
    sim_records.modify_record(company, "EMPLOYEE", 4, {"PERSONALINFO.EMAIL1": user["CONTACTINFO.EMAIL1"],
                                                       "STATUS": "active", "ENDDATE": ""})
    sim_records.modify_record(company, "USERINFO", 3, {"STATUS": "active"})
    run = SyncRun.objects.create(connection=connection)
    assert sync.run_sync(run_id=run.pk).status == SyncRun.Status.SUCCEEDED

    url = reverse("user_deprovision", args=["acme", 3, "deactivate"])
    page = admin_client.get(url).content.decode()
    assert "STATUS" in page and "inactive" in page and "ENDDATE" in page and "EMPLOYEE 4" in page

    response = admin_client.post(url, {"with_employee": "1", "end_date": "2024-06-30"})
    assert response.status_code == 200 and response.context["result"]["verified"]
    assert sim_records.get_record(company, "USERINFO", 3)["STATUS"] == "inactive"
    employee = sim_records.get_record(company, "EMPLOYEE", 4)
    assert employee["STATUS"] == "inactive" and employee["ENDDATE"] == "06/30/2024"
    assert Record.objects.get(connection=connection, object_name="USERINFO", recordno=3).data["STATUS"] == "inactive"
    event = AuditEvent.objects.get(action="user.deactivated")
    assert event.actor.username == "alice"
    assert [s["object"] for s in event.details["sent"]] == ["USERINFO", "EMPLOYEE"]
    assert "password" not in str(event.details).lower()

    # A repeat with the same control ID is "already applied", not a second write.
    control_id = event.details["sent"][0]["control_id"]
    with sync.client_for_sync(connection, 2) as client:
        from connector.intacct import errors
        try:
            client.update("USERINFO", {"RECORDNO": "3", "STATUS": "inactive"}, control_id)
            raise AssertionError("a repeated control ID must be refused as a duplicate")
        except errors.DuplicateRequest:
            pass

    back = admin_client.post(reverse("user_deprovision", args=["acme", 3, "reactivate"]), {"with_employee": "1"})
    assert back.context["result"]["verified"]
    assert sim_records.get_record(company, "USERINFO", 3)["STATUS"] == "active"
    employee = sim_records.get_record(company, "EMPLOYEE", 4)
    assert employee["STATUS"] == "active" and employee["ENDDATE"] == ""
    assert AuditEvent.objects.filter(action="user.reactivated").count() == 1


def test_refused_when_validation_showed_no_write_permission(synced, admin_client):
    company = synced.company
    Connection.objects.filter(pk=synced.connection.pk).update(wants_deprovisioning=True)
    run = SyncRun.objects.create(connection=synced.connection)
    sync.run_sync(run_id=run.pk)
    # The connection's last validation skipped/failed the deprovisioning check (see conftest.connect).
    url = reverse("user_deprovision", args=["acme", 3, "deactivate"])
    before = sim_records.get_record(company, "USERINFO", 3)["STATUS"]
    page = admin_client.get(url).content.decode()
    assert "Employees Edit and admin privileges Full" in page
    admin_client.post(url)
    assert sim_records.get_record(company, "USERINFO", 3)["STATUS"] == before
    assert not AuditEvent.objects.filter(action__startswith="user_").exists()


def test_a_deactivation_whose_answer_was_lost_is_audited_as_applied_confirmed_by_read_back(synced):
    company = synced.company
    connection = connect(synced.organisation, "SYNC-CO", deprovisioning=True)
    sim_records.modify_record(company, "USERINFO", 3, {"STATUS": "active"})
    run = SyncRun.objects.create(connection=connection)
    assert sync.run_sync(run_id=run.pk).status == SyncRun.Status.SUCCEEDED
    user = Record.objects.get(connection=connection, object_name="USERINFO", recordno=3)
    alice = get_user_model().objects.get(username="alice")
    with sync.client_for_sync(connection, 2) as client:
        client.get_api_session()
        # Intacct applies the update, then the connection drops before its answer is complete.
        set_fault(company, "drop", count=1)
        details = deprovision.apply(connection=connection, user=user, action=deprovision.DEACTIVATE,
                                    with_employee=False, by=alice, client=client)
    assert details["verified"]
    assert details["answers"][0]["answer"] == "applied (confirmed by read-back)"
    assert sim_records.get_record(company, "USERINFO", 3)["STATUS"] == "inactive"
    event = AuditEvent.objects.get(action="user.deactivated")
    assert event.details["answers"][0]["answer"] == "applied (confirmed by read-back)"
