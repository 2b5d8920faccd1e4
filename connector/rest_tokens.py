"""A REST connection's OAuth tokens as stored: read, locked for a refresh, and written (encrypted).

The service functions for the token fields of Connection (connector.clients builds the REST client on them;
connector.services connects and disconnects). The refresh token rotates on every use, so it is only ever
spent under ``refresh_lock`` and its successor stored before it is used.
"""
from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction

from connector import crypto
from connector.intacct_rest import TokenSet
from connector.models import Connection


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def stored(connection: Connection) -> TokenSet | None:
    """The connection's stored OAuth tokens, decrypted (None when it holds none)."""
    refresh = crypto.decrypt(connection.rest_refresh_token) if connection.rest_refresh_token else None
    access = crypto.decrypt(connection.rest_access_token) if connection.rest_access_token else ""
    if not refresh and not access:
        return None
    return TokenSet(access_token=access, expires_at=_epoch(connection.rest_access_expires_at) or 0.0,
                    refresh_token=refresh, refresh_expires_at=_epoch(connection.rest_refresh_expires_at))


_TOKEN_FIELDS = ("id", "rest_refresh_token", "rest_refresh_expires_at", "rest_access_token", "rest_access_expires_at")


@contextmanager
def refresh_lock(connection_id: int) -> Iterator[TokenSet | None]:
    """Hold the connection's refresh lock and yield the tokens stored now (the REST client's ``refresh_guard``).

    PostgreSQL: the connection's row, locked FOR UPDATE in a transaction that lasts the refresh; the new tokens
    are written in it, so a second worker waits, then reads the rotated tokens and uses them. SQLite takes the
    database's single write lock for any transaction (IMMEDIATE mode): held across the refresh request it would
    stop every other writer, the simulator's token endpoint included. There, one machine runs everything, and
    an exclusive lock on a file under VAR_DIR serialises the refreshes instead."""
    if db_connection.vendor == "sqlite":
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        with open(settings.VAR_DIR / f"rest-refresh-{connection_id}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield stored(Connection.objects.only(*_TOKEN_FIELDS).get(pk=connection_id))
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with transaction.atomic():
        row = Connection.objects.select_for_update().only(*_TOKEN_FIELDS).get(pk=connection_id)
        yield stored(row)


def _moment(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, tz=UTC) if epoch is not None else None


def store(*, connection_id: int, tokens: TokenSet) -> None:
    """Keep new OAuth tokens, encrypted, before they are used (a rotated refresh token not kept is a connection
    lost). Called by the REST client for every new token, under the connection's refresh lock; not audited:
    a refresh is routine, not anyone's action. A token set without a refresh token keeps the stored one."""
    values = {"rest_access_token": crypto.encrypt(tokens.access_token),
              "rest_access_expires_at": _moment(tokens.expires_at)}
    if tokens.refresh_token:
        values |= {"rest_refresh_token": crypto.encrypt(tokens.refresh_token),
                   "rest_refresh_expires_at": _moment(tokens.refresh_expires_at)}
    Connection.objects.filter(pk=connection_id).update(**values)
