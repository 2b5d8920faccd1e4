"""Webhook endpoints: the organisation admin's pages (register, rotate, delivery log with resend; support
reads the log and may resend) and the same through the JSON API with the organisation's token.

The API's writes (create, rotate, delete) take the organisation's bearer token only: a browser session never
writes through the API (the pages, with their CSRF token, are for people).
"""
from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from connector import services, webhooks
from connector.models import ApiToken, Organisation, WebhookEndpoint, WebhookMessage
from connector.models.webhooks import EVENT_TYPES
from wizard.access import client_ip, organisation_access
from wizard.records import api_view

LOG_LENGTH = 100


def _endpoint(organisation: Organisation, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(organisation=organisation, pk=endpoint_id).first()
    if endpoint is None:
        raise Http404("No such endpoint.")
    return endpoint


# --- pages ------------------------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def webhook_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = organisation_access(request, slug)
    new_secret, error, form = None, None, {"url": "", "description": "", "events": list(EVENT_TYPES)}
    if request.method == "POST":
        form = {"url": request.POST.get("url", ""), "description": request.POST.get("description", ""),
                "events": request.POST.getlist("events")}
        try:
            endpoint, new_secret = webhooks.endpoint_create(organisation=access.organisation, url=form["url"],
                                                            events=form["events"],
                                                            description=form["description"], by=request.user)
        except webhooks.EndpointRefused as exc:
            error = str(exc)
        else:
            services.audit_record(organisation=access.organisation, connection=access.connection,
                                  action="webhook_created", user=request.user, ip=client_ip(request),
                                  details={"endpoint": endpoint.pk, "url": endpoint.url, "events": endpoint.events})
            form = {"url": "", "description": "", "events": list(EVENT_TYPES)}
    return render(request, "wizard/webhooks/list.html", {
        "organisation": access.organisation, "can_write": access.can_write, "new_secret": new_secret,
        "error": error, "form": form, "event_types": EVENT_TYPES,
        "endpoints": WebhookEndpoint.objects.filter(organisation=access.organisation),
    })


@login_required
@require_http_methods(["GET", "POST"])
def webhook_detail(request: HttpRequest, slug: str, endpoint_id: int) -> HttpResponse:
    """The endpoint and its delivery log; POST (org admin): rotate the secret, disable, enable, delete."""
    access = organisation_access(request, slug)
    endpoint = _endpoint(access.organisation, endpoint_id)
    new_secret = None
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action == "rotate":
            new_secret = webhooks.secret_rotate(endpoint)
        elif action == "disable":
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
                enabled=False, disabled_reason=f"Disabled by {request.user.get_username()} "
                                               f"{timezone.now():%Y-%m-%d %H:%M} UTC.")
            messages.success(request, "Endpoint disabled: nothing is sent to it until you enable it.")
        elif action == "enable":
            webhooks.endpoint_enable(endpoint)
            messages.success(request, "Endpoint enabled.")
        elif action == "delete":
            endpoint.delete()
            messages.success(request, "Endpoint deleted.")
            return redirect("webhook_list", slug)
        else:
            messages.error(request, "Unknown action.")
        if action in ("rotate", "disable", "enable"):
            services.audit_record(organisation=access.organisation, connection=access.connection,
                                  action=f"webhook_{action}", user=request.user, ip=client_ip(request),
                                  details={"endpoint": endpoint.pk})
        endpoint.refresh_from_db()
    return render(request, "wizard/webhooks/detail.html", {
        "organisation": access.organisation, "can_write": access.can_write, "endpoint": endpoint,
        "new_secret": new_secret, "log": endpoint.messages.all()[:LOG_LENGTH],
    })


@login_required
@require_POST
def webhook_resend(request: HttpRequest, slug: str, endpoint_id: int, message_id: int) -> HttpResponse:
    """Send a message again with the same webhook-id (org admins and support: it changes no setting)."""
    access = organisation_access(request, slug, write=False)
    endpoint = _endpoint(access.organisation, endpoint_id)
    message = WebhookMessage.objects.filter(endpoint=endpoint, pk=message_id).first()
    if message is None:
        raise Http404("No such message.")
    if not endpoint.enabled:
        messages.error(request, "The endpoint is disabled: enable it first, then resend.")
    else:
        webhooks.resend(message)
        services.audit_record(organisation=access.organisation, connection=access.connection,
                              action="webhook_resent", user=request.user, ip=client_ip(request),
                              details={"endpoint": endpoint.pk, "message": message.msg_id})
        messages.success(request, f"Message {message.msg_id} queued again.")
    return redirect("webhook_detail", slug, endpoint.pk)


# --- JSON API ---------------------------------------------------------------------------------------------

def endpoint_json(endpoint: WebhookEndpoint) -> dict:
    return {"id": endpoint.pk, "url": endpoint.url, "description": endpoint.description, "events": endpoint.events,
            "enabled": endpoint.enabled, "disabled_reason": endpoint.disabled_reason,
            "created_at": endpoint.created_at.isoformat(),
            "previous_secret_until": (endpoint.previous_secret_until.isoformat()
                                      if endpoint.previous_secret_until else None)}


def message_json(message: WebhookMessage) -> dict:
    return {"id": message.pk, "webhook_id": message.msg_id, "event_type": message.event_type,
            "status": message.status, "attempts": message.attempts, "created_at": message.created_at.isoformat(),
            "last_attempt_at": message.last_attempt_at.isoformat() if message.last_attempt_at else None,
            "next_attempt_at": message.next_attempt_at.isoformat() if message.next_attempt_at else None,
            "last_status_code": message.last_status_code, "last_latency_ms": message.last_latency_ms,
            "last_error": message.last_error}


def _token_organisation(request: HttpRequest, slug: str) -> Organisation | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Bearer "):
        return None
    token = ApiToken.objects.select_related("organisation").filter(
        key_hash=ApiToken.hash(header[7:].strip()), revoked_at__isnull=True).first()
    if token is None or token.organisation.slug != slug:
        return None
    return token.organisation


def _denied_write() -> JsonResponse:
    return JsonResponse({"error": "Changing webhooks through the API needs this organisation's API token "
                                  "(Authorization: Bearer ...)."}, status=401)


def _body(request: HttpRequest) -> dict | None:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


@csrf_exempt  # writes need the bearer token (checked first); a session never writes here
@never_cache
@require_http_methods(["GET", "POST"])
def api_webhooks(request: HttpRequest, slug: str) -> HttpResponse:
    if request.method == "GET":
        return _api_webhook_list(request, slug)
    organisation = _token_organisation(request, slug)
    if organisation is None:
        return _denied_write()
    body = _body(request)
    if body is None:
        return JsonResponse({"error": "Send a JSON object: {\"url\": ..., \"events\": [...]}."}, status=400)
    try:
        endpoint, secret = webhooks.endpoint_create(organisation=organisation, url=str(body.get("url") or ""),
                                                    events=body.get("events") if isinstance(body.get("events"), list)
                                                    else [], description=str(body.get("description") or ""))
    except webhooks.EndpointRefused as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    services.audit_record(organisation=organisation, connection=None, action="webhook_created", user=None,
                          ip=client_ip(request), details={"endpoint": endpoint.pk, "url": endpoint.url,
                                                          "by": "api token"})
    return JsonResponse({**endpoint_json(endpoint), "secret": secret}, status=201)


@api_view
def _api_webhook_list(request: HttpRequest, connection) -> JsonResponse:
    return JsonResponse({"webhooks": [endpoint_json(e) for e in
                                      WebhookEndpoint.objects.filter(organisation_id=connection.organisation_id)]})


@csrf_exempt
@never_cache
@require_http_methods(["GET", "DELETE"])
def api_webhook(request: HttpRequest, slug: str, endpoint_id: int) -> HttpResponse:
    if request.method == "GET":
        return _api_webhook_show(request, slug, endpoint_id)
    organisation = _token_organisation(request, slug)
    if organisation is None:
        return _denied_write()
    _endpoint(organisation, endpoint_id).delete()
    return HttpResponse(status=204)


@api_view
def _api_webhook_show(request: HttpRequest, connection, endpoint_id: int) -> JsonResponse:
    endpoint = _endpoint(connection.organisation, endpoint_id)
    return JsonResponse({**endpoint_json(endpoint),
                         "messages": [message_json(m) for m in endpoint.messages.all()[:LOG_LENGTH]]})


@csrf_exempt
@never_cache
@require_POST
def api_webhook_rotate(request: HttpRequest, slug: str, endpoint_id: int) -> HttpResponse:
    organisation = _token_organisation(request, slug)
    if organisation is None:
        return _denied_write()
    endpoint = _endpoint(organisation, endpoint_id)
    secret = webhooks.secret_rotate(endpoint)
    return JsonResponse({**endpoint_json(endpoint), "secret": secret})
