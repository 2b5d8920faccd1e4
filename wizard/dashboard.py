"""The support dashboard: every connection across organisations, one connection in depth, and three actions.

Support staff and superusers only (wizard.access.support_access); everyone else gets 404. Each page
runs a fixed number of queries whatever the number of connections or the length of their history: the
list reads the denormalised ConnectionSummary and StatusDay rows, the detail page reads bounded slices.
Secrets are never selected (password_token is deferred) and never rendered.
"""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from connector import requeue, services, support, sync
from connector.masking import mask
from connector.models import (
    AuditEvent,
    Connection,
    ConnectionStatusChange,
    Membership,
    StepCompletion,
    SyncObjectRun,
    SyncRun,
    ValidationCheck,
    ValidationRun,
)
from connector.validation import CHECK_LABELS
from wizard import csv_export
from wizard.access import client_ip, support_access
from wizard.dashboard_chart import status_chart
from wizard.dashboard_queries import SORTS, base_queryset, connections_filtered
from wizard.steps import STEPS

HISTORY_ROWS = 20
AUDIT_ROWS = 50
class StepLinkForm(forms.Form):
    step = forms.TypedChoiceField(coerce=int, choices=[(s.number, f"{s.number}. {s.title}") for s in STEPS])


def endpoint_label() -> tuple[str, str]:
    """("Simulator" or "Production", host) for the configured Intacct endpoint (no path, no secret)."""
    url = settings.INTACCT_ENDPOINT_URL
    host = urlsplit(url).hostname or ""
    if settings.SIMULATOR_GATEWAY_PATH in url and not host.endswith(".intacct.com"):
        return "Simulator", host
    return "Production", host


# --- Pages ----------------------------------------------------------------------------------

@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """Every connection: filters, search, sort, paging, summary counts and 30 days of status."""
    support_access(request)
    now = timezone.now()
    queryset, form = connections_filtered(request.GET, now=now)
    # Sort and slice ids only (a narrow sort), then load the page's rows with their joins.
    page = Paginator(queryset.values_list("id", flat=True), settings.DASHBOARD_PAGE_SIZE).get_page(
        request.GET.get("page"))
    ids = list(page.object_list)
    loaded = {connection.id: connection for connection in base_queryset().filter(id__in=ids)}
    counts = dict(Connection.objects.values("status").annotate(n=Count("id")).values_list("status", "n"))
    summary = {
        "connected": counts.get(Connection.Status.CONNECTED, 0),
        "needs_attention": counts.get(Connection.Status.NEEDS_ATTENTION, 0),
        "broken": counts.get(Connection.Status.BROKEN, 0),
        "in_setup": sum(counts.get(status, 0) for status in Connection.SETUP_STATUSES),
        "disconnected": counts.get(Connection.Status.DISCONNECTED, 0),
        "total": sum(counts.values()),
    }
    stale_before = now - timedelta(hours=settings.STALE_SYNC_HOURS)
    rows = [_row(loaded[connection_id], stale_before) for connection_id in ids if connection_id in loaded]
    query = {key: value for key, value in request.GET.items() if key != "page" and value}
    return render(request, "dashboard/list.html", {
        "form": form, "page": page, "rows": rows, "summary": summary,
        "chart": status_chart(live_counts=counts, today=timezone.localdate(now)),
        "query_string": urlencode(query), "sort_links": _sort_links(request.GET),
        "current_sort": request.GET.get("sort") or "organisation",
    })


def _row(connection: Connection, stale_before) -> dict:
    summary = getattr(connection, "summary", None)
    run = connection.last_validation
    failed_check = getattr(run, "failed_check", "") if run else ""
    last_sync = summary.last_successful_sync_at if summary else None
    return {
        "connection": connection,
        "organisation": connection.organisation,
        "masked_company_id": mask(connection.company_id),
        "run": run,
        "failed_check": failed_check,
        "failed_check_label": CHECK_LABELS.get(failed_check, failed_check),
        "last_sync": last_sync,
        "stale": connection.status in Connection.LIVE_STATUSES and (last_sync is None or last_sync < stale_before),
        "records": summary.records_held if summary else 0,
        "errors": summary.errors_24h if summary else 0,
    }


def _sort_links(params) -> dict[str, str]:
    current = params.get("sort") or "organisation"
    links = {}
    for key in SORTS:
        query = {k: v for k, v in params.items() if k not in ("sort", "page") and v}
        query["sort"] = f"-{key}" if current == key else key
        links[key] = "?" + urlencode(query)
    return links


@login_required
@require_GET
def dashboard_export(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered list as CSV (the same columns as the page; never a secret)."""
    support_access(request)
    now = timezone.now()
    queryset, _ = connections_filtered(request.GET, now=now)
    stale_before = now - timedelta(hours=settings.STALE_SYNC_HOURS)

    header = ["organisation", "slug", "company_id", "status", "status_since", "last_validation",
              "last_validation_at", "failing_check", "last_successful_sync", "stale_sync", "records_held",
              "errors_24h"]

    def rows():
        for connection in queryset.iterator(chunk_size=2000):
            row = _row(connection, stale_before)
            run = row["run"]
            yield [connection.organisation.name, connection.organisation.slug, row["masked_company_id"],
                   connection.status, connection.status_changed_at.isoformat(), run.status if run else "",
                   run.finished_at.isoformat() if run and run.finished_at else "", row["failed_check"],
                   row["last_sync"].isoformat() if row["last_sync"] else "", "yes" if row["stale"] else "no",
                   row["records"], row["errors"]]

    return csv_export.response(header, rows(), filename="connections.csv")


@login_required
@require_GET
def dashboard_connection(request: HttpRequest, connection_id: int) -> HttpResponse:
    """One connection in depth: checklist with Intacct's raw errors, wizard progress, history, audit log."""
    support_access(request)
    connection = get_object_or_404(base_queryset(), id=connection_id)
    organisation = connection.organisation
    run = connection.last_validation
    checks = list(ValidationCheck.objects.filter(run=run)) if run else []
    steps_done = {done.step: done for done in StepCompletion.objects.filter(connection=connection)
                  .select_related("done_by")}
    validation_runs = list(ValidationRun.objects.filter(connection=connection).select_related("requested_by")
                           .order_by("-created_at", "-id")[:HISTORY_ROWS])
    sync_runs = list(SyncRun.objects.filter(connection=connection).order_by("-created_at", "-id")[:HISTORY_ROWS])
    # SyncObjectRun's related_name ("objects") is hidden by the manager on instances: group them here.
    per_run: dict[int, list[SyncObjectRun]] = {}
    for object_run in SyncObjectRun.objects.filter(run__in=[r.id for r in sync_runs]).order_by("position", "id"):
        per_run.setdefault(object_run.run_id, []).append(object_run)
    status_changes = list(ConnectionStatusChange.objects.filter(connection=connection)
                          .order_by("-changed_at", "-id")[:HISTORY_ROWS])
    audit_events = list(AuditEvent.objects.filter(organisation=organisation).select_related("actor")
                        .order_by("-created_at", "-id")[:AUDIT_ROWS])
    admins = [m.user for m in Membership.objects.filter(organisation=organisation, role=Membership.ORG_ADMIN)
              .select_related("user")]
    endpoint_kind, endpoint_host = endpoint_label()
    return render(request, "dashboard/connection.html", {
        "connection": connection, "organisation": organisation, "summary": getattr(connection, "summary", None),
        "run": run, "checks": checks, "check_labels": CHECK_LABELS,
        "steps": [(step, steps_done.get(step.number)) for step in STEPS],
        "validation_runs": validation_runs,
        "sync_runs": [(run, per_run.get(run.id, [])) for run in sync_runs], "status_changes": status_changes,
        "audit_events": [(event, _details_shown(event.details)) for event in audit_events], "admins": admins,
        "masked_company_id": mask(connection.company_id), "masked_user_id": mask(connection.user_id),
        "endpoint_kind": endpoint_kind, "endpoint_host": endpoint_host,
        "step_link_form": StepLinkForm(initial={"step": (run.failed_step if run and run.failed_step else 1)}),
        "stale_hours": settings.STALE_SYNC_HOURS,
    })


MASKED_DETAILS = {"company_id", "user_id", "from", "to"}


def _details_shown(details: dict) -> list[tuple[str, str]]:
    """An audit event's details for the page, identifiers masked like everywhere else on it."""
    shown = []
    for key, value in (details or {}).items():
        text = str(value)
        shown.append((key, mask(text) if key in MASKED_DETAILS and isinstance(value, str) else text))
    return shown


# --- Actions (each one audited) -------------------------------------------------------------

def _connection_for_action(request: HttpRequest, connection_id: int) -> Connection:
    support_access(request)
    return get_object_or_404(Connection.objects.select_related("organisation")
                             .defer("password_token", "rest_refresh_token", "rest_access_token"),
                             id=connection_id)


@login_required
@require_POST
def dashboard_revalidate(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = _connection_for_action(request, connection_id)
    if not connection.has_credentials:
        messages.error(request, "This connection has no credentials to check yet.")
    else:
        run = services.validation_request(connection=connection, by=request.user, ip=client_ip(request))
        if requeue.is_unsent(run):
            messages.warning(request, requeue.CHECK_SAVED_QUEUE_DOWN)
        else:
            messages.success(request, "Re-validation queued.")
    return redirect("dashboard_connection", connection.id)


@login_required
@require_POST
def dashboard_sync(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = _connection_for_action(request, connection_id)
    if not sync.can_sync(connection):
        messages.error(request, "Only a connection with credentials that is connected (or failing) can sync.")
        return redirect("dashboard_connection", connection.id)
    # sync_request audits a newly queued run itself; joining a running one is audited here.
    run, queued = services.sync_request(connection=connection, by=request.user, ip=client_ip(request))
    if requeue.is_unsent(run):
        messages.warning(request, requeue.SYNC_SAVED_QUEUE_DOWN)
    elif queued:
        messages.success(request, f"Sync #{run.id} queued.")
    else:
        services.audit_record(organisation=connection.organisation, connection=connection,
                              action="support.sync_joined", user=request.user, ip=client_ip(request),
                              details={"run": run.id})
        messages.info(request, f"Sync #{run.id} is already queued or running; it will bring the data up to date.")
    return redirect("dashboard_connection", connection.id)


@login_required
@require_POST
def dashboard_step_link(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = _connection_for_action(request, connection_id)
    form = StepLinkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a step.")
        return redirect("dashboard_connection", connection.id)
    sent = support.step_link_send(connection=connection, step=form.cleaned_data["step"], by=request.user,
                                     ip=client_ip(request))
    if sent:
        messages.success(request, f"Link to step {form.cleaned_data['step']} sent to {sent} admin(s).")
    else:
        messages.error(request, "This organisation has no admin with an e-mail address.")
    return redirect("dashboard_connection", connection.id)
