"""The simulated OAuth 2.0 server of Intacct's REST API: authorize page, token endpoint, revocation.

Published (docs/protocol-choices.md, "REST API"): ``/ia/api/v1/oauth2/authorize`` with response_type=code,
client_id, redirect_uri, state, scope=offline_access for a refresh token; ``/ia/api/v1/oauth2/token`` with
authorization_code, refresh_token and client_credentials (``username`` = ``user@company`` or
``user@company|entity``); JWT access tokens; an admin approving the request authorises the app's sender ID.
Not published, so ours and kept to RFC 6749 / 7009 / 7636: token lifetimes, error codes of the token endpoint,
the revocation endpoint's path, what revocation and withdrawn consent answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from simulator import company_rules
from simulator.models import (
    AuthorizationCode,
    Entity,
    OAuthGrant,
    RestApp,
    SimCompany,
    SimUser,
)
from simulator.services import authorize_sender, hash_password, password_matches

ISSUER = "https://api.intacct.com/ia/api/v1"
CODE_SECONDS = 600
OFFLINE_ACCESS = "offline_access"


# --- apps -----------------------------------------------------------------------------------------
def register_app(
    client_id: str,
    client_secret: str,
    sender_id: str,
    redirect_uris: list[str],
    *,
    access_token_seconds: int = 43200,
    refresh_token_seconds: int = 180 * 86400,
) -> RestApp:
    """Register (or update) an app in the simulated Sage App Registry."""
    app, _ = RestApp.objects.update_or_create(
        client_id=client_id,
        defaults={
            "client_secret_hash": hash_password(client_secret),
            "sender_id": sender_id,
            "redirect_uris": list(redirect_uris),
            "access_token_seconds": access_token_seconds,
            "refresh_token_seconds": refresh_token_seconds,
        },
    )
    return app


def settings_rest_app() -> RestApp:
    """Our own application, from INTACCT_REST_CLIENT_ID / INTACCT_REST_CLIENT_SECRET / INTACCT_REST_REDIRECT_URI
    (the demo and the tests register it, as the operator does in Sage's App Registry)."""
    return register_app(settings.INTACCT_REST_CLIENT_ID, settings.INTACCT_REST_CLIENT_SECRET,
                        settings.INTACCT_SENDER_ID, [settings.INTACCT_REST_REDIRECT_URI])


def withdraw_consent(company: SimCompany, client_id: str) -> int:
    """The company disconnects the app: every grant of it ends (its tokens stop working). Returns how many."""
    return OAuthGrant.objects.filter(company=company, app__client_id=client_id, revoked_reason="").update(
        revoked_reason="consent"
    )


def revoke_grants_of(user: SimUser) -> int:
    """An admin revokes every authorisation the user gave (the user's tokens stop working)."""
    return OAuthGrant.objects.filter(user=user, revoked_reason="").update(revoked_reason="revoked")


# --- tokens ---------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key() -> bytes:
    return hashlib.sha256(b"simulator-rest-jwt:" + settings.SECRET_KEY.encode()).digest()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def make_jwt(claims: dict[str, object]) -> str:
    """An HS256 JSON Web Token (Intacct's access tokens are JWTs; its signing key and claims are its own)."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(_key(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def read_jwt(token: str) -> dict[str, object] | None:
    """The claims of a token this simulator signed and that has not expired, else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        signature = _unb64(parts[2])
        expected = hmac.new(_key(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(signature, expected):
            return None
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, json.JSONDecodeError):
        return None
    if not isinstance(claims, dict) or float(claims.get("exp", 0)) <= time.time():
        return None
    return claims


@dataclass
class TokenAnswer:
    access_token: str
    expires_in: int
    refresh_token: str | None
    scope: str

    def json(self) -> dict[str, object]:
        body: dict[str, object] = {"token_type": "Bearer", "access_token": self.access_token,
                                   "expires_in": self.expires_in}
        if self.refresh_token:
            body["refresh_token"] = self.refresh_token
        if self.scope:
            body["scope"] = self.scope
        return body


def _access_token(grant: OAuthGrant) -> tuple[str, int]:
    lifetime = grant.app.access_token_seconds
    now = int(time.time())
    entity = grant.entity.entity_id if grant.entity else ""
    claims = {
        "iss": ISSUER, "sub": f"{grant.user.login_id}@{grant.company.company_id}" + (f"|{entity}" if entity else ""),
        "cnyId": grant.company.company_id, "entity": entity, "grant": grant.pk, "client_id": grant.app.client_id,
        "iat": now, "exp": now + lifetime, "jti": secrets.token_hex(8),
    }
    return make_jwt(claims), lifetime


def _issue(grant: OAuthGrant, *, with_refresh: bool, scope: str) -> TokenAnswer:
    refresh = None
    if with_refresh:
        refresh = secrets.token_urlsafe(32)
        grant.refresh_hash = _digest(refresh)
        grant.refresh_expires_at = timezone.now() + timedelta(seconds=grant.app.refresh_token_seconds)
        grant.save(update_fields=["refresh_hash", "refresh_expires_at", "refreshes"])
    access, lifetime = _access_token(grant)
    return TokenAnswer(access, lifetime, refresh, scope)


def grant_of_access_token(token: str) -> OAuthGrant | None:
    """The live grant behind an access token, or None (bad signature, expired, revoked, superseded)."""
    claims = read_jwt(token)
    if claims is None:
        return None
    grant = (
        OAuthGrant.objects.select_related("app", "company", "user", "entity")
        .filter(pk=claims.get("grant"), revoked_reason="")
        .first()
    )
    return grant


# --- token endpoint ---------------------------------------------------------------------------------
class OAuthError(Exception):
    """An RFC 6749 section 5.2 error answer."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def response(self) -> JsonResponse:
        answer = JsonResponse({"error": self.error, "error_description": self.description}, status=self.status)
        answer["Cache-Control"] = "no-store"
        if self.status == 401:
            answer["WWW-Authenticate"] = 'Basic realm="oauth2"'
        return answer


def _client(request: HttpRequest) -> RestApp:
    client_id = request.POST.get("client_id", "")
    client_secret = request.POST.get("client_secret", "")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_client", "Client authentication failed.", 401) from None
    app = RestApp.objects.filter(client_id=client_id).first()
    if app is None or not password_matches(client_secret, app.client_secret_hash):
        raise OAuthError("invalid_client", "Client authentication failed.", 401)
    return app


def _pkce_ok(verifier: str, challenge: str, method: str) -> bool:
    if not challenge:
        return True
    if not 43 <= len(verifier) <= 128:
        return False
    if method == "S256":
        computed = _b64(hashlib.sha256(verifier.encode()).digest())
    else:
        computed = verifier
    return hmac.compare_digest(computed, challenge)


def _supersede_older(grant: OAuthGrant) -> None:
    # A newer authorisation of the same app by the same user of the same company ends the older one: observed by
    # integrators and written up (docs/protocol-choices.md), not published by Sage.
    OAuthGrant.objects.filter(
        app=grant.app, company=grant.company, user=grant.user, kind="authorization_code", revoked_reason=""
    ).exclude(pk=grant.pk).update(revoked_reason="superseded")


def token_endpoint(request: HttpRequest) -> HttpResponse:
    """POST /ia/api/v1/oauth2/token (form-encoded)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        app = _client(request)
        grant_type = request.POST.get("grant_type", "")
        with transaction.atomic():
            if grant_type == "authorization_code":
                answer = _redeem_code(request, app)
            elif grant_type == "refresh_token":
                answer = _refresh(request, app)
            elif grant_type == "client_credentials":
                answer = _client_credentials(request, app)
            else:
                raise OAuthError("unsupported_grant_type", f"Grant type '{grant_type}' is not supported.")
    except OAuthError as exc:
        return exc.response()
    response = JsonResponse(answer.json())
    response["Cache-Control"] = "no-store"
    return response


def _redeem_code(request: HttpRequest, app: RestApp) -> TokenAnswer:
    code = request.POST.get("code", "")
    row = (
        AuthorizationCode.objects.select_for_update(of=("self",))
        .select_related("company", "user", "entity")
        .filter(code_hash=_digest(code), app=app)
        .first()
    )
    if row is None or row.used or row.expires_at <= timezone.now():
        raise OAuthError("invalid_grant", "The authorization code is invalid, expired or already used.")
    if row.redirect_uri != request.POST.get("redirect_uri", ""):
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request.")
    if not _pkce_ok(request.POST.get("code_verifier", ""), row.code_challenge, row.code_challenge_method):
        raise OAuthError("invalid_grant", "PKCE verification failed.")
    row.used = True
    row.save(update_fields=["used"])
    grant = OAuthGrant.objects.create(
        app=app, company=row.company, user=row.user, entity=row.entity, kind="authorization_code"
    )
    _supersede_older(grant)
    scopes = row.scope.split()
    return _issue(grant, with_refresh=OFFLINE_ACCESS in scopes, scope=row.scope)


def _refresh(request: HttpRequest, app: RestApp) -> TokenAnswer:
    token = request.POST.get("refresh_token", "")
    grant = (
        OAuthGrant.objects.select_for_update(of=("self",))
        .select_related("app", "company", "user", "entity")
        .filter(app=app, refresh_hash=_digest(token))
        .first()
        if token
        else None
    )
    if grant is None:
        # Unknown, or replaced by a rotation: a refresh token works once.
        raise OAuthError("invalid_grant", "The refresh token is invalid or was already used.")
    if grant.revoked_reason == "consent":
        raise OAuthError("unauthorized_client", "The company withdrew its consent for this application.")
    if grant.revoked_reason:
        raise OAuthError("invalid_grant", "The refresh token was revoked.")
    if grant.refresh_expires_at is not None and grant.refresh_expires_at <= timezone.now():
        raise OAuthError("invalid_grant", "The refresh token has expired.")
    if grant.user.status != "active":
        raise OAuthError("invalid_grant", "The user who authorized this application is not active.")
    grant.refreshes += 1
    return _issue(grant, with_refresh=True, scope=OFFLINE_ACCESS)


def split_username(username: str) -> tuple[str, str, str]:
    """``user@company|entity`` -> (user, company, entity); the entity part is optional."""
    who, _, entity = username.partition("|")
    user, _, company = who.rpartition("@")
    return user.strip(), company.strip(), entity.strip()


def _client_credentials(request: HttpRequest, app: RestApp) -> TokenAnswer:
    user_id, company_id, entity_id = split_username(request.POST.get("username", ""))
    if not user_id or not company_id:
        raise OAuthError("invalid_request", "username must be user@company or user@company|entity.")
    company = SimCompany.objects.filter(company_id__iexact=company_id).first()
    user = SimUser.objects.filter(company=company, login_id__iexact=user_id).first() if company else None
    if company is None or user is None or user.status != "active":
        raise OAuthError("invalid_grant", "The user or company in username is not valid.")
    if not user.is_web_services_user:
        raise OAuthError("invalid_grant", "Client credentials need a Web Services user.")
    entity = None
    if entity_id:
        entity = Entity.objects.filter(company=company, entity_id=entity_id).first()
        allowed = list(user.entities.all())
        if entity is None or (allowed and entity not in allowed):
            raise OAuthError("invalid_grant", f"Entity '{entity_id}' is not valid for this user.")
    grant = OAuthGrant.objects.create(app=app, company=company, user=user, entity=entity, kind="client_credentials")
    return _issue(grant, with_refresh=False, scope="")


def revoke_endpoint(request: HttpRequest) -> HttpResponse:
    """POST /ia/api/v1/oauth2/revoke: RFC 7009 (an unknown token is answered 200 as well)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        app = _client(request)
    except OAuthError as exc:
        return exc.response()
    token = request.POST.get("token", "")
    grant = OAuthGrant.objects.filter(app=app, refresh_hash=_digest(token)).first() if token else None
    if grant is None:
        found = grant_of_access_token(token)
        grant = found if found is not None and found.app_id == app.pk else None
    if grant is not None and not grant.revoked_reason:
        grant.revoked_reason = "revoked"
        grant.save(update_fields=["revoked_reason"])
    return HttpResponse(status=200)


# --- authorize page -----------------------------------------------------------------------------------
def _error_redirect(redirect_uri: str, state: str, error: str, description: str) -> HttpResponse:
    query = urlencode({"error": error, "error_description": description, **({"state": state} if state else {})})
    return HttpResponseRedirect(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}")


def authorize(request: HttpRequest) -> HttpResponse:
    """GET shows the sign-in form, POST ``step=signin`` the consent page, POST ``step=consent`` redirects back."""
    params = request.GET if request.method == "GET" else request.POST
    fields = {k: params.get(k, "") for k in ("response_type", "client_id", "redirect_uri", "state", "scope",
                                             "code_challenge", "code_challenge_method")}
    app = RestApp.objects.filter(client_id=fields["client_id"]).first()
    if app is None or fields["redirect_uri"] not in app.redirect_uris:
        # RFC 6749 4.1.2.1: never redirect to an unverified URI; tell the person instead.
        return render(request, "simulator/oauth_error.html",
                      {"message": "This application or its redirect URI is not registered."}, status=400)
    if fields["response_type"] != "code":
        return _error_redirect(fields["redirect_uri"], fields["state"], "unsupported_response_type",
                               "Only response_type=code is supported.")
    if fields["code_challenge_method"] not in ("", "S256", "plain"):
        return _error_redirect(fields["redirect_uri"], fields["state"], "invalid_request",
                               "code_challenge_method must be S256 or plain.")
    context: dict[str, object] = {"fields": fields, "app": app}
    if request.method == "GET":
        return render(request, "simulator/oauth_authorize.html", {**context, "step": "signin"})
    step = request.POST.get("step")
    company = SimCompany.objects.filter(company_id__iexact=request.POST.get("company_id", "").strip()).first()
    user = (SimUser.objects.filter(company=company, login_id__iexact=request.POST.get("user_id", "").strip()).first()
            if company else None)
    if step == "signin":
        password = request.POST.get("password", "")
        if user is None or not password_matches(password, user.password_hash):
            if company is not None and user is not None:
                company_rules.sign_in_failed(company, user)
            return render(request, "simulator/oauth_authorize.html",
                          {**context, "step": "signin", "error": "Sign-in information is incorrect."}, status=200)
        if user.status != "active":
            return render(request, "simulator/oauth_authorize.html",
                          {**context, "step": "signin", "error": f"The user is {user.status}."}, status=200)
        company_rules.sign_in_succeeded(user)
        signed = _sign_identity(company.pk, user.pk, request.POST.get("entity_id", "").strip())
        return render(request, "simulator/oauth_authorize.html", {
            **context, "step": "consent", "company": company, "user": user, "identity": signed,
            "is_admin": user.admin_privileges == "Full",
        })
    if step == "consent":
        identity = _read_identity(request.POST.get("identity", ""))
        if identity is None:
            return render(request, "simulator/oauth_error.html",
                          {"message": "The sign-in expired; start again."}, status=400)
        company = SimCompany.objects.get(pk=identity["company"])
        user = SimUser.objects.get(pk=identity["user"])
        if request.POST.get("decision") != "accept":
            return _error_redirect(fields["redirect_uri"], fields["state"], "access_denied",
                                   "The user declined the authorization request.")
        entity = Entity.objects.filter(company=company, entity_id=identity["entity"]).first() \
            if identity["entity"] else None
        if user.admin_privileges == "Full":
            # Sage: approving as an admin user adds the app's sender ID to the company's Web Services
            # authorizations (the same list the XML gateway checks).
            authorize_sender(company, app.sender_id)
        code = secrets.token_urlsafe(32)
        AuthorizationCode.objects.create(
            code_hash=_digest(code), app=app, company=company, user=user, entity=entity,
            redirect_uri=fields["redirect_uri"], scope=fields["scope"], code_challenge=fields["code_challenge"],
            code_challenge_method=fields["code_challenge_method"] or ("plain" if fields["code_challenge"] else ""),
            expires_at=timezone.now() + timedelta(seconds=CODE_SECONDS),
        )
        query = urlencode({"code": code, **({"state": fields["state"]} if fields["state"] else {})})
        uri = fields["redirect_uri"]
        return HttpResponseRedirect(f"{uri}{'&' if '?' in uri else '?'}{query}")
    return render(request, "simulator/oauth_error.html", {"message": "Unknown step."}, status=400)


def _sign_identity(company_pk: int, user_pk: int, entity: str) -> str:
    from django.core import signing

    return signing.dumps({"company": company_pk, "user": user_pk, "entity": entity}, salt="simulator-oauth")


def _read_identity(text: str) -> dict[str, object] | None:
    from django.core import signing

    try:
        return signing.loads(text, salt="simulator-oauth", max_age=CODE_SECONDS)
    except signing.BadSignature:
        return None
