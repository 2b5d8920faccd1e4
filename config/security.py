"""Response headers Django does not set itself (a Content Security Policy and a Permissions Policy), and the
refusal of control characters in query parameters, and error reports that never show a typed password.

Scripts may only come from our own origin (no inline script anywhere); styles allow inline `style`
attributes, which the progress bars use. Frames, plugins and foreign form targets are refused.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.debug import SafeExceptionReporterFilter

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


class SecurityHeadersMiddleware:
    """Adds the CSP and Permissions-Policy headers to every response that has none yet."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


def control_character_in(text: str) -> bool:
    """True when the text holds a control character (NUL, escape, DEL, CR, LF, tab...)."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


class QueryControlCharactersMiddleware:
    """Answers 400 when a query parameter's name or value holds a control character (`?q=a%00b`).

    No page expects one; PostgreSQL refuses NUL in text (a 500 from inside a search), SQLite silently
    matches nothing (an empty CSV). Checking here, once, covers every view, present and future.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        for name, values in request.GET.lists():
            if control_character_in(name) or any(control_character_in(value) for value in values):
                shown = name.encode("unicode_escape").decode("ascii")[:100]
                return HttpResponseBadRequest(
                    f"Bad request: the query parameter {shown!r} contains a control character (such as a NUL "
                    "byte or a line break). Remove it and try again.\n", content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class SecretHidingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Error reports (DEBUG's technical 500 page, mails to admins) that never show a password or a hash.

    Django applies `sensitive_post_parameters` and `sensitive_variables` only when DEBUG is off, and its own
    `authenticate()` marks just "credentials", so `make run`'s 500 page showed the typed Intacct password and
    the SQL parameters holding a password hash. Here the markers count with DEBUG on too, and in a request
    marked with `sensitive_post_parameters` (every view that takes a password) no frame's variables are
    shown at all: the password can sit in any local below the view (a form, the hasher, the database).
    """

    def is_active(self, request: HttpRequest | None) -> bool:
        return True

    def get_traceback_frame_variables(self, request, tb_frame):
        if request is not None and getattr(request, "sensitive_post_parameters", None):
            return [(name, self.cleansed_substitute) for name in tb_frame.f_locals]
        return super().get_traceback_frame_variables(request, tb_frame)
