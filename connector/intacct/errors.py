"""Typed errors for the Intacct XML gateway.

Intacct overloads its error numbers (``XL03000006`` alone means five different things), so
:func:`classify` reads the level first, then ``errorno``, then case-insensitive phrases in
``description``/``description2``/``correction``, and falls back to a generic class of that level
(:class:`ControlError`, :class:`AuthenticationError`, :class:`ResultError`). Every error keeps
Intacct's raw parts, and says whether trying again later can help (``permanent``).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .redaction import redact

LEVELS = ("control", "authentication", "result", "http", "transport")
# Intacct's words are kept, stored and shown at most this long each (a gateway once sent a 7.6 MB
# description); a longer text ends with CUT_MARK so nobody mistakes it for the whole.
MAX_ERROR_TEXT = 2000
MAX_ERRORS_KEPT = 20
CUT_MARK = "… [cut]"


def bounded(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """The text, or its beginning marked with CUT_MARK when it is longer than `limit` characters."""
    if len(text) <= limit:
        return text
    return text[: limit - len(CUT_MARK)] + CUT_MARK


def _kept(text: str) -> str:
    # Redact first, then cut: a cut first could leave the beginning of a secret that redaction no longer
    # recognises.
    return bounded(redact(text))


@dataclass(frozen=True)
class ErrorDetail:
    """One ``<error>`` element of an Intacct ``<errormessage>``."""

    errorno: str = ""
    description: str = ""
    description2: str = ""
    correction: str = ""

    def text(self) -> str:
        """Return the non-empty parts joined by spaces, as the official SDKs flatten an error."""
        return " ".join(p for p in (self.errorno, self.description, self.description2, self.correction) if p)


def _rebuild(cls: type[IntacctError], message: str, state: dict[str, Any]) -> IntacctError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.__dict__.update(state)
    return exc


class IntacctError(Exception):
    """Base class: anything that went wrong talking to the Intacct gateway."""

    permanent: bool = True
    default_level: str = "transport"

    def __init__(
        self,
        message: str = "",
        *,
        errors: Sequence[ErrorDetail] = (),
        level: str | None = None,
        http_status: int | None = None,
        function: str | None = None,
        control_id: str | None = None,
        permanent: bool | None = None,
        **extra: Any,
    ) -> None:
        # Gateways sometimes echo request values back; keep the details as redacted as the text. This is where
        # Intacct's answer becomes what we store and show, so each text is bounded here, once.
        self.errors: list[ErrorDetail] = [
            ErrorDetail(*(_kept(part) for part in (e.errorno, e.description, e.description2, e.correction)))
            for e in list(errors)[:MAX_ERRORS_KEPT]
        ]
        first = self.errors[0] if self.errors else ErrorDetail()
        self.errorno = first.errorno
        self.description = first.description
        self.description2 = first.description2
        self.correction = first.correction
        self.level = level or self.default_level
        self.http_status = http_status
        self.function = function
        self.control_id = control_id
        if permanent is not None:
            # Only a few errors depend on the call (a truncated answer to a read vs. a write).
            self.permanent = permanent
        for name, value in extra.items():
            setattr(self, name, value)
        if not message:
            message = "; ".join(e.text() for e in self.errors if e.text()) or type(self).__name__
        # Secrets registered by the client never reach an exception's text or repr.
        super().__init__(_kept(message))

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor arguments: pickle (Celery, multiprocessing) needs help.
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


# --- control level ---------------------------------------------------------------------------

class ControlError(IntacctError):
    """A control-level failure not otherwise classified (nothing in the request ran)."""

    default_level = "control"


class SenderCredentialsInvalid(IntacctError):
    """The Web Services sender ID or sender password is wrong."""

    default_level = "control"


class MalformedRequest(IntacctError):
    """The gateway could not parse the request against its schema (XL03000003)."""

    default_level = "control"


class CompanyNotFound(IntacctError):
    """The gateway rejected the company ID (HTTP 400, GW-0011 "Invalid Request")."""

    default_level = "control"


class DemoCompanyExpired(IntacctError):
    """The company is a demo or sandbox company whose time has run out (PL04000055): nothing runs."""

    default_level = "control"


class TransportPolicyInvalid(IntacctError):
    """The request named a transport (delivery) policy Intacct does not know for this sender.

    Our online requests send no ``policyid``; this answer means the gateway or our sender's setup
    is wrong on our side, not anything in the customer's company.
    """

    default_level = "control"


# --- authentication level --------------------------------------------------------------------

class AuthenticationError(IntacctError):
    """An authentication-level failure not otherwise classified (no function ran)."""

    default_level = "authentication"


class SenderNotAuthorized(IntacctError):
    """The sender ID is not authorised for this company, or needs a user login for API."""

    default_level = "authentication"
    needs_login_for_api: bool = False


class WebServicesNotSubscribed(IntacctError):
    """The company has no Web Services subscription."""

    default_level = "authentication"


class IPAddressRejected(IntacctError):
    """The company's IP address filter refused our outbound address."""

    default_level = "authentication"


class LoginFailed(IntacctError):
    """User ID, company ID or user password is wrong (also HTTP 401 XMLGW_JPP0002)."""

    default_level = "authentication"


class UserInactive(IntacctError):
    """The Web Services user exists but is inactive."""

    default_level = "authentication"


class UserLockedOut(IntacctError):
    """The Web Services user is locked out."""

    default_level = "authentication"


class InvalidEntity(IntacctError):
    """The entity (location) ID is not valid for this company or user."""

    default_level = "authentication"


class SessionExpired(IntacctError):
    """A call was refused at authentication again right after a new session was opened for it.

    An expired session alone never reaches the caller: the client logs in again and repeats the
    call. This is raised only when the fresh session is refused too, which trying later may fix.
    """

    default_level = "authentication"
    permanent = False


# --- result level ----------------------------------------------------------------------------

class ResultError(IntacctError):
    """A function failed for a reason not otherwise classified."""

    default_level = "result"


class PermissionDenied(IntacctError):
    """The user lacks the permission for this API operation on this object (PL04000005)."""

    default_level = "result"
    operation: str | None = None
    object_name: str | None = None


class UnknownObject(IntacctError):
    """The object name does not exist in this company ("Object definition X not found")."""

    default_level = "result"


class DuplicateRequest(IntacctError):
    """A function with this control ID already ran (uniqueid=true): the write was already applied."""

    default_level = "result"


class RecordError(IntacctError):
    """A business rule or validation refused the record (BL… errors)."""

    default_level = "result"


# --- transient: gateway and transport --------------------------------------------------------

class RateLimited(IntacctError):
    """Too many requests or concurrent requests for this company (HTTP 429, GW-0010)."""

    default_level = "http"
    permanent = False
    retry_after: float | None = None


class GatewayUnavailable(IntacctError):
    """HTTP 5xx (including 524) or "The Service is Temporarily Off-line"."""

    default_level = "http"
    permanent = False


class RequestTimeout(IntacctError):
    """No complete answer within the configured timeout."""

    default_level = "transport"
    permanent = False


class ConnectionDropped(IntacctError):
    """The connection failed or closed before the answer was complete."""

    default_level = "transport"
    permanent = False
    # False when the request provably never left (connect failure): then even a write may be retried.
    request_sent: bool = True


# --- about the answer or where it would go ---------------------------------------------------

class UnsafeResponse(IntacctError):
    """The answer declares a DOCTYPE or entities: refused before parsing."""


class ResponseTooLarge(IntacctError):
    """The answer exceeded the configured size cap (or a page held more records than asked for)."""


class EndpointNotAllowed(IntacctError):
    """The endpoint is not https://*.intacct.com nor an explicitly allowed URL: nothing was sent."""


class InvalidResponse(IntacctError):
    """The answer is not the XML we expect (not XML, truncated, unexpected status or shape)."""


class UnexpectedContent(InvalidResponse):
    """The answer carries more content outside records than any real answer does: refused unread."""


# --- classification --------------------------------------------------------------------------

_PERMISSION_RE = re.compile(r"API operation\s+(\S+)\s+on objects of type\s+(\S+?)\.?$", re.IGNORECASE)
_ROLLBACK = "XL03000009"
_DEMO_EXPIRED = "PL04000055"  # SDK fixtures: control failure "This company is a demo company and has expired."
# SDK fixtures: XL03000006 "<x> is not a valid transport policy." -- the number of a bad sender, so the
# published words are what tell them apart.
_TRANSPORT_POLICY = "not a valid transport policy"

# Phrases that identify an authentication-level problem wherever Intacct reports it. Order matters:
# "...incorrect. The user 'U' is inactive." must not be read as a plain wrong password.
# No phrase means "expired session": its wording is not published, so the client logs in again on any
# authentication-level failure of a call made with a session and lets that login tell what is wrong.
_AUTH_PHRASES: tuple[tuple[tuple[str, ...], type[IntacctError]], ...] = (
    (("not subscribed", "not authorized for xml transactions", "subscribe to the xml gateway"),
     WebServicesNotSubscribed),
    (("ip address",), IPAddressRejected),
    (("invalid web services authorization", "not authorized to make web services requests",
      "requires a user login", "needs login for api"), SenderNotAuthorized),
    (("is inactive", "user inactive"), UserInactive),
    (("locked out", "lockedout"), UserLockedOut),
    (("invalid location id", "invalid entity"), InvalidEntity),
    (("sign-in information is incorrect",), LoginFailed),
    (("partner id or password",), SenderCredentialsInvalid),
)

_OFFLINE_PHRASES = ("temporarily off-line", "temporarily offline", "try again later")


def _haystack(error: ErrorDetail) -> str:
    return " ".join((error.description, error.description2, error.correction)).lower()


def _match_auth_phrase(errors: Sequence[ErrorDetail]) -> type[IntacctError] | None:
    for error in errors:
        text = _haystack(error)
        for phrases, cls in _AUTH_PHRASES:
            if any(p in text for p in phrases):
                return cls
    return None


def _classify_control(errors: Sequence[ErrorDetail]) -> type[IntacctError]:
    numbers = {e.errorno.upper() for e in errors}
    if "GW-0010" in numbers:
        return RateLimited
    if "GW-0011" in numbers:
        return CompanyNotFound
    if "XL03000003" in numbers:
        return MalformedRequest
    if numbers & {"XMLGW_JPP0002", "UJPP0002"}:
        return LoginFailed
    matched = _match_auth_phrase(errors)
    if matched is not None:
        return matched
    if "XL03000006" in numbers:
        # At control level the documented meaning is a bad sender ID or sender password.
        return SenderCredentialsInvalid
    if any(p in _haystack(e) for e in errors for p in _OFFLINE_PHRASES):
        return GatewayUnavailable
    return ControlError


def _classify_result(errors: Sequence[ErrorDetail]) -> type[IntacctError]:
    # A rolled-back transaction adds XL03000009 to the real cause; judge by the cause.
    causes = [e for e in errors if e.errorno.upper() != _ROLLBACK] or list(errors)
    for error in causes:
        number = error.errorno.upper()
        text = _haystack(error)
        if number == "PL04000005" or "do not have permission" in text:
            return PermissionDenied
        if "object definition" in text and "not found" in text:
            return UnknownObject
        if number == "XL03000011" or "duplicate request" in text or "already been executed" in text:
            return DuplicateRequest
        if number == "XL03000012" or any(p in text for p in _OFFLINE_PHRASES):
            return GatewayUnavailable
        if number.startswith("BL"):
            return RecordError
    return ResultError


def classify(
    level: str,
    errors: Sequence[ErrorDetail],
    *,
    http_status: int | None = None,
    function: str | None = None,
    control_id: str | None = None,
) -> IntacctError:
    """Build the typed exception for Intacct errors reported at ``level``."""
    numbers = {e.errorno.upper() for e in errors}
    if _DEMO_EXPIRED in numbers:
        # Documented at control level; the number means one thing wherever it comes.
        cls: type[IntacctError] = DemoCompanyExpired
    elif any(_TRANSPORT_POLICY in _haystack(e) for e in errors):
        cls = TransportPolicyInvalid
    elif level == "control":
        cls = _classify_control(errors)
    elif level == "authentication":
        cls = _match_auth_phrase(errors) or AuthenticationError
    else:
        cls = _classify_result(errors)
    extra: dict[str, Any] = {}
    if cls is SenderNotAuthorized:
        extra["needs_login_for_api"] = any(
            "requires a user login" in _haystack(e) or "needs login for api" in _haystack(e) for e in errors
        )
    elif cls is PermissionDenied:
        for error in errors:
            match = _PERMISSION_RE.search(error.description2) or _PERMISSION_RE.search(error.description)
            if match:
                extra["operation"], extra["object_name"] = match.group(1), match.group(2)
                break
    return cls(
        errors=errors, level=level, http_status=http_status, function=function, control_id=control_id,
        **extra,
    )
