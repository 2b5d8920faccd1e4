"""Which client reads a connection for sync and deprovisioning: the XML client, or over REST the reader that
offers the XML client's interface (``connector.intacct_rest.reader.RestReader``), records in the XML shape.

Both hold one of the company's request slots per request (the cross-worker concurrency cap) and count their
calls in ``stats`` with per-object labels, so the sync's accounting is the same whichever protocol it reads.
"""
from __future__ import annotations

from connector import clients
from connector.intacct import IntacctClient
from connector.intacct_rest.reader import RestReader
from connector.models import Connection

# What sync and deprovisioning read with, whichever protocol the connection speaks.
SyncClient = IntacctClient | RestReader


class TimeZoneUnknown(Exception):
    """A REST connection whose company time zone is not recorded: its timestamps cannot be stored as XML's."""


def rest_reader_for(connection: Connection, limit: int) -> RestReader:
    """The REST reader of a connection switched to REST; every request holds one of the company's slots."""
    if not connection.company_timezone:
        raise TimeZoneUnknown("this REST connection has no company time zone recorded; switch it to REST again "
                              "naming the company's time zone")
    return RestReader(clients.rest_client_for(connection, limit=limit), connection.company_timezone)
