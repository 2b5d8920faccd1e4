"""The Intacct client a sync (or a deprovisioning) reads with: the connection's credentials, every request
holding one of the company's slots."""
from __future__ import annotations

from connector import clients, crypto, policy, readers
from connector.models import Connection


def client_for_sync(connection: Connection, limit: int) -> readers.SyncClient:
    """A client whose every request holds one of the company's slots (the cross-worker concurrency cap)."""
    if connection.protocol == Connection.Protocol.REST:  # the XML client's interface, over REST
        return readers.rest_reader_for(connection, limit)
    try:
        return clients.client_for(connection, limit=limit)
    except crypto.InvalidToken:
        raise policy.KeyUnavailable("no configured key decrypts this connection's password") from None
