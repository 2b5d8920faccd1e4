"""Streamed reading of a query answer: records one at a time, memory bounded by one record.

A broken answer to a read is worth another try (``permanent=False``): every REST call this client makes is a
read.

``{"ia::result": [ {...}, ... ], "ia::meta": {...}}`` is parsed with ijson as the bytes arrive; each record is
built alone and handed over, never the whole page. A record larger than ``max_record_bytes`` (counted on its
keys and values) or more records than the page asked for end the read with a typed error.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ijson

from connector.intacct.errors import InvalidResponse, ResponseTooLarge

RESULT_ITEM = "ia::result.item"
READ_SIZE = 64 * 1024


class ChunkReader:
    """A file-like ``read(n)`` over an iterator of byte chunks (what ijson reads from).

    ``quiet_limit`` bounds the bytes read while the parser produces no event: one string or number that long
    (or a flood of whitespace) is refused while it is still arriving, before the parser has built it whole.
    The consumer calls :meth:`mark` on every event.
    """

    def __init__(self, chunks: Iterator[bytes], *, quiet_limit: int | None = None) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._quiet_limit = quiet_limit
        self._since_mark = 0

    def mark(self) -> None:
        self._since_mark = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        self._since_mark += len(data)
        if self._quiet_limit is not None and self._since_mark > self._quiet_limit:
            raise ResponseTooLarge(f"more than {self._quiet_limit} bytes without a complete JSON value")
        return data


class QueryAnswer:
    """Iterate :meth:`records`; afterwards ``meta`` holds ``ia::meta`` and ``error`` an ``ia::error`` if any."""

    def __init__(self, reader: ChunkReader, *, max_records: int, max_record_bytes: int) -> None:
        self._reader = reader
        self._events = ijson.parse(reader, buf_size=READ_SIZE)
        self._max_records = max_records
        self._max_record_bytes = max_record_bytes
        self.meta: dict[str, Any] = {}
        self.error: dict[str, Any] | None = None
        self.count = 0

    def records(self) -> Iterator[dict[str, Any]]:
        builder: ijson.ObjectBuilder | None = None
        size = 0
        error_builder: ijson.ObjectBuilder | None = None
        try:
            for prefix, event, value in self._events:
                self._reader.mark()
                if builder is not None:
                    builder.event(event, value)
                    size += len(str(value)) if value is not None else 4
                    if size > self._max_record_bytes:
                        raise ResponseTooLarge(f"a record exceeds the {self._max_record_bytes}-byte cap")
                    if prefix == RESULT_ITEM and event == "end_map":
                        self.count += 1
                        if self.count > self._max_records:
                            raise ResponseTooLarge(f"the page holds more than the {self._max_records} records "
                                                   "asked for")
                        yield builder.value
                        builder = None
                    continue
                if prefix == RESULT_ITEM and event == "start_map":
                    builder, size = ijson.ObjectBuilder(), 0
                    builder.event(event, value)
                elif prefix.startswith("ia::meta.") and event in ("string", "number", "boolean", "null"):
                    self.meta[prefix.removeprefix("ia::meta.")] = value
                elif prefix == "ia::result.ia::error" and event == "start_map":
                    error_builder = ijson.ObjectBuilder()
                    error_builder.event(event, value)
                elif error_builder is not None and prefix.startswith("ia::result.ia::error"):
                    error_builder.event(event, value)
                    if prefix == "ia::result.ia::error" and event == "end_map":
                        self.error = error_builder.value
                        error_builder = None
        except ijson.JSONError as exc:
            raise InvalidResponse(f"malformed or truncated JSON answer: {exc}", permanent=False) from None
        except ijson.IncompleteJSONError as exc:  # pragma: no cover - a JSONError subclass in every backend
            raise InvalidResponse(f"truncated JSON answer: {exc}", permanent=False) from None
