"""Build request envelopes and function elements in the order of the 3.0 XSD (api.xsd)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from lxml import etree

from .filters import Filter

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
MAX_CONTROL_ID = 256


@dataclass(frozen=True)
class LoginAuth:
    """``<login>`` authentication: used only for getAPISession."""

    user_id: str
    company_id: str
    password: str
    entity_id: str | None = None

    def __repr__(self) -> str:
        return f"LoginAuth(user_id={self.user_id!r}, company_id={self.company_id!r}, password='***')"


@dataclass(frozen=True)
class SessionAuth:
    """``<sessionid>`` authentication for every other request."""

    session_id: str

    def __repr__(self) -> str:
        return "SessionAuth(session_id='***')"


def check_control_id(control_id: str) -> str:
    """Return ``control_id`` if Intacct accepts it (1..256 characters), else raise ValueError."""
    if not isinstance(control_id, str) or not 1 <= len(control_id) <= MAX_CONTROL_ID:
        raise ValueError("control_id must be a string of 1 to 256 characters")
    return control_id


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def build_request(
    *,
    sender_id: str,
    sender_password: str,
    control_id: str,
    auth: LoginAuth | SessionAuth,
    function: etree._Element,
    function_control_id: str,
    unique_id: bool = False,
    more_functions: Sequence[tuple[str, etree._Element]] = (),
) -> bytes:
    """Serialise one request: one function, or several (``more_functions``: (controlid, element) pairs, each
    answered by a result of its own), control block in XSD order."""
    request = etree.Element("request")
    control = _sub(request, "control")
    _sub(control, "senderid", sender_id)
    _sub(control, "password", sender_password)
    _sub(control, "controlid", check_control_id(control_id))
    _sub(control, "uniqueid", "true" if unique_id else "false")
    _sub(control, "dtdversion", "3.0")
    _sub(control, "includewhitespace", "false")
    operation = _sub(request, "operation")
    operation.set("transaction", "false")
    authentication = _sub(operation, "authentication")
    if isinstance(auth, LoginAuth):
        login = _sub(authentication, "login")
        # Company and user IDs are often pasted with stray spaces; Intacct never has them.
        _sub(login, "userid", auth.user_id.strip())
        _sub(login, "companyid", auth.company_id.strip())
        _sub(login, "password", auth.password)
        if auth.entity_id:
            _sub(login, "locationid", auth.entity_id.strip())
    else:
        _sub(authentication, "sessionid", auth.session_id)
    content = _sub(operation, "content")
    for controlid, element in ((function_control_id, function), *more_functions):
        wrapper = _sub(content, "function")
        wrapper.set("controlid", check_control_id(controlid))
        wrapper.append(element)
    # lxml writes the declaration with single quotes; the reference shows double quotes.
    body: bytes = etree.tostring(request, encoding="UTF-8", xml_declaration=False)
    return XML_DECLARATION + body


# --- functions --------------------------------------------------------------------------------

def get_api_session(location_id: str | None = None) -> etree._Element:
    """``<getAPISession/>``, optionally for an entity."""
    el = etree.Element("getAPISession")
    if location_id is not None:
        _sub(el, "locationid", location_id)
    return el


def read_by_query(obj: str, fields: Sequence[str], query: str, page_size: int) -> etree._Element:
    """``<readByQuery>``: object, fields, query, pagesize, returnFormat."""
    el = etree.Element("readByQuery")
    _sub(el, "object", obj)
    _sub(el, "fields", ",".join(fields) or "*")
    _sub(el, "query", query)
    _sub(el, "pagesize", str(page_size))
    _sub(el, "returnFormat", "xml")
    return el


def read_more(result_id: str) -> etree._Element:
    """``<readMore><resultId>…</resultId></readMore>`` (resultId pins the result set)."""
    el = etree.Element("readMore")
    _sub(el, "resultId", result_id)
    return el


def read(obj: str, keys: Iterable[object], fields: Sequence[str], *, by_name: bool = False) -> etree._Element:
    """``<read>`` by RECORDNO or ``<readByName>`` by object ID."""
    el = etree.Element("readByName" if by_name else "read")
    _sub(el, "object", obj)
    _sub(el, "keys", ",".join(str(k) for k in keys))
    _sub(el, "fields", ",".join(fields) or "*")
    _sub(el, "returnFormat", "xml")
    return el


def query(
    obj: str,
    fields: Sequence[str],
    filter: Filter | None,
    order_by: Sequence[tuple[str, str]],
    page_size: int,
    offset: int,
    *,
    case_insensitive: bool = False,
    show_private: bool = False,
) -> etree._Element:
    """``<query>``: object, select, filter, orderby, options, pagesize, offset."""
    el = etree.Element("query")
    _sub(el, "object", obj)
    select = _sub(el, "select")
    for name in fields:
        _sub(select, "field", name)
    if filter is not None:
        _sub(el, "filter").append(filter.to_element())
    if order_by:
        orderby = _sub(el, "orderby")
        for name, direction in order_by:
            direction = direction.lower()
            if direction not in ("asc", "ascending", "desc", "descending"):
                raise ValueError(f"order direction must be asc or desc, not {direction!r}")
            order = _sub(orderby, "order")
            _sub(order, "field", name)
            _sub(order, "ascending" if direction.startswith("asc") else "descending")
    if case_insensitive or show_private:
        options = _sub(el, "options")
        if case_insensitive:
            _sub(options, "caseinsensitive", "true")
        if show_private:
            _sub(options, "showprivate", "true")
    _sub(el, "pagesize", str(page_size))
    _sub(el, "offset", str(offset))
    return el


def get_user_permissions(user_id: str) -> etree._Element:
    """``<getUserPermissions><userId>…</userId></getUserPermissions>``."""
    el = etree.Element("getUserPermissions")
    _sub(el, "userId", user_id)
    return el


def _append_value(parent: etree._Element, tag: str, value: object) -> None:
    if isinstance(value, Mapping):
        child = _sub(parent, tag)
        for key, inner in value.items():
            _append_value(child, str(key), inner)
    elif isinstance(value, (list, tuple)):
        # Repeated elements, e.g. USERLOCATIONS/LOCATIONID (replaced wholesale by Intacct).
        for item in value:
            _append_value(parent, tag, item)
    elif value is None:
        _sub(parent, tag)
    elif isinstance(value, bool):
        _sub(parent, tag, "true" if value else "false")
    else:
        _sub(parent, tag, str(value))


def update(obj: str, values: Mapping[str, object]) -> etree._Element:
    """``<update><OBJ>…fields…</OBJ></update>``; nested mappings become nested elements."""
    if not values:
        raise ValueError("update needs at least one field")
    el = etree.Element("update")
    record = _sub(el, obj)
    for key, value in values.items():
        _append_value(record, str(key), value)
    return el


def get_list(
    obj: str,
    start: int,
    max_items: int,
    fields: Sequence[str] | None,
    filters: Sequence[tuple[str, str, object]] | None,
    sorts: Sequence[tuple[str, str]] | None = None,
) -> etree._Element:
    """Legacy 2.1 ``<get_list>``: filter expressions (ANDed), sorts, fields."""
    el = etree.Element("get_list")
    el.set("object", obj)
    el.set("maxitems", str(max_items))
    el.set("start", str(start))
    el.set("showprivate", "false")
    if filters:
        filter_el = _sub(el, "filter")
        target = _sub(filter_el, "logical") if len(filters) > 1 else filter_el
        if len(filters) > 1:
            target.set("logical_operator", "and")
        for field_name, operator, value in filters:
            expression = _sub(target, "expression")
            _sub(expression, "field", field_name)
            _sub(expression, "operator", operator)
            _sub(expression, "value", "" if value is None else str(value))
    if sorts:
        sorts_el = _sub(el, "sorts")
        for field_name, direction in sorts:
            sort = _sub(sorts_el, "sortfield", field_name)
            sort.set("order", "desc" if direction.lower().startswith("desc") else "asc")
    if fields:
        fields_el = _sub(el, "fields")
        for name in fields:
            _sub(fields_el, "field", name)
    return el
