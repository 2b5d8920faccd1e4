"""The change feed's per-connection counter; the sequence itself lives on each Record."""
from __future__ import annotations

from django.db import models

from connector.models.core import Connection


class FeedCounter(models.Model):
    """The last change sequence number handed out for a connection, and how far tombstones were purged.

    A counter row rather than a database SEQUENCE: the row is locked by the UPDATE that reserves numbers
    and stays locked until the writing transaction commits, so numbers become visible in the order they
    were handed out. A SEQUENCE hands numbers out at once; a transaction holding 5 could commit after one
    holding 6, and a consumer who had read up to 6 would never see 5."""

    connection = models.OneToOneField(Connection, on_delete=models.CASCADE, primary_key=True,
                                      related_name="feed_counter")
    last_seq = models.BigIntegerField(default=0)
    # The highest sequence number of a deletion no longer in the feed: a consumer behind it must resync.
    purged_through = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"Change feed of {self.connection_id} at {self.last_seq}"
