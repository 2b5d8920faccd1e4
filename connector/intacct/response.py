"""Incremental, hardened parsing of gateway responses.

Bytes are fed to an lxml pull parser as they arrive. Only end events of record elements (children of
``<data>`` with a tag the caller expects) reach Python; each record becomes a dict and its element is
removed at once, so a page never exists as a tree. The small envelope (control, authentication,
result status, errors) stays in the tree and is read when the document is complete.

Everything outside records is policed as it arrives, so memory is bounded by what the answer holds,
not by its byte size: after each fed chunk the envelope is walked (never the records already
handed over). Elements in their documented places are kept; anything else (unexpected tags inside
``<data>``, extra elements in the control block, the operation or a leaf) is dropped as soon as it is
complete and counted, and the answer is refused with :class:`UnexpectedContent` once the strays pass
``max_stray_elements`` / ``max_stray_text``. What is kept (envelope, a payload without record tags,
the record being parsed) is capped by ``max_held_elements`` / ``max_held_text``.

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

from .errors import ErrorDetail, ResponseTooLarge, UnexpectedContent, UnsafeResponse

Record = dict[str, object]

# Anything but a comment before the root element is a DTD construct; we never need one.
_DECLARATION_RE = re.compile(rb"<!(?!--)")


def _root_start(head: bytes) -> int | None:
    """Where the root element starts, skipping comments and processing instructions (whose text may hold a
    "<"); None while the prolog is not complete yet."""
    position = 0
    while True:
        start = head.find(b"<", position)
        if start < 0 or start + 1 >= len(head):
            return None
        for opener, closer in ((b"<!--", b"-->"), (b"<?", b"?>")):
            if head.startswith(opener, start):
                end = head.find(closer, start + len(opener))
                if end < 0:
                    return None
                position = end + len(closer)
                break
        else:
            return start
# A real prolog is a few dozen bytes; a long one is an attack or garbage.
_MAX_PROLOG = 64 * 1024
_ROOT_NAME_RE = re.compile(rb"<([^\s/>]*)")

# Elements outside records that are not where the response DTD puts them.
MAX_STRAY_ELEMENTS = 10_000
MAX_STRAY_TEXT = 1024 * 1024
# What may be held at once besides handed-over records: envelope, a payload without record tags
# (getAPISession, getUserPermissions) and the record being parsed. Real answers hold a few hundred.
MAX_HELD_ELEMENTS = 50_000
MAX_HELD_TEXT = 8 * 1024 * 1024

# The response DTD (intacct_response v2.1): which children each envelope element may have. Names
# not listed as keys here (nor ``data``) are leaves holding text only.
_ENVELOPE: dict[str, frozenset[str]] = {
    "response": frozenset(("control", "operation", "errormessage")),
    "control": frozenset(("status", "senderid", "controlid", "uniqueid", "dtdversion")),
    "operation": frozenset(("authentication", "result", "errormessage")),
    "authentication": frozenset(("status", "userid", "companyid", "locationid", "clientid",
                                 "sessiontimestamp", "sessiontimeout")),
    "result": frozenset(("status", "function", "controlid", "listtype", "key", "data", "errormessage")),
    "errormessage": frozenset(("error",)),
    "error": frozenset(("errorno", "description", "description2", "correction")),
}
_NO_CHILDREN: frozenset[str] = frozenset()


def _text_len(text: str | None) -> int:
    return len(text) if text else 0


def _subtree_size(el: etree._Element) -> tuple[int, int]:
    """(elements, characters of text and tail) of ``el`` and everything under it, counted in C."""
    return int(el.xpath("count(descendant-or-self::*)")), int(el.xpath("string-length(.)")) + _text_len(el.tail)


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

    def __init__(
        self,
        record_tags: Iterable[str] = (),
        max_records: int | None = None,
        *,
        max_stray_elements: int = MAX_STRAY_ELEMENTS,
        max_stray_text: int = MAX_STRAY_TEXT,
        max_held_elements: int = MAX_HELD_ELEMENTS,
        max_held_text: int = MAX_HELD_TEXT,
        payload_tags: Iterable[str] = (),
    ) -> None:
        tags = tuple(dict.fromkeys(record_tags))
        self._record_tags = frozenset(tags)
        # Payloads kept whole inside <data> beside records (a batch's <permissions>), counted as held.
        self._payload_tags = frozenset(payload_tags)
        # A record tag spelt in another case (<userInfo> for USERINFO) is still a record, collected by
        # the walk instead of the parser's (case-sensitive) tag filter.
        self._folded_tags = frozenset(t.lower() for t in tags)
        self._finished = False
        self._max_records = max_records
        self._limits = (max_stray_elements, max_stray_text, max_held_elements, max_held_text)
        self._root: etree._Element | None = None
        # Strays already dropped; those still open are counted afresh on every walk.
        self._dropped_elements = 0
        self._dropped_text = 0
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
        # The root's start event hands us the tree to police; records come on their end events.
        self._parser = etree.XMLPullParser(events=("start", "end"), tag=(*tags, "response"), **options)

    def feed(self, chunk: bytes) -> None:
        """Parse the next chunk of the body, collecting any completed records."""
        if not chunk:
            return
        self._seen_bytes = True
        if not self._prolog_checked:
            self._head += chunk
            start = _root_start(self._head)
            if start is None:
                if _DECLARATION_RE.search(self._head):
                    raise UnsafeResponse("response declares a DOCTYPE or entity; refused")
                if len(self._head) > _MAX_PROLOG:
                    raise ResponseSyntaxError("no root element within the first 64 KiB")
                return
            if _DECLARATION_RE.search(self._head, 0, start) or self._head.startswith(b"<!", start):
                raise UnsafeResponse("response declares a DOCTYPE or entity; refused")
            name = _ROOT_NAME_RE.match(self._head, start)
            assert name is not None  # noqa: S101 - the pattern matches any "<" at that position
            complete = name.end() < len(self._head)
            if not complete and b"response".startswith(name.group(1)):
                return  # the root's name may still become "response": wait for the next chunk
            if name.group(1) != b"response":
                # Refused at once: nothing but <response> is an answer, and nothing else is policed.
                raise ResponseSyntaxError(f"root element is <{name.group(1)[:40].decode('utf-8', 'replace')}>, "
                                          "not <response>")
            self._prolog_checked = True
            chunk, self._head = self._head, b""
        try:
            self._parser.feed(chunk)
        except etree.XMLSyntaxError as exc:
            raise ResponseSyntaxError(str(exc)) from None
        self._collect()
        if self._root is not None:
            self._police()

    def _collect(self) -> None:
        # The hot loop: locals only, one dict per record, the element dropped at once.
        pages = self._pages
        current_data, current_records = pages[-1] if pages else (None, [])
        append = current_records.append
        to_record = record_from_element
        count = 0
        for event, el in self._parser.read_events():
            if event == "start":
                if self._root is None and el.tag == "response":
                    self._root = el
                continue
            parent = el.getparent()
            if parent is None:
                continue  # the end of <response> itself
            if parent is not current_data:
                if parent.tag != "data":
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

    # --- policing what is outside records ---------------------------------------------------------

    def _police(self) -> None:
        """Walk the envelope: drop strays that are complete, count the rest, refuse past the caps."""
        self._held = [0, 0]  # elements, text characters
        self._open_stray = [0, 0]
        assert self._root is not None  # noqa: S101 - called only once the root has started
        self._walk(self._root, _ENVELOPE["response"])
        max_stray, max_stray_text, max_held, max_held_text = self._limits
        strays = self._dropped_elements + self._open_stray[0]
        stray_text = self._dropped_text + self._open_stray[1]
        if strays > max_stray or stray_text > max_stray_text:
            raise UnexpectedContent(
                f"response carries more than the allowed content outside records ({strays} unexpected "
                f"element(s), {stray_text} character(s) of unexpected text); refused")
        if self._held[0] > max_held or self._held[1] > max_held_text:
            raise ResponseTooLarge(
                f"response holds more than {max_held} elements or {max_held_text} characters outside the "
                "records already read")

    def _walk(self, el: etree._Element, allowed: frozenset[str]) -> None:
        held = self._held
        held[0] += 1
        # Text directly in a container (or around its children) is whitespace in a real answer.
        text = _text_len(el.text) if allowed else 0
        children = list(el)
        last = -1 if self._finished else len(children) - 1
        for index, child in enumerate(children):
            tag = child.tag
            if tag in allowed:
                text += _text_len(child.tail)
                if tag == "data":
                    self._walk_data(child)
                else:
                    self._walk(child, _ENVELOPE.get(tag, _NO_CHILDREN))
            else:
                self._stray(child, index == last)
        if allowed:
            self._open_stray[1] += text
        else:
            held[1] += _text_len(el.text)  # a leaf's value

    def _walk_data(self, data: etree._Element) -> None:
        held = self._held
        if not self._record_tags:
            # A payload, not records (getAPISession, getUserPermissions): all of it is kept.
            elements, text = _subtree_size(data)
            held[0] += elements
            held[1] += text - _text_len(data.tail)
            return
        held[0] += 1
        self._open_stray[1] += _text_len(data.text)
        children = list(data)
        last = -1 if self._finished else len(children) - 1
        for index, child in enumerate(children):
            tag = child.tag
            if tag in self._record_tags or (isinstance(tag, str) and tag.lower() in self._folded_tags):
                if index != last and tag not in self._record_tags:
                    self._take_record(data, child)
                    continue
                # The record being parsed (complete ones were handed over and removed).
                elements, text = _subtree_size(child)
                held[0] += elements
                held[1] += text
            elif tag in self._payload_tags:
                elements, text = _subtree_size(child)
                held[0] += elements
                held[1] += text
            else:
                self._stray(child, index == last)

    def _take_record(self, data: etree._Element, el: etree._Element) -> None:
        records = next((page_records for page, page_records in self._pages if page is data), None)
        if records is None:
            records = []
            self._pages.append((data, records))
        records.append(record_from_element(el))
        data.remove(el)
        self._count += 1
        if self._max_records is not None and self._count > self._max_records:
            raise ResponseTooLarge(f"page holds more than the {self._max_records} records asked for")

    def _stray(self, el: etree._Element, maybe_open: bool) -> None:
        """Drop an unexpected element once complete; while it may still be growing, count it."""
        if not maybe_open:
            # A later sibling has started, so this one is complete: drop it with its tail.
            elements, text = _subtree_size(el)
            self._dropped_elements += elements
            self._dropped_text += text
            parent = el.getparent()
            if parent is not None:
                parent.remove(el)
            return
        self._open_stray[0] += 1
        self._open_stray[1] += _text_len(el.text) + _text_len(el.tail)
        children = list(el)
        last = -1 if self._finished else len(children) - 1
        for index, child in enumerate(children):
            self._stray(child, index == last)

    def close(self) -> ParsedResponse:
        """Finish parsing and return statuses, errors and records of the whole response."""
        if not self._seen_bytes:
            raise ResponseSyntaxError("empty response body")
        if not self._prolog_checked:
            raise ResponseSyntaxError("response has no root element")
        try:
            closed = self._parser.close()
        except etree.XMLSyntaxError as exc:
            raise ResponseSyntaxError(str(exc)) from None
        # The <response> seen on its start event: what close() hands back can be another element once records
        # nesting grouped fields (<PERSONALINFO><FIRSTNAME>) were removed during the parse.
        root = self._root if self._root is not None else closed
        if root.tag == "response":
            # Now nothing is still growing: every stray is dropped and counted, every record taken.
            self._root = root
            self._finished = True
            self._collect()
            self._police()
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
                if self._record_tags:
                    # Children with other tags were strays, dropped and counted by the walk.
                    records = collected.get(id(data), [])
                else:
                    records = [record_from_element(child) for child in data if isinstance(child.tag, str)]
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
