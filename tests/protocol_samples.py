"""Our own samples of each documented gateway shape (tests/fixtures/protocol/*.xml) and how to compare.

A sample is a whole response as the real gateway answers it (sources in docs/protocol-choices.md). Values
that differ on every call are written as placeholders:

- ``@ANY@``: any text (including none); ``@TEXT@``: any non-empty text;
- ``@UTC@``: an ISO 8601 timestamp in UTC (``…+00:00``);
- ``@SUPPORTID@``: the URL-encoded id inside ``[Support ID: …]``;
- ``@NAME@``: a value the test supplies (``compare(..., NAME="…")``).

``concrete()`` turns a sample into bytes a client can read (placeholders replaced by fixed values);
``compare()`` checks an answer element by element against the sample: same tags in the same order, same
attributes, same text (placeholders matched by pattern), ignoring indentation.
"""
from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

SAMPLES = Path(__file__).parent / "fixtures" / "protocol"
PATTERNS = {
    "ANY": r".*",
    "TEXT": r".+",
    "UTC": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00",
    "SUPPORTID": r"[\w-]+%7E[\w-]+",
}
FIXED = {"ANY": "x1", "TEXT": "x1", "UTC": "2026-12-03T10:00:00+00:00", "SUPPORTID": "Qb3xY1%7EZc9TnA0wLk2PqR"}
_PLACEHOLDER = re.compile(r"@([A-Z]+)@")


def sample(name: str) -> str:
    """The text of one sample."""
    return (SAMPLES / name).read_text(encoding="utf-8")


def concrete(name: str, **values: str) -> bytes:
    """The sample with every placeholder replaced by a fixed (or given) value."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), FIXED.get(m.group(1), m.group(0))), sample(name)).encode()


def _pattern(text: str, values: dict[str, str]) -> re.Pattern[str]:
    parts, last = [], 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append(re.escape(text[last:match.start()]))
        key = match.group(1)
        parts.append(re.escape(values[key]) if key in values else f"(?:{PATTERNS[key]})")
        last = match.end()
    parts.append(re.escape(text[last:]))
    return re.compile("".join(parts), re.DOTALL)


def _walk(expected: etree._Element, actual: etree._Element, path: str, values: dict[str, str]) -> list[str]:
    problems = []
    if expected.tag != actual.tag:
        return [f"{path}: element <{actual.tag}> where the sample has <{expected.tag}>"]
    here = f"{path}/{expected.tag}"
    if set(expected.attrib) != set(actual.attrib):
        problems.append(f"{here}: attributes {sorted(actual.attrib)} where the sample has {sorted(expected.attrib)}")
    for key, value in expected.attrib.items():
        if key in actual.attrib and not _pattern(value, values).fullmatch(actual.attrib[key]):
            problems.append(f"{here}/@{key}: {actual.attrib[key]!r} does not match {value!r}")
    want_children = [c for c in expected if isinstance(c.tag, str)]
    got_children = [c for c in actual if isinstance(c.tag, str)]
    if not want_children:
        want, got = (expected.text or "").strip(), (actual.text or "").strip()
        if got_children:
            problems.append(f"{here}: has children {[c.tag for c in got_children]} where the sample has text")
        elif not _pattern(want, values).fullmatch(got):
            problems.append(f"{here}: text {got!r} does not match {want!r}")
        return problems
    if [c.tag for c in want_children] != [c.tag for c in got_children]:
        problems.append(f"{here}: children {[c.tag for c in got_children]} where the sample has "
                        f"{[c.tag for c in want_children]}")
        return problems
    for want_child, got_child in zip(want_children, got_children, strict=True):
        problems.extend(_walk(want_child, got_child, here, values))
    return problems


def compare(name: str, answer: bytes, **values: str) -> list[str]:
    """Differences between an answer and the sample (empty when it matches element by element)."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    expected = etree.fromstring(sample(name).encode(), parser)
    actual = etree.fromstring(answer, parser)
    return _walk(expected, actual, "", values)
