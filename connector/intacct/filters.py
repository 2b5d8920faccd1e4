"""Filter builders for the 3.0 ``query`` function (``<filter>`` element)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

# Intacct refuses an <in>/<notin> list longer than this.
MAX_IN_VALUES = 1000


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Filter:
    """A query filter condition; ``to_element()`` builds its XML."""

    def to_element(self) -> etree._Element:
        """Return the condition as an lxml element."""
        raise TypeError(f"{type(self).__name__} is abstract")


@dataclass(frozen=True)
class _Comparison(Filter):
    field: str
    value: object
    _tag = ""

    def to_element(self) -> etree._Element:
        """Return ``<op><field/><value/></op>``."""
        el = etree.Element(self._tag)
        etree.SubElement(el, "field").text = self.field
        etree.SubElement(el, "value").text = _text(self.value)
        return el


class EqualTo(_Comparison):
    """``field = value``."""

    _tag = "equalto"


class NotEqualTo(_Comparison):
    """``field != value``."""

    _tag = "notequalto"


class LessThan(_Comparison):
    """``field < value``."""

    _tag = "lessthan"


class LessThanOrEqual(_Comparison):
    """``field <= value``."""

    _tag = "lessthanorequalto"


class GreaterThan(_Comparison):
    """``field > value``."""

    _tag = "greaterthan"


class GreaterThanOrEqual(_Comparison):
    """``field >= value``."""

    _tag = "greaterthanorequalto"


class Like(_Comparison):
    """``field like value`` (``%`` wildcards)."""

    _tag = "like"


class NotLike(_Comparison):
    """``field not like value``."""

    _tag = "notlike"


@dataclass(frozen=True)
class Between(Filter):
    """``low <= field <= high``."""

    field: str
    low: object
    high: object

    def to_element(self) -> etree._Element:
        """Return ``<between><field/><value/><value/></between>``."""
        el = etree.Element("between")
        etree.SubElement(el, "field").text = self.field
        etree.SubElement(el, "value").text = _text(self.low)
        etree.SubElement(el, "value").text = _text(self.high)
        return el


class _Membership(Filter):
    _tag = ""

    def __init__(self, field: str, values: Iterable[object]) -> None:
        self.field = field
        self.values = tuple(values)
        if not self.values:
            raise ValueError(f"{type(self).__name__} needs at least one value")
        if len(self.values) > MAX_IN_VALUES:
            raise ValueError(f"{type(self).__name__} accepts at most {MAX_IN_VALUES} values")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.field!r}, {list(self.values)!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (self.field, self.values) == (other.field, other.values)

    def __hash__(self) -> int:
        return hash((type(self), self.field, self.values))

    def to_element(self) -> etree._Element:
        """Return ``<in><field/><value/>…</in>``."""
        el = etree.Element(self._tag)
        etree.SubElement(el, "field").text = self.field
        for value in self.values:
            etree.SubElement(el, "value").text = _text(value)
        return el


class In(_Membership):
    """``field in (values…)``, at most 1000 values."""

    _tag = "in"


class NotIn(_Membership):
    """``field not in (values…)``, at most 1000 values."""

    _tag = "notin"


@dataclass(frozen=True)
class IsNull(Filter):
    """``field is null``."""

    field: str
    _tag = "isnull"

    def to_element(self) -> etree._Element:
        """Return ``<isnull><field/></isnull>``."""
        el = etree.Element(self._tag)
        etree.SubElement(el, "field").text = self.field
        return el


class IsNotNull(IsNull):
    """``field is not null``."""

    _tag = "isnotnull"


class _Logical(Filter):
    _tag = ""

    def __init__(self, *conditions: Filter) -> None:
        if not conditions:
            raise ValueError(f"{type(self).__name__} needs at least one condition")
        self.conditions = conditions

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.conditions))})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.conditions == other.conditions

    def __hash__(self) -> int:
        return hash((type(self), self.conditions))

    def to_element(self) -> etree._Element:
        """Return ``<and>``/``<or>`` around the conditions (a single condition goes unwrapped)."""
        if len(self.conditions) == 1:
            # Intacct expects two or more operands in <and>/<or>; one needs no wrapper.
            return self.conditions[0].to_element()
        el = etree.Element(self._tag)
        for condition in self.conditions:
            el.append(condition.to_element())
        return el


class And(_Logical):
    """All conditions must hold."""

    _tag = "and"


class Or(_Logical):
    """Any condition may hold."""

    _tag = "or"
