"""When and how much a connection may sync: its state, Intacct's weekly maintenance window, the month's call
allowance (Intacct bills every call)."""
from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from connector.models import Connection, SyncSettings


def can_sync(connection: Connection) -> bool:
    return connection.can_sync


def in_maintenance_window(moment: datetime | None = None) -> bool:
    """True during Intacct's weekly maintenance (default Saturdays 02:30-05:30 UTC; SYNC_MAINTENANCE_WINDOW)."""
    window = settings.SYNC_MAINTENANCE_WINDOW
    if not window:
        return False
    moment = (moment or timezone.now()).astimezone(UTC)
    if moment.weekday() != int(window["weekday"]):
        return False
    clock = moment.strftime("%H:%M")
    return window["start"] <= clock < window["end"]


def month_api_calls(connection: Connection, moment: datetime | None = None) -> int:
    """Intacct API calls the syncs of this connection made this calendar month (UTC)."""
    moment = moment or timezone.now()
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return connection.sync_runs.filter(created_at__gte=start).aggregate(n=Sum("requests"))["n"] or 0


def monthly_allowance(connection: Connection) -> int:
    sync_settings = SyncSettings.objects.filter(connection=connection).first()
    if sync_settings and sync_settings.monthly_call_allowance:
        return sync_settings.monthly_call_allowance
    return settings.SYNC_MONTHLY_CALL_ALLOWANCE

