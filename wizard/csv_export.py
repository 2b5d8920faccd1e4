"""The one CSV writer every export uses: streamed, and safe to open in a spreadsheet.

A cell that starts with =, +, -, @, a tab or a carriage return is run as a formula by Excel, LibreOffice and
Google Sheets (`=HYPERLINK(...)` in an organisation's name becomes a link on a support engineer's screen).
Following OWASP's "CSV Injection" advice, such a cell is prefixed with a single quote, which spreadsheets
show as text; the csv module quotes any cell holding a separator, a quote or a line break.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """One value as text a spreadsheet will not evaluate (None is an empty cell)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class _Echo:
    """A file-like object whose write() returns the line, so rows can be streamed."""

    def write(self, value: str) -> str:
        return value


def lines(header: Iterable[object], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """The header line, then one line per row, every cell made safe."""
    writer = csv.writer(_Echo())
    yield writer.writerow([cell(value) for value in header])
    for row in rows:
        yield writer.writerow([cell(value) for value in row])


def response(header: Iterable[object], rows: Iterable[Iterable[object]], *, filename: str) -> StreamingHttpResponse:
    """A streamed CSV download of `rows` (an iterator: nothing is held in memory)."""
    streamed = StreamingHttpResponse(lines(header, rows), content_type="text/csv; charset=utf-8")
    streamed["Content-Disposition"] = f'attachment; filename="{filename}"'
    return streamed
