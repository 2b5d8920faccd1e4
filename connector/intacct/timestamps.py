"""Intacct's time stamps and ours: the one place that converts between them.

Intacct writes WHENMODIFIED company-local, to the second, as 'MM/DD/YYYY HH:MM:SS' and dates as
'MM/DD/YYYY'; we keep 'YYYY-MM-DD HH:MM:SS', which sorts as text (keyset positions, the API's filters).
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta

_INTACCT_STAMP = re.compile(r"(\d\d)/(\d\d)/(\d{4}) (\d\d):(\d\d):(\d\d)")


def iso_from_intacct(value: object) -> str:
    """'MM/DD/YYYY HH:MM:SS' (company-local) as a sortable 'YYYY-MM-DD HH:MM:SS'; '' when absent."""
    if not isinstance(value, str) or not value.strip():
        return ""
    text = value.strip()
    # Called twice per record synced: the usual zero-padded form by slicing (strptime costs ~10 us).
    match = _INTACCT_STAMP.fullmatch(text)
    if match is not None:
        month, day, year, hour, minute, second = match.groups()
        try:
            datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))  # validates
        except ValueError:
            return ""
        return f"{year}-{month}-{day} {hour}:{minute}:{second}"
    for pattern in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y"):
        try:
            return datetime.strptime(text, pattern).strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
    return ""


def intacct_from_iso(value: str) -> str:
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").strftime("%m/%d/%Y %H:%M:%S")


def shift_iso(value: str, seconds: float) -> str:
    moment = datetime.strptime(value, "%Y-%m-%d %H:%M:%S") + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def intacct_date(day: date) -> str:
    """A date as Intacct's fields take it: 'MM/DD/YYYY'."""
    return day.strftime("%m/%d/%Y")
