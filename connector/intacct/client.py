"""The Intacct XML gateway client: sessions, paging, retries, typed errors, redacted logs."""
from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any

import httpx
from lxml import etree

from . import envelope
from .config import ClientConfig, Credentials, endpoint_allowed
from .errors import (
    ConnectionDropped,
    EndpointNotAllowed,
    ErrorDetail,
    GatewayUnavailable,
    IntacctError,
    InvalidResponse,
    LoginFailed,
    RateLimited,
    RequestTimeout,
    ResponseTooLarge,
    SessionExpired,
    UnexpectedContent,
    classify,
)
from .filters import Filter
from .redaction import HeldSecrets, redact
from .response import ParsedResponse, ParsedResult, Record, ResponseParser, ResponseSyntaxError
from .transport import ClosingClient, DeadlineTransport, deadline_passed, request_deadline, retry_after_seconds

READ_BY_QUERY_MAX_PAGE = 1000
QUERY_MAX_PAGE = 2000
READ_MAX_KEYS = 100  # the official SDKs cap read keys at 100 per call
_ERROR_BODY_LIMIT = 64 * 1024
_LOG_BODY_LIMIT = 4096
# An answer up to this size (a 2,000-record page is ~1 MB) is kept as received and parsed once the company's
# request slot is given back; a larger one is parsed as it arrives, so junk is refused after reading little.
_RECEIVE_BEFORE_PARSING_BYTES = 4 * 1024 * 1024
_PARSE_CHUNK_BYTES = 64 * 1024


class _Body:
    """A response body being received: held whole while small, fed to the parser once it is not."""

    def __init__(self, parser: ResponseParser) -> None:
        self._parser = parser
        self._held = bytearray()
        self._parsing = False

    def add(self, chunk: bytes) -> None:
        if self._parsing:
            self._parser.feed(chunk)
            return
        self._held += chunk
        if len(self._held) > _RECEIVE_BEFORE_PARSING_BYTES:
            self._parsing = True
            self._feed_held()

    def finish(self) -> ParsedResponse:
        self._feed_held()
        return self._parser.close()

    def _feed_held(self) -> None:
        view = memoryview(self._held)
        try:
            for start in range(0, len(view), _PARSE_CHUNK_BYTES):
                self._parser.feed(bytes(view[start:start + _PARSE_CHUNK_BYTES]))
        finally:
            view.release()
        self._held = bytearray()


@dataclass(frozen=True)
class Session:
    """An API session: id, the endpoint to use it on, its entity and when it expires."""

    session_id: str
    endpoint: str
    location_id: str | None = None
    expires_at: datetime | None = None

    def __repr__(self) -> str:
        return (f"Session(session_id='REDACTED', endpoint={self.endpoint!r}, "
                f"location_id={self.location_id!r}, expires_at={self.expires_at!r})")


@dataclass(frozen=True)
class Page:
    """One page of a ``query``: its records plus Intacct's counters."""

    records: list[Record]
    total_count: int | None
    num_remaining: int | None
    offset: int


@dataclass(frozen=True)
class Permission:
    """One policy the user holds in one application, with its rights (``List``, ``View``, …)."""

    application: str
    policy: str
    rights: frozenset[str]


@dataclass(frozen=True)
class WriteOutcome:
    """What became of one write, and how we know it was applied.

    ``confirmed_by_read_back`` is True when an answer was lost on the way (5xx, 524, a dropped
    connection, a timeout, an unreadable answer) and reading the record back showed every value we
    asked for: the write is applied, but no answer of Intacct's says so.
    """

    record: Record
    confirmed_by_read_back: bool = False
    attempts: int = 1
    lost_answers: tuple[str, ...] = ()

    @property
    def answer(self) -> str:
        """The outcome in the words the audit uses."""
        return "applied (confirmed by read-back)" if self.confirmed_by_read_back else "applied"


@dataclass
class ClientStats:
    """Counters for one client; updated under a lock so two threads may share the client."""

    requests: int = 0
    retries: int = 0
    bytes_received: int = 0
    logins: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _requests_by_label: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    _thread: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    def add(self, *, requests: int = 0, retries: int = 0, bytes_received: int = 0, logins: int = 0) -> None:
        """Increase the counters atomically."""
        label = getattr(self._thread, "label", None)
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.bytes_received += bytes_received
            self.logins += logins
            if requests and label is not None:
                self._requests_by_label[label] = self._requests_by_label.get(label, 0) + requests

    @contextmanager
    def labelled(self, label: str) -> Iterator[None]:
        """Count the requests this thread sends inside the block under ``label`` too (several threads
        sharing one client each count their own work)."""
        outer = getattr(self._thread, "label", None)
        self._thread.label = label
        try:
            yield
        finally:
            self._thread.label = outer

    def requests_for(self, label: str) -> int:
        """Requests sent under ``label`` so far."""
        with self._lock:
            return self._requests_by_label.get(label, 0)

    def snapshot(self) -> dict[str, int]:
        """Return the counters as a plain dict."""
        with self._lock:
            return {"requests": self.requests, "retries": self.retries,
                    "bytes_received": self.bytes_received, "logins": self.logins}


@dataclass(frozen=True)
class _Call:
    """What one gateway function needs, rebuilt for every attempt (lxml moves elements)."""

    name: str
    build: Callable[[], etree._Element]
    obj: str = ""
    is_write: bool = False
    login: bool = False
    function_control_id: str | None = None
    record_tags: tuple[str, ...] = ()
    max_records: int | None = None
    # A batch: more functions in the same request, each result judged on its own (none raised here).
    more: Callable[[], list[tuple[str, etree._Element]]] | None = None
    payload_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchCall:
    """One function of a batch (see IntacctClient.batch); made by the client's ``*_call`` methods."""

    key: str
    name: str
    obj: str
    build: Callable[[], etree._Element]
    max_records: int = 0


@dataclass
class BatchOutcome:
    """What Intacct answered to one function of a batch: its records, or its own typed error."""

    key: str
    records: list[Record] = field(default_factory=list)
    data_attrs: dict[str, str] = field(default_factory=dict)
    error: IntacctError | None = None
    permissions: list[Permission] = field(default_factory=list)

    def value(self) -> list[Record]:
        """The records, or the function's error raised."""
        if self.error is not None:
            raise self.error
        return self.records


def _permissions_of(data: etree._Element | None) -> list[Permission]:
    permissions: list[Permission] = []
    if data is None:
        return permissions
    for app in data.iter("appSubscription"):
        application = (app.findtext("applicationName") or "").strip()
        for policy in app.iter("policy"):
            rights = (policy.findtext("rights") or "").split("|")
            permissions.append(Permission(
                application=application,
                policy=(policy.findtext("policyName") or "").strip(),
                rights=frozenset(r.strip() for r in rights if r.strip()),
            ))
    return permissions


def _record_tags(obj: str) -> tuple[str, ...]:
    # readByQuery answers <apbill>, query/read answer <APBILL>; accept the spellings we can predict.
    return tuple(dict.fromkeys((obj, obj.lower(), obj.upper())))


def _int_attr(attrs: Mapping[str, str], name: str) -> int | None:
    value = attrs.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidResponse(f"attribute {name}={value!r} is not a number") from None


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _check_page_size(page_size: int, maximum: int) -> None:
    if not 1 <= page_size <= maximum:
        raise ValueError(f"page_size must be between 1 and {maximum}")


def _refused_at_sign_in(exc: IntacctError) -> bool:
    """True for an authentication-level failure (or HTTP 401): no function ran."""
    return exc.level == "authentication" or exc.http_status == 401


def _write_retry_is_safe(exc: IntacctError) -> bool:
    """True when a failed write certainly did not run, so sending it again needs no read-back."""
    if isinstance(exc, RateLimited):
        return True
    if isinstance(exc, ConnectionDropped):
        return not exc.request_sent
    if isinstance(exc, GatewayUnavailable):
        # The gateway answered that the function did not run (off-line); a 5xx/524 answer is lost.
        return exc.level == "result"
    return False


def _answer_lost(exc: IntacctError) -> bool:
    """True when a write may or may not have run: its answer never reached us intact."""
    if isinstance(exc, RequestTimeout):
        return True
    if isinstance(exc, ConnectionDropped):
        return exc.request_sent
    if isinstance(exc, GatewayUnavailable):
        return exc.level == "http"  # 5xx, including 524 (the CDN gave up, the gateway may go on)
    if isinstance(exc, InvalidResponse):
        return exc.level != "http"  # truncated, malformed, HTML, no result; not an unexpected 4xx
    return False


# The key each documented write object is updated by when the caller does not send RECORDNO.
_WRITE_KEYS = {"USERINFO": "LOGINID", "EMPLOYEE": "EMPLOYEEID"}


def _write_key(obj: str, values: Mapping[str, object]) -> str | None:
    if "RECORDNO" in values:
        return "RECORDNO"
    key = _WRITE_KEYS.get(obj.upper())
    return key if key in values else None


def _same_value(read: object, wanted: object) -> bool:
    if isinstance(read, list):
        return False
    as_text = "" if read is None else str(read)
    return as_text.strip().casefold() == ("" if wanted is None else str(wanted)).strip().casefold()


class IntacctClient(ClosingClient):
    """Client for one company's Web Services user; safe to share between threads."""

    def __init__(self, config: ClientConfig, credentials: Credentials) -> None:
        self._config = config
        self._credentials = credentials
        self._log = config.logger or logging.getLogger("connector.intacct")
        self._secrets = HeldSecrets(credentials.password, config.sender_password)
        if not endpoint_allowed(config.endpoint_url, config.allowed_endpoints):
            self.close()
            raise EndpointNotAllowed(f"endpoint {config.endpoint_url!r} is not an allowed Intacct endpoint")
        self.stats = ClientStats()
        self._session: Session | None = None
        self._session_lock = threading.Lock()
        self._random = random.Random()  # noqa: S311 - jitter, not security
        self._http = httpx.Client(
            # Ours bounds connect + every read of a request by one deadline; a transport handed in
            # (tests, benchmarks) is bounded by the body loop's own check of the same deadline.
            transport=config.transport or DeadlineTransport(),
            timeout=config.timeout,
            # A redirect could carry our credentials to another host; the gateway never redirects.
            follow_redirects=False,
            # The client is handed its configuration; proxies from the environment are not read.
            trust_env=False,
            headers={
                "Content-Type": "application/xml",
                "Accept": "application/xml, text/xml",
                "Accept-Encoding": "gzip",
                "User-Agent": config.user_agent,
            },
        )

    # --- lifecycle ----------------------------------------------------------------------------

    # __enter__, __exit__ and close: ClosingClient's (connector.intacct.transport).

    # --- sessions -----------------------------------------------------------------------------

    def get_api_session(self) -> Session:
        """Return the cached API session, logging in with getAPISession if there is none."""
        with self._session_lock:
            if self._session is None:
                self._session = self._login()
            return self._session

    def _login(self) -> Session:
        creds = self._credentials
        call = _Call(name="getAPISession", build=envelope.get_api_session, login=True)
        result, parsed, _ = self._execute(call)
        api = result.records[0] if result.records else {}
        session_id, endpoint = api.get("sessionid"), api.get("endpoint")
        if not isinstance(session_id, str) or not session_id or not isinstance(endpoint, str) or not endpoint:
            raise InvalidResponse("getAPISession answered without a session id or endpoint",
                                  function="getAPISession")
        self._secrets.hold(session_id)
        endpoint = endpoint.strip()
        if not endpoint_allowed(endpoint, self._config.allowed_endpoints):
            raise EndpointNotAllowed(f"session endpoint {endpoint!r} is not an allowed Intacct endpoint",
                                     function="getAPISession")
        location = api.get("locationid")
        session = Session(
            session_id=session_id,
            endpoint=endpoint,
            location_id=location if isinstance(location, str) and location else None,
            expires_at=parsed.session_timeout,
        )
        self.stats.add(logins=1)
        self._log.info("Intacct session opened for company %s user %s on %s",
                       creds.company_id.strip(), creds.user_id.strip(), endpoint)
        return session

    def _drop_session(self, stale: Session) -> None:
        with self._session_lock:
            # Another thread may already have logged in again; keep its session.
            if self._session is stale:
                self._session = None

    def _slide_session(self, used: Session, expires_at: datetime | None) -> None:
        if expires_at is None:
            return
        with self._session_lock:
            if self._session is used and used.expires_at != expires_at:
                self._session = replace(used, expires_at=expires_at)

    # --- the one request path -----------------------------------------------------------------

    def _execute(self, call: _Call) -> tuple[ParsedResult, ParsedResponse, int]:
        """Run one function with retries and one re-login; return result, response and attempts."""
        started = time.monotonic()
        waited = 0.0
        attempt = 0
        logged_in_again = False
        while True:
            attempt += 1
            session: Session | None = None
            if call.login:
                creds = self._credentials
                auth: envelope.LoginAuth | envelope.SessionAuth = envelope.LoginAuth(
                    creds.user_id, creds.company_id, creds.password, creds.entity_id)
                endpoint = self._config.endpoint_url
            else:
                session = self.get_api_session()
                auth = envelope.SessionAuth(session.session_id)
                endpoint = session.endpoint
            try:
                parsed, http_status = self._roundtrip(call, auth, endpoint)
                result = self._check(parsed, call, http_status)
            except IntacctError as exc:
                if session is not None and _refused_at_sign_in(exc):
                    if logged_in_again:
                        raise SessionExpired(
                            f"{call.name} was refused at sign-in again right after a new session was opened: {exc}",
                            errors=exc.errors, http_status=exc.http_status, function=call.name) from None
                    # Whatever the words, a refused session is settled by logging in once more: if the
                    # login succeeds the session had expired, if it fails its own error says why.
                    logged_in_again = True
                    attempt -= 1  # logging in again is not a retry of a failure
                    self._log.info("Intacct refused the session during %s (%s); logging in again",
                                   call.name, type(exc).__name__)
                    self._drop_session(session)
                    self.get_api_session()
                    continue
                elapsed = max(time.monotonic() - started, waited)
                delay = self._retry_delay(exc, call, attempt, elapsed)
                if delay is None:
                    self._log.info("Intacct %s failed after %d attempt(s): %s: %s",
                                   call.name, attempt, type(exc).__name__, exc)
                    raise
                self.stats.add(retries=1)
                self._log.warning("Intacct %s attempt %d failed (%s: %s); retrying in %.2fs",
                                  call.name, attempt, type(exc).__name__, exc, delay)
                self._config.sleep(delay)
                waited += delay
                continue
            if session is not None:
                self._slide_session(session, parsed.session_timeout)
            return result, parsed, attempt

    def _retry_delay(self, exc: IntacctError, call: _Call, attempt: int, elapsed: float) -> float | None:
        """Seconds to wait before the next attempt, or None when this error must be raised."""
        if exc.permanent or isinstance(exc, SessionExpired):
            return None
        if call.is_write and not _write_retry_is_safe(exc):
            return None
        retry_after = getattr(exc, "retry_after", None)
        return self._backoff(attempt, elapsed, retry_after if isinstance(exc, RateLimited) else None)

    def _backoff(self, attempt: int, elapsed: float, retry_after: float | None = None) -> float | None:
        """The wait before attempt ``attempt + 1`` under the retry policy, or None when none is left."""
        policy = self._config.retry
        if attempt >= policy.max_attempts:
            return None
        if retry_after is not None:
            delay = float(retry_after)
        else:
            ceiling = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
            # Full jitter spreads retries of many workers hitting the same company's limit.
            delay = self._random.uniform(0.0, ceiling) if policy.jitter else ceiling
        if elapsed + delay > policy.total_budget:
            return None
        return delay

    def _roundtrip(
        self, call: _Call, auth: envelope.LoginAuth | envelope.SessionAuth, endpoint: str,
    ) -> tuple[ParsedResponse, int]:
        """Send one request and parse its answer; transport problems become typed errors."""
        if not endpoint_allowed(endpoint, self._config.allowed_endpoints):
            raise EndpointNotAllowed(f"endpoint {endpoint!r} is not an allowed Intacct endpoint",
                                     function=call.name)
        control_id = uuid.uuid4().hex
        function_control_id = call.function_control_id or f"{call.name}-{control_id[:12]}"
        body = envelope.build_request(
            sender_id=self._config.sender_id,
            sender_password=self._config.sender_password,
            control_id=control_id,
            auth=auth,
            function=call.build(),
            function_control_id=function_control_id,
            unique_id=call.is_write,
            more_functions=call.more() if call.more is not None else (),
        )
        if self._log.isEnabledFor(logging.DEBUG):
            self._log.debug("Intacct request %s %s to %s: %s", call.name, call.obj, endpoint,
                            redact(body[:_LOG_BODY_LIMIT].decode("utf-8", "replace")))
        slot = self._config.request_slot() if self._config.request_slot else nullcontext()
        self.stats.add(requests=1)
        started = time.monotonic()
        try:
            # The deadline starts once the company's request slot is held: waiting for a slot is not
            # talking to Intacct. The slot is given back as soon as the whole answer is here: Intacct is
            # done with the request then, and parsing it must not keep another request of the company waiting.
            with slot, request_deadline(self._config.timeout), \
                    self._http.stream("POST", endpoint, content=body) as response:
                status = response.status_code
                received, size = self._receive(response, call)
            parsed = self._parse(received, call, status)
            self._log.debug(
                "Intacct response %s: HTTP %d, %d bytes, %d record(s), %.3fs", call.name,
                status, size, sum(len(r.records) for r in parsed.results), time.monotonic() - started)
            return parsed, status
        except (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ConnectError) as exc:
            raise ConnectionDropped(f"could not connect to {endpoint}: {type(exc).__name__}",
                                    function=call.name, request_sent=False) from None
        except httpx.TimeoutException as exc:
            raise RequestTimeout(f"no complete answer within the {self._config.timeout}s deadline: "
                                 f"{type(exc).__name__}", function=call.name) from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise ConnectionDropped(f"connection dropped: {type(exc).__name__}: {exc}",
                                    function=call.name) from None
        except httpx.DecodingError as exc:
            raise InvalidResponse(f"undecodable response body: {exc}", function=call.name,
                                  permanent=call.is_write) from None
        except httpx.HTTPError as exc:
            raise InvalidResponse(f"HTTP failure: {type(exc).__name__}: {exc}", function=call.name,
                                  permanent=call.is_write) from None

    def _body(self, response: httpx.Response) -> Iterator[bytes]:
        """Decoded body chunks, counted in stats as they arrive, cut off at the request's deadline."""
        for chunk in response.iter_bytes():
            self.stats.add(bytes_received=len(chunk))
            if deadline_passed():
                raise RequestTimeout(f"the answer was still arriving at the {self._config.timeout}s deadline",
                                     http_status=response.status_code)
            yield chunk

    def _receive(self, response: httpx.Response, call: _Call) -> tuple[_Body, int]:
        """Map HTTP statuses; receive a successful body (parsed later, or as it arrives once it is larger than
        an ordinary page), enforcing the size cap."""
        status = response.status_code
        content_type = response.headers.get("content-type", "").lower()
        if status >= 500:
            snippet = self._read_limited(response)
            raise GatewayUnavailable(f"HTTP {status} from the Intacct gateway: {snippet[:200]}".strip(),
                                     http_status=status, function=call.name)
        if status == 429:
            errors = self._errors_from_small_body(response)
            raise RateLimited(
                "; ".join(e.text() for e in errors if e.text()) or "HTTP 429 Too Many Requests",
                errors=errors, http_status=429, function=call.name, level="http",
                retry_after=retry_after_seconds(response.headers.get("retry-after")),
            )
        if status >= 400 and "html" in content_type:
            # A CDN's error page (Cloudflare-style 403) in front of the gateway: an outage, not an answer.
            snippet = self._read_limited(response)
            raise InvalidResponse(f"HTML instead of XML (HTTP {status}): {snippet[:200]}", http_status=status,
                                  function=call.name, level="http", permanent=call.is_write)
        if status >= 400:
            # 4xx answers are small; their XML (whatever the content type says) names the cause,
            # e.g. 401 XMLGW_JPP0002 or 400 GW-0011.
            errors = self._errors_from_small_body(response)
            if errors:
                raise classify("control", errors, http_status=status, function=call.name)
            if status == 401:
                raise LoginFailed("HTTP 401 Unauthorized", http_status=401, function=call.name, level="http")
            raise InvalidResponse(f"unexpected HTTP {status}", http_status=status, function=call.name,
                                  level="http")
        if status >= 300:
            # Redirects are not followed: they could carry credentials to another host.
            location = response.headers.get("location")
            raise InvalidResponse(f"unexpected HTTP {status} (redirect to {location!r})",
                                  http_status=status, function=call.name, level="http")
        if "html" in content_type:
            # CDN error pages come as HTML with 200; they are outages, not answers.
            snippet = self._read_limited(response)
            raise InvalidResponse(f"HTML instead of XML (HTTP {status}): {snippet[:200]}",
                                  http_status=status, function=call.name, permanent=call.is_write)
        limit = self._config.max_response_bytes
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ResponseTooLarge(f"response of {declared} bytes exceeds the {limit}-byte cap",
                                   http_status=status, function=call.name)
        body = _Body(ResponseParser(call.record_tags, call.max_records, payload_tags=call.payload_tags))
        received = 0
        with self._parse_errors(call, status):
            # Decoded bytes are counted, so a small gzip body cannot expand past the cap.
            for chunk in self._body(response):
                received += len(chunk)
                if received > limit:
                    raise ResponseTooLarge(f"response exceeds the {limit}-byte cap",
                                           http_status=status, function=call.name)
                body.add(chunk)
        return body, received

    def _parse(self, body: _Body, call: _Call, status: int) -> ParsedResponse:
        """Parse what the receiving left to parse (memory bounded by what it holds, not by its size)."""
        with self._parse_errors(call, status):
            return body.finish()

    @contextmanager
    def _parse_errors(self, call: _Call, status: int) -> Iterator[None]:
        try:
            yield
        except ResponseSyntaxError as exc:
            # For a read a broken answer is worth another try; for a write the outcome is unknown.
            raise InvalidResponse(f"malformed or truncated XML response: {exc}", http_status=status,
                                  function=call.name, permanent=call.is_write) from None
        except IntacctError as exc:
            if exc.http_status is None:
                exc.http_status = status
            exc.function = exc.function or call.name
            if isinstance(exc, UnexpectedContent):
                # Like any unreadable answer: a read may be tried again, a write's outcome is unknown.
                exc.permanent = call.is_write
            raise

    def _read_limited(self, response: httpx.Response) -> str:
        data = b""
        for chunk in self._body(response):
            data += chunk
            if len(data) >= _ERROR_BODY_LIMIT:
                break
        return redact(data[:_ERROR_BODY_LIMIT].decode("utf-8", "replace")).strip()

    def _errors_from_small_body(self, response: httpx.Response) -> list[ErrorDetail]:
        """Control-level errors of a small XML error body, or [] when it is not one."""
        parser = ResponseParser()
        received = 0
        try:
            for chunk in self._body(response):
                received += len(chunk)
                if received > _ERROR_BODY_LIMIT:
                    return []
                parser.feed(chunk)
            return parser.close().control_errors
        except RequestTimeout:
            raise
        except (ResponseSyntaxError, IntacctError):
            return []

    def _check(self, parsed: ParsedResponse, call: _Call, http_status: int) -> ParsedResult:
        """Raise the typed error for the first failing level; return the function's result."""
        if parsed.control_status != "success":
            errors = parsed.control_errors or [
                ErrorDetail(description=f"control status {parsed.control_status or 'missing'}")]
            raise classify("control", errors, http_status=http_status, function=call.name)
        if not parsed.has_operation:
            raise InvalidResponse("response has no operation", http_status=http_status,
                                  function=call.name, permanent=call.is_write)
        if parsed.auth_status != "success":
            errors = parsed.auth_errors or [
                ErrorDetail(description=f"authentication status {parsed.auth_status or 'missing'}")]
            raise classify("authentication", errors, http_status=http_status, function=call.name)
        if not parsed.results:
            raise InvalidResponse("response has no result", http_status=http_status,
                                  function=call.name, permanent=call.is_write)
        for result in parsed.results if call.more is None else ():
            if result.status != "success":
                errors = result.errors or [ErrorDetail(description=f"result status {result.status}")]
                raise classify("result", errors, http_status=http_status,
                               function=result.function or call.name, control_id=result.control_id or None)
        if not 200 <= http_status < 300:
            raise InvalidResponse(f"HTTP {http_status} with a successful XML answer",
                                  http_status=http_status, function=call.name, permanent=True)
        return parsed.results[0]

    # --- reads --------------------------------------------------------------------------------

    def read_by_query(
        self, obj: str, fields: Sequence[str] = ("*",), query: str = "", page_size: int = 1000,
    ) -> Iterator[Record]:
        """Yield every record of a readByQuery, continuing with readMore(resultId) page by page."""
        _check_page_size(page_size, READ_BY_QUERY_MAX_PAGE)
        fields = tuple(fields)
        tags = _record_tags(obj)
        result, _, _ = self._execute(_Call(
            name="readByQuery", obj=obj, record_tags=tags, max_records=page_size,
            build=lambda: envelope.read_by_query(obj, fields, query, page_size)))
        while True:
            remaining = _int_attr(result.data_attrs, "numremaining") or 0
            result_id = result.data_attrs.get("resultId", "")
            records = result.records
            result.records = []  # the page is handed over; nothing else holds it
            yield from records
            if remaining <= 0:
                return
            if not result_id:
                raise InvalidResponse(f"{remaining} records remain but Intacct gave no resultId",
                                      function="readByQuery")
            result, _, attempts = self._execute(_Call(
                name="readMore", obj=obj, record_tags=tags, max_records=page_size,
                build=partial(envelope.read_more, result_id)))
            got = len(result.records)
            left = _int_attr(result.data_attrs, "numremaining") or 0
            if got == 0 and left > 0:
                raise InvalidResponse("readMore returned no records but more remain", function="readMore")
            if attempts > 1 and got + left != remaining:
                # readMore is not idempotent: a retry after a lost answer gets the *next* page.
                raise InvalidResponse(
                    f"a readMore page was lost while retrying ({remaining} expected, {got}+{left} seen); "
                    "restart the read", function="readMore")

    def query_page(
        self,
        obj: str,
        fields: Sequence[str],
        filter: Filter | None = None,
        order_by: Sequence[tuple[str, str]] = (),
        page_size: int = 100,
        offset: int = 0,
        *,
        case_insensitive: bool = False,
        show_private: bool = False,
    ) -> Page:
        """Run one ``query`` call (one page at ``offset``)."""
        _check_page_size(page_size, QUERY_MAX_PAGE)
        fields = tuple(fields)
        if not fields or "*" in fields:
            raise ValueError("query needs explicit field names (no '*')")
        if offset < 0:
            raise ValueError("offset must not be negative")
        order_by = tuple(order_by)
        result, _, _ = self._execute(_Call(
            name="query", obj=obj, record_tags=_record_tags(obj), max_records=page_size,
            build=lambda: envelope.query(obj, fields, filter, order_by, page_size, offset,
                                         case_insensitive=case_insensitive, show_private=show_private)))
        attrs = result.data_attrs
        page_offset = _int_attr(attrs, "offset")
        return Page(
            records=result.records,
            total_count=_int_attr(attrs, "totalcount"),
            num_remaining=_int_attr(attrs, "numremaining"),
            offset=offset if page_offset is None else page_offset,
        )

    def query(
        self,
        obj: str,
        fields: Sequence[str],
        filter: Filter | None = None,
        order_by: Sequence[tuple[str, str]] = (),
        page_size: int = 100,
        offset: int = 0,
        limit: int | None = None,
        *,
        case_insensitive: bool = False,
        show_private: bool = False,
    ) -> Iterator[Record]:
        """Yield records of a ``query``, paging by offset until Intacct reports none remaining."""
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        yielded = 0
        while limit is None or yielded < limit:
            size = page_size if limit is None else min(page_size, limit - yielded)
            page = self.query_page(obj, fields, filter, order_by, size, offset,
                                   case_insensitive=case_insensitive, show_private=show_private)
            records = page.records
            if limit is not None:
                records = records[: limit - yielded]
            yield from records
            yielded += len(records)
            offset += len(page.records)
            # numremaining=0 ends it without an extra empty page; an empty page ends it regardless.
            if not page.records or page.num_remaining is None or page.num_remaining <= 0:
                return

    def _read_keys(self, name: str, obj: str, keys: Iterable[object], fields: Sequence[str]) -> list[Record]:
        keys = [str(k) for k in keys]
        fields = tuple(fields)
        records: list[Record] = []
        for chunk in _chunks(keys, READ_MAX_KEYS):
            result, _, _ = self._execute(_Call(
                name=name, obj=obj, record_tags=_record_tags(obj), max_records=len(chunk),
                build=partial(envelope.read, obj, chunk, fields, by_name=name == "readByName")))
            records.extend(result.records)
        return records

    def read(self, obj: str, keys: Iterable[object], fields: Sequence[str] = ("*",)) -> list[Record]:
        """Read records by RECORDNO (100 keys per call); keys not found are simply absent."""
        return self._read_keys("read", obj, keys, fields)

    def read_by_name(self, obj: str, names: Iterable[str], fields: Sequence[str] = ("*",)) -> list[Record]:
        """Read records by their object ID (e.g. LOGINID); names not found are simply absent."""
        return self._read_keys("readByName", obj, names, fields)

    def get_user_permissions(self, user_id: str) -> list[Permission]:
        """Return the user's permissions: one entry per application policy."""
        result, _, _ = self._execute(_Call(
            name="getUserPermissions", obj="USERINFO", build=lambda: envelope.get_user_permissions(user_id)))
        return _permissions_of(result.data_element)

    # --- several functions in one request -----------------------------------------------------

    def query_call(self, key: str, obj: str, fields: Sequence[str], filter: Filter | None = None,
                   page_size: int = 1) -> BatchCall:
        """A ``query`` of one page, for a batch."""
        _check_page_size(page_size, QUERY_MAX_PAGE)
        fields = tuple(fields)
        return BatchCall(key, "query", obj, lambda: envelope.query(obj, fields, filter, (), page_size, 0), page_size)

    def read_by_name_call(self, key: str, obj: str, names: Sequence[str], fields: Sequence[str] = ("*",)) -> BatchCall:
        """A ``readByName`` (at most 100 names), for a batch."""
        names, fields = tuple(str(n) for n in names), tuple(fields)
        if len(names) > READ_MAX_KEYS:
            raise ValueError(f"at most {READ_MAX_KEYS} names in one read")
        return BatchCall(key, "readByName", obj, lambda: envelope.read(obj, names, fields, by_name=True), len(names))

    def get_list_call(self, key: str, obj: str, fields: Sequence[str] | None = None, page_size: int = 1) -> BatchCall:
        """A legacy ``get_list`` of one page, for a batch."""
        fields = tuple(fields) if fields else None
        return BatchCall(key, "get_list", obj, lambda: envelope.get_list(obj, 0, page_size, fields, None), page_size)

    def get_user_permissions_call(self, key: str, user_id: str) -> BatchCall:
        """A ``getUserPermissions``, for a batch."""
        return BatchCall(key, "getUserPermissions", "USERINFO", lambda: envelope.get_user_permissions(user_id))

    def batch(self, calls: Sequence[BatchCall]) -> dict[str, BatchOutcome]:
        """Run several read functions in one request (one API call); each outcome carries its own result or
        typed error. Control and authentication failures, and transient failures of the request itself, are
        raised as for any call (with the same retries and re-login)."""
        if not calls:
            return {}
        keys = [c.key for c in calls]
        if len(set(keys)) != len(keys):
            raise ValueError("batch keys must be unique")
        controlids = {f"{i}-{c.key}"[:256]: c for i, c in enumerate(calls)}
        pairs = list(controlids.items())
        tags = tuple(dict.fromkeys(t for c in calls for t in _record_tags(c.obj)))
        first_id, first = pairs[0]
        call = _Call(name="batch", obj=",".join(dict.fromkeys(c.obj for c in calls)), build=first.build,
                     function_control_id=first_id, record_tags=tags,
                     max_records=sum(max(c.max_records, 0) for c in calls) or None,
                     payload_tags=("permissions",) if any(c.name == "getUserPermissions" for c in calls) else (),
                     more=lambda: [(cid, c.build()) for cid, c in pairs[1:]])
        _, parsed, _ = self._execute(call)
        outcomes: dict[str, BatchOutcome] = {}
        for result in parsed.results:
            batch_call = controlids.get(result.control_id)
            if batch_call is None:
                continue
            outcome = BatchOutcome(batch_call.key)
            if result.status != "success":
                errors = result.errors or [ErrorDetail(description=f"result status {result.status}")]
                outcome.error = classify("result", errors, function=result.function or batch_call.name,
                                         control_id=result.control_id or None)
            else:
                outcome.records, outcome.data_attrs = result.records, result.data_attrs
                if batch_call.name == "getUserPermissions":
                    outcome.permissions = _permissions_of(result.data_element)
            outcomes[batch_call.key] = outcome
        for batch_call in calls:
            if batch_call.key not in outcomes:
                outcomes[batch_call.key] = BatchOutcome(batch_call.key, error=InvalidResponse(
                    f"Intacct gave no result for {batch_call.name} {batch_call.obj}", function=batch_call.name,
                    permanent=False))
        return outcomes

    def get_list(
        self,
        obj: str,
        fields: Sequence[str] | None = None,
        filters: Sequence[tuple[str, str, object]] | None = None,
        page_size: int = 100,
        sorts: Sequence[tuple[str, str]] | None = None,
    ) -> Iterator[Record]:
        """Yield records of a legacy 2.1 ``get_list`` (filters are ANDed (field, operator, value))."""
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        start = 0
        while True:
            result, _, _ = self._execute(_Call(
                name="get_list", obj=obj, record_tags=_record_tags(obj), max_records=page_size,
                build=partial(envelope.get_list, obj, start, page_size, fields, filters, sorts)))
            records = result.records
            yield from records
            total = _int_attr(result.listtype_attrs, "total")
            start += len(records)
            if not records or (total is not None and start >= total):
                return
            if total is None and len(records) < page_size:
                return

    # --- writes -------------------------------------------------------------------------------

    def update(self, obj: str, values: Mapping[str, object], control_id: str) -> Record:
        """Update one record (uniqueid=true + the caller's stable control_id); see update_confirmed.

        Returns the record Intacct answered (or the record read back when the answer was lost).
        """
        return self.update_confirmed(obj, values, control_id).record

    def update_confirmed(
        self, obj: str, values: Mapping[str, object], control_id: str, *, key_field: str | None = None,
    ) -> WriteOutcome:
        """Update one record; when its answer is lost, learn the outcome by reading the record back.

        An update sets absolute values, so it is confirmed by reading the record (by ``key_field``:
        RECORDNO, else LOGINID for USERINFO and EMPLOYEEID for EMPLOYEE) and finding every value asked
        for. After a lost answer (5xx, 524, dropped connection, timeout, unreadable answer) the record
        is read back; if not applied yet the update is sent again, with the same control ID, within
        the retry policy. A refusal of that repeat is also settled by reading back, whatever its words.
        A refusal of the first attempt is raised as Intacct's typed error.
        """
        envelope.check_control_id(control_id)
        values = dict(values)
        key = key_field or _write_key(obj, values)
        if key is not None and key not in values:
            raise ValueError(f"values must hold the key field {key}")
        started = time.monotonic()
        waited = 0.0
        lost: list[IntacctError] = []
        attempt = 0
        while True:
            attempt += 1
            try:
                result, _, _ = self._execute(_Call(
                    name="update", obj=obj, is_write=True, function_control_id=control_id,
                    record_tags=_record_tags(obj), build=lambda: envelope.update(obj, values)))
            except IntacctError as exc:
                repeat_refused = bool(lost) and exc.level == "result"
                if key is None or not (repeat_refused or _answer_lost(exc)):
                    raise
                if not repeat_refused:
                    lost.append(exc)
                self._log.warning("Intacct update of %s %s: %s (%s); reading the record back",
                                  obj, values.get(key), "the repeat was refused" if repeat_refused
                                  else "the answer was lost", type(exc).__name__)
                try:
                    record = self._read_back(obj, key, values)
                except IntacctError as read_exc:
                    self._log.warning("Intacct update of %s %s: reading back failed (%s)", obj, values.get(key),
                                      type(read_exc).__name__)
                    raise exc from None
                if record is not None:
                    self._log.info("Intacct update of %s %s: applied (confirmed by read-back)",
                                   obj, values.get(key))
                    return WriteOutcome(record, confirmed_by_read_back=True, attempts=attempt,
                                        lost_answers=tuple(f"{type(e).__name__}: {e}" for e in lost))
                delay = None if repeat_refused else self._backoff(attempt, max(time.monotonic() - started, waited))
                if delay is None:
                    raise
                self.stats.add(retries=1)
                self._config.sleep(delay)
                waited += delay
                continue
            return WriteOutcome(result.records[0] if result.records else {}, attempts=attempt,
                                lost_answers=tuple(f"{type(e).__name__}: {e}" for e in lost))

    def _read_back(self, obj: str, key: str, values: Mapping[str, object]) -> Record | None:
        """The record if it holds every value of ``values``, else None."""
        fields = [key, *(name for name in values if name != key)]
        if key == "RECORDNO":
            found = self.read(obj, [values[key]], fields=fields)
        else:
            found = self.read_by_name(obj, [str(values[key])], fields=fields)
        if not found:
            return None
        record = found[0]
        if all(_same_value(record.get(name), wanted) for name, wanted in values.items() if name != key):
            return record
        return None
