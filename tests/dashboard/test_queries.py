"""Every dashboard page (and the status API) runs the same number of queries for 3 or 120 connections."""
from __future__ import annotations

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from connector.models import ApiToken, Connection, Organisation
from tests.dashboard.data import populate

MAX_QUERIES = 12


def pages(connection_id: int) -> list[str]:
    return [
        reverse("dashboard"),
        reverse("dashboard") + "?sort=-errors",
        reverse("dashboard") + "?sort=synced&status=connected",
        reverse("dashboard") + "?stale=on&check=read_apbill&q=bulk",
        reverse("dashboard") + "?page=2",
        reverse("dashboard_connection", args=[connection_id]),
        reverse("dashboard_export"),
        reverse("metrics"),
        reverse("healthz"),
    ]


def count_queries(client, url: str, **headers) -> int:
    with CaptureQueriesContext(db_connection) as queries:
        response = client.get(url, **headers)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    assert response.status_code in (200, 503), url
    return len(queries)


def measure(client) -> dict[str, int]:
    connection = Connection.objects.exclude(last_validation=None).filter(status="needs_attention").first() or \
        Connection.objects.exclude(last_validation=None).first()
    token, key = ApiToken.issue(organisation=connection.organisation, name="platform")
    counts = {url: count_queries(client, url) for url in pages(connection.id)}
    counts["api"] = count_queries(client, reverse("api_connection_status", args=[connection.organisation.slug]),
                                   HTTP_AUTHORIZATION=f"Bearer {key}")
    token.delete()
    return counts


def test_query_counts_do_not_grow_with_connections_or_history(support_client, settings,
                                                             django_assert_max_num_queries):
    settings.DASHBOARD_PAGE_SIZE = 20
    populate(connections=3, days=14, prefix="bulk")
    small = measure(support_client)
    populate(connections=117, days=120, validation_every_days=3, sync_every_days=2, prefix="more")
    assert Organisation.objects.count() >= 120
    large = measure(support_client)
    assert small == large
    for url in pages(Connection.objects.first().id):
        with django_assert_max_num_queries(MAX_QUERIES):
            support_client.get(url)
    print("queries per page:", large)  # noqa: T201 - shown with -s, quoted in the report


@pytest.mark.parametrize("sort", ["organisation", "-status", "since", "-validated", "synced", "-records", "errors"])
def test_every_sort_answers(sort, support_client):
    populate(connections=5, days=14)
    response = support_client.get(reverse("dashboard") + f"?sort={sort}")
    assert response.status_code == 200
    assert response.content.count(b'href="/support/connections/') == 5
