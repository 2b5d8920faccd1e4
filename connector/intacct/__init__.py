"""Pure-Python client for the Sage Intacct XML Web Services gateway (no Django, no settings)."""
from . import errors, filters
from .client import BatchCall, BatchOutcome, ClientStats, IntacctClient, Page, Permission, Session, WriteOutcome
from .config import ClientConfig, Credentials, RetryPolicy, endpoint_allowed
from .response import Record

__all__ = [
    "BatchCall", "BatchOutcome", "ClientConfig", "ClientStats", "Credentials", "IntacctClient", "Page",
    "Permission", "Record", "RetryPolicy", "Session", "WriteOutcome", "endpoint_allowed", "errors", "filters",
]
