"""The sync engine: one run reads each of the connection's Intacct objects (full read, incremental keyset read,
delete reconciliation) and stores its pages.

Every object in connector.objects is synced the same way, driven by its row:

- **Objects at once**: as many of the connection's objects are read at the same time as the company's
  concurrency limit, each in its own thread holding one of the company's request slots, so a company of
  small objects is not read one round trip after another.
- **Full read** (first sync, or a full re-read): keyset on RECORDNO, 2,000 records a page, each page
  upserted and its position committed in one transaction, so a crash resumes from the last saved page.
  After the first page, an object with pages left is split into RECORDNO ranges, one more than the
  company's limit, at points estimated from the first page's RECORDNOs (the last range has no upper
  bound, so a wrong estimate costs balance, never a record). Each range reader takes a slot only for a
  request's round trip and parses the answer after giving it back, so while one parses another's request
  keeps the slot busy; a reader done with its range takes over half of the range with the most left.
  Pages are written by the object's thread only, while the readers fetch the next pages (a few ahead).
- **Incremental**: keyset on (WHENMODIFIED, RECORDNO) from the saved position minus an overlap window
  (Intacct's timestamps are company-local, to the second); a sync with nothing changed is one query.
- **Reconcile**: RECORDNO-only keyset pages; records we hold that Intacct no longer has are marked deleted.
- Objects readable only with the legacy get_list are small: read whole each time.

Intacct bills every call; each run records its requests, retries and bytes.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, reset_queries, transaction
from django.db import connection as db_connection
from django.db.models import Sum
from django.utils import timezone

from connector import diagnosis, feed, limits, monitoring, objects, policy, readers, services, validation
from connector.diagnosis import Finding
from connector.intacct import errors, filters
from connector.intacct.client import QUERY_MAX_PAGE, Page
from connector.intacct.timestamps import intacct_from_iso, iso_from_intacct, shift_iso
from connector.models import Connection, Record, SyncCursor, SyncObjectRun, SyncRun, ValidationRun
from connector.sync.allowance import can_sync
from connector.sync.client import client_for_sync
from connector.sync.lease import sync_settings_for
from connector.sync.upsert import record_json, upsert_page

PAGE_SIZE = QUERY_MAX_PAGE
READ_AHEAD_PAGES = 2  # pages each reader thread may fetch ahead of the writer (memory: bounded, ~4 MB a page)
LEGACY_PAGE_SIZE = 1000
# A reader done with its range splits another only when that saves time worth the short page it may cost.
TAKE_OVER_MIN_PAGES = 4


def overlap_seconds() -> int:
    return settings.SYNC_OVERLAP_SECONDS



def finish(run: SyncRun, status: str, summary: str) -> None:
    run.status = status
    run.summary = summary[:1000]
    run.finished_at = timezone.now()
    if run.started_at:
        run.duration_ms = int((run.finished_at - run.started_at).total_seconds() * 1000)
    run.save()


def _object_runs_for(run: SyncRun) -> list[SyncObjectRun]:
    """The run's row per object in table order: those of an earlier attempt of this run kept, the others
    created in one statement (not a SELECT and an INSERT each)."""
    existing = {o.object_name: o for o in SyncObjectRun.objects.filter(run=run)}
    missing = [SyncObjectRun(run=run, object_name=definition.name, position=position)
               for position, definition in enumerate(objects.OBJECTS) if definition.name not in existing]
    created = {o.object_name: o for o in SyncObjectRun.objects.bulk_create(missing)}
    object_runs = []
    for position, definition in enumerate(objects.OBJECTS):
        object_run = existing.get(definition.name) or created[definition.name]
        if object_run.position != position:
            object_run.position = position
            object_run.save(update_fields=["position"])
        object_runs.append(object_run)
    return object_runs


def _cursors_for(connection: Connection) -> dict[str, SyncCursor]:
    """The connection's cursor per object, those missing made in one bulk INSERT (only the sync engine writes
    cursors, one run of a connection at a time). Empty when another writer came first: each object then
    reads its own."""
    cursors = {c.object_name: c for c in SyncCursor.objects.filter(connection=connection)}
    missing = [SyncCursor(connection=connection, object_name=d.name) for d in objects.OBJECTS
               if d.name not in cursors]
    if missing:
        try:
            with transaction.atomic():
                cursors.update((c.object_name, c) for c in SyncCursor.objects.bulk_create(missing))
        except IntegrityError:
            return {}
    return cursors


@dataclass
class _Counts:
    read: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0

    def add(self, other: _Counts) -> None:
        self.read += other.read
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted


TIME_LIMIT_WORDS = "Stopped at the time limit; the next sync continues from the last saved page."


class _StopRun(Exception):
    """The whole run must stop (sign-in refused, time limit): no other object can succeed."""

    def __init__(self, message: str, *, status: str = SyncRun.Status.FAILED, finding: Finding | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.finding = finding


@dataclass
class _Range:
    """A RECORDNO range of a full read: (after, upto]; ``upto`` None = no upper bound."""

    after: int
    upto: int | None
    done: bool = False

    def filter(self, field_name: str) -> filters.Filter:
        low = filters.GreaterThan(field_name, self.after)
        return low if self.upto is None else filters.And(low, filters.LessThanOrEqual(field_name, self.upto))


@dataclass
class _FullProgress:
    ranges: list[_Range]
    started_at: str            # ISO, when this full read began (records not seen since are gone)
    started_monotonic_base: float  # seconds spent before this run (resumed reads)
    max_modified: str = ""
    split: bool = False
    extra: dict = field(default_factory=dict)
    # Readers split ranges while the storing thread saves them: both change ``ranges`` under this lock.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def to_json(self) -> dict:
        return {"ranges": [[r.after, r.upto, r.done] for r in self.ranges], "started_at": self.started_at,
                "elapsed": self.started_monotonic_base, "max_modified": self.max_modified, "split": self.split}

    @classmethod
    def from_json(cls, data: dict) -> _FullProgress:
        return cls(ranges=[_Range(a, u, d) for a, u, d in data["ranges"]], started_at=data["started_at"],
                   started_monotonic_base=float(data.get("elapsed", 0.0)), max_modified=data.get("max_modified", ""),
                   split=bool(data.get("split")))


@dataclass
class _PageRows:
    """A page keyed by RECORDNO with each record's WHENMODIFIED as ISO (converted once), and its highest of each."""

    rows: dict[int, tuple[str, dict]]
    max_recordno: int = 0
    max_modified: str = ""

    @classmethod
    def of(cls, definition: objects.ObjectDefinition, records: Sequence[dict]) -> _PageRows:
        rn_field, wm_field = definition.recordno_field, definition.modified_field
        rows = {int(record[rn_field]): (iso_from_intacct(record.get(wm_field)), record) for record in records}
        if not rows:
            return cls(rows)
        return cls(rows, max(rows), max(modified for modified, _ in rows.values()))


class SyncEngine:
    """One run: each object in table order, each with its own outcome."""

    def __init__(self, run: SyncRun) -> None:
        self.run = run
        self.connection = run.connection
        self.limit = max(1, sync_settings_for(self.connection).concurrency_limit)
        self.overlap = overlap_seconds()
        self._client: readers.SyncClient | None = None  # open while execute() reads
        # What the company refused during this run (object, finding): the connection is told after the run.
        self.findings: list[tuple[objects.ObjectDefinition, Finding]] = []
        self._facts: diagnosis.PermissionFacts | None = None
        self.failed: list[SyncObjectRun] = []
        self.stop: _StopRun | None = None  # the first cause that stops the whole run (a refused sign-in)
        self.cancelled = threading.Event()  # the task's time limit: readers stop at their next page
        self.empty_objects: set[str] = set()  # objects with no stored record yet: no need to look for existing
        self.cursors: dict[str, SyncCursor] = {}  # each object's cursor, read (or made) for all at the start

    @property
    def client(self) -> readers.SyncClient:
        if self._client is None:
            raise RuntimeError("the engine has no client before execute() opens it")
        return self._client

    def execute(self) -> SyncRun:
        run = self.run
        run.status = SyncRun.Status.RUNNING
        run.started_at = timezone.now()
        run.save(update_fields=["status", "started_at"])
        if not can_sync(self.connection):
            why = self.connection.status_message or "validate it first"
            state = self.connection.get_status_display().lower()
            finish(run, SyncRun.Status.FAILED, f"Not run: the connection is {state} ({why}). Fix it and re-validate; "
                    "a sync starts as soon as it works.")
            return run
        object_runs = _object_runs_for(run)
        self.cursors = _cursors_for(self.connection)
        with client_for_sync(self.connection, self.limit) as client:
            self._client = client
            try:
                self._read_objects(object_runs)
            finally:
                self._add_stats()
        failed = sorted(self.failed, key=lambda o: o.position)
        return self._conclude(object_runs, failed, self.stop)

    def _read_objects(self, object_runs: list[SyncObjectRun]) -> None:
        """Every object in table order, as many at once as the company's limit (each holds one of its slots
        while it reads): a company with small objects is not read one round trip after another."""
        work = list(zip(objects.OBJECTS, object_runs, strict=True))
        readers = min(self.limit, len(work))
        # Other threads cannot see what an open transaction wrote (a caller inside atomic()): read in turn.
        if readers <= 1 or db_connection.in_atomic_block:
            for definition, object_run in work:
                self._read_one(definition, object_run)
            return
        lock = threading.Lock()
        crashed: list[BaseException] = []

        def read_in_turn() -> None:
            try:
                while not crashed:
                    with lock:
                        if not work:
                            return
                        definition, object_run = work.pop(0)
                    self._read_one(definition, object_run)
            except BaseException as exc:  # noqa: BLE001 - raised again by the run's own thread below
                crashed.append(exc)
            finally:
                db_connection.close()

        threads = [threading.Thread(target=read_in_turn, daemon=True, name=f"sync-{self.run.pk}-object-{n}")
                   for n in range(readers)]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        except SoftTimeLimitExceeded:
            # Only this thread hears the time limit: the readers stop at their next page.
            self.cancelled.set()
            for thread in threads:
                thread.join()
        if crashed:
            raise crashed[0]  # objects not started are still queued: the run's end marks them "Not read"

    def _read_one(self, definition: objects.ObjectDefinition, object_run: SyncObjectRun) -> None:
        """One object, or its "Not read" when the run was already stopped."""
        stop = self.stop
        if stop is None and self.cancelled.is_set():
            stop = self.stop = _StopRun(TIME_LIMIT_WORDS)
        if stop is not None:
            self._object_failed(object_run, f"Not read: {stop}", None)
            self.failed.append(object_run)
            return
        try:
            if not self._sync_object(definition, object_run):
                self.failed.append(object_run)
        except _StopRun as exc:
            if self.stop is None:
                self.stop = exc
            self._object_failed(object_run, str(exc), exc.__cause__)
            self.failed.append(object_run)

    def _add_stats(self) -> None:
        stats = self.client.stats.snapshot()
        totals = SyncObjectRun.objects.filter(run=self.run).aggregate(
            read=Sum("records_read"), created=Sum("records_created"), updated=Sum("records_updated"),
            deleted=Sum("records_deleted"))
        self.run.requests = stats["requests"]
        self.run.retries = stats["retries"]
        self.run.bytes_received = stats["bytes_received"]
        self.run.records_read = totals["read"] or 0
        self.run.records_created = totals["created"] or 0
        self.run.records_updated = totals["updated"] or 0
        self.run.records_deleted = totals["deleted"] or 0

    def _conclude(self, object_runs: list[SyncObjectRun], failed: list[SyncObjectRun],
                  stop: _StopRun | None) -> SyncRun:
        if not failed:
            status, summary = SyncRun.Status.SUCCEEDED, (
                f"Synced {len(object_runs)} objects: {self.run.records_created} new, {self.run.records_updated} "
                f"changed, {self.run.records_deleted} deleted; {self.run.requests} API calls.")
        elif stop is not None and stop.status == SyncRun.Status.FAILED or len(failed) == len(object_runs):
            status, summary = SyncRun.Status.FAILED, str(stop) if stop else failed[0].message
        else:
            labels = ", ".join(objects.OBJECTS_BY_NAME[o.object_name].label.lower() for o in failed)
            status = SyncRun.Status.PARTIAL
            summary = f"Synced all but {labels}: {failed[0].message}"
        # The connection is told first: whoever sees the run finished sees the connection's new status too.
        self._tell_connection(stop, object_runs, failed)
        finish(self.run, status, summary)
        return self.run

    # --- one object -------------------------------------------------------------------------

    def _sync_object(self, definition: objects.ObjectDefinition, object_run: SyncObjectRun) -> bool:
        cursor = self.cursors.pop(definition.name, None) or SyncCursor.objects.get_or_create(
            connection=self.connection, object_name=definition.name)[0]
        if self.run.kind == SyncRun.Kind.FULL and not cursor.full_progress:
            cursor.full_done = False  # a full re-read from the start
        mode = "full" if not cursor.full_done else "incremental"
        if not definition.incremental:
            mode = "full"
        object_run.mode = mode if self.run.kind != SyncRun.Kind.RECONCILE or mode == "full" else "reconcile"
        object_run.status = SyncObjectRun.Status.RUNNING
        object_run.started_at = timezone.now()
        object_run.save(update_fields=["mode", "status", "started_at"])
        if not Record.objects.filter(connection=self.connection, object_name=definition.name).exists():
            self.empty_objects.add(definition.name)
        try:
            with limits.holding_slot(self.connection.company_id, self.limit), \
                    self.client.stats.labelled(definition.name):
                self._read_object(definition, object_run, cursor, mode)
        except SoftTimeLimitExceeded:
            self._count_requests(object_run)
            raise _StopRun(TIME_LIMIT_WORDS) from None
        except _StopRun:
            self._count_requests(object_run)
            raise
        except Exception as exc:
            self._count_requests(object_run)
            action = policy.action_for(exc)
            if action == policy.Action.STOP:
                finding = diagnosis.sign_in_refused(self.connection, exc, diagnosis.sign_in_history(self.connection))
                raise _StopRun(finding.message, finding=finding) from exc
            if action == policy.Action.FAIL_OBJECT:
                finding = diagnosis.read_refused(self.connection, definition, exc, self._permission_facts)
                self.findings.append((definition, finding))
                self._object_failed(object_run, finding.message, exc)
                return False
            if action == policy.Action.RETRY:
                self._object_failed(object_run, f"{diagnosis.unreachable(exc)} The next sync continues from the last "
                                    "saved page.", exc)
                return False
            self._object_failed(object_run, diagnosis.internal_error(exc), exc)
            raise
        object_run.requests = self.client.stats.requests_for(object_run.object_name)  # saved just below
        object_run.status = SyncObjectRun.Status.SUCCEEDED
        object_run.finished_at = timezone.now()
        object_run.save(update_fields=["status", "finished_at", "requests"])
        return True

    def _read_object(self, definition: objects.ObjectDefinition, object_run: SyncObjectRun, cursor: SyncCursor,
                     mode: str) -> None:
        if not definition.incremental:
            self._read_whole(definition, object_run, cursor)
        elif mode == "full":
            self._full(definition, object_run, cursor)
        else:
            self._incremental(definition, object_run, cursor)
            if self.run.kind == SyncRun.Kind.RECONCILE:
                self._reconcile(definition, object_run, cursor)

    def _count_requests(self, object_run: SyncObjectRun) -> None:
        object_run.requests = self.client.stats.requests_for(object_run.object_name)
        SyncObjectRun.objects.filter(pk=object_run.pk).update(requests=object_run.requests)

    def _object_failed(self, object_run: SyncObjectRun, message: str, exc: BaseException | None) -> None:
        object_run.status = SyncObjectRun.Status.FAILED
        object_run.finished_at = timezone.now()
        object_run.message = message
        if isinstance(exc, errors.IntacctError):
            status = getattr(exc, "http_status", None)
            object_run.errorno = exc.errorno or (f"HTTP {status}" if status else type(exc).__name__)
            object_run.error_raw = diagnosis.raw_words(exc)
        elif exc is not None:
            object_run.errorno = type(exc).__name__  # ours: never the text, which might quote data
        object_run.save()

    def _permission_facts(self) -> diagnosis.PermissionFacts:
        """The company's permission type and the user's roles: one request (two functions), asked once a run."""
        if self._facts is None:
            roles = permissions = None
            try:
                # Either protocol's client runs the calls it built itself (the union cannot say so to mypy).
                client: Any = self.client
                outcomes = client.batch([
                    client.query_call("roles", "USERROLES", ["USERID", "ROLENAME"],
                                      filter=filters.EqualTo("USERID", self.connection.user_id), page_size=100),
                    client.get_user_permissions_call("permissions", self.connection.user_id)])
                if outcomes["roles"].error is None:
                    roles = sorted({str(r.get("ROLENAME") or "").strip() for r in outcomes["roles"].records} - {""})
                if outcomes["permissions"].error is None:
                    permissions = outcomes["permissions"].permissions
            except errors.IntacctError:
                pass  # the words then follow the permission type last seen
            self._facts = diagnosis.permission_facts(self.connection, roles=roles, permissions=permissions)
        return self._facts

    def _tell_connection(self, stop: _StopRun | None, object_runs: list[SyncObjectRun],
                         failed: list[SyncObjectRun]) -> None:
        """What the company refused moves the connection (needs attention / broken) and tells the admins once per
        cause; a clean run of an object that had been refused asks for a validation to confirm the recovery."""
        found = stop.finding if stop is not None and stop.finding is not None else None
        check_key = "" if found is None else validation.login_check_key(found.cause)
        if found is None and self.findings:
            # A company-wide refusal (every REST read 403, told by an object any user may read) before the others.
            definition, found = min(self.findings, key=lambda f: f[1].cause != ValidationRun.Cause.COMPANY_REFUSES_API)
            check_key = diagnosis.read_check_key(definition)
        connection = self.connection
        if found is not None:
            status = found.status if found.status == Connection.Status.BROKEN else Connection.Status.NEEDS_ATTENTION
            previous = services.connection_record_sync_failure(connection=connection, sync_run=self.run,
                                                               check_key=check_key, status=status, cause=found.cause,
                                                               message=found.message)
            if previous is not None:
                monitoring.failure_notify(connection=connection, cause=found.cause, summary=found.message,
                                          step=found.step, source="found during a sync",
                                          details={"sync_run": self.run.pk, "failed_check": check_key})
            return
        connection.refresh_from_db(fields=["status", "status_check"])
        synced = {diagnosis.read_check_key(objects.OBJECTS_BY_NAME[o.object_name]) for o in object_runs
                  if o not in failed}
        if connection.status == Connection.Status.NEEDS_ATTENTION and connection.status_check in synced:
            services.validation_request(connection=connection, trigger=ValidationRun.Trigger.SCHEDULED)

    # --- storing pages ----------------------------------------------------------------------

    def _store(self, definition: objects.ObjectDefinition, records: Sequence[dict], object_run: SyncObjectRun,
               cursor: SyncCursor, cursor_fields: Iterable[str], page_rows: _PageRows | None = None,
               compare_data: bool = False) -> _Counts:
        """Upsert one page and save the cursor and the object's counters, in one transaction.

        A record whose WHENMODIFIED is the one stored is unchanged, except with ``compare_data``: Intacct's
        WHENMODIFIED has whole seconds, so a copy read between two changes made within one second carries the
        stamp of the second change too. Incremental reads (which see every recent change again, within the
        overlap) and whole reads compare the data as well, so such a copy is corrected by the next sync."""
        if self.cancelled.is_set():
            raise _StopRun(TIME_LIMIT_WORDS)
        counts = _Counts(read=len(records))
        now = timezone.now()
        key_field = definition.key_field
        rows = (page_rows or _PageRows.of(definition, records)).rows
        with transaction.atomic():
            existing: dict[int, tuple] = {}
            if definition.name not in self.empty_objects:
                stored = Record.objects.filter(
                    connection=self.connection, object_name=definition.name, recordno__in=list(rows))
                columns = ("recordno", "whenmodified", "deleted_at", *(("data",) if compare_data else ()))
                existing = {row[0]: row[1:] for row in stored.values_list(*columns)}
            to_write: list[tuple[int, str, str, str]] = []
            unchanged: list[int] = []
            for recordno, (modified, record) in rows.items():
                before = existing.get(recordno)
                if before is None:
                    counts.created += 1
                elif before[0] != modified or before[1] is not None or (compare_data and before[2] != record):
                    counts.updated += 1
                else:
                    unchanged.append(recordno)
                    continue
                to_write.append((recordno, str(record.get(key_field) or "")[:200], modified, record_json(record)))
            if to_write:  # each written record takes the connection's next change number (connector.feed)
                upsert_page(self.connection.pk, definition.name, to_write, now,
                        first_seq=feed.reserve(self.connection.pk, len(to_write)))
            if unchanged:
                Record.objects.filter(connection=self.connection, object_name=definition.name,
                                      recordno__in=unchanged).update(last_seen=now)
            cursor.save(update_fields=list(cursor_fields))
            self._add_counts(object_run, counts)
        reset_queries()  # DEBUG keeps every query otherwise: memory would grow with the record count
        return counts

    def _add_counts(self, object_run: SyncObjectRun, counts: _Counts) -> None:
        object_run.records_read += counts.read
        object_run.records_created += counts.created
        object_run.records_updated += counts.updated
        object_run.records_deleted += counts.deleted
        SyncObjectRun.objects.filter(pk=object_run.pk).update(
            records_read=object_run.records_read, records_created=object_run.records_created,
            records_updated=object_run.records_updated, records_deleted=object_run.records_deleted,
            expected_total=object_run.expected_total)

    def _mark_unseen_deleted(self, definition: objects.ObjectDefinition, object_run: SyncObjectRun,
                             since: datetime) -> None:
        """After a complete read, what was not seen since it began is gone from Intacct."""
        if definition.name in self.empty_objects:
            return  # nothing was stored before this read: every record held now was seen by it
        now = timezone.now()
        gone = feed.mark_deleted(self.connection.pk, Record.objects.filter(
            connection=self.connection, object_name=definition.name, deleted_at__isnull=True, last_seen__lt=since), now)
        if gone:
            self._add_counts(object_run, _Counts(deleted=gone))

    # --- full read --------------------------------------------------------------------------

    def _query(self, definition: objects.ObjectDefinition, flt: filters.Filter, order: str = "asc",
               fields: Sequence[str] | None = None):
        return self.client.query_page(definition.name, list(fields or definition.fields), flt,
                                      order_by=[(definition.recordno_field, order)], page_size=PAGE_SIZE)

    def _full(self, definition: objects.ObjectDefinition, object_run: SyncObjectRun, cursor: SyncCursor) -> None:
        if cursor.full_progress:
            progress = _FullProgress.from_json(cursor.full_progress)
        else:
            progress = _FullProgress(ranges=[_Range(0, None)], started_at=timezone.now().isoformat(),
                                     started_monotonic_base=0.0)
        began = time.monotonic()
        rn_field = definition.recordno_field

        def commit(page_records: list[dict], range_index: int, page) -> None:
            page_rows = _PageRows.of(definition, page_records)
            with progress.lock:
                rng = progress.ranges[range_index]
                if page_rows.rows:
                    rng.after = page_rows.max_recordno
                    progress.max_modified = max(progress.max_modified, page_rows.max_modified)
                rng.done = not page_records or not page.num_remaining
                cursor.full_progress = progress.to_json()
            self._store(definition, page_records, object_run, cursor, ["full_progress"], page_rows=page_rows)

        # The first page of an unsplit read gives the total and decides whether to split.
        first = progress.ranges[0]
        if not progress.split and not first.done and first.upto is None:
            page = self._query(definition, first.filter(rn_field))
            object_run.expected_total = page.total_count or len(page.records)
            commit(page.records, 0, page)
            remaining = page.num_remaining or 0
            # One reader more than the company's limit: each takes a slot only for a request's round trip,
            # so while one parses the page it received, another's request keeps the slot busy.
            parts = min(self.limit + 1, remaining // PAGE_SIZE)
            if not first.done and parts >= 2:
                # No call to find the top (a descending page would be one more round trip before the readers
                # start): the last range is open-ended, so the estimate only balances them.
                span = range_span(page.records, remaining, rn_field, parts)
                lows = [first.after + span * n for n in range(parts)]
                highs: list[int | None] = [*lows[1:], None]
                progress.ranges = [_Range(low, high) for low, high in zip(lows, highs, strict=True)]
                progress.split = True
                cursor.full_progress = progress.to_json()
                cursor.save(update_fields=["full_progress"])

        # Readers in threads fetch the pages while this thread stores them, every open range at once; the
        # company's slots, taken per request, keep the requests in flight within its limit.
        open_ranges = [i for i, r in enumerate(progress.ranges) if not r.done]
        if open_ranges:
            with limits.not_holding_slot(self.connection.company_id):
                for range_index, page in self._fetch_ranges_in_parallel(definition, progress, open_ranges):
                    commit(page.records, range_index, page)

        # Complete: the incremental keyset starts early enough to catch anything changed while reading.
        elapsed = progress.started_monotonic_base + (time.monotonic() - began)
        started_at = datetime.fromisoformat(progress.started_at)
        self._mark_unseen_deleted(definition, object_run, started_at)
        cursor.full_done = True
        cursor.full_progress = {}
        cursor.last_full_at = timezone.now()
        if progress.max_modified:
            cursor.modified_after = shift_iso(progress.max_modified, -(elapsed + self.overlap))
            cursor.recordno_after = 0
        cursor.save()

    def _fetch_ranges_in_parallel(self, definition: objects.ObjectDefinition, progress: _FullProgress,
                                  range_indexes: list[int]) -> Iterator[tuple[int, Page]]:
        """A thread per range pages through it; pages come back to this thread to be stored.

        The queue holds a few pages per reader (bounded: memory stays flat) so that a reader never waits for
        a page being written unless the writer is behind by that many pages."""
        pages: queue.Queue = queue.Queue(maxsize=READ_AHEAD_PAGES * len(range_indexes))
        stop = threading.Event()
        rn_field = definition.recordno_field

        # What each reader last learnt of its range: where it goes on, how many records are left, its last page.
        left: dict[int, tuple[int, int, list]] = {}
        changed = threading.Condition(progress.lock)
        reading = [len(range_indexes)]  # readers with a range (the others wait to take one over)

        def read_range(range_index: int) -> None:
            rng = progress.ranges[range_index]
            after = rng.after
            while not stop.is_set():
                with progress.lock:
                    upto = rng.upto
                page = self._query(definition, _Range(after, upto).filter(rn_field))
                with progress.lock:
                    if rng.upto is not None and page.records and int(page.records[-1][rn_field]) > rng.upto:
                        # Another reader took the top of this range meanwhile: leave it those records.
                        kept = [r for r in page.records if int(r[rn_field]) <= rng.upto]
                        page = replace(page, records=kept, num_remaining=0)
                    more = bool(page.records) and bool(page.num_remaining)
                    if more:
                        after = max(int(r[rn_field]) for r in page.records)
                        left[range_index] = (after, page.num_remaining or 0, page.records)
                    else:
                        left.pop(range_index, None)
                    changed.notify_all()
                pages.put((range_index, page))
                if not more:
                    break

        def split_longest() -> int | None:
            if not left:
                return None
            index, (after, remaining, records) = max(left.items(), key=lambda item: item[1][1])
            if remaining < TAKE_OVER_MIN_PAGES * PAGE_SIZE:
                return None
            rng = progress.ranges[index]
            middle = after + range_span(records, remaining, rn_field)
            if rng.upto is not None and middle >= rng.upto:
                return None
            progress.ranges.append(_Range(middle, rng.upto))
            rng.upto = middle
            left[index] = (after, remaining // 2, records)
            return len(progress.ranges) - 1

        def take_over() -> int | None:
            """A reader whose range is done splits the range with the most left, so no reader reads alone at
            the end while the others wait idle (within the company's limit). It waits for the others' news
            while any of them still reads."""
            with changed:
                reading[0] -= 1
                changed.notify_all()
                while not stop.is_set():
                    index = split_longest()
                    if index is not None:
                        reading[0] += 1
                        return index
                    if reading[0] == 0:
                        return None
                    changed.wait(timeout=1.0)
                return None

        def fetch_pages(range_index: int | None) -> None:
            while range_index is not None and not stop.is_set():
                read_range(range_index)
                range_index = take_over()

        def fetch(range_index: int) -> None:
            try:
                with self.client.stats.labelled(definition.name):
                    fetch_pages(range_index)
            except BaseException as exc:  # noqa: BLE001 - handed to the storing thread, which raises it
                pages.put((range_index, exc))
            finally:
                pages.put((range_index, None))
                db_connection.close()

        threads = [threading.Thread(target=fetch, args=(i,), daemon=True, name=f"sync-range-{i}")
                   for i in range_indexes]
        for thread in threads:
            thread.start()
        running = len(threads)
        try:
            while running:
                range_index, item = pages.get()
                if item is None:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield range_index, item
        finally:
            stop.set()
            while any(t.is_alive() for t in threads):
                try:
                    pages.get(timeout=0.1)
                except queue.Empty:
                    pass
            for thread in threads:
                thread.join()

    # --- incremental ------------------------------------------------------------------------

    def _incremental(self, definition: objects.ObjectDefinition, object_run: SyncObjectRun,
                     cursor: SyncCursor) -> None:
        wm_field, rn_field = definition.modified_field, definition.recordno_field
        order = [(wm_field, "asc"), (rn_field, "asc")]
        if cursor.modified_after:
            flt: filters.Filter = filters.GreaterThanOrEqual(wm_field, intacct_from_iso(shift_iso(cursor.modified_after,
                                                                                     -self.overlap)))
        else:
            flt = filters.GreaterThan(rn_field, 0)
        position = (cursor.modified_after, cursor.recordno_after)
        first = True
        while True:
            page = self.client.query_page(definition.name, list(definition.fields), flt, order_by=order,
                                          page_size=PAGE_SIZE)
            if first:
                object_run.expected_total = page.total_count
                first = False
            if page.records:
                last = page.records[-1]
                last_wm, last_rn = iso_from_intacct(last.get(wm_field)), int(str(last[rn_field]))
                position = max(position, (last_wm, last_rn))
                cursor.modified_after, cursor.recordno_after = position
                cursor.last_incremental_at = timezone.now()
            self._store(definition, page.records, object_run, cursor,
                        ["modified_after", "recordno_after", "last_incremental_at"], compare_data=True)
            if not page.records or not page.num_remaining:
                break
            # Keyset, not offset: a record changed meanwhile moves behind us and is read on a later page.
            last_intacct = intacct_from_iso(last_wm)
            flt = filters.Or(filters.GreaterThan(wm_field, last_intacct),
                       filters.And(filters.EqualTo(wm_field, last_intacct), filters.GreaterThan(rn_field, last_rn)))

    # --- deletes ----------------------------------------------------------------------------

    def _reconcile(self, definition: objects.ObjectDefinition, object_run: SyncObjectRun,
                   cursor: SyncCursor) -> None:
        """Read only RECORDNOs, range by range, and mark what Intacct no longer has as deleted."""
        rn_field = definition.recordno_field
        after = 0
        now = timezone.now()
        while True:
            page = self._query(definition, filters.GreaterThan(rn_field, after), fields=[rn_field])
            keys = [int(r[rn_field]) for r in page.records]
            more = bool(keys) and bool(page.num_remaining)
            ours = Record.objects.filter(connection=self.connection, object_name=definition.name,
                                         deleted_at__isnull=True, recordno__gt=after)
            if more:
                ours = ours.filter(recordno__lte=keys[-1])
            gone = feed.mark_deleted(self.connection.pk, ours.exclude(recordno__in=keys), now)
            if gone:
                self._add_counts(object_run, _Counts(deleted=gone))
            if not more:
                break
            after = keys[-1]
        cursor.last_reconcile_at = now
        cursor.save(update_fields=["last_reconcile_at"])

    # --- legacy objects ---------------------------------------------------------------------

    def _read_whole(self, definition: objects.ObjectDefinition, object_run: SyncObjectRun,
                    cursor: SyncCursor) -> None:
        started = timezone.now()
        batch: list[dict] = []
        records = self.client.get_list(definition.name, fields=list(definition.fields), page_size=LEGACY_PAGE_SIZE,
                                       sorts=[(definition.recordno_field, "asc")])
        for record in records:
            batch.append(record)
            if len(batch) >= LEGACY_PAGE_SIZE:
                self._store(definition, batch, object_run, cursor, ["last_full_at"], compare_data=True)
                batch = []
        cursor.full_done = True
        cursor.last_full_at = timezone.now()
        self._store(definition, batch, object_run, cursor, ["full_done", "last_full_at"], compare_data=True)
        self._mark_unseen_deleted(definition, object_run, started)


def range_span(records: Sequence[dict], remaining: int, rn_field: str, parts: int = 2) -> int:
    """RECORDNOs past the first page that should hold about 1/``parts`` of the ``remaining`` records, at the
    first page's density (Intacct numbers records in sequence, with gaps where other objects took numbers)."""
    numbers = [int(r[rn_field]) for r in records]
    span = max(numbers) - min(numbers) + 1
    return max(1, (remaining * span) // (parts * len(numbers)))


