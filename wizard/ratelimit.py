"""Login, password reset and "Connect" attempts limited per IP address and per account or organisation.

Fixed windows: each (action, scope, who) pair has a counter in the cache that expires with its window.
Login counts every attempt per IP and the failed ones per username (normalised as Django's login
matches it); password reset counts every request per IP and per e-mail address. An over-limit request is
answered 429 on the same page with the form kept, and nothing is saved or sent.

Connect and "Check again" are limited differently: what must not happen is Intacct locking the Web
Services user out after repeated failed sign-ins, so only the sign-ins Intacct refused count, per organisation,
company and user, read from the validation checks in the database (the worker records them; no counter to
keep in step). Fixing something in Intacct and checking again, however often, never counts, and one
organisation's failures never block another organisation.

The cache is settings.CACHES["default"]: Redis when the broker is Redis, else files under VAR_DIR, so the
web processes share their counters. When the cache cannot be reached the limiter fails open: the request goes
on unlimited, a warning is logged and intacct_connect_rate_limit_unavailable_total is counted (/metrics), so a
Redis outage never locks everyone out of the login page.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from connector import metrics
from connector.models import Organisation, ValidationCheck
from wizard.access import client_ip

log = logging.getLogger(__name__)
# The validation check that reports the Web Services user's sign-in (connector.validation.LOGIN_STAGES).
LOGIN_CHECK = "login"


@dataclass(frozen=True)
class Limit:
    action: str  # "login", "password_reset" or "connect"
    scope: str  # "ip", "account" or "organisation"
    limit: int
    window: int  # seconds


def login_limits() -> tuple[Limit, Limit]:
    window = settings.LOGIN_RATE_LIMIT_WINDOW_SECONDS
    return (Limit("login", "ip", settings.LOGIN_RATE_LIMIT_PER_IP, window),
            Limit("login", "account", settings.LOGIN_RATE_LIMIT_PER_ACCOUNT, window))


def password_reset_limits() -> tuple[Limit, Limit]:
    window = settings.PASSWORD_RESET_RATE_LIMIT_WINDOW_SECONDS
    return (Limit("password_reset", "ip", settings.PASSWORD_RESET_RATE_LIMIT_PER_IP, window),
            Limit("password_reset", "account", settings.PASSWORD_RESET_RATE_LIMIT_PER_ACCOUNT, window))


def _key(limit: Limit, who: str, now: float) -> tuple[str, int]:
    """The cache key of the current window and the seconds left in it. `who` is hashed (no usernames kept)."""
    window_index = int(now // limit.window)
    digest = hashlib.sha256(who.strip().lower().encode("utf-8", "replace")).hexdigest()[:32]
    left = max(1, math.ceil((window_index + 1) * limit.window - now))
    return f"ratelimit:{limit.action}:{limit.scope}:{digest}:{window_index}", left


def retry_after(checks: list[tuple[Limit, str]]) -> int | None:
    """Seconds until every exhausted counter's window ends, or None when no limit is reached."""
    if not settings.RATE_LIMIT_ENABLED:
        return None
    now = time.time()
    waits = []
    for limit, who in checks:
        key, left = _key(limit, who, now)
        try:
            used = cache.get(key) or 0
        except Exception as exc:  # noqa: BLE001 - any cache failure: fail open
            _unavailable(limit, exc)
            return None
        if used >= limit.limit:
            waits.append(left)
    return max(waits) if waits else None


def count(checks: list[tuple[Limit, str]]) -> None:
    """Count one attempt against each (limit, who)."""
    if not settings.RATE_LIMIT_ENABLED:
        return
    now = time.time()
    for limit, who in checks:
        key, left = _key(limit, who, now)
        try:
            # add() is a no-op when the key exists; incr() is atomic on Redis (best effort on files).
            cache.add(key, 0, timeout=left + 1)
            try:
                cache.incr(key)
            except ValueError:  # expired between add() and incr()
                cache.set(key, 1, timeout=left + 1)
        except Exception as exc:  # noqa: BLE001 - any cache failure: fail open
            _unavailable(limit, exc)
            return


def _unavailable(limit: Limit, exc: Exception) -> None:
    """The counters' cache is down: let the request through, but say so in the log and in /metrics."""
    log.warning("rate limit for %s not applied: the cache could not be reached (%s)", limit.action,
                type(exc).__name__)
    try:
        metrics.metric_increment(name=metrics.RATE_LIMIT_UNAVAILABLE, labels={"action": limit.action})
    except Exception:  # noqa: BLE001 - the database may be what is down; the page must still answer
        log.warning("could not count the unavailable rate limit")


def message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return (f"Too many attempts. Please wait {minutes} minute{'s' if minutes != 1 else ''} and try again. "
            "Nothing was saved or sent.")


def too_many(response: HttpResponse, seconds: int) -> HttpResponse:
    response.status_code = 429
    response["Retry-After"] = str(seconds)
    return response


def username_key(raw: object) -> str:
    """The typed username as Django's login form matches it (trimmed, NFKC), lower-cased: one key per account.

    Django's UsernameField normalises with NFKC before the backend looks the user up, so "ａｌｉｃｅ" logs in as
    "alice"; a counter keyed on the raw text would give every Unicode variant a fresh allowance. Lower-casing
    goes further than the backend (which matches the exact case) and so only merges more attempts.
    Like Django, a name longer than a username can be is not normalised (it cannot log in).
    """
    text = str(raw or "").strip()
    if len(text) <= 150:
        text = AbstractBaseUser.normalize_username(text).strip()
    return text.lower()


def email_key(raw: object) -> str:
    """The typed e-mail address as Django's reset form matches accounts (NFKC, case-folded), trimmed."""
    text = str(raw or "").strip()[:320]
    return unicodedata.normalize("NFKC", text).strip().casefold()


def _ip(request: HttpRequest) -> str:
    return client_ip(request) or "unknown"


# --- the two uses ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SignInLimit:
    """Too many sign-ins Intacct refused for one company and user: wait ``seconds`` before the next."""

    company_id: str
    user_id: str
    failures: int
    seconds: int

    def message(self) -> str:
        minutes = max(1, math.ceil(self.seconds / 60))
        wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
        return (f"Intacct refused the sign-in of user \"{self.user_id}\" in company \"{self.company_id}\" "
                f"{self.failures} times in the last hour, and locks a user out after a few more. So we are not "
                f"trying again for {wait}: nothing was saved or sent. Meanwhile check the user ID and password "
                f"(Intacct e-mailed the password when the user was created; an administrator can reset it in "
                f"Company > Admin > Web Services users). If the credentials are right and you fixed something "
                f"else in Intacct, press \"Check again\" in {wait}: it uses the credentials we already have.")


def failed_sign_ins(organisation: Organisation, company_id: str, user_id: str) -> SignInLimit | None:
    """The limit this organisation reached for (company, user), or None while another sign-in may be tried."""
    if not settings.RATE_LIMIT_ENABLED or not company_id or not user_id:
        return None
    window = settings.CONNECT_RATE_LIMIT_WINDOW_SECONDS
    allowed = settings.CONNECT_FAILED_SIGN_INS_PER_USER
    now = timezone.now()
    times = sorted(ValidationCheck.objects.filter(
        key=LOGIN_CHECK, status=ValidationCheck.Status.FAILED,
        run__connection__organisation=organisation, run__created_at__gte=now - timedelta(seconds=window),
        run__connection__company_id__iexact=company_id, run__connection__user_id__iexact=user_id,
    ).values_list("run__created_at", flat=True))
    if len(times) < allowed:
        return None
    # The wait ends when enough of the failures leave the window for one more sign-in.
    freed_at = times[len(times) - allowed] + timedelta(seconds=window)
    return SignInLimit(company_id, user_id, len(times), max(1, math.ceil((freed_at - now).total_seconds())))


class RateLimitedLoginView(auth_views.LoginView):
    """Django's LoginView, refusing with 429 once the IP or the username has too many attempts."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        by_ip, by_account = login_limits()
        username = str(request.POST.get("username", ""))[:150]
        ip_check, account_check = (by_ip, _ip(request)), (by_account, username_key(request.POST.get("username")))
        wait = retry_after([ip_check, account_check] if account_check[1] else [ip_check])
        if wait is not None:
            # The password is not even checked; the username stays in the form.
            form = self.get_form_class()(request, initial={"username": username})
            messages.error(request, message(wait))
            return too_many(self.render_to_response(self.get_context_data(form=form)), wait)
        response = super().post(request, *args, **kwargs)
        failed = not request.user.is_authenticated
        count([ip_check, account_check] if failed and account_check[1] else [ip_check])
        return response


class RateLimitedPasswordResetView(auth_views.PasswordResetView):
    """Django's PasswordResetView, limited like login, whose e-mailed link is built from settings.SITE_URL.

    Django builds the link from the request's Host header; a forged Host would send a real token to the
    forger's site. The e-mail's `protocol` and `domain` come from SITE_URL instead (its context overrides).
    """

    @property
    def extra_email_context(self) -> dict:
        site = urlsplit(settings.SITE_URL)
        return {"protocol": site.scheme, "domain": site.netloc, "site_name": settings.PRODUCT_NAME}

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        by_ip, by_account = password_reset_limits()
        account = email_key(request.POST.get("email"))
        checks = [(by_ip, _ip(request))] + ([(by_account, account)] if account else [])
        wait = retry_after(checks)
        if wait is not None:
            # Nothing is sent; the address stays in the form.
            form = self.get_form_class()(initial={"email": str(request.POST.get("email", ""))[:254]})
            messages.error(request, message(wait))
            return too_many(self.render_to_response(self.get_context_data(form=form)), wait)
        count(checks)
        return super().post(request, *args, **kwargs)
