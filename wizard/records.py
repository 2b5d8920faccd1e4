"""Synced data pages: sync now and its live status, browsing and CSV per object, deprovisioning, the JSON API.

Every page goes through wizard.access.organisation_access (org admin read/write, support read-only,
others 404). The JSON API also accepts an organisation's bearer token (ApiToken) instead of a session.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from datetime import date

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connector import deprovision, objects, requeue, services, sync
from connector.intacct import timestamps
from connector.models import Connection, Organisation, Record, SyncRun
from wizard import csv_export
from wizard.access import OrgAccess, client_ip, organisation_access

BROWSE_PAGE_SIZE = 50
API_PAGE_SIZE = 500
API_MAX_PAGE_SIZE = 2000
CSV_CHUNK = 2000


def _definition(name: str) -> objects.ObjectDefinition:
    definition = objects.object_for(name)
    if definition is None:
        raise Http404("No such object.")
    return definition


# --- the connection page's sync section ------------------------------------------------------

def sync_section_context(connection: Connection) -> dict:
    """What the sync section of the connection page shows (also served as JSON while a sync runs)."""
    runs = list(connection.sync_runs.prefetch_related("object_runs")[:20])
    latest = runs[0] if runs else None
    last_finished = next((r for r in runs if r.is_finished), None)
    chart = _chart(list(reversed([r for r in runs if r.is_finished][:12])))
    counts = _record_counts(connection)
    return {
        "sync_latest": latest, "sync_last_finished": last_finished, "sync_runs": runs[:8], "sync_chart": chart,
        "sync_calls_month": sync.month_api_calls(connection), "sync_allowance": sync.monthly_allowance(connection),
        "sync_objects": [(d, counts.get(d.name, 0)) for d in objects.OBJECTS],
        "sync_can_run": sync.can_sync(connection), "sync_poll_ms": settings.SYNC_POLL_INTERVAL_MS,
        "sync_in_maintenance": sync.in_maintenance_window(),
        "sync_last_kind": sync_kind_words(last_finished),
    }


def sync_kind_words(run: SyncRun | None) -> str:
    """What a finished sync really did: an "incremental" run with no cursor yet read everything (the first sync)."""
    if run is None:
        return ""
    modes = {object_run.mode for object_run in run.object_runs.all()} - {""}
    if run.kind == SyncRun.Kind.INCREMENTAL and modes == {"full"}:
        return "first (full)"
    return run.get_kind_display().lower()


def _record_counts(connection: Connection) -> dict[str, int]:
    rows = (Record.objects.filter(connection=connection, deleted_at__isnull=True)
            .values("object_name").annotate(n=Count("id")))
    return {row["object_name"]: row["n"] for row in rows}


def _chart(runs: list[SyncRun]) -> dict:
    """An inline SVG bar chart of recent runs: bar height = API calls, colour = outcome."""
    width, height, gap = 240, 60, 4
    if not runs:
        return {"bars": [], "width": width, "height": height}
    bar = max(4, (width - gap * (len(runs) - 1)) // max(1, len(runs)))
    top = max(max(r.requests for r in runs), 1)
    bars = []
    for index, run in enumerate(runs):
        h = max(2, int((height - 2) * run.requests / top))
        bars.append({"x": index * (bar + gap), "y": height - h, "w": bar, "h": h, "status": run.status,
                     "title": f"#{run.pk} {run.get_kind_display()} {run.get_status_display()}: {run.requests} calls, "
                              f"{run.records_read} records, {run.duration_ms / 1000:.1f}s"})
    return {"bars": bars, "width": width, "height": height}


@login_required
@require_POST
def sync_now(request: HttpRequest, slug: str) -> HttpResponse:
    access = organisation_access(request, slug)
    if not sync.can_sync(access.connection):
        messages.error(request, "The connection is not connected yet: validate it first.")
        return redirect(reverse("connection", args=[slug]) + "#sync")
    kind = request.POST.get("kind", SyncRun.Kind.INCREMENTAL)
    if kind not in SyncRun.Kind.values:
        kind = SyncRun.Kind.INCREMENTAL
    run, queued = services.sync_request(connection=access.connection, kind=kind, by=request.user, ip=client_ip(request))
    if requeue.is_unsent(run):
        messages.warning(request, requeue.SYNC_SAVED_QUEUE_DOWN)
    elif queued:
        messages.success(request, "Sync started.")
    else:
        messages.info(request, f"A sync is already under way (#{run.pk}); this request joined it.")
    return redirect(reverse("connection", args=[slug]) + "#sync")


@login_required
@require_GET
def sync_status(request: HttpRequest, slug: str) -> JsonResponse:
    """The latest run and its per-object progress (polled by the connection page while a sync runs)."""
    access = organisation_access(request, slug, write=False)
    run = access.connection.sync_runs.first()
    if run is None:
        return JsonResponse({"run": None})
    return JsonResponse({"run": {
        "id": run.pk, "kind": run.kind, "status": run.status, "finished": run.is_finished, "summary": run.summary,
        "requests": run.requests, "records_read": run.records_read,
        "objects": [{"name": o.object_name, "status": o.status, "percent": o.percent, "read": o.records_read,
                     "expected": o.expected_total, "message": o.message} for o in run.object_runs.all()],
    }})


# --- browsing and CSV ------------------------------------------------------------------------

def _records(connection: Connection, definition: objects.ObjectDefinition, query: str = ""):
    records = Record.objects.filter(connection=connection, object_name=definition.name, deleted_at__isnull=True)
    query = query.strip()
    if query:
        condition = Q(key_value__istartswith=query)
        if query.isascii() and query.isdigit() and len(query) <= 18:  # "²".isdigit() too; int() refuses it
            condition |= Q(recordno=int(query))
        records = records.filter(condition)
    return records


@login_required
@require_GET
def record_list(request: HttpRequest, slug: str, object_name: str) -> HttpResponse:
    """One object's records, keyset-paged by RECORDNO (fast at any depth), searchable by key or RECORDNO."""
    access = organisation_access(request, slug, write=False)
    definition = _definition(object_name)
    query = request.GET.get("q", "")
    after = _int(request.GET.get("after"), 0)
    page = list(_records(access.connection, definition, query).filter(recordno__gt=after)
                .order_by("recordno")[:BROWSE_PAGE_SIZE + 1])
    has_more = len(page) > BROWSE_PAGE_SIZE
    page = page[:BROWSE_PAGE_SIZE]
    columns = list(definition.fields)
    rows = [(r, [r.data.get(c) if r.data.get(c) is not None else "" for c in columns]) for r in page]
    return render(request, "wizard/records/list.html", {
        "organisation": access.organisation, "connection": access.connection, "can_write": access.can_write,
        "definition": definition, "columns": columns, "rows": rows, "query": query, "after": after,
        "next_after": page[-1].recordno if has_more and page else None,
        "is_users": definition.name == "USERINFO",
        "can_deprovision": definition.name == "USERINFO" and access.can_write
        and deprovision.refusal(access.connection) is None,
        "objects": objects.OBJECTS,
    })


def _csv_rows(connection: Connection, definition: objects.ObjectDefinition, query: str) -> Iterator[list]:
    columns = list(definition.fields)
    after = 0
    base = _records(connection, definition, query)
    while True:
        chunk = list(base.filter(recordno__gt=after).order_by("recordno")
                     .values_list("recordno", "whenmodified", "data", "first_seen", "last_seen")[:CSV_CHUNK])
        if not chunk:
            return
        for _recordno, modified, data, first_seen, last_seen in chunk:
            yield [*(data.get(c) for c in columns), modified, first_seen.isoformat(), last_seen.isoformat()]
        after = chunk[-1][0]


@login_required
@require_GET
def record_csv(request: HttpRequest, slug: str, object_name: str) -> StreamingHttpResponse:
    access = organisation_access(request, slug, write=False)
    definition = _definition(object_name)
    header = [*definition.fields, "whenmodified_local", "first_seen", "last_seen"]
    return csv_export.response(header, _csv_rows(access.connection, definition, request.GET.get("q", "")),
                               filename=f"{slug}-{definition.name.lower()}.csv")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


# --- deprovisioning --------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def user_deprovision(request: HttpRequest, slug: str, recordno: int, action: str) -> HttpResponse:
    """Confirmation page (GET) saying exactly what changes in Intacct; the change itself (POST)."""
    access = organisation_access(request, slug)
    if action not in deprovision.ACTIONS:
        raise Http404("No such action.")
    user = deprovision.user_record(access.connection, recordno)
    if user is None:
        raise Http404("No such user.")
    refusal = deprovision.refusal(access.connection)
    with_employee = request.POST.get("with_employee", request.GET.get("with_employee", "1")) == "1"
    end_date = _date(request.POST.get("end_date") or request.GET.get("end_date"))
    changes = deprovision.plan(connection=access.connection, user=user, action=action, with_employee=with_employee,
                               end_date=end_date) if refusal is None else []
    result = None
    if request.method == "POST":
        if refusal is not None:
            messages.error(request, refusal)
        else:
            try:
                result = deprovision.apply(connection=access.connection, user=user, action=action,
                                           with_employee=with_employee, end_date=end_date, by=request.user,
                                           ip=client_ip(request))
            except deprovision.DeprovisionRefused as exc:
                messages.error(request, str(exc))
            else:
                if result["verified"]:
                    messages.success(request, "Done, and checked by reading the record back from Intacct.")
                else:
                    messages.error(request, "Intacct did not apply the change; see its answer below.")
        user.refresh_from_db()
    return render(request, "wizard/records/deprovision.html", {
        "organisation": access.organisation, "connection": access.connection, "user_record": user,
        "action": action, "refusal": refusal, "changes": changes, "with_employee": with_employee,
        "end_date": end_date or timezone.localdate(), "result": result,
        "opposite": deprovision.REACTIVATE if action == deprovision.DEACTIVATE else deprovision.DEACTIVATE,
    })


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


# --- API tokens ------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest, slug: str) -> HttpResponse:
    access = organisation_access(request, slug)
    new_key = None
    if request.method == "POST":
        revoke = _int(request.POST.get("revoke"), 0)
        if revoke:
            services.api_token_revoke(organisation=access.organisation, token_id=revoke, by=request.user,
                                      ip=client_ip(request), connection=access.connection)
            messages.success(request, "Token revoked.")
            return redirect("api_tokens", slug)
        # Control characters are dropped (a pasted line break or NUL), then trimmed to the column's size.
        name = " ".join("".join(ch for ch in request.POST.get("name", "") if unicodedata.category(ch) != "Cc")
                        .split())[:100].strip() or "API token"
        _, new_key = services.api_token_issue(organisation=access.organisation, name=name, by=request.user,
                                              ip=client_ip(request), connection=access.connection)
    return render(request, "wizard/records/api_tokens.html", {
        "organisation": access.organisation, "can_write": access.can_write, "new_key": new_key,
        "tokens": access.organisation.api_tokens.all(),
    })


# --- JSON API --------------------------------------------------------------------------------

def _api_access(request: HttpRequest, slug: str) -> OrgAccess | Organisation:
    """A bearer token of this organisation, or a logged-in user allowed by the access helper."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.startswith("Bearer "):
        token = services.api_token_use(key=header[7:].strip(), organisation_slug=slug)
        if token is None:
            raise _ApiDenied()
        return token.organisation
    if not request.user.is_authenticated:
        raise _ApiDenied()
    return organisation_access(request, slug, write=False)


class _ApiDenied(Exception):
    pass


def api_view(view):
    """A JSON view for the platform: the organisation's API token (or a signed-in member) required."""
    def wrapped(request: HttpRequest, slug: str, *args, **kwargs):
        try:
            who = _api_access(request, slug)
        except _ApiDenied:
            return JsonResponse({"error": "A valid API token for this organisation is required."}, status=401)
        organisation = who if isinstance(who, Organisation) else who.organisation
        connection = Connection.objects.filter(organisation=organisation).first()
        if connection is None:
            raise Http404("No connection.")
        return view(request, connection, *args, **kwargs)
    wrapped.__name__ = view.__name__
    return wrapped


@require_GET
@api_view
def api_objects(request: HttpRequest, connection: Connection) -> JsonResponse:
    counts = _record_counts(connection)
    return JsonResponse({"objects": [{"name": d.name, "label": d.label, "records": counts.get(d.name, 0)}
                                     for d in objects.OBJECTS]})


@require_GET
@api_view
def api_records(request: HttpRequest, connection: Connection, object_name: str) -> JsonResponse:
    """Records of one object, cursor-paged by RECORDNO; ``modified_since`` (company-local ISO) filters."""
    definition = _definition(object_name)
    limit = min(max(_int(request.GET.get("limit"), API_PAGE_SIZE), 1), API_MAX_PAGE_SIZE)
    cursor = _int(request.GET.get("cursor"), 0)
    records = Record.objects.filter(connection=connection, object_name=definition.name, recordno__gt=cursor)
    if request.GET.get("include_deleted") != "1":
        records = records.filter(deleted_at__isnull=True)
    since = (request.GET.get("modified_since") or "").replace("T", " ").strip()
    if since:
        if len(since) == 10:
            since += " 00:00:00"
        if not _valid_stamp(since):
            return JsonResponse({"error": "modified_since must be YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS."}, status=400)
        records = records.filter(whenmodified__gte=since)
    page = list(records.order_by("recordno").values_list("recordno", "whenmodified", "data", "deleted_at")[:limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return JsonResponse({
        "object": definition.name,
        "records": [{"recordno": rn, "whenmodified": wm, "deleted": deleted is not None, "data": data}
                    for rn, wm, data, deleted in page],
        "next_cursor": str(page[-1][0]) if more and page else None,
    }, json_dumps_params={"separators": (",", ":")})


def _valid_stamp(value: str) -> bool:
    try:
        timestamps.intacct_from_iso(value)
    except ValueError:
        return False
    return True
