"""The support dashboard's list: its filters and sorts, as a form and the query they make."""
from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.db.models import F, Q, QuerySet

from connector.models import Connection
from connector.validation import CHECKS

SORTS = {
    "organisation": "organisation__name",
    "status": "status",
    "since": "status_changed_at",
    "validated": "last_validation__finished_at",
    "synced": "summary__last_successful_sync_at",
    "records": "summary__records_held",
    "errors": "summary__errors_24h",
}


class FilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=100)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Connection.Status.choices])
    check = forms.ChoiceField(required=False, label="Failing check",
                              choices=[("", "Any check"), *((c.key, c.label) for c in CHECKS)])
    stale = forms.BooleanField(required=False, label="Stale sync only")
    organisation = forms.SlugField(required=False, max_length=60)
    sort = forms.ChoiceField(required=False, choices=[(key, key) for key in SORTS]
                             + [(f"-{key}", f"-{key}") for key in SORTS])


def base_queryset() -> QuerySet[Connection]:
    return (Connection.objects.select_related("organisation", "summary", "last_validation")
            .defer("password_token", "rest_refresh_token", "rest_access_token"))


def connections_filtered(data: dict, *, now) -> tuple[QuerySet[Connection], FilterForm]:
    """The list's connections for the query-string filters (invalid filters are ignored)."""
    form = FilterForm(data)
    queryset = base_queryset()
    if not form.is_valid():
        return queryset.order_by("organisation__name", "id"), form
    data = form.cleaned_data
    if data["q"]:
        term = data["q"].strip()
        queryset = queryset.filter(Q(organisation__name__icontains=term) | Q(organisation__slug__iexact=term)
                                   | Q(company_id__iexact=term))
    if data["status"]:
        queryset = queryset.filter(status=data["status"])
    if data["check"]:
        # The check that put the connection in its failing status (kept on the connection, no join).
        queryset = queryset.filter(status_check=data["check"])
    if data["stale"]:
        cutoff = now - timedelta(hours=settings.STALE_SYNC_HOURS)
        queryset = queryset.live().filter(
            Q(summary__last_successful_sync_at__lt=cutoff) | Q(summary__last_successful_sync_at__isnull=True))
    if data["organisation"]:
        queryset = queryset.filter(organisation__slug=data["organisation"])
    sort = data["sort"] or "organisation"
    field = SORTS[sort.lstrip("-")]
    order = F(field).desc(nulls_last=True) if sort.startswith("-") else F(field).asc(nulls_last=True)
    return queryset.order_by(order, "id"), form
