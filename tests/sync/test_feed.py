"""The change feed (issue 16): every write of a synced record is numbered, and a consumer reading only
GET /api/v1/organisations/<slug>/changes/ keeps a mirror equal to our table, deletions included."""
from __future__ import annotations

import copy
import itertools
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector import feed, sync
from connector.models import ApiToken, FeedCounter, Record, SyncCursor, SyncRun
from connector.sync import engine
from simulator import records as sim_records
from simulator.demo import SIZES, build_company
from tests.sync.conftest import connect

TINY_SIZES = SIZES["tiny"]
CHANGED_OBJECTS = ("APBILL", "EMPLOYEE", "EXPENSEREPORTBATCH")  # keyset-incremental ones and a read-whole one


class Consumer:
    """The platform: knows only the feed's answers (through the HTTP API with its token)."""

    def __init__(self, slug: str, token: str, object_name: str = "") -> None:
        self.url = reverse("api_changes", args=[slug])
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        self.object_name = object_name
        self.cursor: str | None = None
        self.mirror: dict[tuple[str, int], dict] = {}
        self.last_seq = 0

    def poll(self, limit: int = 1000) -> dict:
        params = {"limit": limit}
        if self.cursor:
            params["after"] = self.cursor
        if self.object_name:
            params["object"] = self.object_name
        response = Client().get(self.url, params, **self.headers)
        assert response.status_code == 200, response.content[:300]
        body = response.json()
        seen = set()
        for change in body["changes"]:
            assert change["seq"] > self.last_seq, "sequence numbers go up"
            self.last_seq = change["seq"]
            key = (change["object"], change["recordno"])
            assert key not in seen, "a record appears at most once a page"
            seen.add(key)
            if change["op"] == "upsert":
                self.mirror[key] = change["data"]
            else:
                assert change["op"] == "delete" and "data" not in change
                self.mirror.pop(key, None)
        self.cursor = body["next_cursor"]
        return body

    def drain(self, limit: int = 1000) -> int:
        pages = 0
        while True:
            pages += 1
            if not self.poll(limit)["has_more"]:
                return pages


def table(connection, object_name: str = "") -> dict[tuple[str, int], dict]:
    rows = Record.objects.filter(connection=connection, deleted_at__isnull=True)
    if object_name:
        rows = rows.filter(object_name=object_name)
    return {(r.object_name, r.recordno): r.data for r in rows}


def run(connection, kind=SyncRun.Kind.INCREMENTAL) -> SyncRun:
    queued = SyncRun.objects.create(connection=connection, kind=kind)
    result = sync.run_sync(run_id=queued.pk)
    assert result is not None
    return result


@pytest.fixture
def token(synced) -> str:
    return ApiToken.issue(organisation=synced.organisation, name="platform")[1]


def test_every_write_of_a_sync_takes_the_next_number_and_the_feed_mirrors_the_table(synced, token):
    connection, company = synced.connection, synced.company
    first = run(connection, SyncRun.Kind.FULL)
    assert first.status == SyncRun.Status.SUCCEEDED, first.summary
    held = Record.objects.filter(connection=connection).count()
    seqs = sorted(Record.objects.filter(connection=connection).values_list("change_seq", flat=True))
    assert seqs == list(range(1, held + 1)), "one number per record written, none skipped, none shared"
    assert feed.head(connection.pk) == held
    consumer = Consumer(synced.organisation.slug, token)
    assert consumer.drain(limit=250) == -(-held // 250)
    assert consumer.mirror == table(connection)

    # Intacct-side changes: an update, a creation, a deletion found by reconciliation.
    sim_records.modify_record(company, "APBILL", 5, {"STATE": "Paid"})
    created = sim_records.create_record(company, "APBILL", {"VENDORID": "V-NEW", "STATE": "Posted"})
    sim_records.delete_record(company, "APBILL", 9)
    old_modified = Record.objects.get(connection=connection, object_name="APBILL", recordno=9).whenmodified
    before = feed.head(connection.pk)
    reconcile = run(connection, SyncRun.Kind.RECONCILE)
    assert reconcile.status == SyncRun.Status.SUCCEEDED, reconcile.summary
    body = consumer.poll()
    ops = {(c["recordno"], c["op"]) for c in body["changes"] if c["object"] == "APBILL"}
    assert {(5, "upsert"), (created, "upsert"), (9, "delete")} <= ops
    assert not body["has_more"]
    assert consumer.mirror == table(connection)
    assert consumer.mirror[("APBILL", 5)]["STATE"] == "Paid" and ("APBILL", 9) not in consumer.mirror

    # The WHENMODIFIED filter of /records/ would miss this deletion: it keeps its old WHENMODIFIED.
    deleted = Record.objects.get(connection=connection, object_name="APBILL", recordno=9)
    assert deleted.deleted_at is not None and deleted.whenmodified == old_modified
    assert before < deleted.change_seq <= feed.head(connection.pk)

    # Nothing changed: a poll returns nothing and the same position.
    cursor = consumer.cursor
    assert consumer.poll()["changes"] == [] and consumer.cursor == cursor


def test_an_undelete_is_a_change_and_a_record_changed_twice_appears_once_with_its_latest_state(synced, token):
    connection, company = synced.connection, synced.company
    run(connection, SyncRun.Kind.FULL)
    consumer = Consumer(synced.organisation.slug, token, object_name="APBILL")
    consumer.drain()
    # Marked deleted by us (as a wrong reconciliation would), then seen again by a full read: undeleted.
    feed.mark_deleted(connection.pk, Record.objects.filter(connection=connection, object_name="APBILL",
                                                            recordno=11), timezone.now())
    sim_records.modify_record(company, "APBILL", 12, {"STATE": "Draft"})
    run(connection)
    time.sleep(1.1)  # Intacct's WHENMODIFIED is to the second: a change within the same second looks unchanged
    sim_records.modify_record(company, "APBILL", 12, {"STATE": "Paid"})
    run(connection, SyncRun.Kind.FULL)
    body = consumer.poll()
    by_record = {}
    for change in body["changes"]:
        assert change["recordno"] not in by_record, "once each"
        by_record[change["recordno"]] = change
    assert by_record[11]["op"] == "upsert"
    assert by_record[12]["op"] == "upsert" and by_record[12]["data"]["STATE"] == "Paid"
    assert consumer.mirror == table(connection, "APBILL")


def test_cursor_errors_and_retention(synced, token, settings):
    connection, company = synced.connection, synced.company
    run(connection, SyncRun.Kind.FULL)
    slug = synced.organisation.slug
    url = reverse("api_changes", args=[slug])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert Client().get(url).status_code == 401
    assert Client().get(url, {"after": "not-a-cursor"}, **headers).status_code == 400
    assert Client().get(url, {"object": "NOPE"}, **headers).status_code == 400
    assert Client().get(url, {"limit": "1001"}, **headers).status_code == 400
    apbill = Client().get(url, {"object": "APBILL", "limit": 3}, **headers).json()
    assert [c["object"] for c in apbill["changes"]] == ["APBILL"] * 3 and apbill["has_more"]
    mixed = Client().get(url, {"after": apbill["next_cursor"]}, **headers)
    assert mixed.status_code == 400 and "object=APBILL" in mixed.json()["error"]

    # A consumer that read a little, then fell behind a deletion that was purged since: 410.
    behind = Consumer(slug, token)
    behind.poll(limit=2)
    sim_records.delete_record(company, "APBILL", 30)
    run(connection, SyncRun.Kind.RECONCILE)
    up_to_date = Consumer(slug, token)
    up_to_date.drain()
    settings.FEED_RETENTION_DAYS = 30
    assert feed.purge_tombstones(now=timezone.now() + timedelta(days=31)) == 1
    assert not Record.objects.filter(connection=connection, object_name="APBILL", recordno=30).exists()
    gone = Client().get(url, {"after": behind.cursor}, **headers)
    assert gone.status_code == 410 and "resync from /records/" in gone.json()["error"]
    # One who had read past the deletion goes on; a new consumer starts from the beginning.
    assert up_to_date.poll()["changes"] == []
    fresh = Consumer(slug, token)
    fresh.drain()
    assert fresh.mirror == up_to_date.mirror == table(connection)
    # The cursor survives a restart: it is a position in the table, read by a new process as well.
    assert FeedCounter.objects.get(connection=connection).purged_through > 0


def test_reserve_refuses_to_number_outside_a_transaction(synced):
    with pytest.raises(RuntimeError):
        feed.reserve(synced.connection.pk, 1)
    with transaction.atomic():
        assert feed.reserve(synced.connection.pk, 3) == 1
        assert feed.reserve(synced.connection.pk, 0) == 4


# --- the property: any interleaving, the mirror equals the table after every step ---------------------

class _Crash(RuntimeError):
    pass


step = st.one_of(
    st.tuples(st.just("sync"), st.sampled_from([SyncRun.Kind.INCREMENTAL, SyncRun.Kind.FULL,
                                                SyncRun.Kind.RECONCILE])),
    st.tuples(st.just("create"), st.sampled_from(CHANGED_OBJECTS)),
    st.tuples(st.just("update"), st.just("APBILL"), st.integers(1, 95)),
    st.tuples(st.just("update"), st.just("EMPLOYEE"), st.integers(1, 7)),
    st.tuples(st.just("delete"), st.just("APBILL"), st.integers(1, 95)),
    st.tuples(st.just("delete"), st.sampled_from(["EMPLOYEE", "EXPENSEREPORTBATCH"]), st.integers(1, 7)),
    # A sync stopped after some pages (a worker killed mid-run), then the run that resumes from the saved page.
    st.tuples(st.just("crash_then_resume"), st.sampled_from([SyncRun.Kind.FULL, SyncRun.Kind.INCREMENTAL]),
              st.integers(1, 4)),
    st.tuples(st.just("poll"), st.integers(1, 40)),
)
_companies = itertools.count(1)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=3, max_size=10))
def test_a_mirror_built_only_from_the_feed_equals_our_table_after_every_step(synced, token, monkeypatch, steps):
    monkeypatch.setattr(engine, "PAGE_SIZE", 25)  # several pages per object, so a run can stop between two
    connection = synced.connection
    # A fresh company and an empty table for each example.
    company = build_company(f"FEED-{next(_companies)}", sizes=TINY_SIZES).company
    Record.objects.filter(connection=connection).delete()
    SyncCursor.objects.filter(connection=connection).delete()
    FeedCounter.objects.filter(connection=connection).delete()
    connection = connect(synced.organisation, company.company_id)
    consumer = Consumer(synced.organisation.slug, token)  # polls a little at random moments
    follower = Consumer(synced.organisation.slug, token)  # reads to the end after every step
    apbill_only = Consumer(synced.organisation.slug, token, object_name="APBILL")
    assert run(connection, SyncRun.Kind.FULL).status == SyncRun.Status.SUCCEEDED
    original_store = sync.SyncEngine._store  # noqa: SLF001 - the page writer, stopped to imitate a killed worker

    for action in steps:
        kind = action[0]
        if kind == "sync":
            run(connection, action[1])
        elif kind == "create":
            sim_records.create_record(company, action[1], {"DESCRIPTION": "made during the test"})
        elif kind in ("update", "delete"):
            try:
                if kind == "update":
                    sim_records.modify_record(company, action[1], action[2], {"DESCRIPTION": f"v{action[2]}"})
                else:
                    sim_records.delete_record(company, action[1], action[2])
            except KeyError:
                pass  # already gone in Intacct
        elif kind == "crash_then_resume":
            pages = {"n": 0}

            def stopping_store(self, *args, _pages=pages, _after=action[2], **kwargs):
                _pages["n"] += 1
                if _pages["n"] > _after:
                    raise _Crash("worker killed")
                return original_store(self, *args, **kwargs)

            monkeypatch.setattr(sync.SyncEngine, "_store", stopping_store)
            stopped = run(connection, action[1])
            monkeypatch.setattr(sync.SyncEngine, "_store", original_store)
            assert stopped.status in (SyncRun.Status.FAILED, SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL)
            run(connection, action[1])
        else:
            consumer.poll(limit=action[1])  # the platform reads a little, mid-stream
        # Whatever was read so far, reading on to the end gives exactly our table.
        check = copy.deepcopy(consumer)
        check.drain(limit=50)
        assert check.mirror == table(connection), (action, steps)
        follower.drain(limit=60)
        assert follower.mirror == table(connection), (action, steps)
        apbill_only.drain(limit=1000)
        assert apbill_only.mirror == table(connection, "APBILL"), (action, steps)
    consumer.drain(limit=7)
    assert consumer.mirror == table(connection)
