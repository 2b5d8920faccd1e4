"""Pages and API of the synced data: the connection page's section, browsing, CSV, tokens; access rules."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from connector.models import ApiToken, AuditEvent, Record, SyncRun
from tests.sync.conftest import connect

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(organisation):
    connection = connect(organisation, "PAGES-CO")
    Record.objects.bulk_create([
        Record(connection=connection, object_name="APBILL", recordno=n, key_value=str(n),
               whenmodified=f"2024-01-{1 + n % 28:02d} 10:00:00",
               data={"RECORDNO": str(n), "VENDORID": f"V{n}", "VENDORNAME": "=HYPERLINK(1)" if n == 3 else "x",
                     "WHENMODIFIED": "01/01/2024 10:00:00"})
        for n in range(1, 121)])
    Record.objects.create(connection=connection, object_name="USERINFO", recordno=7, key_value="jdoe",
                          data={"RECORDNO": "7", "LOGINID": "jdoe", "STATUS": "active"})
    SyncRun.objects.create(connection=connection, status=SyncRun.Status.SUCCEEDED, requests=12)
    return connection


def urls(slug: str) -> list[tuple[str, str]]:
    return [
        ("get", reverse("connection", args=[slug])),
        ("get", reverse("sync_status", args=[slug])),
        ("get", reverse("record_list", args=[slug, "APBILL"])),
        ("get", reverse("record_csv", args=[slug, "APBILL"])),
        ("get", reverse("api_tokens", args=[slug])),
        ("get", reverse("user_deprovision", args=[slug, 7, "deactivate"])),
        ("get", reverse("api_objects", args=[slug])),
        ("get", reverse("api_records", args=[slug, "APBILL"])),
    ]


def test_org_admin_sees_every_page(admin_client, data):
    for method, url in urls("acme"):
        response = getattr(admin_client, method)(url)
        assert response.status_code == 200, url


def test_support_staff_read_but_cannot_write(support_client, data):
    for method, url in urls("acme"):
        assert getattr(support_client, method)(url).status_code == 200, url
    assert support_client.post(reverse("sync_now", args=["acme"])).status_code == 403
    assert support_client.post(reverse("api_tokens", args=["acme"]), {"name": "x"}).status_code == 403
    assert support_client.post(reverse("user_deprovision", args=["acme", 7, "deactivate"])).status_code == 403
    assert not ApiToken.objects.exists()
    assert not SyncRun.objects.filter(status=SyncRun.Status.QUEUED).exists()


def test_admin_of_another_organisation_gets_404(outsider_client, data):
    for method, url in urls("acme"):
        response = getattr(outsider_client, method)(url)
        assert response.status_code in (404, 401), url
        if "/api/" not in url:
            assert response.status_code == 404, url
    assert outsider_client.post(reverse("sync_now", args=["acme"])).status_code == 404


def test_anonymous_is_sent_to_log_in_and_the_api_wants_a_token(data):
    anonymous = Client()
    for method, url in urls("acme"):
        response = getattr(anonymous, method)(url)
        if "/api/" in url:
            assert response.status_code == 401, url
        else:
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_browse_pages_by_recordno_keyset_and_searches(admin_client, data):
    page = admin_client.get(reverse("record_list", args=["acme", "APBILL"]))
    assert page.context["next_after"] == 50
    second = admin_client.get(reverse("record_list", args=["acme", "APBILL"]), {"after": 50})
    assert [r.recordno for r, _ in second.context["rows"]][:2] == [51, 52]
    found = admin_client.get(reverse("record_list", args=["acme", "APBILL"]), {"q": "77"})
    assert [r.recordno for r, _ in found.context["rows"]] == [77]


def test_csv_streams_every_record_and_defuses_formulas(admin_client, data):
    response = admin_client.get(reverse("record_csv", args=["acme", "APBILL"]))
    body = b"".join(response.streaming_content).decode()
    lines = body.strip().splitlines()
    assert len(lines) == 121
    assert "'=HYPERLINK(1)" in body


def test_api_token_lists_records_with_cursor_and_modified_since(admin_client, data, other_organisation):
    response = admin_client.post(reverse("api_tokens", args=["acme"]), {"name": "Platform"})
    key = response.context["new_key"]
    assert key and ApiToken.objects.get().key_hash == ApiToken.hash(key)
    assert key not in str(ApiToken.objects.values())
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    url = reverse("api_records", args=["acme", "APBILL"])
    seen, cursor = [], None
    while True:
        body = api.get(url, {"limit": 40, **({"cursor": cursor} if cursor else {})}).json()
        seen += [r["recordno"] for r in body["records"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == list(range(1, 121))
    since = api.get(url, {"modified_since": "2024-01-28"}).json()
    assert {r["whenmodified"] for r in since["records"]} == {"2024-01-28 10:00:00"}
    assert api.get(url, {"modified_since": "nonsense"}).status_code == 400
    # The token belongs to acme only; revoked tokens stop working.
    assert api.get(reverse("api_records", args=["other", "APBILL"])).status_code == 401
    token = ApiToken.objects.get()
    admin_client.post(reverse("api_tokens", args=["acme"]), {"revoke": token.pk})
    assert api.get(url).status_code == 401


def test_a_token_notes_its_last_use_only_on_its_own_organisation(admin_client, data, other_organisation):
    key = admin_client.post(reverse("api_tokens", args=["acme"]), {"name": "Platform"}).context["new_key"]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get(reverse("api_records", args=["other", "APBILL"])).status_code == 401
    assert ApiToken.objects.get().last_used_at is None
    assert api.get(reverse("api_records", args=["acme", "APBILL"])).status_code == 200
    assert ApiToken.objects.get().last_used_at is not None
    assert "never" not in admin_client.get(reverse("api_tokens", args=["acme"])).content.decode().split("Platform")[1]


def test_revoking_a_token_is_audited_and_another_organisation_cannot_revoke_it(admin_client, outsider_client, data):
    admin_client.post(reverse("api_tokens", args=["acme"]), {"name": "Platform"})
    token = ApiToken.objects.get()
    outsider_client.post(reverse("api_tokens", args=["other"]), {"revoke": token.pk})
    token.refresh_from_db()
    assert token.revoked_at is None
    admin_client.post(reverse("api_tokens", args=["acme"]), {"revoke": token.pk})
    token.refresh_from_db()
    assert token.revoked_at is not None
    event = AuditEvent.objects.get(action="api_token.revoked")
    assert event.actor.username == "alice" and event.organisation.slug == "acme"
    assert event.details == {"token": token.pk, "prefix": token.prefix, "name": "Platform"}
    assert not AuditEvent.objects.filter(action="api_token.revoked", organisation__slug="other").exists()
    # Revoking it again changes nothing and records nothing more.
    admin_client.post(reverse("api_tokens", args=["acme"]), {"revoke": token.pk})
    assert AuditEvent.objects.filter(action="api_token.revoked").count() == 1


def test_connection_page_shows_the_sync_section(admin_client, data):
    page = admin_client.get(reverse("connection", args=["acme"])).content.decode()
    assert 'id="sync"' in page and "Sync now" in page and "data-sync-calls>12</span> of 100000" in page
    assert "<svg" in page


def test_sync_now_queues_one_run_and_a_second_request_joins_it(admin_client, data, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        admin_client.post(reverse("sync_now", args=["acme"]))
        admin_client.post(reverse("sync_now", args=["acme"]))
    assert SyncRun.objects.filter(status=SyncRun.Status.QUEUED).count() == 1
