"""Keep a copy of a connection's Intacct objects: full reads, incremental keyset reads, delete reconciliation.

The package, by what each module holds (each imports only those listed after it):

- ``runs``: a run's life around the engine: ``run_sync`` claims the lease, runs the engine and ends the run
  with words saying why whatever stopped it; runs whose worker died are closed as interrupted and resumed.
- ``schedule``: beat's schedules, the syncs that are due.
- ``engine``: ``SyncEngine``, one run reading every object (full, incremental, reconcile, legacy whole reads).
- ``client``: ``client_for_sync``, the Intacct client a sync reads with.
- ``lease``: the connection's one sync lease (claim, heartbeat, release) and its SyncSettings row.
- ``upsert``: a page written with one raw SQL INSERT ... ON CONFLICT DO UPDATE.
- ``allowance``: whether a connection may sync, Intacct's maintenance window, the month's call allowance.

The names other modules use are importable from ``connector.sync`` itself.
"""
from connector.sync.allowance import can_sync, in_maintenance_window, month_api_calls, monthly_allowance
from connector.sync.client import client_for_sync
from connector.sync.engine import (
    LEGACY_PAGE_SIZE,
    PAGE_SIZE,
    READ_AHEAD_PAGES,
    TAKE_OVER_MIN_PAGES,
    TIME_LIMIT_WORDS,
    SyncEngine,
    finish,
    overlap_seconds,
    range_span,
)
from connector.sync.lease import Heartbeat, claim, lease_seconds, release, sync_settings_for
from connector.sync.runs import (
    MAX_RUN_ATTEMPTS,
    fail_after_database_error,
    interrupted_close,
    interrupted_sweep,
    run_sync,
)
from connector.sync.schedule import connections_due, schedule_due
from connector.sync.upsert import record_json, rows_per_statement, upsert_page

__all__ = [
    "LEGACY_PAGE_SIZE", "MAX_RUN_ATTEMPTS", "PAGE_SIZE", "READ_AHEAD_PAGES", "TAKE_OVER_MIN_PAGES", "TIME_LIMIT_WORDS",
    "Heartbeat", "SyncEngine", "can_sync", "claim", "client_for_sync", "connections_due", "fail_after_database_error",
    "finish", "in_maintenance_window", "interrupted_close", "interrupted_sweep", "lease_seconds", "month_api_calls",
    "monthly_allowance", "overlap_seconds", "range_span", "record_json", "release", "rows_per_statement", "run_sync",
    "schedule_due", "sync_settings_for", "upsert_page",
]
