"""Incremental, hardened parsing of gateway responses.

Bytes are fed to an lxml pull parser as they arrive. Only end events of record elements (children of
``<data>`` with a tag the caller expects) reach Python; each record becomes a dict and its element is
removed at once, so a page never exists as a tree. The small envelope (control, authentication,
result status, errors) stays in the tree and is read when the document is complete.

Record dicts map tag -> text (``None`` for an empty element). Nested elements flatten to dotted keys
(``CONTACTINFO.FIRSTNAME``); a key met more than once in one record (repeated groups such as
``USERLOCATIONS.LOCATIONID`` or owned lines) becomes a list of the values in document order.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from .errors import ErrorDetail, ResponseTooLarge, UnsafeResponse

Record = dict[str, object]

# Anything but a comment before the root element is a DTD construct; we never need one.
_DECLARATION_RE = re.compile(rb"<!(?!--)")
_ROOT_START_RE = re.compile(rb"<[^?!]")
# A real prolog is a few dozen bytes; a long one is an attack or garbage.
_MAX_PROLOG = 64 * 1024


class ResponseSyntaxError(Exception):
    """The bytes are not one well-formed XML document (truncated, empty, or not XML)."""


@dataclass
class ParsedResult:
    """One ``<result>``: status, function, errors, data attributes, and its records."""

    status: str
    function: str
    control_id: str
    errors: list[ErrorDetail]
    data_attrs: dict[str, str]
    listtype_attrs: dict[str, str]
    records: list[Record]
    data_element: etree._Element | None = None


@dataclass
class ParsedResponse:
    """Statuses and errors of all three levels, plus the results."""

    control_status: str
    control_errors: list[ErrorDetail]
    has_operation: bool = False
    auth_status: str = ""
    auth_errors: list[ErrorDetail] = field(default_factory=list)
    session_timeout: datetime | None = None
    results: list[ParsedResult] = field(default_factory=list)


def _record_slow(el: etree._Element) -> Record:
    record: Record = {}
    _flatten_into(record, el, "")
    return record


def _flatten_into(record: Record, el: etree._Element, prefix: str) -> None:
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        key = prefix + tag
        if len(child):
            _flatten_into(record, child, key + ".")
            continue
        if key in record:
            existing = record[key]
            if isinstance(existing, list):
                existing.append(child.text)
            else:
                record[key] = [existing, child.text]
        else:
            record[key] = child.text


def record_from_element(el: etree._Element) -> Record:
    """Flatten one record element to a dict (fast path for the usual flat, unique fields)."""
    record: Record = {}
    for child in el:
        # len() is the cheapest C-level test for nesting; most fields are leaves.
        if len(child):
            return _record_slow(el)
        record[child.tag] = child.text
    if len(record) != len(el):
        # Repeated tags (or a non-element child) collapsed into one key: redo it properly.
        return _record_slow(el)
    return record


def _errors(parent: etree._Element | None) -> list[ErrorDetail]:
    if parent is None:
        return []
    message = parent.find("errormessage")
    if message is None:
        return []
    return [
        ErrorDetail(
            errorno=(err.findtext("errorno") or "").strip(),
            description=(err.findtext("description") or "").strip(),
            description2=(err.findtext("description2") or "").strip(),
            correction=(err.findtext("correction") or "").strip(),
        )
        for err in message.iter("error")
    ]


def _timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None


class ResponseParser:
    """Feed response bytes chunk by chunk, then ``close()`` for the parsed envelope."""

    def __init__(self, record_tags: Iterable[str] = (), max_records: int | None = None) -> None:
        tags = tuple(dict.fromkeys(record_tags))
        self._max_records = max_records
        self._count = 0
        self._head = b""
        self._prolog_checked = False
        self._seen_bytes = False
        # (data element, its records): a strong reference keeps the element proxy stable.
        self._pages: list[tuple[etree._Element, list[Record]]] = []
        options = dict(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
            remove_comments=True, remove_pis=True,
        )
        if tags:
            self._parser = etree.XMLPullParser(events=("end",), tag=tags, **options)
        else:
            self._parser = etree.XMLPullParser(events=(), **options)
        self._wants_events = bool(tags)

    def feed(self, chunk: bytes) -> None:
        """Parse the next chunk of the body, collecting any completed records."""
        if not chunk:
            return
        self._seen_bytes = True
        if not self._prolog_checked:
            self._head += chunk
            match = _ROOT_START_RE.search(self._head)
            if match is None:
                if _DECLARATION_RE.search(self._head):
                    raise UnsafeResponse("response declares a DOCTYPE or entity; refused")
                if len(self._head) > _MAX_PROLOG:
                    raise ResponseSyntaxError("no root element within the first 64 KiB")
                return
            if _DECLARATION_RE.search(self._head, 0, match.start()):
                raise UnsafeResponse("response declares a DOCTYPE or entity; refused")
            self._prolog_checked = True
            chunk, self._head = self._head, b""
        try:
            self._parser.feed(chunk)
        except etree.XMLSyntaxError as exc:
            raise ResponseSyntaxError(str(exc)) from None
        if self._wants_events:
            self._collect()

    def _collect(self) -> None:
        # The hot loop: locals only, one dict per record, the element dropped at once.
        pages = self._pages
        current_data, current_records = pages[-1] if pages else (None, [])
        append = current_records.append
        to_record = record_from_element
        count = 0
        for _event, el in self._parser.read_events():
            parent = el.getparent()
            if parent is not current_data:
                if parent is None or parent.tag != "data":
                    # Same tag nested inside a record: the record itself carries it.
                    continue
                for data, records in pages:
                    if data is parent:
                        current_data, current_records = data, records
                        break
                else:
                    current_data, current_records = parent, []
                    pages.append((parent, current_records))
                append = current_records.append
            append(to_record(el))
            parent.remove(el)
            count += 1
        self._count += count
        # Checked per fed chunk: memory stays bounded by one chunk's records beyond the cap.
        if self._max_records is not None and self._count > self._max_records:
            raise ResponseTooLarge(f"page holds more than the {self._max_records} records asked for")

    def close(self) -> ParsedResponse:
        """Finish parsing and return statuses, errors and records of the whole response."""
        if not self._seen_bytes:
            raise ResponseSyntaxError("empty response body")
        if not self._prolog_checked:
            raise ResponseSyntaxError("response has no root element")
        try:
            root = self._parser.close()
        except etree.XMLSyntaxError as exc:
            raise ResponseSyntaxError(str(exc)) from None
        docinfo = root.getroottree().docinfo
        if docinfo.doctype or docinfo.internalDTD is not None:
            raise UnsafeResponse("response declares a DOCTYPE; refused")
        if root.tag != "response":
            raise ResponseSyntaxError(f"root element is <{root.tag}>, not <response>")
        return self._interpret(root)

    def _interpret(self, root: etree._Element) -> ParsedResponse:
        control = root.find("control")
        parsed = ParsedResponse(
            control_status=(control.findtext("status") if control is not None else "") or "",
            control_errors=_errors(root),
        )
        operation = root.find("operation")
        if operation is None:
            return parsed
        parsed.has_operation = True
        auth = operation.find("authentication")
        if auth is not None:
            parsed.auth_status = (auth.findtext("status") or "").strip()
            parsed.session_timeout = _timestamp(auth.findtext("sessiontimeout"))
        parsed.auth_errors = _errors(operation)
        collected = dict((id(data), records) for data, records in self._pages)
        for result in operation.iterfind("result"):
            data = result.find("data")
            records: list[Record] = []
            if data is not None:
                records = collected.get(id(data), [])
                # Children whose tag we did not expect (or no tags were given) are still records.
                leftovers = [child for child in data if isinstance(child.tag, str)]
                if leftovers:
                    records = records + [record_from_element(child) for child in leftovers]
                    if self._max_records is not None and len(records) > self._max_records:
                        raise ResponseTooLarge(
                            f"page holds more than the {self._max_records} records asked for")
            listtype = result.find("listtype")
            parsed.results.append(ParsedResult(
                status=(result.findtext("status") or "").strip(),
                function=(result.findtext("function") or "").strip(),
                control_id=(result.findtext("controlid") or "").strip(),
                errors=_errors(result),
                data_attrs=dict(data.attrib) if data is not None else {},
                listtype_attrs=dict(listtype.attrib) if listtype is not None else {},
                records=records,
                data_element=data,
            ))
        return parsed
