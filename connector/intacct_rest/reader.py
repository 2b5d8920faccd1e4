"""The XML client's read (and user-status write) interface, over REST: what lets sync and deprovisioning run on
either protocol unchanged.

``RestReader`` offers the part of ``connector.intacct.IntacctClient`` that the sync and deprovisioning use —
``query_page`` (the same ``Page``), ``get_list``, ``batch`` of permission facts, ``read``, ``update_confirmed``
(the same ``WriteOutcome``), ``stats`` with per-object labels, and the context manager — backed by
``IntacctRestClient``. Every record comes back in the XML client's shape (``convert.xml_record``: XML field names,
company-local ``MM/DD/YYYY`` timestamps), so the rows we store, their hashes and the change feed are the same
whichever protocol read them, and a connection can switch protocol without re-syncing anything.

Filters are ``connector.intacct.filters`` objects translated to the query service's ``filters`` +
``filterExpression``; timestamps in them are company-local (the sync's cursor is the XML one) and are sent as
ISO 8601 UTC, converted with the company's time zone. Paging is the query service's ``start`` (1-based) for the
XML ``offset``; ``numremaining`` is what ``ia::meta.totalCount`` leaves after the page.

What REST has no published counterpart for (``getUserPermissions``, ``USERROLES``) comes back from ``batch`` as
that function's own ``UnknownObject`` error, without a request: the caller then words its finding from the
permission type it last saw, as it does when Intacct refuses those functions.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from connector.intacct import filters as F  # noqa: N812 - the alias the sync uses
from connector.intacct.client import BatchOutcome, ClientStats, Page, WriteOutcome
from connector.intacct.errors import IntacctError, UnknownObject
from connector.intacct.response import Record

from .client import IntacctRestClient
from .convert import utc_iso, xml_record
from .errors import ConnectionDropped, GatewayUnavailable, InvalidResponse, RequestTimeout
from .names import RestName, rest_name

_LOCAL_STAMP = re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}$")
_LOCAL_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")

_COMPARISONS = (F.EqualTo, F.NotEqualTo, F.LessThan, F.LessThanOrEqual, F.GreaterThan, F.GreaterThanOrEqual)
_OPERATORS: dict[type, str] = {
    F.EqualTo: "$eq", F.NotEqualTo: "$ne", F.LessThan: "$lt", F.LessThanOrEqual: "$lte",
    F.GreaterThan: "$gt", F.GreaterThanOrEqual: "$gte",
}


@dataclass(frozen=True)
class RestCall:
    """One function of a ``batch`` over REST: a one-page query, or a function REST does not have."""

    key: str
    name: str
    obj: str
    fields: tuple[str, ...] = ()
    filter: F.Filter | None = None
    page_size: int = 1


@dataclass(frozen=True)
class RestQuery:
    """A translated filter: the query service's ``filters`` and ``filterExpression``."""

    filters: list[dict[str, Any]]
    expression: str | None


def _rest_value(field: str, value: object, name: RestName, tz: ZoneInfo) -> object:
    """A filter value as the query service takes it: local timestamps as ISO UTC, dates as ISO, keys as text."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value)
    if _LOCAL_STAMP.match(text):
        return utc_iso(text, tz)
    date = _LOCAL_DATE.match(text)
    if date:
        month, day, year = date.groups()
        return f"{year}-{month}-{day}"
    return text


def _like(pattern: str) -> tuple[str, str]:
    """A ``like`` pattern as the REST operator that means the same (only leading/trailing ``%`` are expressible)."""
    core = pattern.strip("%")
    if "%" in core or "_" in core or not core:
        raise ValueError(f"the like pattern {pattern!r} has no REST equivalent")
    starts, ends = pattern.startswith("%"), pattern.endswith("%")
    if starts and ends:
        return "$contains", core
    if ends:
        return "$startsWith", core
    if starts:
        return "$endsWith", core
    return "$eq", core


def translate(flt: F.Filter | None, name: RestName, tz: ZoneInfo) -> RestQuery:
    """``connector.intacct.filters`` as the query service's filters and filterExpression (1-based indices)."""
    conditions: list[dict[str, Any]] = []

    def field_of(xml_field: str) -> str:
        try:
            return name.fields[xml_field.upper()]
        except KeyError:
            raise ValueError(f"{name.xml_name}.{xml_field} has no REST name (connector/intacct_rest/names.py)") \
                from None

    def add(condition: dict[str, Any]) -> str:
        conditions.append(condition)
        return str(len(conditions))

    def walk(node: F.Filter) -> str:
        if isinstance(node, (F.And, F.Or)):
            parts = [walk(c) for c in node.conditions]
            if len(parts) == 1:
                return parts[0]
            word = " and " if isinstance(node, F.And) else " or "
            return "(" + word.join(parts) + ")"
        if isinstance(node, F.IsNotNull):
            return add({"$ne": {field_of(node.field): None}})
        if isinstance(node, F.IsNull):
            return add({"$eq": {field_of(node.field): None}})
        if isinstance(node, F.Between):
            rest = field_of(node.field)
            return add({"$between": {rest: [_rest_value(node.field, node.low, name, tz),
                                            _rest_value(node.field, node.high, name, tz)]}})
        if isinstance(node, (F.In, F.NotIn)):
            rest = field_of(node.field)
            op = "$in" if isinstance(node, F.In) else "$notIn"
            return add({op: {rest: [_rest_value(node.field, v, name, tz) for v in node.values]}})
        if isinstance(node, (F.Like, F.NotLike)):
            op, text = _like(str(node.value))
            if isinstance(node, F.NotLike):
                op = {"$contains": "$notContains", "$startsWith": "$notStartsWith", "$endsWith": "$notEndsWith",
                      "$eq": "$ne"}[op]
            return add({op: {field_of(node.field): text}})
        if not isinstance(node, _COMPARISONS):
            raise ValueError(f"the filter {node!r} has no REST equivalent")
        return add({_OPERATORS[type(node)]: {field_of(node.field): _rest_value(node.field, node.value, name, tz)}})

    if flt is None:
        return RestQuery([], None)
    expression = walk(flt)
    if expression.startswith("(") and expression.endswith(")") and _balanced(expression[1:-1]):
        expression = expression[1:-1]
    return RestQuery(conditions, None if len(conditions) <= 1 else expression)


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


class RestReader:
    """The XML client's interface for sync and deprovisioning, over one company's REST connection.

    ``tz`` is the company's time zone (the XML side's timestamps are company-local; REST's are UTC). The reader
    owns ``rest`` and closes it."""

    def __init__(self, rest: IntacctRestClient, tz: ZoneInfo | str) -> None:
        self.rest = rest
        self.tz = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        self.stats: ClientStats = rest.stats
        self.protocol = "rest"

    # --- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> RestReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.rest.close()

    # --- naming -----------------------------------------------------------------------------------
    @staticmethod
    def name_of(obj: str) -> RestName:
        """The object's REST naming (connector/intacct_rest/names.py), or UnknownObject before anything is sent."""
        name = rest_name(obj)
        if name is None:
            raise UnknownObject(f"{obj} has no REST name in connector/intacct_rest/names.py", function=f"query:{obj}")
        return name

    def _records(self, name: RestName, rows: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> list[Record]:
        """Rows as the XML client returns them: the requested field names (in their case), XML values."""
        out: list[Record] = []
        for row in rows:
            converted = xml_record(name, row, self.tz)
            out.append({f: converted.get(f.upper()) for f in fields})
        return out

    # --- reads ------------------------------------------------------------------------------------
    def query_page(self, obj: str, fields: Sequence[str], filter: F.Filter | None = None,  # noqa: A002
                   order_by: Sequence[tuple[str, str]] = (), page_size: int = 100, offset: int = 0, **_: Any) -> Page:
        """One page of the query service as the XML ``query`` page (``offset`` 0-based, ``num_remaining``)."""
        name = self.name_of(obj)
        fields = list(fields)
        query = translate(filter, name, self.tz)
        order = [{name.fields[f.upper()]: d.lower()} for f, d in order_by]
        page = self.rest.query_page(name.path, name.rest_fields(fields), filters=query.filters,
                                    filter_expression=query.expression, order_by=order, start=offset + 1,
                                    size=page_size)
        records = self._records(name, page.records, fields)
        if page.next_start is None:
            remaining = 0
        elif page.total_count is not None:
            remaining = max(0, page.total_count - offset - len(records))
        else:
            remaining = 1  # more, by ia::meta.next, however many
        return Page(records=records, total_count=page.total_count, num_remaining=remaining, offset=offset)

    def query(self, obj: str, fields: Sequence[str], filter: F.Filter | None = None,  # noqa: A002
              order_by: Sequence[tuple[str, str]] = (), page_size: int = 100, **_: Any) -> Iterator[Record]:
        """Every record of a query, page after page."""
        offset = 0
        while True:
            page = self.query_page(obj, fields, filter, order_by, page_size, offset)
            yield from page.records
            offset += len(page.records)
            if not page.records or not page.num_remaining:
                return

    def get_list(self, obj: str, fields: Sequence[str] | None = None,
                 filters: Sequence[tuple[str, str, object]] | None = None, page_size: int = 100,
                 sorts: Sequence[tuple[str, str]] | None = None) -> Iterator[Record]:
        """The legacy ``get_list`` objects over the query service (field names as asked, e.g. lower case)."""
        if filters:
            raise ValueError("get_list filters are not translated to REST (the sync reads these objects whole)")
        name = self.name_of(obj)
        wanted = list(fields) if fields else [xml for xml in name.fields]
        yield from self.query(obj, wanted, None, list(sorts or [("RECORDNO", "asc")]), page_size)

    def read(self, obj: str, keys: Iterable[object], fields: Sequence[str] = ("*",)) -> list[Record]:
        """Records by RECORDNO (the query service, 100 keys a call); keys not found are simply absent."""
        name = self.name_of(obj)
        wanted = list(name.fields) if "*" in fields else list(fields)
        keys = [str(k) for k in keys]
        records: list[Record] = []
        for start in range(0, len(keys), 100):
            chunk = keys[start:start + 100]
            records += self.query(obj, wanted, F.In("RECORDNO", chunk), [("RECORDNO", "asc")], len(chunk))
        return records

    # --- permission facts ---------------------------------------------------------------------------
    def query_call(self, key: str, obj: str, fields: Sequence[str], filter: F.Filter | None = None,  # noqa: A002
                   page_size: int = 1) -> RestCall:
        return RestCall(key, "query", obj, tuple(fields), filter, page_size)

    def get_list_call(self, key: str, obj: str, fields: Sequence[str] | None = None, page_size: int = 1) -> RestCall:
        return RestCall(key, "get_list", obj, tuple(fields or ()), None, page_size)

    def get_user_permissions_call(self, key: str, user_id: str) -> RestCall:
        return RestCall(key, "getUserPermissions", "USERINFO")

    def batch(self, calls: Sequence[RestCall]) -> dict[str, BatchOutcome]:
        """Each call on its own (REST has no multi-function request we use); each outcome its records or error.

        Sign-in and transient failures are raised, as the XML client raises a refused request."""
        outcomes: dict[str, BatchOutcome] = {}
        for call in calls:
            outcome = BatchOutcome(call.key)
            if call.name == "getUserPermissions" or rest_name(call.obj) is None:
                outcome.error = UnknownObject(f"{call.name} {call.obj} has no REST counterpart we can use",
                                              function=call.name)
            else:
                try:
                    page = self.query_page(call.obj, call.fields or list(self.name_of(call.obj).fields), call.filter,
                                           page_size=call.page_size)
                    outcome.records = page.records
                    outcome.data_attrs = {"totalcount": str(page.total_count or 0)}
                except IntacctError as exc:
                    if exc.level in ("control", "authentication") or not exc.permanent:
                        raise
                    outcome.error = exc
            outcomes[call.key] = outcome
        return outcomes

    # --- writes (deprovisioning: a user's or employee's status) -------------------------------------
    def update_confirmed(self, obj: str, values: Mapping[str, object], control_id: str, *,
                         key_field: str | None = None) -> WriteOutcome:
        """``PATCH /objects/{path}/{key}`` with absolute values; a lost answer is settled by reading the record.

        REST has no control ID: ``control_id`` only names the attempt in logs. A PATCH sets absolute values, so
        sending it again is safe; the REST client repeats it after a transient failure within the retry policy,
        and when the answer is finally lost the record is read back: every value as asked = applied."""
        name = self.name_of(obj)
        values = dict(values)
        key = str(values.get(key_field or "RECORDNO") or "")
        if not key.isdigit():
            raise ValueError("values must hold the record's RECORDNO")
        body = _nested({name.fields[f.upper()]: _write_value(v) for f, v in values.items()
                        if f.upper() != "RECORDNO"})
        try:
            self.rest.patch_object(name.path, key, body)
        except (GatewayUnavailable, ConnectionDropped, RequestTimeout, InvalidResponse) as exc:
            if exc.permanent and not isinstance(exc, InvalidResponse):
                raise
            back = self.read(obj, [key], fields=["RECORDNO", *(f for f in values if f.upper() != "RECORDNO")])
            if back and all(str(back[0].get(f) or "") == str(v or "") for f, v in values.items()):
                return WriteOutcome(back[0], confirmed_by_read_back=True,
                                    lost_answers=(f"{type(exc).__name__}: {exc}",))
            raise
        return WriteOutcome({"RECORDNO": key, **{f: v for f, v in values.items() if f != "RECORDNO"}})

    def update(self, obj: str, values: Mapping[str, object], control_id: str) -> Record:
        return self.update_confirmed(obj, values, control_id).record


def _write_value(value: object) -> object:
    """A value to write as REST takes it: '' is null, a local date (MM/DD/YYYY) ISO."""
    if value is None or value == "":
        return None
    text = str(value)
    date = _LOCAL_DATE.match(text)
    if date:
        month, day, year = date.groups()
        return f"{year}-{month}-{day}"
    return value


def _nested(flat: Mapping[str, object]) -> dict[str, object]:
    """Dotted REST names as the nested object a PATCH body is (``department.id`` -> {"department": {"id": …}})."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


__all__ = ["RestCall", "RestQuery", "RestReader", "translate"]
