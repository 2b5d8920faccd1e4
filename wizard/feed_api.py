"""GET /api/v1/organisations/<slug>/changes/: the change feed of connector.feed, for the platform.

?object=APBILL (optional: every object when absent), ?after=<next_cursor of the previous page> (absent: from
the beginning), ?limit=1..1000. Access as every JSON endpoint: the organisation's API token or a member's
session (wizard.records.api_view).
"""
from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from connector import feed, objects
from connector.models import Connection
from wizard.records import api_view


def _error(status: int, message: str, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


@never_cache
@require_GET
@api_view
def changes(request: HttpRequest, connection: Connection) -> HttpResponse:
    object_name = (request.GET.get("object") or "").strip().upper()
    if object_name and objects.object_for(object_name) is None:
        names = ", ".join(d.name for d in objects.OBJECTS)
        return _error(400, f"Unknown object {object_name[:60]!r}: use one of {names}, or leave object out.")
    raw_limit = request.GET.get("limit") or str(feed.DEFAULT_PAGE)
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= feed.MAX_PAGE:
        return _error(400, f"limit must be a whole number from 1 to {feed.MAX_PAGE}.")
    after = None
    try:
        if request.GET.get("after"):
            after = feed.cursor_decode(request.GET["after"], connection_id=connection.pk, object_name=object_name)
        result = feed.page(connection.pk, object_name=object_name, after=after, limit=int(raw_limit))
    except feed.CursorError as exc:
        return _error(400, str(exc))
    except feed.CursorExpired:
        records_url = reverse("api_objects", args=[request.resolver_match.kwargs["slug"]])
        return _error(410, "This cursor is older than the change feed keeps (deletions after it were purged, or "
                           "the connection was replaced): resync from /records/, then read the feed from the "
                           "beginning (no after).", resync_from=records_url)
    # The page's changes are spliced in as JSON text (connector.feed.page builds them without decoding).
    head = json.dumps({"next_cursor": result.next_cursor, "has_more": result.has_more}, separators=(",", ":"))
    body = '{"changes":' + result.body + "," + head[1:]
    return HttpResponse(body, content_type="application/json")
