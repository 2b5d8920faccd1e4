"""Filters of readByQuery (text), query (XML tree) and get_list (legacy XML), as one small AST.

AST nodes are JSON-friendly lists so a readByQuery cursor can store them:
``["and", [n, ...]]``, ``["or", [n, ...]]``, ``["not", n]``, ``["cmp", FIELD, op, [values]]`` with op one of
eq ne lt le gt ge like notlike in notin isnull isnotnull between.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from simulator.records import Gen, ObjectDef, parse_ts

Node = list[Any]
Record = dict[str, str]


class FilterError(ValueError):
    """The filter cannot be understood; the message is shown to the caller."""


# --- readByQuery text ------------------------------------------------------------------------
_TOKEN_RE = re.compile(
    r"""
    \s*(?:
      (?P<str>'(?:\\.|''|[^'\\])*')
     |(?P<op><>|!=|<=|>=|=|<|>)
     |(?P<paren>[(),])
     |(?P<num>-?\d+(?:\.\d+)?)
     |(?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_OPS = {"=": "eq", "!=": "ne", "<>": "ne", "<": "lt", ">": "gt", "<=": "le", ">=": "ge"}


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match or match.end() == pos:
            raise FilterError(f"Unexpected text at position {pos}: {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "str":
            # Both \' and '' escape a quote inside a string.
            value = re.sub(r"\\(.)|''", lambda m: m.group(1) or "'", value[1:-1])
        elif kind == "word" and value.upper() in ("AND", "OR", "NOT", "LIKE", "IN", "IS", "NULL"):
            kind, value = "kw", value.upper()
        tokens.append((kind, value))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def take(self, kind: str, value: str | None = None) -> str:
        tok_kind, tok_value = self.peek()
        if tok_kind != kind or (value is not None and tok_value != value):
            raise FilterError(f"Expected {value or kind} but found {tok_value or 'end of query'!r}")
        self.pos += 1
        return tok_value

    def expr(self) -> Node:
        parts = [self.conj()]
        while self.peek() == ("kw", "OR"):
            self.pos += 1
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else ["or", parts]

    def conj(self) -> Node:
        parts = [self.neg()]
        while self.peek() == ("kw", "AND"):
            self.pos += 1
            parts.append(self.neg())
        return parts[0] if len(parts) == 1 else ["and", parts]

    def neg(self) -> Node:
        if self.peek() == ("kw", "NOT"):
            self.pos += 1
            return ["not", self.neg()]
        if self.peek() == ("paren", "("):
            self.pos += 1
            node = self.expr()
            self.take("paren", ")")
            return node
        return self.comparison()

    def value(self) -> str:
        kind, value = self.peek()
        if kind not in ("str", "num"):
            raise FilterError(f"Expected a value but found {value or 'end of query'!r}")
        self.pos += 1
        return value

    def comparison(self) -> Node:
        field = self.take("word").upper()
        kind, value = self.peek()
        if kind == "op":
            self.pos += 1
            return ["cmp", field, _OPS[value], [self.value()]]
        negated = False
        if (kind, value) == ("kw", "NOT"):
            negated = True
            self.pos += 1
            kind, value = self.peek()
        if (kind, value) == ("kw", "LIKE"):
            self.pos += 1
            return ["cmp", field, "notlike" if negated else "like", [self.value()]]
        if (kind, value) == ("kw", "IN"):
            self.pos += 1
            self.take("paren", "(")
            values = [self.value()]
            while self.peek() == ("paren", ","):
                self.pos += 1
                values.append(self.value())
            self.take("paren", ")")
            return ["cmp", field, "notin" if negated else "in", values]
        if (kind, value) == ("kw", "IS") and not negated:
            self.pos += 1
            is_not = self.peek() == ("kw", "NOT")
            if is_not:
                self.pos += 1
            self.take("kw", "NULL")
            return ["cmp", field, "isnotnull" if is_not else "isnull", []]
        raise FilterError(f"Expected an operator after {field} but found {value or 'end of query'!r}")


def parse_readbyquery(text: str) -> Node | None:
    """The AST of a readByQuery ``query`` string; None for an empty query (all records)."""
    if not text.strip():
        return None
    parser = _Parser(_tokenize(text))
    node = parser.expr()
    if parser.peek()[0] != "end":
        raise FilterError(f"Unexpected {parser.peek()[1]!r} after the end of the condition")
    return node


def take_rownum(node: Node | None) -> tuple[Node | None, int | None]:
    """Split ``rownum`` conditions (Oracle's row counter, accepted by readByQuery) off a top-level AND.

    Returns the rest of the condition and the most rows the answer may hold (None: no limit).
    """
    if node is None:
        return None, None
    parts = node[1] if node[0] == "and" else [node]
    limit: int | None = None
    rest: list[Node] = []
    for part in parts:
        if part[0] == "cmp" and part[1] == "ROWNUM":
            op, values = part[2], part[3]
            try:
                n = int(Decimal(values[0]))
            except (InvalidOperation, IndexError) as exc:
                raise FilterError("rownum takes a number") from exc
            bound = {"lt": n - 1, "le": n, "eq": n if n == 1 else 0}.get(op)
            if bound is None:
                raise FilterError(f"rownum does not support this operator ({op})")
            limit = max(0, bound) if limit is None else min(limit, max(0, bound))
        else:
            if fields_of(part) & {"ROWNUM"}:
                raise FilterError("rownum may only be used in a top-level AND")
            rest.append(part)
    if not rest:
        return None, limit
    return (rest[0] if len(rest) == 1 else ["and", rest]), limit


def apply_codes(node: Node | None, obj: ObjectDef) -> Node | None:
    """Translate readByQuery's single-letter codes (USERTYPE = 'B', STATUS = 'T') to the stored values."""
    if node is None or not obj.codes:
        return node
    if node[0] in ("and", "or"):
        return [node[0], [apply_codes(child, obj) for child in node[1]]]
    if node[0] == "not":
        return ["not", apply_codes(node[1], obj)]
    codes = obj.codes.get(node[1])
    if not codes:
        return node
    return ["cmp", node[1], node[2], [codes.get(v, v) if len(v) == 1 else v for v in node[3]]]


# --- query (new) XML filter ------------------------------------------------------------------
_XML_OPS = {
    "equalto": "eq",
    "notequalto": "ne",
    "lessthan": "lt",
    "lessthanorequalto": "le",
    "greaterthan": "gt",
    "greaterthanorequalto": "ge",
    "like": "like",
    "notlike": "notlike",
    "in": "in",
    "notin": "notin",
    "isnull": "isnull",
    "isnotnull": "isnotnull",
    "between": "between",
}


def parse_query_filter(element: Any) -> Node:
    """The AST of a ``<filter>`` child element (an lxml element)."""
    tag = element.tag
    if tag in ("and", "or"):
        children = [parse_query_filter(child) for child in element if isinstance(child.tag, str)]
        if len(children) < 2:
            raise FilterError(f"<{tag}> needs at least two conditions")
        return [tag, children]
    if tag not in _XML_OPS:
        raise FilterError(f"Unknown filter operator <{tag}>")
    op = _XML_OPS[tag]
    field = (element.findtext("field") or "").strip().upper()
    if not field:
        raise FilterError(f"<{tag}> needs a <field>")
    values = [v.text or "" for v in element.findall("value")]
    wanted = {"isnull": 0, "isnotnull": 0, "between": 2}.get(op, 1)
    if op in ("in", "notin"):
        if not 1 <= len(values) <= 1000:
            raise FilterError(f"<{tag}> takes 1 to 1000 values")
    elif len(values) != wanted:
        raise FilterError(f"<{tag}> takes {wanted} value(s)")
    return ["cmp", field, op, values]


# --- get_list legacy filter ------------------------------------------------------------------
_LEGACY_OPS = {
    "=": "eq",
    "!=": "ne",
    "<>": "ne",
    "<": "lt",
    ">": "gt",
    "<=": "le",
    ">=": "ge",
    "like": "like",
    "not like": "notlike",
    "is null": "isnull",
    "is not null": "isnotnull",
}


def parse_get_list_filter(element: Any) -> Node:
    """The AST of a get_list ``<expression>`` or ``<logical>`` element."""
    if element.tag == "logical":
        op = (element.get("logical_operator") or "and").lower()
        children = [parse_get_list_filter(c) for c in element if isinstance(c.tag, str)]
        if op not in ("and", "or") or not children:
            raise FilterError("Invalid <logical> element")
        return [op, children] if len(children) > 1 else children[0]
    if element.tag != "expression":
        raise FilterError(f"Unknown filter element <{element.tag}>")
    field = (element.findtext("field") or "").strip().upper()
    operator = (element.findtext("operator") or "").strip().lower()
    if operator not in _LEGACY_OPS or not field:
        raise FilterError(f"Invalid expression operator {operator!r}")
    op = _LEGACY_OPS[operator]
    return ["cmp", field, op, [] if op in ("isnull", "isnotnull") else [element.findtext("value") or ""]]


# --- Validation and evaluation ---------------------------------------------------------------
def fields_of(node: Node | None) -> set[str]:
    if node is None:
        return set()
    if node[0] in ("and", "or"):
        return set().union(*(fields_of(child) for child in node[1]))
    if node[0] == "not":
        return fields_of(node[1])
    return {node[1]}


def check_fields(node: Node | None, obj: ObjectDef) -> None:
    unknown = sorted(f for f in fields_of(node) if f not in obj.field_set)
    if unknown:
        raise FilterError(f"Field '{unknown[0]}' not found in object {obj.name}")


def _number(value: str) -> Decimal | None:
    try:
        return Decimal(value) if value.strip() else None
    except InvalidOperation:
        return None


def _typed(kind: str) -> Callable[[str], Any]:
    """How values of a field type compare: numbers and times by value, booleans normalised."""
    if kind in ("int", "dec"):
        return _number
    if kind in ("date", "ts"):
        return parse_ts
    if kind == "bool":
        return lambda v: {
            "t": "true",
            "true": "true",
            "1": "true",
            "f": "false",
            "false": "false",
            "0": "false",
        }.get(v.strip().lower(), v)
    return lambda v: v


def like_regex(pattern: str, caseinsensitive: bool) -> re.Pattern[str]:
    out = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile(f"^{out}$", re.DOTALL | (re.IGNORECASE if caseinsensitive else 0))


def compile_predicate(node: Node | None, obj: ObjectDef, caseinsensitive: bool = False) -> Callable[[Record], bool]:
    """A fast callable deciding whether a record matches. Null (empty) values match no comparison."""
    if node is None:
        return lambda record: True
    kind = node[0]
    if kind == "and":
        parts = [compile_predicate(child, obj, caseinsensitive) for child in node[1]]
        return lambda record: all(p(record) for p in parts)
    if kind == "or":
        parts = [compile_predicate(child, obj, caseinsensitive) for child in node[1]]
        return lambda record: any(p(record) for p in parts)
    if kind == "not":
        inner = compile_predicate(node[1], obj, caseinsensitive)
        return lambda record: not inner(record)
    _, field, op, values = node
    if op == "isnull":
        return lambda record: record.get(field, "") == ""
    if op == "isnotnull":
        return lambda record: record.get(field, "") != ""
    if op in ("like", "notlike"):
        regex = like_regex(values[0], caseinsensitive)
        want = op == "like"
        return lambda record: record.get(field, "") != "" and bool(regex.match(record[field])) == want
    convert = _typed(obj.type_of(field))
    fold = caseinsensitive and obj.type_of(field) == "str"
    typed_values = [convert(v) for v in values]
    if any(v is None for v in typed_values):
        # A value that is not of the field's type compares as text.
        def convert(v: str) -> Any:
            return v

        typed_values = list(values)
    if fold:
        typed_values = [v.casefold() for v in typed_values]

    def value_of(record: Record) -> Any:
        raw = record.get(field, "")
        if raw == "":
            return None
        value = convert(raw)
        return value.casefold() if fold and isinstance(value, str) else value

    first = typed_values[0] if typed_values else None
    compare: dict[str, Callable[[Any], bool]] = {
        "eq": lambda v: v == first,
        "ne": lambda v: v != first,
        "lt": lambda v: v < first,
        "le": lambda v: v <= first,
        "gt": lambda v: v > first,
        "ge": lambda v: v >= first,
        "in": lambda v: v in typed_values,
        "notin": lambda v: v not in typed_values,
        "between": lambda v: typed_values[0] <= v <= typed_values[1],
    }
    test = compare[op]

    def predicate(record: Record) -> bool:
        value = value_of(record)
        if value is None:
            return False
        try:
            return test(value)
        except TypeError:
            return False

    return predicate


# --- Interval analysis (fast paths over generated records) -----------------------------------
Intervals = list[tuple[int, int]]


def _norm(intervals: Intervals, size: int) -> Intervals:
    cleaned = sorted((max(1, lo), min(size, hi)) for lo, hi in intervals if max(1, lo) <= min(size, hi))
    merged: Intervals = []
    for lo, hi in cleaned:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def intersect(a: Intervals, b: Intervals) -> Intervals:
    out: Intervals = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def complement(a: Intervals, size: int) -> Intervals:
    out: Intervals = []
    start = 1
    for lo, hi in a:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= size:
        out.append((start, size))
    return out


def _atom_intervals(node: Node, gen: Gen) -> Intervals | None:
    """Exact RECORDNO intervals for a comparison on RECORDNO or WHENMODIFIED; None if not exact."""
    _, field, op, values = node
    size = gen.size
    if field == "RECORDNO":
        numbers = [_number(v) for v in values]
        if any(n is None for n in numbers):
            return None
        # Bounds rounded so that fractional values keep the comparison's meaning.
        floor = [int(n.to_integral_value(rounding="ROUND_FLOOR")) for n in numbers]  # type: ignore[union-attr]
        ceil = [int(n.to_integral_value(rounding="ROUND_CEILING")) for n in numbers]  # type: ignore[union-attr]
        points = [(int(n), int(n)) for n in numbers if n == int(n)]  # type: ignore[arg-type]
        first_ge = ceil[0] if values else 0
        first_gt = floor[0] + 1 if values else 0
        last_lt = ceil[0] - 1 if values else 0
        last_le = floor[0] if values else 0
    elif field == "WHENMODIFIED":
        stamps = [parse_ts(v) for v in values]
        if any(s is None for s in stamps):
            return None
        points = [(gen.first_ge(s), gen.first_gt(s) - 1) for s in stamps]  # type: ignore[arg-type]
        first_ge = gen.first_ge(stamps[0]) if stamps else 0  # type: ignore[arg-type]
        first_gt = gen.first_gt(stamps[0]) if stamps else 0  # type: ignore[arg-type]
        last_lt, last_le = first_ge - 1, first_gt - 1
        if op == "between":
            return _norm([(first_ge, gen.first_gt(stamps[1]) - 1)], size)  # type: ignore[arg-type]
    else:
        return None
    if op == "between":
        return _norm([(first_ge, floor[1])], size)
    table = {
        "eq": lambda: points[:1],
        "in": lambda: points,
        "lt": lambda: [(1, last_lt)],
        "le": lambda: [(1, last_le)],
        "gt": lambda: [(first_gt, size)],
        "ge": lambda: [(first_ge, size)],
        "isnull": lambda: [],
        "isnotnull": lambda: [(1, size)],
    }
    if op in table:
        return _norm(table[op](), size)
    if op in ("ne", "notin"):
        return complement(_norm(points[:1] if op == "ne" else points, size), size)
    return None


def analyse(node: Node | None, gen: Gen) -> tuple[Intervals, Intervals]:
    """(must, may) RECORDNO intervals of generated records: all in ``must`` match, none outside ``may`` do."""
    everything = [(1, gen.size)] if gen.size else []
    if node is None:
        return everything, everything
    kind = node[0]
    if kind in ("and", "or"):
        results = [analyse(child, gen) for child in node[1]]
        must, may = results[0]
        for child_must, child_may in results[1:]:
            if kind == "and":
                must, may = intersect(must, child_must), intersect(may, child_may)
            else:
                must, may = _norm(must + child_must, gen.size), _norm(may + child_may, gen.size)
        return must, may
    if kind == "not":
        must, may = analyse(node[1], gen)
        return complement(may, gen.size), complement(must, gen.size)
    exact = _atom_intervals(node, gen)
    if exact is None:
        return [], everything
    return exact, exact
