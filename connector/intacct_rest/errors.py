"""Typed errors of the REST API, in the XML client's hierarchy so ``connector.policy.action_for`` judges both.

The REST API names its errors by HTTP status (published: 400, 401, 403, 404, 405, 409, 422, 429, 5xx) and an
``ia::error`` body (``code``, ``message``, ``errorId``, ``details``); the token endpoint answers RFC 6749 errors.
Classification reads the HTTP status and the RFC 6749 ``error`` code only, never Intacct's wording (it is not
published per cause). Token problems are their own classes: each needs the admin to "reconnect with Sage
Intacct", and they are authentication-level so the policy stops the connection instead of retrying.
"""
from __future__ import annotations

import json
from typing import Any

from connector.intacct.errors import (
    ConnectionDropped,
    EndpointNotAllowed,
    ErrorDetail,
    GatewayUnavailable,
    IntacctError,
    InvalidResponse,
    LoginFailed,
    PermissionDenied,
    RateLimited,
    RequestTimeout,
    ResponseTooLarge,
    ResultError,
    UnknownObject,
)

__all__ = [
    "ClientCredentialsRejected", "ConnectionDropped", "ConsentWithdrawn", "EndpointNotAllowed", "ErrorDetail",
    "GatewayUnavailable", "IntacctError", "InvalidQuery", "InvalidResponse", "LoginFailed", "PermissionDenied",
    "RateLimited", "RefreshTokenExpired", "RequestTimeout", "ResponseTooLarge", "ResultError", "TokenInvalid",
    "TokenProblem", "TokenRevoked", "UnknownObject", "api_error", "error_details", "token_error",
]


class TokenProblem(IntacctError):
    """The connection's OAuth tokens no longer work: the admin must reconnect with Sage Intacct."""

    default_level = "authentication"


class TokenInvalid(TokenProblem):
    """The API refused the access token (HTTP 401) even right after a new one was obtained."""


class TokenRevoked(TokenProblem):
    """The refresh token was revoked, already used, or replaced by a newer authorisation (invalid_grant)."""


class RefreshTokenExpired(TokenProblem):
    """The refresh token's lifetime has passed."""


class ConsentWithdrawn(TokenProblem):
    """The company no longer lets this application in (unauthorized_client at the token endpoint)."""


class ClientCredentialsRejected(IntacctError):
    """Our application's client ID or secret was refused (invalid_client): our configuration, not the company's."""

    default_level = "control"


class InvalidQuery(ResultError):
    """HTTP 400 to a query: a field, filter or paging value the API does not accept."""


def _body_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8", "replace")) if body else None
    except ValueError:
        return None


def _error_object(parsed: Any) -> dict[str, Any] | None:
    """The ia::error object wherever an answer puts it (ia::result.ia::error, ia::error, or error)."""
    if not isinstance(parsed, dict):
        return None
    result = parsed.get("ia::result")
    if isinstance(result, dict):
        nested = result.get("ia::error")
        if isinstance(nested, dict):
            return nested
    for key in ("ia::error", "error"):
        found = parsed.get(key)
        if isinstance(found, dict):
            return found
    return None


def error_details(body: bytes) -> list[ErrorDetail]:
    """Intacct's words of an error body as ErrorDetails (code, message, errorId and details, supportId)."""
    error = _error_object(_body_json(body))
    if error is None:
        return []
    raw_details = error.get("details")
    details: list[Any] = raw_details if isinstance(raw_details, list) else []
    more = "; ".join(str(d.get("message", "")) for d in details if isinstance(d, dict) and d.get("message"))
    error_id = str(error.get("errorId") or "")
    support = str(error.get("supportId") or "")
    return [ErrorDetail(
        errorno=str(error.get("code") or error_id),
        description=str(error.get("message") or ""),
        description2=" ".join(p for p in (error_id, more) if p),
        correction=f"Support ID: {support}" if support else "",
    )]


def api_error(status: int, body: bytes, *, function: str, retry_after: float | None = None,
              content_type: str = "") -> IntacctError:
    """The typed error of a non-2xx API answer (HTTP status first, Intacct's words kept for people)."""
    errors = error_details(body)
    text = "; ".join(e.text() for e in errors if e.text()) or f"HTTP {status}"
    common: dict[str, Any] = {"errors": errors, "http_status": status, "function": function}
    if status == 429:
        return RateLimited(text, level="http", retry_after=retry_after, **common)
    if status >= 500:
        return GatewayUnavailable(text, level="http", **common)
    if "html" in content_type.lower():
        # A CDN's error page in front of the API (a Cloudflare-style 403): an outage, not an answer
        # about this company, whatever its status says.
        snippet = body[:200].decode("utf-8", "replace")
        return InvalidResponse(f"HTML instead of JSON (HTTP {status}): {snippet}", level="http", permanent=False,
                               http_status=status, function=function)
    if status == 401:
        return TokenInvalid(text, **common)
    if status == 403:
        return PermissionDenied(text, object_name=function, **common)
    if status == 404:
        return UnknownObject(text, **common)
    if status == 400:
        return InvalidQuery(text, **common)
    return ResultError(text, **common)


def token_error(status: int, body: bytes, *, grant_type: str, refresh_expired: bool = False,
                retry_after: float | None = None) -> IntacctError:
    """The typed error of a token endpoint answer (RFC 6749 section 5.2 codes)."""
    parsed = _body_json(body)
    code = str(parsed.get("error") or "") if isinstance(parsed, dict) and isinstance(parsed.get("error"), str) else ""
    description = str(parsed.get("error_description") or "") if isinstance(parsed, dict) else ""
    errors = [ErrorDetail(errorno=code, description=description)] if code else error_details(body)
    text = "; ".join(e.text() for e in errors if e.text()) or f"HTTP {status} from the token endpoint"
    common: dict[str, Any] = {"errors": errors, "http_status": status, "function": f"token:{grant_type}"}
    if status == 429:
        return RateLimited(text, level="http", retry_after=retry_after, **common)
    if status >= 500:
        return GatewayUnavailable(text, level="http", **common)
    if code == "invalid_client":
        return ClientCredentialsRejected(text, **common)
    if code == "unauthorized_client":
        return ConsentWithdrawn(text, **common)
    if code == "invalid_grant" and grant_type == "refresh_token":
        return (RefreshTokenExpired if refresh_expired else TokenRevoked)(text, **common)
    if code in ("invalid_grant", "invalid_request") and grant_type == "client_credentials":
        return LoginFailed(text, **common)  # the Web Services user, company or entity in username
    if code == "invalid_grant":
        return TokenRevoked(text, **common)  # an authorization code that is used, expired or not ours
    return InvalidResponse(text, level="http", **common)
