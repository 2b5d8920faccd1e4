"""The change feed: every insert, update, delete and undelete of a synced record, in order.

Each write of a Record takes the connection's next change sequence numbers in the same transaction
(``reserve``) and stores the number on the record itself (``Record.change_seq``). The feed is then the
connection's records ordered by that column: a record changed twice between two polls appears once, with
its latest state, and a deletion stays visible as a tombstone (the row with ``deleted_at`` set) until
``purge_tombstones`` removes it after ``FEED_RETENTION_DAYS``.

Why nothing is lost: numbers are reserved by an UPDATE of the connection's counter row, which keeps that row
locked until the writing transaction commits (SQLite: the database's one write lock). A second writer of the
same connection waits, so per connection numbers become visible in the order they were handed out, and a
consumer that read up to N can never later find a committed change numbered below N.

Cursors are opaque to consumers: ``v1.<connection>.<object or *>.<seq>.<purge mark>`` in URL-safe base64.
They stay valid across restarts (they are positions in this column, not server state). The purge mark is the
connection's ``purged_through`` when the cursor was made: if tombstones were purged since, and the cursor is
below the highest of them, the consumer may hold a record whose deletion it can no longer read, so the API
answers 410 and the consumer resyncs from ``/records/``. A consumer reading from the beginning never needs a
purged tombstone (it never received that record), so it is never refused.
"""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from connector.models import FeedCounter, Record

MAX_PAGE = 1000
DEFAULT_PAGE = 1000


# --- writing: called inside the transaction that writes the records ---------------------------------------

def reserve(connection_id: int, count: int) -> int:
    """Hand out ``count`` sequence numbers for this connection; returns the first. Must run inside the
    transaction that writes the records: the counter row stays locked until it commits (see the module doc).
    ``count`` 0 only takes the lock and returns the next number that would be handed out."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("feed.reserve must run inside the transaction that writes the records")
    table = FeedCounter._meta.db_table
    with db_connection.cursor() as cursor:
        # One statement creates the counter on first use and increments it otherwise (PostgreSQL; SQLite 3.35+).
        cursor.execute(
            f"INSERT INTO {table} (connection_id, last_seq, purged_through) VALUES (%s, %s, 0) "  # noqa: S608
            f"ON CONFLICT (connection_id) DO UPDATE SET last_seq = {table}.last_seq + excluded.last_seq "
            "RETURNING last_seq", [connection_id, count])
        last = cursor.fetchone()[0]
    return last - count + 1


def mark_deleted(connection_id: int, records, now: datetime) -> int:
    """Mark the records of ``records`` (a Record queryset of this connection) deleted, each with its own new
    sequence number, in one transaction; returns how many were marked."""
    with transaction.atomic():
        reserve(connection_id, 0)  # the lock first: the same order as every other writer (no deadlock)
        ids = list(records.filter(deleted_at__isnull=True).order_by("object_name", "recordno")
                   .values_list("id", flat=True))
        if not ids:
            return 0
        first = reserve(connection_id, len(ids))
        set_sequence(ids, first, deleted_at=now)
    return len(ids)


def touch(connection_id: int, record_ids: Sequence[int]) -> None:
    """Give records changed in place (not by a sync) new sequence numbers; inside the writing transaction."""
    if record_ids:
        set_sequence(list(record_ids), reserve(connection_id, len(record_ids)))


def set_sequence(ids: list[int], first: int, *, deleted_at: datetime | None = None) -> None:
    """Number the records ``ids`` first, first+1, ... (and set deleted_at when given) in one statement."""
    table = Record._meta.db_table
    seqs = list(range(first, first + len(ids)))
    if db_connection.vendor == "postgresql":
        assign = "change_seq = numbered.seq" + (", deleted_at = %s" if deleted_at else "")
        params: list = [deleted_at] if deleted_at else []
        with db_connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {assign} FROM unnest(%s::bigint[], %s::bigint[]) AS numbered (id, seq) "  # noqa: S608
                f"WHERE {table}.id = numbered.id", [*params, ids, seqs])
        return
    assign = "change_seq = ?" + (", deleted_at = ?" if deleted_at else "")
    stamp = db_connection.ops.adapt_datetimefield_value(deleted_at) if deleted_at else None
    rows = [(seq, stamp, rid) if deleted_at else (seq, rid) for rid, seq in zip(ids, seqs, strict=True)]
    db_connection.ensure_connection()
    raw = db_connection.connection.cursor()
    try:
        raw.executemany(f"UPDATE {table} SET {assign} WHERE id = ?", rows)  # noqa: S608
    finally:
        raw.close()


def head(connection_id: int) -> int:
    """The last sequence number handed out for this connection (0 before any change)."""
    return FeedCounter.objects.filter(connection_id=connection_id).values_list("last_seq", flat=True).first() or 0


# --- cursors --------------------------------------------------------------------------------------------

class CursorError(ValueError):
    """A cursor we did not make, or made for another connection or object filter."""


class CursorExpired(Exception):
    """The cursor is older than the feed's retention: deletions it has not seen were purged."""


@dataclass(frozen=True)
class Cursor:
    connection_id: int
    object_name: str  # "" = every object
    seq: int
    purge_mark: int = 0  # the connection's purged_through when this cursor was made

    def encode(self) -> str:
        text = f"v1.{self.connection_id}.{self.object_name or '*'}.{self.seq}.{self.purge_mark}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def cursor_decode(value: str, *, connection_id: int, object_name: str) -> Cursor:
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        version, conn, obj, seq, mark = text.split(".")
        cursor = Cursor(int(conn), "" if obj == "*" else obj, int(seq), int(mark))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise CursorError("This cursor is not one of ours: pass next_cursor exactly as it was returned.") from None
    if version != "v1" or cursor.seq < 0 or cursor.purge_mark < 0:
        raise CursorError("This cursor is not one of ours: pass next_cursor exactly as it was returned.")
    if cursor.connection_id != connection_id:
        # The organisation's connection was replaced: positions in the old one mean nothing here.
        raise CursorExpired()
    if cursor.object_name != object_name:
        raise CursorError(f"This cursor was made for object={cursor.object_name or '(all)'}: use the same "
                          "object filter as the request that returned it.")
    return cursor


# --- reading --------------------------------------------------------------------------------------------

@dataclass
class Page:
    body: str  # the JSON array of changes, built from the stored JSON text without decoding it
    count: int
    next_cursor: str
    has_more: bool
    first_seq: int | None
    last_seq: int | None


def page(connection_id: int, *, object_name: str = "", after: Cursor | None = None,
         limit: int = DEFAULT_PAGE) -> Page:
    """Changes after the cursor, in sequence order, latest state of each record. Two queries whatever the page
    size: the page, then the counter's purge mark (read after the page: a purge that committed before the page
    was read shows in it, so no deletion can slip between the two)."""
    limit = min(max(limit, 1), MAX_PAGE)
    after_seq = after.seq if after is not None else 0
    table = Record._meta.db_table
    data_text = "data::text" if db_connection.vendor == "postgresql" else "data"
    where = "connection_id = %s AND change_seq > %s"
    params: list = [connection_id, after_seq]
    if object_name:
        where += " AND object_name = %s"
        params.append(object_name)
    with db_connection.cursor() as cursor:
        cursor.execute(
            f"SELECT change_seq, object_name, recordno, whenmodified, deleted_at IS NOT NULL, "  # noqa: S608
            f"{data_text} FROM {table} WHERE {where} ORDER BY change_seq LIMIT %s", [*params, limit + 1])
        rows = cursor.fetchall()
    purged = (FeedCounter.objects.filter(connection_id=connection_id).values_list("purged_through", flat=True)
              .first() or 0)
    if after is not None and purged > after.purge_mark and after_seq < purged:
        raise CursorExpired()
    has_more = len(rows) > limit
    rows = rows[:limit]
    parts = []
    dumps = json.dumps
    for seq, obj, recordno, modified, deleted, data in rows:
        if deleted:
            parts.append(f'{{"seq":{seq},"object":{dumps(obj)},"recordno":{recordno},"op":"delete",'
                         f'"whenmodified":{dumps(modified)}}}')
        else:
            # The stored JSON text goes out as it is: decoding and encoding a 1,000-record page costs more
            # than the query.
            parts.append(f'{{"seq":{seq},"object":{dumps(obj)},"recordno":{recordno},"op":"upsert",'
                         f'"whenmodified":{dumps(modified)},"data":{data}}}')
    last = rows[-1][0] if rows else after_seq
    return Page(body="[" + ",".join(parts) + "]", count=len(rows),
                next_cursor=Cursor(connection_id, object_name, last, purged).encode(), has_more=has_more,
                first_seq=rows[0][0] if rows else None, last_seq=rows[-1][0] if rows else None)


# --- retention ------------------------------------------------------------------------------------------

def retention_days() -> int:
    return int(settings.FEED_RETENTION_DAYS)


def purge_tombstones(*, now: datetime | None = None, batch: int = 5000) -> int:
    """Delete records marked deleted longer than the retention ago; a consumer whose cursor is below the
    highest purged number then gets 410 (it may have missed one of those deletions)."""
    cut = (now or timezone.now()) - timedelta(days=retention_days())
    purged = 0
    connection_ids = (Record.objects.filter(deleted_at__lt=cut).values_list("connection_id", flat=True)
                      .distinct())
    for connection_id in list(connection_ids):
        while True:
            with transaction.atomic():
                reserve(connection_id, 0)  # no change is numbered while the purge mark moves
                rows = list(Record.objects.filter(connection_id=connection_id, deleted_at__lt=cut)
                            .order_by("change_seq").values_list("id", "change_seq")[:batch])
                if not rows:
                    break
                Record.objects.filter(id__in=[rid for rid, _ in rows]).delete()
                top = max(seq for _, seq in rows)
                FeedCounter.objects.filter(connection_id=connection_id, purged_through__lt=top).update(
                    purged_through=top)
                purged += len(rows)
    return purged
