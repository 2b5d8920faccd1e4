"""/healthz for load balancers and orchestrators, /metrics for Prometheus. Neither needs a login.

/healthz answers 200 when the database, the broker and a worker heartbeat (written by each worker itself)
are fine, else 503, with the detail as JSON (never a URL or a password); beat's last tick is reported beside
them ("beat_ok", checks.beat) without failing the web process's health. /metrics is the Prometheus text
format; when METRICS_TOKEN is set it wants that bearer token.
"""
from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from connector import health
from connector.metrics import metrics_text

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report = health.health_report()
    return JsonResponse(report, status=200 if report["ok"] else 503)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if settings.METRICS_TOKEN:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), settings.METRICS_TOKEN.encode()):
            return HttpResponse("Unauthorized\n", status=401, content_type="text/plain",
                                headers={"WWW-Authenticate": "Bearer"})
    return HttpResponse(metrics_text(), content_type=PROMETHEUS_CONTENT_TYPE)
