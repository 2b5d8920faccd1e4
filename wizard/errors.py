"""Error pages. A page that fails because the database cannot be reached answers 503 with plain words.

While PostgreSQL restarts (or refuses connections) every page that reads it fails; that is an outage of
ours, not a bug in the page, so the answer is "503, try again in a minute" (with Retry-After) instead of a
500. The page is a plain string: rendering the site's templates would need the database again.
"""
from __future__ import annotations

import logging
import sys

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views import defaults

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
UNAVAILABLE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Back in a minute</title></head>
<body><h1>We can't reach our database right now</h1>
<p>This is on our side and usually lasts less than a minute. Nothing you saved before is lost.
Please try again in a moment.</p></body></html>
"""


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a database outage is a 503 with Retry-After; anything else Django's own 500 page."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DatabaseError):
        log.warning("page answered 503: the database could not be reached (%s)", type(exc).__name__)
        response = HttpResponse(UNAVAILABLE_PAGE, status=503, content_type="text/html; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return defaults.server_error(request)
