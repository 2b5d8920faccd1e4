"""The simulated REST API: the query service and the object endpoints over the same records as the XML gateway.

Every call: bearer token -> company checks (subscription, IP filter, the app's sender authorised, user active)
-> the company's concurrency limit (the same tickets as the XML gateway: one company, one limit) -> injected
faults (the same per-company faults) -> the call -> one API transaction counted per successful call.
Answers are ``{"ia::result": …, "ia::meta": …}``; errors ``{"ia::result": {"ia::error": …}}`` (see
docs/protocol-choices.md, "REST API", for what is published and what is ours).
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from django.db.models import F
from django.http import HttpRequest, HttpResponse

from simulator import company_rules, inflight, metering
from simulator.faults import MAX_DELAY_MS, TERMINAL_KINDS, draw_faults
from simulator.filters import FilterError, Node, check_fields
from simulator.gateway import GZIP_LEVEL, UPDATABLE, cdn_error_page, dropped_response, ip_allowed
from simulator.latency import active_profile
from simulator.models import CompanyLoad, OAuthGrant, SenderAuthorization
from simulator.oauth import grant_of_access_token
from simulator.records import company_tz, get_record, modify_record
from simulator.rest_objects import REST_OBJECTS, RestObject, flat_record, from_json_value, nested_record, rest_object
from simulator.selection import Selection
from simulator.services import effective_permissions

DEFAULT_SIZE = 100
MAX_SIZE = 4000
LIST_SIZE = 100
RETRY_AFTER_SECONDS = 1
JSON_TYPE = "application/json"


# --- answers ----------------------------------------------------------------------------------------
def _json(body: object, status: int = 200) -> HttpResponse:
    return HttpResponse(json.dumps(body, separators=(",", ":")), status=status, content_type=JSON_TYPE)


def support_id() -> str:
    return secrets.token_urlsafe(18)


def error_response(status: int, code: str, message: str, *, error_id: str = "", message_id: str = "",
                   details: list[dict[str, str]] | None = None) -> HttpResponse:
    """An error in the documented shape (ia::result.ia::error with code, message, errorId, additionalInfo)."""
    error: dict[str, object] = {"code": code, "message": message}
    if error_id:
        error["errorId"] = error_id
    if message_id:
        error["additionalInfo"] = {"messageId": message_id, "placeholders": {}, "propertySet": {}}
    if details:
        error["details"] = details
    error["supportId"] = support_id()
    return _json({"ia::result": {"ia::error": error},
                  "ia::meta": {"totalCount": 1, "totalSuccess": 0, "totalError": 1}}, status)


def token_invalid() -> HttpResponse:
    # Code, errorId and messageId as integrators captured them from Intacct (docs/protocol-choices.md).
    response = error_response(401, "tokenInvalid", "Token is not valid", error_id="REST-2102",
                              message_id="IA.TOKEN_IS_INVALID")
    response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def _forbidden(message: str, code: str = "permissionDenied") -> HttpResponse:
    return error_response(403, code, message)


def _not_found(path: str) -> HttpResponse:
    return error_response(404, "notFound", f"Object '{path}' was not found")


def _bad_request(message: str) -> HttpResponse:
    return error_response(400, "invalidRequest", message)


def rate_limited() -> HttpResponse:
    response = error_response(429, "tooManyRequests", "Too many concurrent requests for this company")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _fault(fault: dict[str, Any]) -> HttpResponse:
    kind = fault["kind"]
    if kind == "http429":
        return rate_limited()
    if kind == "html_error":
        return cdn_error_page(fault.get("status", 503))
    if kind == "http524":
        return HttpResponse("<!DOCTYPE html><html><head><title>524: A timeout occurred</title></head>"
                            "<body><h1>Error 524</h1></body></html>", status=524, content_type="text/html")
    status = fault.get("status", 503)
    return HttpResponse(f"{status} Server Error\n", status=status, content_type="text/plain; charset=UTF-8")


# --- authentication and the company -----------------------------------------------------------------
def _bearer(request: HttpRequest) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _company_refusal(request: HttpRequest, grant: OAuthGrant) -> HttpResponse | None:
    company = grant.company
    if not company.web_services_subscribed:
        return _forbidden("This company is not subscribed to Web Services", code="notSubscribed")
    address = request.META.get("REMOTE_ADDR", "")
    if company.ip_filter_enabled and not ip_allowed(company, address):
        return _forbidden(f"The IP address {address} is not allowed for this company", code="ipNotAllowed")
    sender = grant.app.sender_id
    auth = SenderAuthorization.objects.filter(company=company, sender_id=sender, active=True).first()
    if auth is None or auth.sender_id != sender:
        return _forbidden(f"The sender ID '{sender}' is not authorized for this company", code="senderNotAuthorized")
    if grant.user.status != "active":
        return token_invalid()
    return None


def api_call(request: HttpRequest, handler: Callable[[OAuthGrant], HttpResponse]) -> HttpResponse:
    """Run one REST call under the same checks, limit, faults and metering as the XML gateway."""
    started = time.perf_counter()
    grant = grant_of_access_token(_bearer(request))
    if grant is None:
        return token_invalid()
    refusal = _company_refusal(request, grant)
    if refusal is not None:
        return refusal
    company = grant.company
    ticket = inflight.try_enter(company.company_id, company.concurrency_limit, wait=company.concurrency_queue_seconds)
    if ticket is None:
        return rate_limited()
    try:
        hits = {f["kind"]: f for f in draw_faults(company, uses_session=True)}
        if "expire_session" in hits:
            # The REST counterpart of an expired session: this access token is refused once.
            return token_invalid()
        if "slow" in hits:
            time.sleep(min(max(0, int(hits["slow"]["delay_ms"])), MAX_DELAY_MS) / 1000)
        for kind in TERMINAL_KINDS:
            if kind in hits:
                return _fault(hits[kind])
        if "offline" in hits:
            return error_response(503, "serviceUnavailable", "The Service is Temporarily Off-line")
        admitted = time.perf_counter()
        response = handler(grant)
        if response.status_code == 200:
            metering.count_transactions(company, 1)
            _wait_for_latency(company.company_id, request, response, time.perf_counter() - admitted)
        if "malformed" in hits:
            return HttpResponse(response.content[: max(20, len(response.content) // 2)], content_type=JSON_TYPE)
        if "drop" in hits:
            return dropped_response(request, response.content.decode())
        return _compressed(request, response, started)
    finally:
        inflight.leave(company.company_id, ticket)


def _wait_for_latency(company_id: str, request: HttpRequest, response: HttpResponse, spent: float) -> None:
    """With a latency profile, hold the company's slot until the answer has taken the profile's time (as the
    XML gateway does): the request's records count as one result of its object."""
    profile = active_profile()
    results = getattr(response, "simulated_results", None)
    if profile is None or not results:
        return
    target = profile.seconds(company_id, request.path.encode() + b"\n" + request.body, results)
    if target <= 0:
        return
    CompanyLoad.objects.filter(company_id=company_id.strip().upper()).update(
        latency_seconds=F("latency_seconds") + target)
    time.sleep(max(0.0, target - spent))


def _compressed(request: HttpRequest, response: HttpResponse, started: float) -> HttpResponse:
    if "gzip" in request.META.get("HTTP_ACCEPT_ENCODING", "").lower() and len(response.content) > 512:
        response.content = gzip.compress(response.content, compresslevel=GZIP_LEVEL)
        response["Content-Encoding"] = "gzip"
        response["Vary"] = "Accept-Encoding"
    response["X-Simulator-Time-Ms"] = f"{(time.perf_counter() - started) * 1000:.2f}"
    return response


def _read_refused(grant: OAuthGrant, robj: RestObject) -> HttpResponse | None:
    obj = robj.xml
    if not company_rules.application_subscribed(grant.company, obj.application):
        return _not_found(robj.path)  # an application the company does not subscribe to is not there
    if obj.name == "USERINFO":
        return None  # any active user may read users, as on the XML side
    if "View" not in effective_permissions(grant.user).get((obj.application, obj.policy), set()):
        return _forbidden(f"You do not have permission to read {robj.path}")
    return None


# --- query service ---------------------------------------------------------------------------------
_OPS = {"$eq": "eq", "$ne": "ne", "$lt": "lt", "$lte": "le", "$gt": "gt", "$gte": "ge", "$in": "in",
        "$notIn": "notin", "$between": "between", "$notBetween": "notbetween", "$contains": "like",
        "$notContains": "notlike", "$startsWith": "like", "$notStartsWith": "notlike", "$endsWith": "like",
        "$notEndsWith": "notlike"}


def _like(op: str, value: str) -> str:
    text = value.replace("%", "").replace("_", "")
    if op in ("$contains", "$notContains"):
        return f"%{text}%"
    if op in ("$startsWith", "$notStartsWith"):
        return f"{text}%"
    return f"%{text}"


def _condition(robj: RestObject, item: object, tz: Any) -> Node:
    if not isinstance(item, dict) or len(item) != 1:
        raise FilterError("each filter is one operator, e.g. {\"$eq\": {\"id\": \"X\"}}")
    op, operand = next(iter(item.items()))
    if op not in _OPS or not isinstance(operand, dict) or len(operand) != 1:
        raise FilterError(f"unknown filter operator {op!r}")
    name, value = next(iter(operand.items()))
    if name not in robj.fields:
        raise FilterError(f"unknown field '{name}' in object {robj.path}")
    xml_field = robj.fields[name]
    obj = robj.xml
    if op in ("$eq", "$ne") and value is None:
        return ["cmp", xml_field, "isnull" if op == "$eq" else "isnotnull", []]
    kind = _OPS[op]
    if kind in ("in", "notin", "between", "notbetween"):
        if not isinstance(value, list) or not value or (kind.endswith("between") and len(value) != 2):
            raise FilterError(f"{op} takes a list of values")
        values = [from_json_value(obj, xml_field, v, tz) for v in value]
        if kind == "notbetween":
            return ["not", ["cmp", xml_field, "between", values]]
        return ["cmp", xml_field, kind, values]
    text = from_json_value(obj, xml_field, value, tz)
    if kind in ("like", "notlike"):
        text = _like(op, text)
    return ["cmp", xml_field, kind, [text]]


_EXPR_TOKEN = re.compile(r"\s*(\d+|and|or|\(|\))", re.IGNORECASE)


def _combine(conditions: list[Node], expression: str) -> Node | None:
    """The filters joined by ``filterExpression``: "and", "or", or e.g. "1 or (2 and 3)" (1-based indices)."""
    if not conditions:
        return None
    word = (expression or "and").strip().lower()
    if word in ("and", "or"):
        return conditions[0] if len(conditions) == 1 else [word, conditions]
    tokens: list[str] = []
    pos = 0
    while pos < len(expression):
        match = _EXPR_TOKEN.match(expression, pos)
        if match is None:
            if expression[pos:].strip() == "":
                break
            raise FilterError(f"filterExpression cannot be read at '{expression[pos:pos + 10]}'")
        tokens.append(match.group(1).lower())
        pos = match.end()
    node, rest = _expr(tokens, conditions)
    if rest:
        raise FilterError("filterExpression has text after its end")
    return node


def _expr(tokens: list[str], conditions: list[Node]) -> tuple[Node, list[str]]:
    left, tokens = _term(tokens, conditions)
    while tokens and tokens[0] in ("and", "or"):
        op = tokens[0]
        right, tokens = _term(tokens[1:], conditions)
        left = [op, [left, right]]
    return left, tokens


def _term(tokens: list[str], conditions: list[Node]) -> tuple[Node, list[str]]:
    if not tokens:
        raise FilterError("filterExpression ends too early")
    head = tokens[0]
    if head == "(":
        node, rest = _expr(tokens[1:], conditions)
        if not rest or rest[0] != ")":
            raise FilterError("filterExpression misses a ')'")
        return node, rest[1:]
    if head.isdigit() and 1 <= int(head) <= len(conditions):
        return conditions[int(head) - 1], tokens[1:]
    raise FilterError(f"filterExpression names no filter '{head}'")


def _int(value: object, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError
    return int(value)


def query(request: HttpRequest) -> HttpResponse:
    """POST /ia/api/v1/services/core/query."""
    if request.method != "POST":
        return error_response(405, "methodNotAllowed", "Use POST")
    # The token is checked before the payload is read, so an unauthenticated caller learns nothing.
    return api_call(request, lambda grant: _run_query(grant, request.body))


def _run_query(grant: OAuthGrant, raw: bytes) -> HttpResponse:
    try:
        body = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError):
        return _bad_request("The request payload is not valid JSON")
    if not isinstance(body, dict):
        return _bad_request("The request payload must be a JSON object")
    path = str(body.get("object") or "")
    robj = rest_object(path)
    if robj is None:
        return _not_found(path)
    refused = _read_refused(grant, robj)
    if refused is not None:
        return refused
    fields = body.get("fields")
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        return _bad_request("fields must be a non-empty list of field names")
    unknown = [f for f in fields if f != "href" and f not in robj.fields]
    if unknown:
        return _bad_request(f"Unknown field(s) {', '.join(unknown)} in object {robj.path}")
    try:
        start = _int(body.get("start"), 1)
        size = _int(body.get("size"), DEFAULT_SIZE)
    except ValueError:
        return _bad_request("start and size must be whole numbers")
    if start < 1 or not 1 <= size <= MAX_SIZE:
        return _bad_request(f"start must be 1 or more and size between 1 and {MAX_SIZE}")
    tz = company_tz(grant.company)
    try:
        filters = body.get("filters") or []
        if not isinstance(filters, list):
            raise FilterError("filters must be a list")
        node = _combine([_condition(robj, f, tz) for f in filters], str(body.get("filterExpression") or "and"))
        check_fields(node, robj.xml)
    except (FilterError, ValueError) as exc:
        return _bad_request(f"Invalid filter: {exc}")
    order: list[tuple[str, bool]] = []
    for item in body.get("orderBy") or []:
        if not isinstance(item, dict) or len(item) != 1:
            return _bad_request("orderBy items are {\"field\": \"asc\" | \"desc\"}")
        name, direction = next(iter(item.items()))
        if name not in robj.fields or str(direction).lower() not in ("asc", "desc"):
            return _bad_request(f"Cannot order by {name!r} {direction!r}")
        order.append((robj.fields[name], str(direction).lower() == "asc"))
    xml_fields = [robj.fields[f] for f in fields if f != "href"]
    selection = Selection(grant.company, robj.xml, node, fields=xml_fields + [f for f, _ in order])
    total = selection.total()
    records = selection.page_by_offset(order, start - 1, size)
    end = start - 1 + len(records)
    meta = {
        "totalCount": total, "start": start, "pageSize": size,
        "next": end + 1 if end < total else None,
        "previous": max(1, start - size) if start > 1 else None,
    }
    rows = [flat_record(robj, fields, rec, tz) for rec in records]
    response = _json({"ia::result": rows, "ia::meta": meta})
    response.simulated_results = [(robj.xml_name, len(rows))]  # type: ignore[attr-defined]
    return response


# --- object endpoints --------------------------------------------------------------------------------
def objects(request: HttpRequest, object_path: str) -> HttpResponse:
    """GET /ia/api/v1/objects/{path} (references), GET and PATCH /objects/{path}/{key} (one object)."""
    if request.method not in ("GET", "PATCH"):
        return error_response(405, "methodNotAllowed", "The simulator answers GET and PATCH on objects")
    path = object_path.strip("/")
    robj, key = rest_object(path), None
    if robj is None:
        parent, _, key = path.rpartition("/")
        robj = rest_object(parent)
    if robj is None:
        return api_call(request, lambda grant: _not_found(path))
    if request.method == "PATCH":
        if not key:
            return error_response(405, "methodNotAllowed", "PATCH needs an object's key")
        return api_call(request, lambda grant: _patch(grant, robj, key, request.body))
    return api_call(request, lambda grant: _get(grant, robj, key) if key else _list(grant, robj))


def _list(grant: OAuthGrant, robj: RestObject) -> HttpResponse:
    refused = _read_refused(grant, robj)
    if refused is not None:
        return refused
    selection = Selection(grant.company, robj.xml, None, fields=[robj.fields["id"]])
    total = selection.total()
    records = selection.page_by_offset([], 0, LIST_SIZE)
    rows = [{"key": r["RECORDNO"], "id": r.get(robj.fields["id"], ""), "href": robj.href(r["RECORDNO"])}
            for r in records]
    meta = {"totalCount": total, "start": 1, "pageSize": LIST_SIZE,
            "next": len(records) + 1 if len(records) < total else None, "previous": None}
    return _json({"ia::result": rows, "ia::meta": meta})


def _get(grant: OAuthGrant, robj: RestObject, key: str) -> HttpResponse:
    refused = _read_refused(grant, robj)
    if refused is not None:
        return refused
    record = get_record(grant.company, robj.xml_name, int(key)) if key.isdigit() else None
    if record is None:
        return error_response(404, "notFound", f"{robj.path} with key '{key}' was not found")
    return _json({"ia::result": nested_record(robj, record, company_tz(grant.company)),
                  "ia::meta": {"totalCount": 1, "totalSuccess": 1, "totalError": 0}})


def _flat(body: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested JSON object as dotted names (``{"department": {"id": "D1"}}`` -> ``department.id``)."""
    out: dict[str, Any] = {}
    for name, value in body.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, dict):
            out.update(_flat(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _patch(grant: OAuthGrant, robj: RestObject, key: str, raw: bytes) -> HttpResponse:
    """PATCH /objects/{path}/{key}: the given fields set to absolute values, by the XML gateway's update rules
    (what may change and to what; who may: admin privileges Full for users, Employees Edit for employees)."""
    obj = robj.xml
    refused = _read_refused(grant, robj)
    if refused is not None:
        return refused
    writable = UPDATABLE.get(obj.name)
    if writable is None:
        return error_response(405, "methodNotAllowed", f"The simulator does not update {robj.path}")
    if company_rules.write_refused(grant.user, obj.name) or (
            obj.name == "EMPLOYEE" and "Edit" not in effective_permissions(grant.user).get(
                (obj.application, obj.policy), set())):
        return _forbidden(f"You do not have permission to update {robj.path}")
    try:
        body = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError):
        return _bad_request("The request payload is not valid JSON")
    if not isinstance(body, dict) or not body:
        return _bad_request("The request payload must be a JSON object with the fields to change")
    record = get_record(grant.company, robj.xml_name, int(key)) if key.isdigit() else None
    if record is None:
        return error_response(404, "notFound", f"{robj.path} with key '{key}' was not found")
    tz = company_tz(grant.company)
    changes: dict[str, str] = {}
    for name, value in _flat(body).items():
        if name in ("key", "href"):
            continue
        xml_field = robj.fields.get(name)
        validator = writable.get(xml_field or "")
        if xml_field is None or validator is None:
            return _bad_request(f"Field '{name}' cannot be updated on {robj.path}")
        try:
            clean = validator(from_json_value(obj, xml_field, value, tz))
        except ValueError:
            clean = None
        if clean is None:
            return _bad_request(f"Invalid value '{value}' for field '{name}'")
        changes[xml_field] = clean
    updated = modify_record(grant.company, robj.xml_name, int(key), changes) if changes else record
    result = {"key": updated["RECORDNO"], "id": updated.get(robj.fields["id"], ""), "href": robj.href(key)}
    return _json({"ia::result": result, "ia::meta": {"totalCount": 1, "totalSuccess": 1, "totalError": 0}})


__all__ = ["REST_OBJECTS", "api_call", "error_response", "objects", "query", "rate_limited", "token_invalid"]
