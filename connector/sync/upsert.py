"""Write a page of records with one raw SQL upsert (INSERT ... ON CONFLICT DO UPDATE) on the DB-API connection."""
from __future__ import annotations

import json
from datetime import datetime

from django.db import connection as db_connection

from connector.models import Record

record_json = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, not one per record as json.dumps makes

_UPSERT_COLUMNS = ("connection_id, object_name, recordno, key_value, whenmodified, data, first_seen, last_seen, "
                   "deleted_at, change_seq")
_UPSERT_PARAMS_PER_ROW = 9


def rows_per_statement(raw_connection) -> int:
    """SQLite: as many rows a statement as its compiled parameter limit takes (32,766 since 3.32, 999 before):
    a 2,000-record page is then one statement."""
    import sqlite3

    return max(1, raw_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // _UPSERT_PARAMS_PER_ROW)


def upsert_page(connection_id: int, object_name: str, rows: list[tuple[int, str, str, str]], now: datetime, *,
                first_seq: int) -> None:
    """INSERT ... ON CONFLICT DO UPDATE of a page, without the ORM's per-row model instances, on the DB-API
    connection itself (inside the caller's transaction): Django's cursor wrappers would rewrite the placeholders
    of a long statement and, with DEBUG, quote all its parameters for the query log with one more query.

    SQLite: VALUES (...), (...) ..., a page in one statement where the parameter limit allows it. One statement
    rather than executemany: SQLite releases the GIL for each statement it steps, and taking it back while the
    reader threads parse pages costs a wait each time, so one step per row made the writer the bottleneck.
    PostgreSQL: the page as four arrays through unnest(), eight parameters whatever its size (psycopg would
    otherwise parse a 16,000-placeholder statement in Python for every page), bound by the server.
    Rows are numbered first_seq, first_seq + 1, ... in the change feed (connector.feed.reserve)."""
    table = Record._meta.db_table
    stamp = db_connection.ops.adapt_datetimefield_value(now)
    head = f"INSERT INTO {table} ({_UPSERT_COLUMNS}) "  # noqa: S608 - table and placeholders are ours
    tail = (" ON CONFLICT (connection_id, object_name, recordno) DO UPDATE SET key_value = excluded.key_value, "
            "whenmodified = excluded.whenmodified, data = excluded.data, last_seen = excluded.last_seen, "
            "deleted_at = NULL, change_seq = excluded.change_seq")
    db_connection.ensure_connection()
    raw = db_connection.connection
    if db_connection.vendor == "postgresql":
        import psycopg

        # Parameters bound by the server: Django's client-side cursor would quote every element of the
        # arrays in Python (a regex substitution per JSON string).
        cursor = psycopg.Cursor(raw)
    else:
        cursor = raw.cursor()
    try:
        if db_connection.vendor == "postgresql":
            recordnos, keys, modifieds, payloads = (list(column) for column in zip(*rows, strict=True))
            cursor.execute(
                head + "SELECT %s, %s, r.recordno, r.key_value, r.whenmodified, r.data::jsonb, %s, %s, NULL, "  # noqa: S608
                "%s + r.n - 1 FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[]) WITH ORDINALITY "
                "AS r (recordno, key_value, whenmodified, data, n)" + tail,
                [connection_id, object_name, stamp, stamp, first_seq, recordnos, keys, modifieds, payloads])
            return
        per_statement = rows_per_statement(raw)
        for start in range(0, len(rows), per_statement):
            chunk = rows[start:start + per_statement]
            params: list = []
            for offset, (recordno, key, modified, payload) in enumerate(chunk, start=first_seq + start):
                params += (connection_id, object_name, recordno, key, modified, payload, stamp, stamp, offset)
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)"] * len(chunk))
            cursor.execute(head + "VALUES " + values + tail, params)
    finally:
        cursor.close()

