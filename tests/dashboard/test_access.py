"""Every dashboard URL and action, for support, a superuser, an org admin, another org's admin, anonymous."""
from __future__ import annotations

from unittest import mock

import pytest
from django.core import mail
from django.urls import reverse

from connector.models import AuditEvent, SyncRun, ValidationRun


@pytest.fixture
def connected(organisation):
    connection = organisation.connection
    connection.company_id, connection.user_id, connection.password_token = "ACME", "ws_connect", "token"
    connection.status = "connected"
    connection.save()
    return connection


def get_urls(connection_id: int) -> list[str]:
    return [reverse("dashboard"), reverse("dashboard_export"),
            reverse("dashboard_connection", args=[connection_id]),
            reverse("dashboard") + "?status=connected&sort=-errors&stale=on&q=acme"]


def post_urls(connection_id: int) -> list[tuple[str, dict]]:
    return [(reverse("dashboard_revalidate", args=[connection_id]), {}),
            (reverse("dashboard_sync", args=[connection_id]), {}),
            (reverse("dashboard_step_link", args=[connection_id]), {"step": "4"})]


@pytest.fixture
def no_enqueue():
    with mock.patch("connector.tasks.connection_validate.delay"), mock.patch("connector.tasks.sync_run.delay"):
        yield


def test_support_and_superuser_read_every_page(connected, support_client, superuser_client):
    for url in get_urls(connected.id):
        assert support_client.get(url).status_code == 200, url
        assert superuser_client.get(url).status_code == 200, url


def test_org_admins_and_outsiders_get_404_and_anonymous_logs_in(connected, admin_client, outsider_client, client):
    for url in get_urls(connected.id):
        assert admin_client.get(url).status_code == 404, url
        assert outsider_client.get(url).status_code == 404, url
        anonymous = client.get(url)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login")), url


def test_unknown_connection_is_404_for_support(support_client, db):
    assert support_client.get(reverse("dashboard_connection", args=[999999])).status_code == 404


def test_actions_refused_to_everyone_but_support_and_nothing_happens(connected, admin_client, outsider_client,
                                                                      client, no_enqueue):
    before = (AuditEvent.objects.count(), ValidationRun.objects.count(), SyncRun.objects.count())
    for url, data in post_urls(connected.id):
        assert admin_client.post(url, data).status_code == 404, url
        assert outsider_client.post(url, data).status_code == 404, url
        assert client.post(url, data).status_code == 302, url
    assert (AuditEvent.objects.count(), ValidationRun.objects.count(), SyncRun.objects.count()) == before
    assert mail.outbox == []


def test_actions_are_post_only(connected, support_client):
    for url, _ in post_urls(connected.id):
        assert support_client.get(url).status_code == 405


@pytest.mark.parametrize("who", ["support", "superuser"])
def test_revalidate_queues_a_run_and_is_audited(who, connected, support_client, superuser_client, no_enqueue):
    client = support_client if who == "support" else superuser_client
    response = client.post(reverse("dashboard_revalidate", args=[connected.id]))
    assert response.status_code == 302
    run = ValidationRun.objects.get(connection=connected)
    event = AuditEvent.objects.get(action="validation.started")
    assert event.actor.username == ("sam" if who == "support" else "root")
    assert event.details["validation_run"] == run.id


@pytest.mark.parametrize("who", ["support", "superuser"])
def test_sync_now_queues_a_sync_and_is_audited(who, connected, support_client, superuser_client, no_enqueue):
    client = support_client if who == "support" else superuser_client
    client.post(reverse("dashboard_sync", args=[connected.id]))
    run = SyncRun.objects.get(connection=connected)
    assert run.requested_by.username == ("sam" if who == "support" else "root")
    assert AuditEvent.objects.filter(action="sync.requested", actor__username=run.requested_by.username).exists()
    # A second press joins the queued run, and that is audited too.
    client.post(reverse("dashboard_sync", args=[connected.id]))
    assert SyncRun.objects.filter(connection=connected).count() == 1
    assert AuditEvent.objects.filter(action="support.sync_joined").count() == 1


@pytest.mark.parametrize("who", ["support", "superuser"])
def test_step_link_mails_the_admin_a_deep_link_and_is_audited(who, connected, support_client, superuser_client,
                                                              settings):
    settings.SITE_URL = "https://connect.example.test"
    client = support_client if who == "support" else superuser_client
    response = client.post(reverse("dashboard_step_link", args=[connected.id]), {"step": "4"}, follow=True)
    assert b"Link to step 4 sent to 1 admin" in response.content
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@acme.test"]
    assert "https://connect.example.test/organisations/acme/setup/step-4/" in message.body
    event = AuditEvent.objects.get(action="support.step_link_sent")
    assert event.details == {"step": 4, "recipients": ["alice"]}
    assert event.actor.username == ("sam" if who == "support" else "root")


def test_step_link_refuses_an_unknown_step(connected, support_client):
    support_client.post(reverse("dashboard_step_link", args=[connected.id]), {"step": "9"})
    assert mail.outbox == []
    assert not AuditEvent.objects.filter(action="support.step_link_sent").exists()
