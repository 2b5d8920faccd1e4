"""The platform's JSON status API, beside the records API of wizard.records and with its access check.

GET /api/v1/organisations/<slug>/status/ with "Authorization: Bearer <token>" (an ApiToken of that
organisation): the connection's status, its last validation with every check result, and the last sync
of each object. Identifiers are masked; no password, session id or key is ever in a response.
"""
from __future__ import annotations

from django.db.models import Max
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from connector.masking import mask
from connector.models import Connection, SyncObjectRun, SyncRun, ValidationCheck
from wizard.dashboard import endpoint_label
from wizard.records import api_view

# Per-object figures come from this many recent runs (each run normally covers every object).
RECENT_SYNC_RUNS = 50


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


@never_cache
@require_GET
@api_view
def connection_status(request: HttpRequest, connection: Connection) -> JsonResponse:
    """The organisation's connection: status, last validation with checks, last sync per object."""
    connection = (Connection.objects.select_related("organisation", "summary", "last_validation")
                  .defer("password_token", "rest_refresh_token", "rest_access_token").get(id=connection.id))
    summary = getattr(connection, "summary", None)
    run = connection.last_validation
    endpoint_kind, _ = endpoint_label()
    body = {
        "organisation": {"slug": connection.organisation.slug, "name": connection.organisation.name},
        "connection": {
            "status": connection.status,
            "status_since": _iso(connection.status_changed_at),
            "failing_check": connection.status_check,
            # Why it fails, in the words the admin and support see (connector.diagnosis), and its cause key.
            "cause": connection.status_cause,
            "message": connection.status_message,
            "company_id": mask(connection.company_id),
            "user_id": mask(connection.user_id),
            "endpoint": endpoint_kind.lower(),
            "last_successful_sync_at": _iso(summary.last_successful_sync_at) if summary else None,
            "records_held": summary.records_held if summary else 0,
            "intacct_errors_24h": summary.errors_24h if summary else 0,
        },
        "last_validation": None,
        "last_sync_per_object": _last_sync_per_object(connection),
    }
    if run is not None:
        body["last_validation"] = {
            "id": run.id, "status": run.status, "trigger": run.trigger, "created_at": _iso(run.created_at),
            "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at), "summary": run.summary,
            "failed_check": run.failed_check, "failed_step": run.failed_step,
            "checks": [{"key": c.key, "label": c.label, "status": c.status, "message": c.message,
                        "wizard_step": c.wizard_step, "duration_ms": c.duration_ms,
                        "intacct_error": ({"errorno": c.errorno, "description": c.description,
                                           "description2": c.description2, "correction": c.correction}
                                          if c.errorno else None)}
                       for c in ValidationCheck.objects.filter(run=run)],
        }
    return JsonResponse(body)


def _last_sync_per_object(connection: Connection) -> list[dict]:
    recent = SyncRun.objects.filter(connection=connection).order_by("-created_at", "-id").values("id")[
        :RECENT_SYNC_RUNS]
    latest = (SyncObjectRun.objects.filter(run_id__in=recent).values("object_name").annotate(last=Max("id"))
              .values("last"))
    rows = SyncObjectRun.objects.filter(id__in=latest).select_related("run").order_by("object_name")
    return [{"object": row.object_name, "status": row.status, "mode": row.mode, "run_id": row.run_id,
             "run_kind": row.run.kind, "started_at": _iso(row.started_at), "finished_at": _iso(row.finished_at),
             "records_read": row.records_read, "records_created": row.records_created,
             "records_updated": row.records_updated, "records_deleted": row.records_deleted,
             "requests": row.requests, "message": row.message, "errorno": row.errorno}
            for row in rows]
