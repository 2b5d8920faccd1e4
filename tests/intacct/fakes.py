"""A scripted fake gateway on httpx.MockTransport, and response envelopes from the reference's examples."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import httpx

from connector.intacct import ClientConfig, Credentials, IntacctClient, RetryPolicy

ENDPOINT = "https://api.intacct.com/ia/xml/xmlgw.phtml"
SESSION_ENDPOINT = "https://na12.intacct.com/ia/xml/xmlgw.phtml"
SENDER_ID = "IntacctConnectDemo"
# Secrets carry XML specials so escaping and the redaction of escaped forms are exercised.
SENDER_PASSWORD = "Sndr-pw&<secret>-7731"  # noqa: S105 - test fixture
USER_PASSWORD = "Usr-pw'\"&-99821"  # noqa: S105 - test fixture
SESSION_ID = "SESSabc123XYZsessionid789_.."
SESSION_ID_2 = "SESSsecond456QRSsessionid000_.."
SESSION_TIMEOUT = "2024-05-01T18:00:00-07:00"


def error_xml(errorno: str, description: str = "", description2: str = "", correction: str = "") -> str:
    """One <error> element."""
    return (f"<error><errorno>{escape(errorno)}</errorno><description>{escape(description)}</description>"
            f"<description2>{escape(description2)}</description2><correction>{escape(correction)}</correction></error>")


def control_xml(status: str = "success") -> str:
    """A response control block."""
    return (f"<control><status>{status}</status><senderid>{SENDER_ID}</senderid><controlid>c1</controlid>"
            "<uniqueid>false</uniqueid><dtdversion>3.0</dtdversion></control>")


def auth_xml(status: str = "success", session_timeout: str = SESSION_TIMEOUT) -> str:
    """An authentication block (sessiontimeout only on success, as Intacct does)."""
    extra = ("<sessiontimestamp>2024-05-01T10:00:00-07:00</sessiontimestamp>"
             f"<sessiontimeout>{session_timeout}</sessiontimeout>") if status == "success" else ""
    return (f"<authentication><status>{status}</status><userid>ws_user</userid><companyid>ACME</companyid>"
            f"<locationid></locationid>{extra}</authentication>")


def result_xml(function: str, data: str = "", status: str = "success", errors: Iterable[str] = (),
               controlid: str = "f1") -> str:
    """One <result>, errors after data as in the response DTD."""
    message = f"<errormessage>{''.join(errors)}</errormessage>" if errors else ""
    return (f"<result><status>{status}</status><function>{function}</function>"
            f"<controlid>{escape(controlid)}</controlid>{data}{message}</result>")


def envelope(*results: str, session_timeout: str = SESSION_TIMEOUT) -> bytes:
    """A successful control + authentication around ``results``."""
    return ('<?xml version="1.0" encoding="UTF-8"?><response>' + control_xml()
            + "<operation>" + auth_xml(session_timeout=session_timeout) + "".join(results)
            + "</operation></response>").encode()


def control_failure(*errors: str) -> bytes:
    """Control-level failure: errormessage is a sibling of control."""
    return ('<?xml version="1.0" encoding="UTF-8"?><response>' + control_xml("failure")
            + f"<errormessage>{''.join(errors)}</errormessage></response>").encode()


def auth_failure(*errors: str) -> bytes:
    """Authentication-level failure: errormessage inside operation, after authentication."""
    return ('<?xml version="1.0" encoding="UTF-8"?><response>' + control_xml() + "<operation>"
            + auth_xml("failure") + f"<errormessage>{''.join(errors)}</errormessage>"
            + "</operation></response>").encode()


def session_body(session_id: str = SESSION_ID, endpoint: str = SESSION_ENDPOINT,
                 session_timeout: str = SESSION_TIMEOUT) -> bytes:
    """getAPISession success."""
    return envelope(result_xml(
        "getAPISession",
        f"<data><api><sessionid>{session_id}</sessionid><endpoint>{endpoint}</endpoint>"
        "<locationid></locationid></api></data>"), session_timeout=session_timeout)


def records_xml(tag: str, records: Iterable[dict[str, str | None]]) -> str:
    """Record elements; None becomes an empty element."""
    out = []
    for rec in records:
        fields = "".join(f"<{k}/>" if v is None else f"<{k}>{escape(v)}</{k}>" for k, v in rec.items())
        out.append(f"<{tag}>{fields}</{tag}>")
    return "".join(out)


def query_data(tag: str, records: Iterable[dict[str, str | None]] = (), total: int | None = None) -> str:
    """The <data> of a query or readByName: the records with Intacct's counters (total: all that match)."""
    rows = list(records)
    total = len(rows) if total is None else total
    return (f'<data listtype="{tag}" count="{len(rows)}" totalcount="{total}" numremaining="{total - len(rows)}">'
            + records_xml(tag, rows) + "</data>")


def get_list_data(obj: str, records: Iterable[dict[str, str | None]] = ()) -> str:
    """The <listtype> and <data> of a legacy get_list answer, from its first record."""
    rows = list(records)
    return (f'<listtype start="0" end="{len(rows) - 1}" total="{len(rows)}">{obj}</listtype>'
            + "<data>" + records_xml(obj, rows) + "</data>")


def permissions_data(permissions: Iterable[tuple[str, str, Iterable[str]]]) -> str:
    """The <data> of getUserPermissions: (application, policy, rights) as Intacct groups them."""
    by_application: dict[str, list[str]] = {}
    for application, policy, rights in permissions:
        by_application.setdefault(application, []).append(
            f"<policy><policyName>{escape(policy)}</policyName><rights>{'|'.join(rights)}</rights></policy>")
    return ("<data><permissions>" + "".join(
        f"<appSubscription><applicationName>{escape(application)}</applicationName><policies>{''.join(policies)}"
        "</policies></appSubscription>" for application, policies in by_application.items())
        + "</permissions></data>")


def permission_denied(function: str, obj: str, controlid: str = "f1", operation: str = "QUERY") -> str:
    """A failed <result>: the user may not run ``operation`` on ``obj`` (PL04000005, as Intacct words it)."""
    return result_xml(function, status="failure", controlid=controlid, errors=[error_xml(
        "PL04000005", "", f"You do not have permission for API operation {operation} on objects of type {obj}")])


def function_object(function: ET.Element) -> str:
    """The object a read function names: <object> inside it, or get_list's object attribute."""
    return function.findtext("object") or function.get("object") or ""


def xml_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    """An HTTP response carrying XML."""
    return httpx.Response(status, content=body, headers={"content-type": "text/xml; charset=UTF-8",
                                                          **(headers or {})})


@dataclass
class Received:
    """One request the fake gateway received, parsed with the standard library."""

    url: str
    headers: httpx.Headers
    body: bytes
    xml: ET.Element

    @property
    def function(self) -> ET.Element:
        """The element inside <function>."""
        return self.xml.find("operation/content/function")[0]

    @property
    def function_name(self) -> str:
        """Tag of the function element."""
        return self.function.tag

    @property
    def session_id(self) -> str | None:
        """The <sessionid> sent, if any."""
        return self.xml.findtext("operation/authentication/sessionid")

    @property
    def is_login(self) -> bool:
        """True for a login-authenticated request."""
        return self.xml.find("operation/authentication/login") is not None


Step = httpx.Response | bytes | Exception | Callable[[httpx.Request], httpx.Response]


def answer_each(answer: Callable[[ET.Element, str], str | None], *,
                session_timeout: str = SESSION_TIMEOUT) -> Callable[[httpx.Request], httpx.Response]:
    """A step answering every function of a request, one or a batch, in order as the gateway does: ``answer``
    gets the function's element (``<query>``, ``<get_list>``...) and its control ID and gives its ``<result>``
    (None: the gateway leaves that function unanswered)."""
    def respond(request: httpx.Request) -> httpx.Response:
        functions = ET.fromstring(request.read()).findall("operation/content/function")  # noqa: S314 - ours
        results = [answer(function[0], function.get("controlid") or "") for function in functions]
        return xml_response(envelope(*(r for r in results if r is not None), session_timeout=session_timeout))
    return respond


@dataclass
class Gateway:
    """Answers logins with a session and everything else from a script, recording each request.

    Once a script is done, ``login_answer`` (default: a session) and ``otherwise`` (default: none, an unexpected
    request fails the test) answer every further request of their kind."""

    script: list[Step] = field(default_factory=list)
    login_script: list[Step] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    login_answer: Step | None = None
    otherwise: Step | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        rec = Received(str(request.url), request.headers, body, ET.fromstring(body))  # noqa: S314 - our own request
        self.received.append(rec)
        if rec.is_login:
            step: Step = self.login_script.pop(0) if self.login_script else self.login_answer or session_body()
        elif self.script:
            step = self.script.pop(0)
        elif self.otherwise is not None:
            step = self.otherwise
        else:
            raise AssertionError(f"unexpected request {rec.function_name}")
        if isinstance(step, Exception):
            raise step
        if isinstance(step, bytes):
            return xml_response(step)
        if isinstance(step, httpx.Response):
            return step
        return step(request)

    @property
    def transport(self) -> httpx.MockTransport:
        """The MockTransport to hand to ClientConfig."""
        return httpx.MockTransport(self)

    @property
    def calls(self) -> list[Received]:
        """Non-login requests."""
        return [r for r in self.received if not r.is_login]

    @property
    def logins(self) -> list[Received]:
        """Login (getAPISession) requests."""
        return [r for r in self.received if r.is_login]


@dataclass
class SleepRecorder:
    """Injected instead of time.sleep: records delays, never waits."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_client(gateway: Gateway | httpx.BaseTransport, *, sleep: SleepRecorder | None = None,
                retry: RetryPolicy | None = None, credentials: Credentials | None = None,
                **config: object) -> IntacctClient:
    """A client on the fake gateway, with deterministic backoff and a recording sleep."""
    transport = gateway.transport if isinstance(gateway, Gateway) else gateway
    cfg = ClientConfig(
        endpoint_url=config.pop("endpoint_url", ENDPOINT),  # type: ignore[arg-type]
        sender_id=SENDER_ID,
        sender_password=SENDER_PASSWORD,
        retry=retry or RetryPolicy(max_attempts=6, base_delay=1.0, max_delay=30.0, total_budget=120.0,
                                   jitter=False),
        transport=transport,
        sleep=sleep or SleepRecorder(),
        **config,  # type: ignore[arg-type]
    )
    return IntacctClient(cfg, credentials or Credentials("ACME", "ws_user", USER_PASSWORD))
