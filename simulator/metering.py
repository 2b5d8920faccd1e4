"""What an answer costs: the time the latency profile adds, and the API transactions it counts.

Called by the gateway after it built an answer and before it gives the company's concurrency slot back.
"""

from __future__ import annotations

import gzip
import re
import time

from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpResponse
from django.utils import timezone

from simulator.latency import active_profile, results_of
from simulator.models import ApiUsage, CompanyLoad, SimCompany


def _body_of(response: HttpResponse) -> bytes | None:
    if getattr(response, "streaming", False):
        return None
    body = response.content
    if response.get("Content-Encoding", "").lower() == "gzip":
        try:
            body = gzip.decompress(body)
        except OSError:
            return None
    return body


# Functions billed as API transactions: reads one per call (one per page), writes one per record.
READ_FUNCTIONS = frozenset({b"query", b"readByQuery", b"readMore", b"read", b"readByName", b"get_list"})
WRITE_FUNCTIONS = frozenset({b"create", b"update", b"delete"})
_STATUS = re.compile(rb"<status>([^<]*)</status>")
_FUNCTION = re.compile(rb"<function>([^<]*)</function>")
_WRITE_COUNT = re.compile(rb'<data\b[^>]*?(?<![\w-])count="(\d+)"')


def transactions_in(body: bytes) -> int:
    """The API transactions a response's successful results cost (see docs/protocol-choices.md)."""
    total = 0
    start = body.find(b"<result>")
    while start >= 0:
        # Each result up to the first </result> after it (a 2,000-record page is ~1 MB: found with bytes.find,
        # not a lazy regex that tries "</result>" at every byte).
        end = body.find(b"</result>", start + 8)
        if end < 0:
            break
        chunk = body[start + 8:end]
        start = body.find(b"<result>", end + 9)
        status, function = _STATUS.search(chunk), _FUNCTION.search(chunk)
        if status is None or function is None or status.group(1) != b"success":
            continue
        name = function.group(1).strip()
        if name in READ_FUNCTIONS:
            total += 1
        elif name in WRITE_FUNCTIONS:
            written = _WRITE_COUNT.search(chunk)
            total += max(1, int(written.group(1))) if written else 1
    return total


def count_transactions(company: SimCompany, transactions: int) -> None:
    """Add API transactions to the company's count for this month (created on first use)."""
    if transactions <= 0:
        return
    month = timezone.now().strftime("%Y-%m")
    if ApiUsage.objects.filter(company=company, month=month).update(transactions=F("transactions") + transactions):
        return
    try:
        with transaction.atomic():
            ApiUsage.objects.create(company=company, month=month, transactions=transactions)
    except IntegrityError:
        ApiUsage.objects.filter(company=company, month=month).update(transactions=F("transactions") + transactions)


def month_usage(company: SimCompany) -> int:
    """API transactions counted for the company this calendar month."""
    row = ApiUsage.objects.filter(company=company, month=timezone.now().strftime("%Y-%m")).first()
    return row.transactions if row else 0


def after_answer(company: SimCompany, request_body: bytes, response: HttpResponse, spent: float = 0.0) -> float:
    """Count the answer's API transactions and, with a latency profile, wait until
    the request has taken the profile's time (``spent`` seconds are already gone); returns the time waited."""
    body = _body_of(response)
    if body is None:
        return 0.0
    if response.status_code == 200:
        count_transactions(company, transactions_in(body))
    profile = active_profile()
    if profile is None:
        return 0.0
    target = profile.seconds(company.company_id, request_body, results_of(body))
    if target <= 0:
        return 0.0
    CompanyLoad.objects.filter(company_id=company.company_id.strip().upper()).update(
        latency_seconds=F("latency_seconds") + target
    )
    wait = max(0.0, target - spent)
    time.sleep(wait)
    return wait
