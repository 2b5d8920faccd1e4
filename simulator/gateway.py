"""The simulated XML gateway: parse, check in the order of docs/protocol-choices.md, run, answer.

Check order: well-formed 3.0 request -> sender credentials -> company exists (400 GW-0011) ->
concurrency (429 GW-0010) -> [injected faults] -> per operation: subscription -> IP filter ->
sender authorisation -> user login or session -> per function: uniqueid, permission, execution.
"""

from __future__ import annotations

import gzip
import ipaddress
import os
import re
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from lxml import etree

from simulator import company_rules, inflight, metering
from simulator.faults import MAX_DELAY_MS, TERMINAL_KINDS, draw_faults
from simulator.filters import (
    FilterError,
    Node,
    apply_codes,
    check_fields,
    parse_get_list_filter,
    parse_query_filter,
    parse_readbyquery,
    take_rownum,
)
from simulator.models import (
    Entity,
    ExecutedControlId,
    ResultCursor,
    Sender,
    SenderAuthorization,
    SimCompany,
    SimSession,
    SimUser,
)
from simulator.records import (
    OBJECTS,
    ObjectDef,
    delete_record,
    modify_record,
    object_def,
    parse_ts,
    stored_records,
)
from simulator.selection import Selection
from simulator.services import effective_permissions, password_matches, settings_sender
from simulator.xmlio import (
    ErrorTuple,
    XMLParseError,
    compile_layout,
    el,
    errormessage,
    esc,
    parse_xml,
    render_records,
)

XML_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
# Fast compression: the gateway's own time matters more to the benchmarks than a few bytes.
GZIP_LEVEL = 1
_PRETTY_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=True)
CURSOR_LIFETIME = timedelta(minutes=30)
GENERIC_FUNCTIONS = {
    "create",
    "update",
    "delete",
    "read",
    "readByName",
    "readByQuery",
    "readMore",
    "query",
    "lookup",
    "inspect",
    "getAPISession",
    "getUserPermissions",
    "getDimensions",
    "getDimensionRestrictedData",
    "getDimensionRelationships",
    "getFinancialSetup",
    "installApp",
    "readReport",
    "readView",
    "readRelated",
    "readEntityDetails",
    "getDimensionAutofillDetails",
    "consolidate",
    "getUserPermissionsForObject",
    "get_list",
}
LEGACY_FUNCTION = re.compile(r"^(get|create|update|delete|record|reverse|approve|reclass|void|get_list)_?\w*$")
ROLLED_BACK = (
    "XL03000009",
    "The entire transaction in this operation has been rolled back due to an error.",
    "",
    "",
)


class SchemaError(ValueError):
    """The XML is well-formed but is not a 3.0 request."""


class FunctionError(Exception):
    """A result-level failure."""

    def __init__(self, *errors: ErrorTuple, trailer: str = "") -> None:
        super().__init__(errors[0][2] if errors else "")
        self.errors = list(errors)
        # XML the gateway writes after the errormessage (query's empty <data/> for an unknown object).
        self.trailer = trailer


class Http401(Exception):
    """A wrong login for a company that answers it with HTTP 401 XMLGW_JPP0002."""


@dataclass
class Control:
    senderid: str = ""
    password: str = ""
    controlid: str = ""
    uniqueid: str = "false"
    dtdversion: str = "3.0"
    policyid: str = ""
    includewhitespace: bool = False

    @property
    def unique(self) -> bool:
        return self.uniqueid.strip().lower() == "true"


@dataclass
class Operation:
    transaction: bool
    auth_kind: str
    userid: str = ""
    companyid: str = ""
    password: str = ""
    locationid: str | None = None
    sessionid: str = ""
    functions: list[tuple[str, Any]] = field(default_factory=list)


@dataclass
class Context:
    """What a function needs: who is calling, for which company, through which request."""

    request: HttpRequest
    control: Control
    company: SimCompany
    user: SimUser
    entity: Entity | None
    session: SimSession | None
    offline: bool = False
    _perms: dict[tuple[str, str], set[str]] | None = None

    @property
    def perms(self) -> dict[tuple[str, str], set[str]]:
        if self._perms is None:
            self._perms = effective_permissions(self.user)
        return self._perms


# --- Parsing ---------------------------------------------------------------------------------
def _text(node: Any, tag: str) -> str | None:
    child = node.find(tag)
    return None if child is None else (child.text or "")


def read_request(root: Any, control: Control) -> list[Operation]:
    """Fill ``control`` and return the operations; SchemaError if the tree is not a 3.0 request."""
    if root.tag != "request":
        raise SchemaError(f"Root element must be <request>, not <{root.tag}>")
    ctrl = root.find("control")
    if ctrl is None:
        raise SchemaError("Element <control> is missing")
    control.senderid = _text(ctrl, "senderid") or ""
    control.password = _text(ctrl, "password") or ""
    control.controlid = _text(ctrl, "controlid") or ""
    # Documented default: true (each function controlid is checked against completed ones); SDKs send false.
    control.uniqueid = (_text(ctrl, "uniqueid") or "true") if ctrl.find("uniqueid") is not None else "true"
    control.dtdversion = _text(ctrl, "dtdversion") or "3.0"
    control.policyid = (_text(ctrl, "policyid") or "").strip()
    # The schema's default is true; every SDK sends false. Only an explicit true pretty-prints.
    control.includewhitespace = (_text(ctrl, "includewhitespace") or "").strip().lower() == "true"
    if ctrl.find("senderid") is None or ctrl.find("controlid") is None:
        raise SchemaError("Elements <senderid> and <controlid> are required in <control>")
    if not 1 <= len(control.controlid) <= 256:
        raise SchemaError("<controlid> must be 1 to 256 characters")
    if control.dtdversion.strip() not in ("3.0", "2.1"):
        raise SchemaError(f"Unsupported dtdversion {control.dtdversion!r}")
    operations = []
    for op_el in root.findall("operation"):
        transactional = (op_el.get("transaction") or "false").strip().lower() == "true"
        auth = op_el.find("authentication")
        if auth is None:
            raise SchemaError("Element <authentication> is missing in <operation>")
        login, session = auth.find("login"), auth.find("sessionid")
        if login is not None:
            for required in ("userid", "companyid", "password"):
                if login.find(required) is None:
                    raise SchemaError(f"Element <{required}> is missing in <login>")
            op = Operation(
                transactional,
                "login",
                userid=_text(login, "userid") or "",
                companyid=_text(login, "companyid") or "",
                password=_text(login, "password") or "",
                locationid=_text(login, "locationid"),
            )
        elif session is not None:
            op = Operation(transactional, "session", sessionid=(session.text or "").strip())
        else:
            raise SchemaError("<authentication> needs <login> or <sessionid>")
        for content in op_el.findall("content"):
            for fn in content:
                if not isinstance(fn.tag, str):
                    continue
                if fn.tag != "function":
                    raise SchemaError(f"Unexpected element <{fn.tag}> in <content>")
                controlid = fn.get("controlid")
                if controlid is None or len(controlid) > 256:
                    raise SchemaError("Attribute controlid is required on <function> (0-256 characters)")
                children = [c for c in fn if isinstance(c.tag, str)]
                if len(children) != 1:
                    raise SchemaError("<function> must contain exactly one function element")
                name = children[0].tag
                if name not in GENERIC_FUNCTIONS and not LEGACY_FUNCTION.match(name):
                    raise SchemaError(f"Unknown function <{name}>")
                op.functions.append((controlid, children[0]))
        operations.append(op)
    if not operations:
        raise SchemaError("Element <operation> is missing")
    return operations


# --- Envelopes -------------------------------------------------------------------------------
def control_xml(control: Control, status: str) -> str:
    return (
        f"<control>{el('status', status)}{el('senderid', control.senderid)}"
        f"{el('controlid', control.controlid)}{el('uniqueid', control.uniqueid)}"
        f"{el('dtdversion', control.dtdversion)}</control>"
    )


def xml_response(body: str, status: int = 200, content_type: str = "text/xml; charset=UTF-8") -> HttpResponse:
    return HttpResponse(XML_HEADER + body, status=status, content_type=content_type)


# The real 401 is served by the gateway's front end with this content type.
BARE_CONTENT_TYPE = "text/xml;charset=ISO-8859-1"


def bare_failure(errorno: str, description: str, status: int) -> HttpResponse:
    """A front-end rejection (HTTP 400/401): a control block with only its status, errorno + description."""
    return xml_response(
        f"<response><control>{el('status', 'failure')}</control>"
        f"{errormessage([(errorno, description, '', '')], gateway=True)}</response>",
        status,
        BARE_CONTENT_TYPE if status == 401 else "text/xml; charset=UTF-8",
    )


def control_failure(
    control: Control, errors: list[ErrorTuple], *, status: int = 200, gateway: bool = False
) -> HttpResponse:
    return xml_response(
        f"<response>{control_xml(control, 'failure')}{errormessage(errors, gateway)}</response>", status
    )


def gateway_failure(control: Control, errorno: str, description: str, status: int) -> HttpResponse:
    return control_failure(control, [(errorno, description, "", "")], status=status, gateway=True)


def rate_limited(control: Control) -> HttpResponse:
    return gateway_failure(
        control, "GW-0010", "Rate limit exceeded: too many concurrent requests for this company.", 429
    )


def _stamp(moment: datetime) -> str:
    """Session timestamps are UTC (+00:00) whatever the company's time zone, as the gateway answers them."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


# --- Entry point -----------------------------------------------------------------------------
def handle(request: HttpRequest) -> HttpResponse:
    """Answer one gateway POST; the simulator's own time goes in X-Simulator-Time-Ms."""
    started = time.perf_counter()
    control = Control()
    response, slept = _handle(request, control)
    if not response.streaming and response.content:
        if control.includewhitespace and response["Content-Type"].startswith("text/xml"):
            response.content = _pretty(response.content)
        if "gzip" in request.META.get("HTTP_ACCEPT_ENCODING", "").lower():
            response.content = gzip.compress(response.content, compresslevel=GZIP_LEVEL)
            response["Content-Encoding"] = "gzip"
            response["Vary"] = "Accept-Encoding"
    elapsed = (time.perf_counter() - started - slept) * 1000
    response["X-Simulator-Time-Ms"] = f"{elapsed:.2f}"
    response["X-Simulator-Process"] = str(os.getpid())  # which server process answered (multi-process tests)
    return response


def _pretty(content: bytes) -> bytes:
    """The same document indented (includewhitespace=true); a truncated document is left as it is."""
    try:
        root = etree.fromstring(content, _PRETTY_PARSER)
    except etree.XMLSyntaxError:
        return content
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _handle(request: HttpRequest, control: Control) -> tuple[HttpResponse, float]:
    try:
        operations = read_request(parse_xml(request.body), control)
    except (XMLParseError, SchemaError) as exc:
        return control_failure(
            control, [("XL03000003", "XML Parse schema error", f"XML Parse schema error: {exc}", "")]
        ), 0.0
    if not _sender_valid(control):
        return control_failure(control, [("XL03000006", "", "Incorrect Intacct XML Partner ID or password.", "")]), 0.0
    if control.policyid:
        # The simulator has no asynchronous transport policies: any policyid names an unknown one.
        return control_failure(
            control, [("XL03000006", "", f"{control.policyid} is not a valid transport policy.", "")]
        ), 0.0
    first = operations[0]
    session = None
    if first.auth_kind == "login":
        company = SimCompany.objects.filter(company_id__iexact=first.companyid).first()
        if company is None:
            request_id = secrets.token_hex(8)
            return bare_failure("GW-0011", f"Invalid Request [Request ID: {request_id}]", 400), 0.0
    else:
        session = (
            SimSession.objects.select_related("company", "user", "entity").filter(session_id=first.sessionid).first()
        )
        company = session.company if session else None
    if company is None:
        # An unknown session names no company: nothing to count or fault, every operation fails.
        body = "".join(_auth_failure_xml(op, None, SESSION_REFUSED_ERROR) for op in operations)
        return xml_response(f"<response>{control_xml(control, 'success')}{body}</response>"), 0.0
    if company.demo_expired:
        # Answered before anything else about the company, with an empty sender and control id.
        return xml_response(
            "<response><control><status>failure</status><senderid></senderid><controlid></controlid></control>"
            + errormessage([("PL04000055", "", "This company is a demo company and has expired.", "")])
            + "</response>"
        ), 0.0
    queued_from = time.perf_counter()
    ticket = inflight.try_enter(company.company_id, company.concurrency_limit, wait=company.concurrency_queue_seconds)
    queued = time.perf_counter() - queued_from if company.concurrency_queue_seconds else 0.0
    if ticket is None:
        return rate_limited(control), queued
    try:
        admitted = time.perf_counter()
        response, slept = _with_company(request, control, operations, company, session)
        spent = time.perf_counter() - admitted
        return response, queued + slept + metering.after_answer(company, request.body, response, spent)
    finally:
        inflight.leave(company.company_id, ticket)


def _with_company(
    request: HttpRequest,
    control: Control,
    operations: list[Operation],
    company: SimCompany,
    session: SimSession | None,
) -> tuple[HttpResponse, float]:
    uses_session = any(op.auth_kind == "session" for op in operations)
    hits = {f["kind"]: f for f in draw_faults(company, uses_session=uses_session)}
    slept = 0.0
    if "expire_session" in hits:
        past = timezone.now() - timedelta(seconds=1)
        SimSession.objects.filter(company=company).update(expires_at=past)
        if session is not None:
            session.expires_at = past
    if "slow" in hits:
        slept = min(max(0, int(hits["slow"]["delay_ms"])), MAX_DELAY_MS) / 1000  # armed before the bound existed
        time.sleep(slept)
    for kind in TERMINAL_KINDS:
        if kind in hits:
            return _fault_response(control, hits[kind]), slept
    try:
        body = "".join(_run_operation(request, control, op, company, session, "offline" in hits) for op in operations)
    except Http401:
        return bare_failure("XMLGW_JPP0002", "Sign-in information is incorrect. Please check your request.", 401), slept
    text = XML_HEADER + f"<response>{control_xml(control, 'success')}{body}</response>"
    if "malformed" in hits:
        return HttpResponse(text[: max(40, len(text) // 2)], content_type="text/xml; charset=UTF-8"), slept
    if "drop" in hits:
        return dropped_response(request, text), slept
    return HttpResponse(text, content_type="text/xml; charset=UTF-8"), slept


def _fault_response(control: Control, fault: dict[str, Any]) -> HttpResponse:
    kind = fault["kind"]
    if kind == "http429":
        return rate_limited(control)
    if kind == "html_error":
        return cdn_error_page(fault.get("status", 503))
    if kind == "http524":
        return HttpResponse(
            "<!DOCTYPE html><html><head><title>524: A timeout occurred</title></head><body>"
            "<h1>Error 524</h1><p>A timeout occurred. The origin web server timed out "
            "responding to this request.</p></body></html>",
            status=524,
            content_type="text/html; charset=UTF-8",
        )
    status = fault.get("status", 503)
    reason = {
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
    }.get(status, "Server Error")
    return HttpResponse(f"{status} {reason}\n", status=status, content_type="text/plain; charset=UTF-8")


CDN_ERRORS = {
    403: ("Access denied", "You do not have access to this site. The site owner may have set restrictions."),
    503: ("Service temporarily unavailable", "The server is temporarily unable to service your request."),
    520: ("Web server is returning an unknown error", "There is an unknown connection issue between the CDN and "
          "the origin web server."),
}


def cdn_error_page(status: int) -> HttpResponse:
    """An HTML page from the CDN in front of the gateway, in Cloudflare's layout (title 'Error NNN')."""
    title, text = CDN_ERRORS.get(status, CDN_ERRORS[503])
    ray = secrets.token_hex(8)
    return HttpResponse(
        f"<!DOCTYPE html>\n<html lang=\"en-US\"><head><title>api.intacct.com | {status}: {title}</title></head>"
        f"<body><div id=\"cf-error-details\"><h1><span>Error</span> <span>{status}</span></h1>"
        f"<h2>{title}</h2><p>{text}</p><p>Ray ID: <strong>{ray}</strong></p></div></body></html>\n",
        status=status,
        content_type="text/html; charset=UTF-8",
    )


class SimulatedConnectionDrop(ConnectionResetError):
    """Raised part-way through a body to drop the connection."""


def _socket_of(request: HttpRequest) -> Any:
    """The client socket under the WSGI server, when it can be found (gunicorn, runserver, live_server)."""
    sock = request.META.get("gunicorn.socket")
    if sock is not None:
        return sock
    stream: Any = request.META.get("wsgi.input")
    for _ in range(6):
        if stream is None or hasattr(stream, "shutdown"):
            return stream
        # Django's LimitedStream keeps only the bound read method of the buffered socket file.
        reader = getattr(stream, "_read", None)
        stream = (
            getattr(stream, "stream", None)
            or getattr(stream, "raw", None)
            or getattr(stream, "_sock", None)
            or getattr(reader, "__self__", None)
        )
    return None


def dropped_response(request: HttpRequest, text: str) -> StreamingHttpResponse:
    data = text.encode()
    sock = _socket_of(request)

    def body() -> Any:
        yield data[: len(data) // 3]
        if sock is None:
            # In-process callers (test client, httpx WSGI transport) see the body end early.
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        # Tell the WSGI server the connection is gone so it does not try to reuse it.
        raise SimulatedConnectionDrop("Simulated dropped connection")

    response = StreamingHttpResponse(body(), content_type="text/xml; charset=UTF-8")
    # The full length is announced so a client can tell the body ended early.
    response["Content-Length"] = str(len(data))
    return response


# --- Checks ----------------------------------------------------------------------------------
def _sender_valid(control: Control) -> bool:
    from django.conf import settings

    sender = Sender.objects.filter(sender_id=control.senderid).first()
    if sender is None and control.senderid and control.senderid == settings.INTACCT_SENDER_ID:
        sender = settings_sender()
    # Exact comparison because some databases compare text case-insensitively.
    return (
        sender is not None
        and sender.sender_id == control.senderid
        and password_matches(control.password, sender.password_hash)
    )


# Intacct publishes no wording for an expired or unknown session (docs/protocol-choices.md); this one is
# ours and deliberately unlike any phrase the client knows, so tests prove the client matches none.
SESSION_REFUSED_ERROR: ErrorTuple = (
    "XL03000006", "", "Your session is no longer active; start a new one.", "")
_WRONG_LOGIN: ErrorTuple = ("XL03000006", "", "Sign-in information is incorrect", "")


def _auth_failure_xml(op: Operation, company: SimCompany | None, error: ErrorTuple) -> str:
    userid = op.userid if op.auth_kind == "login" else ""
    companyid = op.companyid if op.auth_kind == "login" else (company.company_id if company else "")
    return (
        f"<operation><authentication>{el('status', 'failure')}{el('userid', userid)}"
        f"{el('companyid', companyid)}{el('locationid', op.locationid or '')}</authentication>"
        f"{errormessage([error])}</operation>"
    )


def ip_allowed(company: SimCompany, address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for allowed in company.allowed_ips or []:
        try:
            if ip in ipaddress.ip_network(str(allowed).strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def _company_checks(request: HttpRequest, control: Control, company: SimCompany) -> ErrorTuple | None:
    cid = company.company_id
    if not company.web_services_subscribed:
        return (
            "XL03000006",
            "Web Services not subscribed",
            "This company is not authorized for XML transactions. Please subscribe to the XML Gateway.",
            "Subscribe to Web Services in Company > Admin > Subscriptions.",
        )
    address = request.META.get("REMOTE_ADDR", "")
    if company.ip_filter_enabled and not ip_allowed(company, address):
        return (
            "XL03000006",
            "IP address not allowed",
            f"The IP address {address} is not allowed to access company ID '{cid}'.",
            "Add the address in Company > Setup > Company > Security > IP address filters.",
        )
    auth = SenderAuthorization.objects.filter(company=company, sender_id=control.senderid, active=True).first()
    if auth is None or auth.sender_id != control.senderid:
        return (
            "XL03000006",
            "Invalid Web Services Authorization",
            f"The sender ID '{control.senderid}' is not authorized to make Web Services requests to "
            f"company ID '{cid}'.",
            "Contact the company administrator to grant Web Services authorization to this sender ID.",
        )
    if auth.needs_login_for_api:
        return (
            "XL03000006",
            "Invalid Web Services Authorization",
            f"The sender ID '{control.senderid}' requires a user login for API requests to company ID '{cid}'.",
            'Turn off "Needs login for API" for the sender ID in Company > Setup > Company > Security > '
            "Web Services authorizations.",
        )
    return None


def _entity_for(company: SimCompany, user: SimUser, locationid: str | None) -> tuple[bool, Entity | None]:
    """(valid, entity) for a login's locationid: empty means top level."""
    if not locationid or not locationid.strip():
        return not company_rules.top_level_refused(user), None
    entity = Entity.objects.filter(company=company, entity_id=locationid.strip()).first()
    if entity is None:
        return False, None
    allowed = list(user.entities.all())
    return (not allowed or entity in allowed), entity


def _run_operation(
    request: HttpRequest,
    control: Control,
    op: Operation,
    company: SimCompany,
    session: SimSession | None,
    offline: bool = False,
) -> str:
    now = timezone.now()
    if op.auth_kind == "login" and op.companyid.lower() != company.company_id.lower():
        other = SimCompany.objects.filter(company_id__iexact=op.companyid).first()
        if other is None:
            return _auth_failure_xml(op, None, _WRONG_LOGIN)
        company = other
    elif op.auth_kind == "session" and (session is None or session.session_id != op.sessionid):
        session = (
            SimSession.objects.select_related("company", "user", "entity")
            .filter(session_id=op.sessionid, company=company)
            .first()
        )
        if session is None:
            return _auth_failure_xml(op, company, SESSION_REFUSED_ERROR)
    problem = _company_checks(request, control, company)
    if problem:
        return _auth_failure_xml(op, company, problem)
    entity: Entity | None
    if op.auth_kind == "login":
        user = SimUser.objects.filter(company=company, login_id__iexact=op.userid).first()
        if user is None or not password_matches(op.password, user.password_hash):
            if user is not None:
                company_rules.sign_in_failed(company, user)
            if company.login_failure_style == "http401":
                raise Http401()
            return _auth_failure_xml(op, company, _WRONG_LOGIN)
        if user.status == "inactive":
            return _auth_failure_xml(
                op,
                company,
                (
                    "XL03000006",
                    "",
                    f"Sign-in information is incorrect. The user '{user.login_id}' is inactive.",
                    "Ask an administrator to set the user's status to Active.",
                ),
            )
        if user.status == "locked out":
            return _auth_failure_xml(
                op,
                company,
                (
                    "XL03000006",
                    "",
                    f"Sign-in information is incorrect. The user '{user.login_id}' is locked out.",
                    "Ask an administrator to unlock the user.",
                ),
            )
        if user.status == "active":
            company_rules.sign_in_succeeded(user)
        valid, entity = _entity_for(company, user, op.locationid)
        if not valid:
            return _auth_failure_xml(
                op,
                company,
                (
                    "XL03000006",
                    "",
                    f"Invalid location ID '{op.locationid or ''}' for this company or user.",
                    "Check the entity ID.",
                ),
            )
        timeout = now + timedelta(seconds=company.session_lifetime_seconds)
        user.company = company
    else:
        assert session is not None
        user, entity = session.user, session.entity
        if session.expires_at <= now or user.status != "active":
            return _auth_failure_xml(op, company, SESSION_REFUSED_ERROR)
        timeout = now + timedelta(seconds=company.session_lifetime_seconds)
        # Sliding expiry: every call made before the timeout moves it forward.
        SimSession.objects.filter(pk=session.pk).update(expires_at=timeout)
        session.expires_at = timeout
        user.company = company
    auth = (
        f"<authentication>{el('status', 'success')}{el('userid', user.login_id)}"
        f"{el('companyid', company.company_id)}{el('locationid', entity.entity_id if entity else '')}"
        f"{el('sessiontimestamp', _stamp(now))}{el('sessiontimeout', _stamp(timeout))}"
        "</authentication>"
    )
    ctx = Context(request, control, company, user, entity, session, offline)
    return f"<operation>{auth}{_run_functions(ctx, op)}</operation>"


# --- Functions -------------------------------------------------------------------------------
def _result_xml(
    status: str, name: str, controlid: str, body: str = "", errors: list[ErrorTuple] | None = None, trailer: str = ""
) -> str:
    return (
        f"<result>{el('status', status)}{el('function', name)}{el('controlid', controlid)}{body}"
        f"{errormessage(errors) if errors else ''}{trailer}</result>"
    )


def _run_one(ctx: Context, controlid: str, element: Any) -> tuple[bool, str, list[ErrorTuple]]:
    """(ok, body, errors) of one function; its database changes are undone when it fails."""
    try:
        with transaction.atomic():
            if ctx.offline:
                raise FunctionError(
                    (
                        "XL03000012",
                        "Service unavailable",
                        "The Service is Temporarily Off-line",
                        "Please Try Again Later",
                    )
                )
            if (
                ctx.control.unique
                and ExecutedControlId.objects.filter(company=ctx.company, controlid=controlid).exists()
            ):
                raise FunctionError(
                    (
                        "XL03000011",
                        "Duplicate request",
                        f"A function with control ID '{controlid}' has already been executed for this company.",
                        "",
                    )
                )
            handler = HANDLERS.get(element.tag, _unsupported)
            body = handler(ctx, element)
            if ctx.control.unique:
                ExecutedControlId.objects.create(company=ctx.company, controlid=controlid)
        return True, body, []
    except FunctionError as exc:
        return False, exc.trailer, exc.errors


def _run_functions(ctx: Context, op: Operation) -> str:
    if not op.transaction:
        parts = []
        for controlid, element in op.functions:
            ok, body, errors = _run_one(ctx, controlid, element)
            if ok:
                parts.append(_result_xml("success", element.tag, controlid, body))
            else:
                parts.append(_result_xml("failure", element.tag, controlid, "", errors, trailer=body))
        return "".join(parts)
    outcomes: list[tuple[bool, str, list[ErrorTuple]]] = []
    with transaction.atomic():
        for controlid, element in op.functions:
            outcomes.append(_run_one(ctx, controlid, element))
            if not outcomes[-1][0]:
                transaction.set_rollback(True)
                break
    failed = len(outcomes) - 1 if outcomes and not outcomes[-1][0] else None
    if failed is None:
        return "".join(
            _result_xml("success", e.tag, cid, body)
            for (cid, e), (_, body, _) in zip(op.functions, outcomes, strict=True)
        )
    parts = []
    for index, (controlid, element) in enumerate(op.functions):
        if index == failed:
            parts.append(_result_xml("failure", element.tag, controlid, "", outcomes[index][2] + [ROLLED_BACK]))
        else:
            parts.append(_result_xml("aborted", element.tag, controlid, "", [ROLLED_BACK]))
    return "".join(parts)


def _unsupported(ctx: Context, element: Any) -> str:
    raise FunctionError(
        (
            "DL02000001",
            "There was an error processing the request.",
            f"The function {element.tag} is not available in the simulator.",
            "",
        )
    )


def _object(name: str | None, *, generic_only: bool = True) -> ObjectDef:
    obj = object_def(name or "", generic_only=generic_only)
    if obj is None:
        raise _unknown_object((name or "").strip())
    return obj


def _unknown_object(name: str) -> FunctionError:
    return FunctionError(("Query Failed", "", f"Object definition {name} not found", ""))


def _permission_denied(operation: str, object_name: str) -> FunctionError:
    return FunctionError(
        (
            "PL04000005",
            "",
            f"You do not have permission for API operation {operation} on objects of type {object_name.lower()}",
            "",
        )
    )


def _require_read(ctx: Context, obj: ObjectDef, operation: str, object_name: str | None = None) -> None:
    if not company_rules.application_subscribed(ctx.company, obj.application):
        # An object of an application the company does not subscribe to is not there at all.
        raise _unknown_object(obj.name)
    if obj.name in ("USERINFO", "USERROLES"):
        return  # any active user may read users and which roles they hold
    if "View" not in ctx.perms.get((obj.application, obj.policy), set()):
        raise _permission_denied(operation, object_name or obj.name)


def _query_failed(message: str) -> FunctionError:
    return FunctionError(("Query Failed", "", message, ""))


def _resolve_fields(obj: ObjectDef, names: list[str]) -> list[str]:
    if not names or names == ["*"]:
        return list(obj.star_fields)
    fields: list[str] = []
    for raw in names:
        name = raw.strip().upper()
        if name in obj.field_set:
            fields.append(name)
            continue
        nested = [f for f in obj.star_fields if f.startswith(name + ".")]
        if not name or not nested:
            raise _query_failed(f"Field '{raw.strip()}' not found in object {obj.name}")
        fields.extend(nested)
    return list(dict.fromkeys(fields))


def _pagesize(text: str | None, default: int, maximum: int) -> int:
    try:
        value = int((text or "").strip() or default)
    except ValueError:
        value = 0
    if not 1 <= value <= maximum:
        raise FunctionError(
            (
                "DL02000001",
                "There was an error processing the request.",
                f"pagesize must be between 1 and {maximum}",
                "",
            )
        )
    return value


def _new_result_id() -> str:
    return f"{secrets.randbelow(10**10):010d}X{secrets.token_hex(12)}"


def fn_get_api_session(ctx: Context, element: Any) -> str:
    entity = ctx.entity
    location = element.find("locationid")
    if location is not None:
        valid, entity = _entity_for(ctx.company, ctx.user, location.text)
        if not valid:
            raise FunctionError(
                (
                    "XL03000006",
                    "",
                    f"Invalid location ID '{location.text or ''}' for this company or user.",
                    "Check the entity ID.",
                )
            )
    now = timezone.now()
    if ctx.session is not None and entity == ctx.entity:
        session = ctx.session
    else:
        session = SimSession.objects.create(
            session_id=secrets.token_urlsafe(24) + "..",
            company=ctx.company,
            user=ctx.user,
            entity=entity,
            expires_at=now + timedelta(seconds=ctx.company.session_lifetime_seconds),
        )
    endpoint = ctx.request.build_absolute_uri()
    if ctx.company.session_endpoint_host:
        # The real gateway answers the endpoint of the company's pod, usually another host than api.intacct.com.
        parts = urlsplit(endpoint)
        host = ctx.company.session_endpoint_host.strip()
        if ":" not in host and parts.port:
            host = f"{host}:{parts.port}"
        endpoint = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return (
        f"<data><api>{el('sessionid', session.session_id)}{el('endpoint', endpoint)}"
        f"{el('locationid', entity.entity_id if entity else '')}</api></data>"
    )


def fn_read_by_query(ctx: Context, element: Any) -> str:
    obj = _object(_text(element, "object"))
    _require_read(ctx, obj, "READ_BY_QUERY")
    fields = _resolve_fields(obj, [f for f in (_text(element, "fields") or "*").split(",") if f.strip()])
    pagesize = _pagesize(_text(element, "pagesize"), 100, 1000)
    try:
        node, rownum_limit = take_rownum(parse_readbyquery(_text(element, "query") or ""))
        node = apply_codes(node, obj)
        check_fields(node, obj)
    except FilterError as exc:
        raise _query_failed(f"Invalid query: {exc}") from exc
    selection = Selection(ctx.company, obj, node, fields=fields)
    total = selection.total()
    if rownum_limit is not None:
        total = min(total, rownum_limit)
        pagesize = max(1, min(pagesize, total))
    records = selection.page_after(0, pagesize) if total else []
    remaining = max(0, total - len(records)) if len(records) == pagesize else 0
    result_id = ""
    if remaining:
        result_id = _new_result_id()
        # Forget abandoned cursors while creating a new one.
        ResultCursor.objects.filter(company=ctx.company, expires_at__lt=timezone.now()).delete()
        ResultCursor.objects.create(
            result_id=result_id,
            company=ctx.company,
            object=obj.name,
            fields=fields,
            filter=node,
            pagesize=pagesize,
            last_recordno=int(records[-1]["RECORDNO"]),
            max_recordno=selection.max_recordno,
            total=total,
            delivered=len(records),
            expires_at=timezone.now() + CURSOR_LIFETIME,
        )
    return _read_by_query_data(obj, fields, records, total, remaining, result_id)


def _read_by_query_data(
    obj: ObjectDef,
    fields: list[str],
    records: list[dict[str, str]],
    total: int,
    remaining: int,
    result_id: str,
) -> str:
    tag = obj.name.lower()
    head = (
        f'<data listtype="{tag}" count="{len(records)}" totalcount="{total}" numremaining="{remaining}" '
        f'resultId="{esc(result_id)}"'
    )
    if not records:
        return head + "/>"
    return f"{head}>{render_records(records, compile_layout(fields), tag)}</data>"


def fn_read_more(ctx: Context, element: Any) -> str:
    result_id = (_text(element, "resultId") or "").strip()
    cursors = ResultCursor.objects.filter(company=ctx.company, expires_at__gt=timezone.now())
    if result_id:
        cursor = cursors.filter(result_id=result_id).first()
    elif _text(element, "object"):
        cursor = cursors.filter(object=(_text(element, "object") or "").strip().upper()).order_by("-id").first()
    else:
        cursor = None
    if cursor is None:
        raise FunctionError(
            ("DL02000001", "There was an error processing the request.", "Invalid or expired resultId", "")
        )
    obj = OBJECTS[cursor.object]
    _require_read(ctx, obj, "READ_MORE")
    selection = Selection(ctx.company, obj, cursor.filter, max_recordno=cursor.max_recordno, fields=cursor.fields)
    records = selection.page_after(cursor.last_recordno, cursor.pagesize)[: max(0, cursor.total - cursor.delivered)]
    delivered = cursor.delivered + len(records)
    remaining = max(0, cursor.total - delivered) if len(records) == cursor.pagesize else 0
    if remaining:
        cursor.last_recordno = int(records[-1]["RECORDNO"])
        cursor.delivered = delivered
        cursor.expires_at = timezone.now() + CURSOR_LIFETIME
        cursor.save(update_fields=["last_recordno", "delivered", "expires_at"])
        out_id = cursor.result_id
    else:
        # The last page still names its resultId (SDK fixtures); the cursor itself is finished.
        cursor.delete()
        out_id = cursor.result_id
    return _read_by_query_data(obj, cursor.fields, records, cursor.total, remaining, out_id)


AGGREGATES = ("count", "sum", "avg", "min", "max")


def fn_query(ctx: Context, element: Any) -> str:
    name = (_text(element, "object") or "").strip()
    if object_def(name) is None:
        # query reports an unknown object as a function error, then an empty <data/> of that name.
        raise FunctionError(
            ("XL03000009", "There was an error processing the function", f"Object definition {name} not found", ""),
            trailer=f'<data listtype="{esc(name)}" totalcount="0" offset="0" count="0" numremaining="0"/>',
        )
    obj = _object(name)
    _require_read(ctx, obj, "QUERY")
    select = element.find("select")
    if select is None or not len(select):
        raise _query_failed("The select element with at least one field is required")
    fields: list[str] = []
    aggregates: list[tuple[str, str]] = []
    for child in select:
        if not isinstance(child.tag, str):
            continue
        name = (child.text or "").strip().upper()
        if child.tag == "field":
            fields.extend(_resolve_fields(obj, [name]))
        elif child.tag in AGGREGATES:
            aggregates.append((child.tag.upper(), _resolve_fields(obj, [name])[0]))
        else:
            raise _query_failed(f"Unknown select element <{child.tag}>")
    options = element.find("options")
    caseinsensitive = options is not None and (_text(options, "caseinsensitive") or "").strip().lower() == "true"
    node: Node | None = None
    filter_el = element.find("filter")
    try:
        if filter_el is not None:
            conditions = [c for c in filter_el if isinstance(c.tag, str)]
            if len(conditions) != 1:
                raise FilterError("<filter> takes exactly one condition (combine with <and>/<or>)")
            node = parse_query_filter(conditions[0])
            check_fields(node, obj)
    except FilterError as exc:
        raise _query_failed(f"Invalid filter: {exc}") from exc
    order: list[tuple[str, bool]] = []
    for order_el in element.findall("orderby/order"):
        order_field = (_text(order_el, "field") or "").strip().upper()
        if order_field not in obj.field_set:
            raise _query_failed(f"Field '{order_field}' not found in object {obj.name}")
        order.append((order_field, order_el.find("descending") is None))
    pagesize = _pagesize(_text(element, "pagesize"), 100, 2000)
    try:
        offset = int((_text(element, "offset") or "0").strip() or 0)
    except ValueError:
        offset = -1
    if offset < 0:
        raise FunctionError(
            ("DL02000001", "There was an error processing the request.", "offset must be 0 or more", "")
        )
    selection = Selection(
        ctx.company, obj, node, caseinsensitive=caseinsensitive, fields=fields + [f for f, _ in order]
    )
    total = selection.total()
    if aggregates:
        row = _aggregate(selection, aggregates, total)
        body = "<" + obj.name + ">" + "".join(el(f"{fn}.{f}", row[f"{fn}.{f}"]) for fn, f in aggregates)
        return (
            f'<data listtype="{obj.name}" totalcount="1" offset="0" count="1" numremaining="0">'
            f"{body}</{obj.name}></data>"
        )
    records = selection.page_by_offset(order, offset, pagesize)
    remaining = max(0, total - offset - len(records))
    head = (
        f'<data listtype="{obj.name}" totalcount="{total}" offset="{offset}" count="{len(records)}" '
        f'numremaining="{remaining}"'
    )
    if not records:
        return head + "/>"
    # query names a related or grouped field with its dotted path as the element name (as it does for
    # aggregates, COUNT.RECORDNO); readByQuery and read nest it (<PERSONALINFO><FIRSTNAME>).
    return f"{head}>{render_records(records, [(f, f) for f in fields], obj.name)}</data>"


def _aggregate(selection: Selection, aggregates: list[tuple[str, str]], total: int) -> dict[str, str]:
    row: dict[str, str] = {}
    needs_values = any(fn != "COUNT" for fn, _ in aggregates)
    records = selection.page_by_offset([], 0, total) if needs_values else []
    for fn, field_name in aggregates:
        key = f"{fn}.{field_name}"
        if fn == "COUNT":
            row[key] = str(total)
            continue
        values = [
            parse_ts(r[field_name]) if selection.obj.type_of(field_name) in ("date", "ts") else r[field_name]
            for r in records
            if r.get(field_name)
        ]
        numbers = []
        for value in values:
            try:
                numbers.append(float(value))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                pass
        if fn in ("MIN", "MAX"):
            pool = [r[field_name] for r in records if r.get(field_name)]
            row[key] = (min if fn == "MIN" else max)(pool) if pool else ""
        elif fn == "SUM":
            row[key] = f"{sum(numbers):.2f}"
        else:
            row[key] = f"{sum(numbers) / len(numbers):.2f}" if numbers else ""
    return row


class _Lookup:
    """Find records by RECORDNO or by ID field, with stored records loaded once."""

    def __init__(self, ctx: Context, obj: ObjectDef) -> None:
        from simulator.records import gen_for

        self.obj = obj
        self.gen = gen_for(ctx.company, obj)
        self.stored, self.deleted = stored_records(ctx.company, obj)

    def by_recordno(self, recordno: int) -> dict[str, str] | None:
        if recordno in self.deleted:
            return None
        if recordno in self.stored:
            return self.stored[recordno]
        return self.obj.generate(self.gen, recordno) if 1 <= recordno <= self.gen.size else None

    def by_id(self, key: str, id_field: str | None = None) -> dict[str, str] | None:
        id_field = id_field or self.obj.id_field
        fold = id_field == "LOGINID"  # login IDs are not case-sensitive

        def same(value: str) -> bool:
            return value.lower() == key.lower() if fold else value == key

        for record in self.stored.values():
            if same(record.get(id_field, "")):
                return record
        candidate = self.obj.candidate_recordno(key)
        if candidate is None or candidate in self.stored or candidate in self.deleted or candidate > self.gen.size:
            return None
        record = self.obj.generate(self.gen, candidate)
        return record if same(record.get(id_field, "")) else None


def _read_common(ctx: Context, element: Any, by_name: bool) -> str:
    obj = _object(_text(element, "object"))
    _require_read(ctx, obj, "READ")
    fields = _resolve_fields(obj, [f for f in (_text(element, "fields") or "*").split(",") if f.strip()])
    keys = [k.strip() for k in (_text(element, "keys") or "").split(",") if k.strip()]
    lookup = _Lookup(ctx, obj)
    records: list[dict[str, str]] = []
    if not keys and not by_name:
        # Without keys, read answers the first 100 records.
        records = Selection(ctx.company, obj, None, fields=fields).page_after(0, 100)
    for key in keys:
        if by_name:
            record = lookup.by_id(key)
        else:
            record = lookup.by_recordno(int(key)) if key.isdigit() else None
        if record is not None:
            records.append(record)
    if not records:
        return f'<data listtype="{obj.name}" count="0"/>'
    if obj.needs_completion(fields):
        records = [obj.complete(lookup.gen, record) for record in records]
    return (
        f'<data listtype="{obj.name}" count="{len(records)}">'
        f"{render_records(records, compile_layout(fields), obj.name)}</data>"
    )


def fn_read(ctx: Context, element: Any) -> str:
    return _read_common(ctx, element, by_name=False)


def fn_read_by_name(ctx: Context, element: Any) -> str:
    return _read_common(ctx, element, by_name=True)


def fn_get_user_permissions(ctx: Context, element: Any) -> str:
    login = (_text(element, "userId") or _text(element, "userid") or ctx.user.login_id).strip()
    if login.lower() != ctx.user.login_id.lower() and ctx.user.admin_privileges == "Off":
        raise _permission_denied("GET_USER_PERMISSIONS", "userinfo")
    user = SimUser.objects.filter(company=ctx.company, login_id__iexact=login).first()
    if user is None:
        raise FunctionError(
            (
                "BL01001973",
                "Could not get user permissions.",
                f"No USERINFO record with LOGINID '{login}' was found.",
                "",
            )
        )
    user.company = ctx.company
    by_app: dict[str, list[tuple[str, set[str]]]] = {}
    for (app, policy), rights in sorted(effective_permissions(user).items()):
        by_app.setdefault(app, []).append((policy, rights))
    order = ("List", "View", "Add", "Edit", "Delete")
    parts = ["<data><permissions>"]
    for app, policies in by_app.items():
        parts.append(f"<appSubscription>{el('applicationName', app)}<policies>")
        for policy, rights in policies:
            ordered = [r for r in order if r in rights] + sorted(rights - set(order))
            parts.append(f"<policy>{el('policyName', policy)}{el('rights', '|'.join(ordered))}</policy>")
        parts.append("</policies></appSubscription>")
    parts.append("</permissions></data>")
    return "".join(parts)


def _flatten(element: Any, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = f"{prefix}{child.tag.upper()}"
        if len(child):
            out.extend(_flatten(child, name + "."))
        else:
            out.append((name, (child.text or "").strip()))
    return out


def _enum(*values: str) -> Any:
    return lambda v: v if v in values else None


def _date(value: str) -> str | None:
    return value if value == "" or (parse_ts(value) is not None and len(value) <= 10) else None


def _bool(value: str) -> str | None:
    return {"true": "true", "false": "false", "t": "true", "f": "false"}.get(value.lower())


def _admin(value: str) -> str | None:
    return {"off": "Off", "limited": "Limited", "full": "Full", "false": "Off", "true": "Full"}.get(value.lower())


UPDATABLE: dict[str, dict[str, Any]] = {
    "USERINFO": {
        "STATUS": _enum("active", "inactive", "locked out"),
        "ADMIN": _admin,
        "USERTYPE": _enum(
            "business user",
            "employee user",
            "view only user",
            "project manager user",
            "payment approver",
            "dashboard user",
            "platform user",
            "CRM user",
            "warehouse user",
            "construction manager user",
        ),
        "LOGINDISABLED": _bool,
        "SSO_ENABLED": _bool,
        "SSO_FEDERATED_ID": str,
        "DESCRIPTION": str,
    },
    "EMPLOYEE": {
        "STATUS": _enum("active", "inactive"),
        "ENDDATE": _date,
        "STARTDATE": _date,
        "TERMINATIONTYPE": _enum("", "voluntary", "involuntary", "deceased", "disability", "retired"),
        "TITLE": str,
        "DEPARTMENTID": str,
        "LOCATIONID": str,
        "SUPERVISORID": str,
        "EMPLOYEETYPE": str,
        "PERSONALINFO.FIRSTNAME": str,
        "PERSONALINFO.LASTNAME": str,
        "PERSONALINFO.EMAIL1": str,
    },
}
# Replaced wholesale by Intacct; accepted and not modelled by the simulator.
IGNORED_LISTS = ("USERLOCATIONS", "USERDEPARTMENTS", "USERTERRITORIES")


def support_id() -> str:
    """The ' [Support ID: …]' suffix the gateway appends to business errors (URL-encoded, '~' as %7E)."""
    return f" [Support ID: {secrets.token_urlsafe(6)}%7E{secrets.token_urlsafe(18)}]"


def _update_failed(message: str, obj_name: str = "") -> FunctionError:
    """A refused update: the specific cause first, then the generic record error stacked under it."""
    generic = f"Could not update {obj_name} record." if obj_name else "Could not update record."
    return FunctionError(
        ("BL01001973", "Could not update record.", message + support_id(), ""),
        ("BL01001973", "", generic, ""),
    )


def fn_update(ctx: Context, element: Any) -> str:
    parts: list[str] = []
    items = [c for c in element if isinstance(c.tag, str)]
    if not items:
        raise _update_failed("Nothing to update.")
    for item in items:
        obj = _object(item.tag)
        if obj.name not in UPDATABLE:
            raise _update_failed(f"Updating {obj.name} is not supported by the simulator.", obj.name)
        if company_rules.write_refused(ctx.user, obj.name):
            raise _permission_denied("UPDATE", obj.name)
        if obj.name == "EMPLOYEE" and "Edit" not in ctx.perms.get((obj.application, obj.policy), set()):
            raise _permission_denied("UPDATE", obj.name)
        values = dict(_flatten(item))
        lookup = _Lookup(ctx, obj)
        if values.get("RECORDNO"):
            key_desc = f"RECORDNO '{values['RECORDNO']}'"
            recordno = values["RECORDNO"]
            record = lookup.by_recordno(int(recordno)) if recordno.isdigit() else None
        elif values.get(obj.id_field):
            key_desc = f"{obj.id_field} '{values[obj.id_field]}'"
            record = lookup.by_id(values[obj.id_field])
        else:
            raise _update_failed(f"RECORDNO or {obj.id_field} is required to update {obj.name}.", obj.name)
        if record is None:
            raise _update_failed(f"No {obj.name} record with {key_desc} was found.", obj.name)
        changes: dict[str, str] = {}
        for name, value in values.items():
            if name in ("RECORDNO", obj.id_field) or name.split(".")[0] in IGNORED_LISTS:
                continue
            validator = UPDATABLE[obj.name].get(name)
            if validator is None:
                raise _update_failed(f"Field {name} cannot be updated on {obj.name}.", obj.name)
            clean = validator(value)
            if clean is None:
                raise _update_failed(f"Invalid value '{value}' for field {name}.", obj.name)
            changes[name] = clean
        recordno_int = int(record["RECORDNO"])
        updated = modify_record(ctx.company, obj.name, recordno_int, changes) if changes else record
        parts.append(
            f"<{obj.name.lower()}>{el('RECORDNO', updated['RECORDNO'])}"
            f"{el(obj.id_field, updated.get(obj.id_field, ''))}</{obj.name.lower()}>"
        )
    return f'<data listtype="objects" count="{len(parts)}">{"".join(parts)}</data>'


def fn_get_list(ctx: Context, element: Any) -> str:
    name = (element.get("object") or "").strip()
    if name.lower() != "expensereportbatch":
        raise FunctionError(
            (
                "DL02000001",
                "There was an error processing the request.",
                f"get_list of object '{name}' is not available in the simulator.",
                "",
            )
        )
    obj = OBJECTS["EXPENSEREPORTBATCH"]
    _require_read(ctx, obj, "GET_LIST", "expensereportbatch")
    try:
        start = max(0, int(element.get("start") or 0))
        maxitems = max(1, min(1000, int(element.get("maxitems") or 100)))
    except ValueError as exc:
        raise FunctionError(
            (
                "DL02000001",
                "There was an error processing the request.",
                "start and maxitems must be numbers",
                "",
            )
        ) from exc
    node: Node | None = None
    filter_el = element.find("filter")
    try:
        if filter_el is not None:
            conditions = [c for c in filter_el if isinstance(c.tag, str)]
            if conditions:
                node = parse_get_list_filter(conditions[0])
                check_fields(node, obj)
    except FilterError as exc:
        raise _query_failed(f"Invalid filter: {exc}") from exc
    order = [
        ((s.text or "").strip().upper(), (s.get("order") or "asc").lower() != "desc")
        for s in element.findall("sorts/sortfield")
    ]
    if any(f not in obj.field_set for f, _ in order):
        raise _query_failed("Invalid sort field")
    fields = [(f.text or "").strip().upper() for f in element.findall("fields/field") if (f.text or "").strip()]
    fields = _resolve_fields(obj, fields)
    selection = Selection(ctx.company, obj, node)
    total = selection.total()
    records = selection.page_by_offset(order, start, maxitems)
    lower = [(f.lower(), f) for f in fields]
    rows = "".join(
        "<expensereportbatch>" + "".join(el(tag, r.get(key, "")) for tag, key in lower) + "</expensereportbatch>"
        for r in records
    )
    end = start + len(records) - 1
    return f'<listtype start="{start}" end="{end}" total="{total}">expensereportbatch</listtype><data>{rows}</data>'


DATATYPES = {"int": "INTEGER", "dec": "DECIMAL", "date": "DATE", "ts": "TIMESTAMP", "bool": "BOOLEAN", "str": "TEXT"}
READONLY_FIELDS = {"RECORDNO", "RECORD_URL", "WHENCREATED", "WHENMODIFIED", "CREATEDBY", "MODIFIEDBY",
                   "MEGAENTITYKEY", "MEGAENTITYID", "MEGAENTITYNAME", "AUWHENCREATED"}


def _field_label(obj: ObjectDef, name: str) -> str:
    if name in obj.labels:
        return obj.labels[name]
    words = name.replace("_", " ").replace(".", " ").lower()
    return words[:1].upper() + words[1:]


def _field_definition(obj: ObjectDef, name: str) -> str:
    return (
        "<Field>"
        f"{el('ID', name)}{el('LABEL', _field_label(obj, name))}{el('DESCRIPTION', _field_label(obj, name))}"
        f"{el('REQUIRED', 'true' if name == obj.id_field else 'false')}"
        f"{el('READONLY', 'true' if name in READONLY_FIELDS else 'false')}"
        f"{el('DATATYPE', DATATYPES.get(obj.type_of(name), 'TEXT'))}"
        f"{el('ISCUSTOM', 'true' if name in obj.custom_fields else 'false')}"
        "</Field>"
    )


def _definition_object(element: Any) -> ObjectDef:
    name = (_text(element, "object") or "").strip()
    obj = object_def(name)
    if obj is None:
        raise FunctionError(("DL02000001", "", f"Object definition {name} not found", ""))
    return obj


def fn_lookup(ctx: Context, element: Any) -> str:
    """The object's field definitions (lookup does not check the caller's permissions)."""
    obj = _definition_object(element)
    fields = "".join(_field_definition(obj, name) for name in obj.star_fields)
    # Paths only query accepts (EMPLOYEE's CONTACT.*) are related objects, listed as relationships.
    paths = sorted({name.split(".", 1)[0] for name in obj.query_only})
    relationships = "".join(
        f"<Relationship>{el('OBJECTPATH', path)}{el('OBJECTNAME', path)}{el('LABEL', path.title())}"
        f"{el('RELATIONSHIPTYPE', 'MANY2ONE')}{el('RELATEDBY', path + 'KEY')}</Relationship>"
        for path in paths
    )
    return (
        f'<data listtype="All" count="1"><Type Name="{obj.name}" DocumentType="">'
        f"<Fields>{fields}</Fields>"
        + (f"<Relationships>{relationships}</Relationships>" if relationships else "<Relationships/>")
        + "</Type></data>"
    )


def fn_inspect(ctx: Context, element: Any) -> str:
    """Field names (detail 0) or full definitions (detail="1")."""
    obj = _definition_object(element)
    if (element.get("detail") or "0").strip() == "1":
        fields = "".join(_field_definition(obj, name) for name in obj.star_fields)
    else:
        fields = "".join(el("Field", name) for name in obj.star_fields)
    return f'<data listtype="All" count="1"><Type Name="{obj.name}"><Fields>{fields}</Fields></Type></data>'


def _delete_failed(message: str, obj_name: str) -> FunctionError:
    return FunctionError(
        ("BL01001973", "Could not delete record.", message + support_id(), ""),
        ("BL01001973", "", f"Could not delete {obj_name} record.", ""),
    )


def fn_delete(ctx: Context, element: Any) -> str:
    """Delete records by RECORDNO; the answer is the status alone."""
    obj = _object(_text(element, "object"))
    if obj.name in ("LOCATIONENTITY", "USERROLES"):
        # Read-only views of the company's setup: entities and role assignments change on its admin screens.
        raise _delete_failed(f"Deleting {obj.name} is not supported by the simulator.", obj.name)
    if obj.name == "USERINFO":
        if ctx.user.admin_privileges != "Full":
            raise _permission_denied("DELETE", obj.name)
    elif "Delete" not in ctx.perms.get((obj.application, obj.policy), set()):
        raise _permission_denied("DELETE", obj.name)
    keys = [k.strip() for k in (_text(element, "keys") or "").split(",") if k.strip()]
    if not keys:
        raise _delete_failed("Keys are required to delete.", obj.name)
    for key in keys:
        try:
            delete_record(ctx.company, obj.name, int(key) if key.isdigit() else -1)
        except KeyError as exc:
            raise _delete_failed(f"Cannot find {obj.name.lower()} with key '{key}' to delete.", obj.name) from exc
    return ""


HANDLERS = {
    "lookup": fn_lookup,
    "inspect": fn_inspect,
    "delete": fn_delete,
    "getAPISession": fn_get_api_session,
    "readByQuery": fn_read_by_query,
    "readMore": fn_read_more,
    "query": fn_query,
    "read": fn_read,
    "readByName": fn_read_by_name,
    "getUserPermissions": fn_get_user_permissions,
    "update": fn_update,
    "get_list": fn_get_list,
}
