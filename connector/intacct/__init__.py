"""Pure-Python client for the Sage Intacct XML Web Services gateway (no Django, no settings)."""
from . import errors, filters
from . import filters as F  # noqa: N812 - the short alias callers use for filter builders
from .client import BatchCall, BatchOutcome, ClientStats, IntacctClient, Page, Permission, Session, WriteOutcome
from .config import ClientConfig, Credentials, RetryPolicy, endpoint_allowed
from .response import Record

__all__ = [
    "BatchCall", "BatchOutcome", "ClientConfig", "ClientStats", "Credentials", "F", "IntacctClient", "Page",
    "Permission", "Record", "RetryPolicy", "Session", "WriteOutcome", "endpoint_allowed", "errors", "filters",
]
