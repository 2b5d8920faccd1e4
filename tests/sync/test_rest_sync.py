"""Sync and deprovisioning over the REST API (issue 17): the same keyset incremental, reconciliation, concurrency
cap, maintenance window and call accounting as over XML, and an XML -> REST switch that re-syncs nothing.

One simulated company answers both protocols from the same records, so every check compares with the
simulator's truth (``assert_mirror_exact``) and with what the XML side stored before the switch.
"""
from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone

from connector import deprovision, feed, services, sync
from connector.models import AuditEvent, Connection, Record, SyncObjectRun, SyncRun
from simulator import records as sim_records
from simulator.demo import build_company
from simulator.faults import set_fault
from simulator.inflight import inflight_reset, inflight_stats
from simulator.metering import month_usage
from tests.conftest import wait_for
from tests.sync.conftest import SMALL_SIZES, assert_mirror_exact, connect, sync_now

COMPANY_TZ = "America/Los_Angeles"  # the simulated companies' time zone (SimCompany.timezone_name)
NO_DST_TZ = "America/Phoenix"


def to_rest(connection: Connection, company_timezone: str = COMPANY_TZ) -> Connection:
    """What the admin's switch does: the connection reads over REST as its Web Services user from now on."""
    services.connection_switch_to_rest(connection=connection, grant=Connection.RestGrant.CLIENT_CREDENTIALS,
                                       company_id=connection.company_id, user_id=connection.user_id,
                                       company_timezone=company_timezone, by=None)
    connection.refresh_from_db()
    assert connection.protocol == Connection.Protocol.REST and not connection.password_token
    return connection


def stored(connection: Connection) -> dict[tuple[str, int], tuple[int, dict, str]]:
    return {(r.object_name, r.recordno): (r.change_seq, r.data, r.whenmodified)
            for r in Record.objects.filter(connection=connection)}


def test_full_incremental_and_reconcile_over_rest_on_a_worker(celery_worker, organisation, our_rest_app):
    # A company without daylight saving time: the simulator generates company-local timestamps without a time
    # zone, and a few of 9,000 fall in a spring-forward gap, a local time no instant has, which no UTC value can
    # carry (docs/protocol-choices.md). Real Intacct records instants; the switch test below runs in Los Angeles.
    company = build_company("REST-SYNC", sizes={**SMALL_SIZES, "APBILL": 9000}, timezone_name=NO_DST_TZ).company
    connection = to_rest(connect(organisation, "REST-SYNC"), NO_DST_TZ)
    inflight_reset("REST-SYNC")
    billed = month_usage(company)

    def on_worker(kind: str) -> SyncRun:
        run, _ = services.sync_request(connection=connection, kind=kind)
        wait_for(lambda: SyncRun.objects.get(pk=run.pk).is_finished, timeout=180, message=f"a {kind} sync over REST")
        run.refresh_from_db()
        assert run.status == SyncRun.Status.SUCCEEDED, run.summary
        return run

    first = on_worker(SyncRun.Kind.INCREMENTAL)  # the first sync of a connection is a full read
    assert_mirror_exact(connection, company)
    assert first.records_created == Record.objects.filter(connection=connection).count() > 9000
    # The company's cap (2) held across the object readers and APBILL's range readers, with no 429 retried into.
    stats = inflight_stats("REST-SYNC")
    assert stats["max_in_flight"] == 2 and stats["rejected"] == 0, stats
    # Call accounting: every billed API call is on the run, plus the one client-credentials token request.
    assert first.requests == month_usage(company) - billed + 1 and first.retries == 0
    per_object = dict(SyncObjectRun.objects.filter(run=first).values_list("object_name", "requests"))
    assert per_object["APBILL"] <= 9000 // 2000 + 4 and sum(per_object.values()) == first.requests

    # Changes in Intacct: one bill paid, one deleted, one created.
    sim_records.modify_record(company, "APBILL", 2, {"STATE": "Paid"})
    sim_records.delete_record(company, "APBILL", 7)
    new = sim_records.create_record(company, "APBILL", {"RECORDID": "BILL-NEW", "VENDORID": "V0001", "STATE": "Posted"})
    billed = month_usage(company)
    incremental = on_worker(SyncRun.Kind.INCREMENTAL)
    bills = SyncObjectRun.objects.get(run=incremental, object_name="APBILL")
    assert (bills.mode, bills.records_created, bills.records_updated) == ("incremental", 1, 1)
    assert incremental.records_created == 1 and incremental.records_updated == 1
    assert Record.objects.get(connection=connection, object_name="APBILL", recordno=2).data["STATE"] == "Paid"
    assert Record.objects.filter(connection=connection, object_name="APBILL", recordno=new).exists()
    # An incremental sync is a keyset query per object (one more page only where something changed).
    assert incremental.requests == month_usage(company) - billed <= len(per_object) + 1

    reconcile = on_worker(SyncRun.Kind.RECONCILE)
    assert reconcile.records_deleted == 1
    assert Record.objects.get(connection=connection, object_name="APBILL", recordno=7).deleted_at is not None
    assert_mirror_exact(connection, company)


def test_switching_from_xml_to_rest_re_syncs_nothing_that_did_not_change(synced, our_rest_app):
    connection = synced.connection
    assert sync_now(connection).status == SyncRun.Status.SUCCEEDED  # everything, over XML
    before, head = stored(connection), feed.head(connection.pk)
    # The platform has read the whole feed: its cursor is at the end.
    cursor = None
    while True:
        page = feed.page(connection.pk, after=cursor)
        cursor = feed.cursor_decode(page.next_cursor, connection_id=connection.pk, object_name="")
        if not page.has_more:
            break

    connection = to_rest(connection)
    for kind in (SyncRun.Kind.INCREMENTAL, SyncRun.Kind.FULL, SyncRun.Kind.RECONCILE):
        run = sync_now(connection, kind)
        assert run.status == SyncRun.Status.SUCCEEDED, run.summary
        assert (run.records_created, run.records_updated, run.records_deleted) == (0, 0, 0), (kind, run.summary)
        assert run.records_read > 0 or kind != SyncRun.Kind.FULL
    # Not one row rewritten: same change numbers, same data, same WHENMODIFIED; the feed has nothing new.
    assert stored(connection) == before
    assert feed.head(connection.pk) == head
    after = feed.page(connection.pk, after=cursor)
    assert after.count == 0 and after.next_cursor == cursor.encode()

    # A change made in Intacct afterwards is read over REST, stored as XML would have, and is the feed's one change.
    sim_records.modify_record(synced.company, "EMPLOYEE", 5, {"TITLE": "Controller", "ENDDATE": "12/31/2026"})
    run = sync_now(connection)
    assert (run.records_created, run.records_updated) == (0, 1), run.summary
    assert_mirror_exact(connection, synced.company)
    changes = feed.page(connection.pk, after=cursor)
    [change] = json.loads(changes.body)
    assert (change["object"], change["recordno"], change["data"]["TITLE"]) == ("EMPLOYEE", 5, "Controller")
    assert feed.head(connection.pk) == head + 1


def test_deprovisioning_over_rest_writes_verifies_and_audits(synced, our_rest_app, settings):
    company = synced.company
    connection = connect(synced.organisation, "SYNC-CO", deprovisioning=True)
    user = sim_records.get_record(company, "USERINFO", 3)
    sim_records.modify_record(company, "EMPLOYEE", 4, {"PERSONALINFO.EMAIL1": user["CONTACTINFO.EMAIL1"],
                                                       "STATUS": "active", "ENDDATE": ""})
    sim_records.modify_record(company, "USERINFO", 3, {"STATUS": "active"})
    connection = to_rest(connection)
    assert sync_now(connection).status == SyncRun.Status.SUCCEEDED

    someone = Record.objects.get(connection=connection, object_name="USERINFO", recordno=3)
    details = deprovision.apply(connection=connection, user=someone, action=deprovision.DEACTIVATE,
                                with_employee=True, by=None, end_date=timezone.localdate() + timedelta(days=1))
    assert details["verified"], details["answers"]
    assert [a["answer"] for a in details["answers"]] == ["applied", "applied"]
    assert sim_records.get_record(company, "USERINFO", 3)["STATUS"] == "inactive"
    employee = sim_records.get_record(company, "EMPLOYEE", 4)
    assert employee["STATUS"] == "inactive" and employee["ENDDATE"] == \
        (timezone.localdate() + timedelta(days=1)).strftime("%m/%d/%Y")
    assert Record.objects.get(pk=someone.pk).data["STATUS"] == "inactive"
    assert AuditEvent.objects.filter(action="user.deactivated", connection=connection).count() == 1

    # Every answer to the user's reactivation is lost (each attempt applied): settled by reading the record back.
    settings.INTACCT_MAX_RETRIES = 1
    set_fault(company, "drop", count=2)
    back = deprovision.apply(connection=connection, user=someone, action=deprovision.REACTIVATE, with_employee=True,
                             by=None)
    assert back["verified"], back["answers"]
    assert [a["answer"] for a in back["answers"]] == ["applied (confirmed by read-back)", "applied"]
    assert sim_records.get_record(company, "USERINFO", 3)["STATUS"] == "active"
    assert sim_records.get_record(company, "EMPLOYEE", 4)["ENDDATE"] == ""

    # A user without admin privileges Full: refused over REST too, audited with words.
    sim_user = company.users.get(login_id="ws_connect")
    sim_user.admin_privileges = "Limited"
    sim_user.save()
    refused = deprovision.apply(connection=connection, user=someone, action=deprovision.DEACTIVATE,
                                with_employee=False, by=None)
    assert not refused["verified"] and refused["answers"][0]["answer"] == "refused"
    assert "admin privileges Full" in refused["answers"][0]["words"]
    assert AuditEvent.objects.filter(action="user.deactivation_failed", connection=connection).count() == 1


def test_no_rest_sync_is_queued_in_the_maintenance_window(synced, our_rest_app, settings, monkeypatch):
    from connector import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.sync_run, "delay", lambda run_id: queued.append(run_id))
    monkeypatch.setattr(tasks.sync_run, "apply_async", lambda args, **_: queued.append(args[0]))
    to_rest(synced.connection)
    # Today, all day (UTC), is Intacct's maintenance window: nothing is queued.
    settings.SYNC_MAINTENANCE_WINDOW = {"weekday": timezone.now().weekday(), "start": "00:00", "end": "23:59:60"}
    assert sync.in_maintenance_window()
    assert sync.schedule_due(kind=SyncRun.Kind.INCREMENTAL) == 0 and not queued
    settings.SYNC_MAINTENANCE_WINDOW = {}
    assert sync.schedule_due(kind=SyncRun.Kind.INCREMENTAL) == 1 and len(queued) == 1
