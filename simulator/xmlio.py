"""Safe request parsing and fast response building (plain strings with escaping)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from lxml import etree

# No DTDs, no entity expansion, no network: a request is data, never instructions to fetch anything.
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)

ErrorTuple = tuple[str, str, str, str]  # errorno, description, description2, correction


class XMLParseError(ValueError):
    """The body is not well-formed XML or not a 3.0 request."""


def parse_xml(body: bytes) -> Any:
    """Parse a request body safely; a DOCTYPE (and with it any entity) is refused outright."""
    if not body.strip():
        raise XMLParseError("Empty request body")
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise XMLParseError(str(exc)) from exc
    if root.getroottree().docinfo.doctype:
        raise XMLParseError("DOCTYPE declarations are not allowed")
    return root


def esc(value: str) -> str:
    """Escape text for element content and attribute values."""
    if "&" in value or "<" in value or ">" in value or '"' in value:
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return value


def el(tag: str, text: str = "") -> str:
    return f"<{tag}>{esc(text)}</{tag}>"


def errormessage(errors: Iterable[ErrorTuple], gateway: bool = False) -> str:
    """An <errormessage>; gateway (GW-) errors carry only errorno and description."""
    parts = ["<errormessage>"]
    for errorno, description, description2, correction in errors:
        if gateway:
            parts.append(f"<error>{el('errorno', errorno)}{el('description', description)}</error>")
        else:
            parts.append(
                f"<error>{el('errorno', errorno)}{el('description', description)}"
                f"{el('description2', description2)}{el('correction', correction)}</error>"
            )
    parts.append("</errormessage>")
    return "".join(parts)


# --- Records ---------------------------------------------------------------------------------
Layout = list[tuple[str, Any]]  # (tag, field key) for a leaf, (tag, Layout) for a nested element


def compile_layout(fields: Sequence[str]) -> Layout:
    """Turn dotted field paths into nested elements: CONTACTINFO.FIRSTNAME -> <CONTACTINFO><FIRSTNAME>."""
    root: Layout = []
    for name in fields:
        node = root
        parts = name.split(".")
        for depth, part in enumerate(parts):
            if depth == len(parts) - 1:
                node.append((part, name))
                break
            for tag, child in node:
                if tag == part and isinstance(child, list):
                    node = child
                    break
            else:
                child_layout: Layout = []
                node.append((part, child_layout))
                node = child_layout
    return root


def _render(record: dict[str, str], layout: Layout, out: list[str]) -> None:
    get = record.get
    for tag, key in layout:
        if isinstance(key, list):
            out.append(f"<{tag}>")
            _render(record, key, out)
            out.append(f"</{tag}>")
        else:
            value = get(key, "")
            if "&" in value or "<" in value or ">" in value:
                value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            out.append(f"<{tag}>{value}</{tag}>")


def _text(value: str) -> str:
    if "&" in value or "<" in value or ">" in value:
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value


def render_records(records: Iterable[dict[str, str]], layout: Layout, tag: str) -> str:
    out: list[str] = []
    if all(not isinstance(key, list) for _, key in layout):
        # No nested element (the common page): one format string per record, the same text as _render writes.
        keys = [key for _, key in layout]
        tags = [t.replace("{", "{{").replace("}", "}}") for t in (tag, *(t for t, _ in layout))]
        fmt = (f"<{tags[0]}>" + "".join(f"<{t}>{{}}</{t}>" for t in tags[1:]) + f"</{tags[0]}>").format
        for record in records:
            get = record.get
            values = [get(key, "") for key in keys]
            joined = "".join(values)
            if "&" in joined or "<" in joined or ">" in joined:
                values = [_text(value) for value in values]
            out.append(fmt(*values))
        return "".join(out)
    for record in records:
        out.append(f"<{tag}>")
        _render(record, layout, out)
        out.append(f"</{tag}>")
    return "".join(out)
