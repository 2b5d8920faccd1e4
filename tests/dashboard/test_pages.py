"""What the dashboard shows, the status API, and the secret scan of everything rendered."""
from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from connector import crypto, services, summaries
from connector.models import ApiToken, Connection, ConnectionSummary, SyncObjectRun, SyncRun, ValidationRun
from tests.dashboard.data import PLANTED_PASSWORD, populate

SECRET = "Pl41ntext-Dashboard-Secret-9920"  # noqa: S105 - the plaintext the scan hunts for


@pytest.fixture
def failing(organisation):
    """Acme: credentials saved (password encrypted), needs attention because a permission is missing."""
    populate(connections=4, days=30)
    connection = organisation.connection
    connection.company_id, connection.user_id = "ACME-CO", "ws_connect"
    connection.password_token = crypto.encrypt(SECRET)
    connection.save()
    services.connection_mark_step(connection=connection, step=1, by=None)
    run = ValidationRun.objects.create(connection=connection, status="failed", started_at=timezone.now(),
                                       finished_at=timezone.now(), failed_check="read_apbill", failed_step=4,
                                       summary="The role lacks Bills View.")
    run.checks.create(position=1, key="login", label="Web Services user signs in", status="passed")
    run.checks.create(position=2, key="read_apbill", label="Can read bills", status="failed", wizard_step=4,
                      message="The role lacks Accounts Payable > Bills View.", errorno="BL34000061",
                      description="Permission denied",
                      description2=("You do not have permission for API operation READ_BY_QUERY on objects of "
                                    "type apbill"))
    services.connection_record_validation(connection=connection, run=run, new_status="needs_attention")
    sync = SyncRun.objects.create(connection=connection, status="succeeded", finished_at=timezone.now(),
                                  records_read=42, duration_ms=1500)
    SyncObjectRun.objects.create(run=sync, object_name="DEPARTMENT", status="succeeded", records_read=30,
                                 records_created=30, mode="full")
    SyncObjectRun.objects.create(run=sync, object_name="APBILL", status="failed", errorno="BL34000061",
                                 message="No permission for bills.")
    connection.refresh_from_db()
    return connection


def test_list_shows_status_failing_check_sync_and_counts(failing, support_client):
    page = support_client.get(reverse("dashboard") + "?q=acme").content.decode()
    assert "Acme Ltd" in page and "Needs attention" in page
    assert "✗ Can read bills" in page
    assert "AC••••O" in page and "ACME-CO" not in page  # the company ID is masked
    summary = ConnectionSummary.objects.get(connection=failing)
    assert summary.last_successful_sync_at is not None  # kept by the sync run's signal
    assert summary.errors_24h == 2  # one validation and one sync error with an Intacct code
    everything = support_client.get(reverse("dashboard")).content.decode()
    assert f'<span class="card-number">{Connection.objects.filter(status="connected").count()}</span> connected' \
        in everything
    assert "<svg" in everything and "<rect" in everything


def test_filters_narrow_the_list(failing, support_client):
    def names(query: str) -> str:
        return support_client.get(reverse("dashboard") + query).content.decode()

    assert "Acme Ltd" in names("?check=read_apbill")
    assert "Acme Ltd" not in names("?status=connected")
    assert "Acme Ltd" in names("?organisation=acme")
    assert names("?organisation=acme").count('href="/support/connections/') == 1
    stale = names("?stale=on")
    assert "Acme Ltd" not in stale  # synced a moment ago
    ConnectionSummary.objects.filter(connection=failing).update(
        last_successful_sync_at=timezone.now() - timedelta(hours=settings.STALE_SYNC_HOURS + 1))
    assert "Acme Ltd" in names("?stale=on")


def test_detail_shows_checklist_raw_errors_progress_history_and_audit(failing, support_client):
    page = support_client.get(reverse("dashboard_connection", args=[failing.id])).content.decode()
    assert "BL34000061" in page and "READ_BY_QUERY on objects of type apbill" in page
    assert "Subscribe to Web Services:\n      marked done" in page
    assert "DEPARTMENT" in page and "No permission for bills." in page
    assert "AC••••O" in page and "ws•••••••t" in page
    assert "Simulator" in page
    assert "validation.finished" in page  # the audit log
    assert "Connected → Needs attention" in page or "In setup → Needs attention" in page


def test_status_api_needs_a_token_and_answers_for_its_organisation(failing, client, other_organisation):
    url = reverse("api_connection_status", args=["acme"])
    assert client.get(url).status_code == 401
    assert client.get(url, HTTP_AUTHORIZATION="Bearer ic_wrong").status_code == 401
    token, key = ApiToken.issue(organisation=failing.organisation, name="platform")
    body = client.get(url, HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert body["connection"]["status"] == "needs_attention"
    assert body["last_validation"]["failed_check"] == "read_apbill"
    failed = [c for c in body["last_validation"]["checks"] if c["status"] == "failed"][0]
    assert failed["intacct_error"]["errorno"] == "BL34000061"
    objects = {row["object"]: row for row in body["last_sync_per_object"]}
    assert objects["DEPARTMENT"]["records_created"] == 30 and objects["APBILL"]["errorno"] == "BL34000061"
    token.revoked_at = timezone.now()
    token.save()
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401
    _, other_key = ApiToken.issue(organisation=other_organisation, name="platform")
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {other_key}").status_code == 401
    other = client.get(reverse("api_connection_status", args=["other"]), HTTP_AUTHORIZATION=f"Bearer {other_key}")
    assert other.json()["organisation"]["slug"] == "other"


def test_csv_export_has_the_list_columns(failing, support_client):
    response = support_client.get(reverse("dashboard_export") + "?organisation=acme")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    assert rows[0]["status"] == "needs_attention" and rows[0]["failing_check"] == "read_apbill"
    assert rows[0]["company_id"] == "AC••••O"


def test_no_page_export_or_api_contains_a_secret(failing, support_client, superuser_client, client):
    """Render every support page, the export, the API, /metrics and /healthz; scan them for secrets."""
    token, key = ApiToken.issue(organisation=failing.organisation, name="platform")
    summaries.summaries_refresh()
    session_ids = [support_client.cookies["sessionid"].value, superuser_client.cookies["sessionid"].value]
    secrets = [SECRET, PLANTED_PASSWORD, failing.password_token, settings.SECRET_KEY,
               settings.INTACCT_SENDER_PASSWORD, *settings.FIELD_ENCRYPTION_KEYS, *session_ids, key,
               token.key_hash]
    bodies = []
    for who in (support_client, superuser_client):
        for url in (reverse("dashboard"), reverse("dashboard") + "?q=acme",
                    reverse("dashboard_connection", args=[failing.id]), reverse("dashboard_export")):
            response = who.get(url)
            assert response.status_code == 200
            bodies.append(b"".join(response.streaming_content) if response.streaming else response.content)
    bodies.append(client.get(reverse("api_connection_status", args=["acme"]),
                             HTTP_AUTHORIZATION=f"Bearer {key}").content)
    bodies.append(client.get(reverse("metrics")).content)
    bodies.append(client.get(reverse("healthz")).content)
    for body in bodies:
        text = body.decode()
        for secret in secrets:
            assert secret not in text
        assert "password_token" not in text and "sessionid" not in text
    assert json.loads(bodies[-3])["connection"]["user_id"] == "ws•••••••t"
