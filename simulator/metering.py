"""What an answer costs: the time the latency profile adds, and the API transactions it counts.

Called by the gateway after it built an answer and before it gives the company's concurrency slot back.
"""

from __future__ import annotations

import gzip
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
    """Count the answer's transactions (one per function result) and, with a latency profile, wait until
    the request has taken the profile's time (``spent`` seconds are already gone); returns the time waited."""
    body = _body_of(response)
    if body is None:
        return 0.0
    if response.status_code == 200:
        count_transactions(company, body.count(b"<result>"))
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
