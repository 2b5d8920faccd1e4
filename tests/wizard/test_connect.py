"""Step 6 (Connect) and the connection page's actions."""
from __future__ import annotations

import json
import logging
import uuid
from unittest import mock

import pytest
from django.db import connection as db_connection
from django.urls import reverse

from connector import crypto
from connector.models import AuditEvent, Connection, ValidationRun

SECRET = "Pl41ntext-Secret-7731"  # noqa: S105 - the plaintext the tests hunt for
STEP_6 = "/organisations/acme/setup/step-6/"


def post_connect(client, **overrides):
    data = {"company_id": "ACME", "user_id": "ws_connect", "password": SECRET, "entity_id": "", **overrides}
    return client.post(STEP_6, data)


@pytest.fixture
def enqueued():
    with mock.patch("connector.tasks.connection_validate.delay") as delay:
        yield delay


@pytest.mark.parametrize(("overrides", "message"), [
    ({"user_id": "ops@acme.test"}, "That looks like an e-mail address"),
    ({"password": ""}, "Enter the password Intacct e-mailed"),
    ({"password": "   "}, "Enter the password Intacct e-mailed"),
    ({"company_id": ""}, "Enter your Intacct company ID."),
    ({"company_id": "AC ME"}, "A company ID has no spaces inside it"),
    ({"user_id": "ws connect"}, "A user ID has no spaces"),
    ({"entity_id": "E 1"}, "An entity ID has no spaces"),
])
def test_connect_form_explains_mistakes_before_anything_is_sent(overrides, message, organisation,
                                                                 admin_client, enqueued,
                                                                 django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_connect(admin_client, **overrides)
    html = response.content.decode()
    assert response.status_code == 200
    assert message in html and "Nothing was sent to Intacct." in html
    assert SECRET not in html
    enqueued.assert_not_called()
    assert not ValidationRun.objects.exists()
    organisation.connection.refresh_from_db()
    assert organisation.connection.password_token == ""


def test_company_id_is_trimmed_and_the_admin_told(organisation, admin_client, enqueued,
                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_connect(admin_client, company_id="  ACME  ", user_id=" ws_connect ")
    assert response.status_code == 302
    page = admin_client.get(response["Location"]).content.decode()
    assert "We removed spaces around the company ID: it is now &quot;ACME&quot;." in page
    conn = Connection.objects.get()
    assert (conn.company_id, conn.user_id) == ("ACME", "ws_connect")


def test_connect_saves_encrypted_enqueues_ids_only_and_audits(organisation, admin_client, enqueued,
                                                              django_capture_on_commit_callbacks, caplog):
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_connect(admin_client, entity_id="E100")
    assert response["Location"] == STEP_6 + "#validation"
    conn = Connection.objects.get()
    assert crypto.decrypt(conn.password_token) == SECRET
    run = ValidationRun.objects.get()
    enqueued.assert_called_once_with(run.id)
    assert conn.status == "in_setup" and conn.entity_id == "E100"
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert "credentials.set" in actions and "validation.started" in actions
    page = admin_client.get(STEP_6).content.decode()
    assert f'data-poll-url="/organisations/acme/validations/{run.id}/"' in page
    assert '<noscript><meta http-equiv="refresh"' in page
    assert SECRET not in page and 'value="' + SECRET not in page
    assert SECRET not in caplog.text


def test_secret_is_nowhere_but_the_encrypted_column(organisation, admin_client, support_client, enqueued,
                                                    django_capture_on_commit_callbacks, caplog):
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        post_connect(admin_client)
    admin_client.post(reverse("connection_password", args=["acme"]), {"password": SECRET + "-new"})
    # Every rendered page, for both people who can see them.
    from tests.wizard.test_access import GET_URLS, url

    for client in (admin_client, support_client):
        for name, kwargs in GET_URLS:
            assert SECRET not in client.get(url(name, kwargs), follow=True).content.decode(), name
    assert SECRET not in support_client.get(reverse("organisation_list")).content.decode()
    # Every column of every table, except the one holding the Fernet token.
    with db_connection.cursor() as cursor:
        for table in db_connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from introspection
            columns = [c[0] for c in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if table == "connector_connection" and column == "password_token":
                        assert SECRET not in str(value)
                        continue
                    assert SECRET not in str(value), f"{table}.{column}"
    for event in AuditEvent.objects.all():
        assert SECRET not in str(event.details)
    assert SECRET not in caplog.text


def test_change_password_entity_revalidate_and_disconnect(organisation, admin_client, support_client, enqueued,
                                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_connect(admin_client)
        admin_client.post(reverse("connection_password", args=["acme"]), {"password": "new-one"})
        admin_client.post(reverse("connection_entity", args=["acme"]), {"entity_id": "E2"})
        admin_client.post(reverse("connection_revalidate", args=["acme"]))
    conn = Connection.objects.get()
    assert crypto.decrypt(conn.password_token) == "new-one" and conn.entity_id == "E2"
    assert enqueued.call_count == 4 and ValidationRun.objects.count() == 4
    page = admin_client.get(reverse("connection", args=["acme"])).content.decode()
    # The organisation's own admin sees its IDs in full (issue 15); support staff see them masked.
    assert "<code>ACME</code>" in page and "<code>ws_connect</code>" in page and "No sync yet." in page
    assert "AC•E" not in page
    assert "AC•E" in support_client.get(reverse("connection", args=["acme"])).content.decode()
    admin_client.post(reverse("connection_disconnect", args=["acme"]))
    conn.refresh_from_db()
    assert conn.password_token == "" and conn.status == "disconnected"
    assert ValidationRun.objects.count() == 4  # history kept
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"credentials.set", "password.changed", "entity.changed", "validation.started",
            "connection.disconnected"} <= actions
    response = admin_client.post(reverse("connection_revalidate", args=["acme"]))
    assert response["Location"] == STEP_6


def test_password_field_is_never_re_rendered(organisation, admin_client):
    html = admin_client.post(STEP_6, {"company_id": "ACME", "user_id": "a@b.c", "password": SECRET}).content
    assert b'type="password"' in html and SECRET.encode() not in html


def test_the_broker_message_holds_the_run_id_only(organisation, admin_client, settings,
                                                   django_capture_on_commit_callbacks):
    from kombu import Connection

    from connector import tasks

    queue = f"scan-{uuid.uuid4().hex[:8]}"  # a queue no worker reads, so the message stays to be read
    real_apply_async = tasks.connection_validate.apply_async

    def delay_to_scan_queue(*args):
        return real_apply_async(args=args, queue=queue)

    # Read the message back from whichever broker is configured (filesystem by default, Redis in CI);
    # the queue is declared first so the broker keeps what is published to it.
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    with Connection(settings.CELERY_BROKER_URL, transport_options=options) as broker:
        inbox = broker.SimpleQueue(queue)
        with mock.patch.object(tasks.connection_validate, "delay", side_effect=delay_to_scan_queue):
            with django_capture_on_commit_callbacks(execute=True):
                post_connect(admin_client)
        message = inbox.get(timeout=10)
        raw = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        headers = json.dumps(message.headers).encode()
        assert SECRET.encode() not in raw and SECRET.encode() not in headers
        args, kwargs, _ = message.decode()
        assert args == [ValidationRun.objects.get().id] and kwargs == {}
        message.ack()
        with pytest.raises(inbox.Empty):  # exactly one message was sent
            inbox.get(timeout=0.5)
        inbox.close()
