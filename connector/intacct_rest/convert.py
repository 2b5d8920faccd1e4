"""REST rows in the XML client's shape, and the sync's keyset over REST: what lets one connection switch protocol.

A record read over REST must be stored exactly as the same record read over XML, or a switch would see every
record as changed. The differences are only of form: REST names fields differently (``names.py``), gives
timestamps in ISO 8601 UTC and dates as ``YYYY-MM-DD``, booleans as JSON booleans and empty values as null; XML
gives ``MM/DD/YYYY HH:MM:SS`` and ``MM/DD/YYYY`` **in the company's time zone**, ``true``/``false``, and the XML
client gives an empty element as None, as REST's null.
Converting needs that time zone: REST answers carry none (docs/protocol-choices.md, "REST API").
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from .names import RestName

_ISO_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def xml_value(value: Any, tz: ZoneInfo) -> str | None:
    """One REST value as the XML client returns it (None for null, as for an empty XML element)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal, float)):
        return str(value)
    text = str(value)
    if _ISO_STAMP.match(text):
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment.astimezone(tz).strftime("%m/%d/%Y %H:%M:%S")
    if _ISO_DATE.match(text):
        return date.fromisoformat(text).strftime("%m/%d/%Y")
    return text


def xml_record(name: RestName, row: Mapping[str, Any], tz: ZoneInfo) -> dict[str, object]:
    """A query row (flat dotted REST names) as the XML client returns the same record (XML field names)."""
    return {name.reverse[key]: xml_value(value, tz) for key, value in row.items() if key in name.reverse}


def utc_iso(local_text: str, tz: ZoneInfo) -> str:
    """A company-local XML timestamp ('MM/DD/YYYY HH:MM:SS') as REST's ISO 8601 UTC ('…Z')."""
    local = datetime.strptime(local_text.strip(), "%m/%d/%Y %H:%M:%S").replace(tzinfo=tz)
    return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def keyset_after(name: RestName, modified_local: str, recordno: int | str,
                 tz: ZoneInfo) -> tuple[list[dict[str, Any]], str, list[dict[str, str]]]:
    """Filters, filterExpression and orderBy reading what comes after (WHENMODIFIED, RECORDNO) in key order.

    The cursor is the XML one the sync keeps (company-local time), so a connection switched to REST goes on
    from where its XML reads stopped.
    """
    stamp = utc_iso(modified_local, tz)
    modified, key = name.modified_field, name.key_field
    filters: list[dict[str, Any]] = [{"$gt": {modified: stamp}}, {"$eq": {modified: stamp}},
                                     {"$gt": {key: str(recordno)}}]
    return filters, "1 or (2 and 3)", [{modified: "asc"}, {key: "asc"}]
