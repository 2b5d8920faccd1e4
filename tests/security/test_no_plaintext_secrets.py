"""No plaintext secret anywhere after a full run: wizard Connect validated by a real worker, a sync, a key rotation.

Then everything the product wrote is scanned for the Intacct user's password, the sender password, every
simulator session id and both Fernet keys (the old and the rotated one):
- the database: every column of every table (simulator_* tables hold their own session ids by design,
  so they are left out of the session-id scan only);
- the broker: every message published (captured as sent, headers and body), plus whatever the broker
  still stores (filesystem folders, or every Redis key);
- the logs: this process's (caplog, at DEBUG for the connector) and the worker's log file;
- every page of the project rendered as the organisation's admin, support staff and a superuser.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from celery.signals import before_task_publish
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection as db_connection
from django.test import Client

from connector import crypto, objects, services, webhooks
from connector.models import Connection, Record, SyncRun, ValidationRun, WebhookMessage
from simulator.demo import build_company
from simulator.models import Role, SimSession, SimUser
from tests.conftest import PASSWORD, wait_for
from tests.security.test_every_url import ROLES, World, all_patterns, concrete_url
from tests.sync.conftest import SMALL_SIZES

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

USER_PASSWORD = "Scan-Secret-Pw-8823!"


@pytest.fixture
def published():
    """Every message this process hands to the broker, as sent (headers and body)."""
    messages: list[bytes] = []

    def record(sender=None, body=None, headers=None, properties=None, **kwargs):
        messages.append(json.dumps({"body": body, "headers": headers, "properties": properties},
                                   default=str).encode())

    before_task_publish.connect(record, weak=False)
    yield messages
    before_task_publish.disconnect(record)


def broker_storage() -> list[bytes]:
    """What the configured broker still holds: its folders (filesystem) or every key (Redis)."""
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        base = Path(settings.VAR_DIR) / "broker"
        return [path.read_bytes() for path in base.rglob("*") if path.is_file()]
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url)
        found = []
        for key in client.scan_iter(count=1000):
            kind = client.type(key)
            if kind == b"string":
                found.append(client.get(key) or b"")
            elif kind == b"list":
                found += client.lrange(key, 0, -1)
            elif kind == b"hash":
                found += [k + b"=" + v for k, v in client.hgetall(key).items()]
            elif kind in (b"set", b"zset"):
                found += list(client.smembers(key)) if kind == b"set" else client.zrange(key, 0, -1)
        return found
    pytest.fail(f"no scanner for broker {url!r}")


def database_rows() -> dict[str, list[str]]:
    """Every row of every table, as text (bytes decoded so a secret stored as bytes is found too)."""
    def text(value) -> str:
        if isinstance(value, memoryview):
            value = bytes(value)
        return value.decode("latin-1") if isinstance(value, bytes) else str(value)

    rows: dict[str, list[str]] = {}
    with db_connection.cursor() as cursor:
        for table in db_connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from introspection
            rows[table] = [" ".join(text(value) for value in row) for row in cursor.fetchall()]
    return rows


def rendered_pages(organisation_slug: str, values: dict) -> dict[str, str]:
    """Every page of the project (every wizard step, every object's list and CSV) per role, as text."""
    User = get_user_model()
    users = {"org_admin": User.objects.get(username="alice"), "support": User.objects.get(username="sam"),
             "superuser": User.objects.get(username="root")}
    world = World(users={role: users.get(role) for role in ROLES}, values=values, org_b_slug="", token_b="")
    urls = set()
    for pattern in all_patterns():
        if pattern.key in ("logout", "admin:logout", "simulator:gateway"):
            continue
        variants = [{}]
        if "number" in pattern.converters:
            variants = [{"number": n} for n in range(1, 7)]
        if "object_name" in pattern.converters:
            variants = [{"object_name": d.name} for d in objects.OBJECTS]
        for variant in variants:
            urls.add(concrete_url(pattern, World(world.users, {**values, **variant}, "", "")))
    pages = {}
    for role, user in users.items():
        client = Client()
        client.force_login(user)
        for url in sorted(urls):
            response = client.get(url)
            content = b"".join(response.streaming_content) if response.streaming else response.content
            pages[f"{role} {url}"] = content.decode("utf-8", "replace") + json.dumps(dict(response.headers))
    assert len(pages) >= 3 * 60
    return pages


def test_no_plaintext_secret_anywhere_after_connect_sync_and_rotation(celery_worker, published, caplog):
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="connector")
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]

    # --- the wizard: sign-up-like setup, step 4, Connect (step 6) validated by the real worker
    demo = build_company("SCAN-CO", password=USER_PASSWORD, sizes=SMALL_SIZES)
    admin = services.user_create(username="alice", email="alice@acme.test", password=PASSWORD)
    organisation = services.organisation_create(name="Acme Ltd", slug="acme", admin=admin)
    support = services.user_create(username="sam", email="sam@operator.test", password=PASSWORD)
    services.support_staff_grant(user=support)
    get_user_model().objects.create_superuser(username="root", email="root@operator.test", password=PASSWORD)
    client = Client()
    assert client.login(username="alice", password=PASSWORD)
    client.post("/organisations/acme/setup/step-4/", {"action": "permission_model", "permission_model": "role"})
    response = client.post("/organisations/acme/setup/step-6/",
                           {"company_id": "SCAN-CO", "user_id": demo.user.login_id, "password": USER_PASSWORD})
    assert response.status_code == 302
    run = wait_for(lambda: ValidationRun.objects.filter(status__in=ValidationRun.FINISHED).first(), timeout=60,
                   message="the validation run to finish")
    assert run.status == "passed", list(run.checks.exclude(status__in=["passed", "skipped"]).values())
    assert Connection.objects.get().status == "connected"

    # --- the sync queued on connecting, then one through the page, both by the real worker
    first = wait_for(lambda: SyncRun.objects.filter(status__in=[SyncRun.Status.SUCCEEDED,
                                                                  SyncRun.Status.FAILED]).first(),
                     timeout=120, message="the sync queued on connecting to finish")
    assert first.status == SyncRun.Status.SUCCEEDED, first.summary
    assert client.post("/organisations/acme/sync/", {"kind": "full"}).status_code == 302
    sync_run = wait_for(lambda: SyncRun.objects.exclude(pk=first.pk).filter(
        status__in=[SyncRun.Status.SUCCEEDED, SyncRun.Status.FAILED]).first(), timeout=120,
        message="the sync to finish")
    assert sync_run.status == SyncRun.Status.SUCCEEDED, sync_run.summary
    assert Record.objects.filter(object_name="USERINFO").exists()
    # --- a webhook endpoint: its signing secret is shown once, then only stored encrypted
    endpoint, webhook_secret = webhooks.endpoint_create(organisation=organisation, events=["sync.finished"],
                                                        url="https://hooks.example.com/in")
    webhook_message = WebhookMessage.objects.create(endpoint=endpoint, msg_id="msg_scan",
                                                    event_type="sync.finished", payload="{}")

    # --- key rotation: a new key first, the old one kept for decryption, then the command
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    try:
        token_before = Connection.objects.get().password_token
        call_command("rotate_encryption_keys")
        connection = Connection.objects.get()
        assert connection.password_token != token_before
        settings.FIELD_ENCRYPTION_KEYS = [new_key]
        assert crypto.decrypt(connection.password_token) == USER_PASSWORD

        # --- the secrets to hunt for
        session_ids = list(SimSession.objects.values_list("session_id", flat=True))
        assert session_ids, "the run opened no Intacct session: nothing to look for"
        secrets = {"user password": USER_PASSWORD, "sender password": settings.INTACCT_SENDER_PASSWORD,
                   "old Fernet key": old_key, "new Fernet key": new_key, "webhook secret": webhook_secret}
        assert all(len(value) >= 8 for value in secrets.values())
        sessions = {f"session id {n}": value for n, value in enumerate(session_ids)}

        def hunt(where: str, text: str, *, with_sessions: bool = True) -> list[str]:
            wanted = {**secrets, **(sessions if with_sessions else {})}
            return [f"{name} in {where}" for name, value in wanted.items() if value in text]

        found: list[str] = []
        # The database: every table; simulator tables hold their own sessions (and hashed user passwords).
        for table, rows in database_rows().items():
            for row in rows:
                found += hunt(f"table {table}", row, with_sessions=not table.startswith("simulator_"))
        # The broker: everything published, and everything it still stores.
        # The Connect publishes the validation here; the sync is queued by the worker once the connection works
        # (Sync now joins it), so its message is in what the broker stores, scanned below.
        assert len(published) >= 1, "the Connect publishes a task"
        for n, message in enumerate(published + broker_storage()):
            found += hunt(f"broker message {n}", message.decode("latin-1"))
        # The logs.
        found += hunt("this process's log", caplog.text)
        worker_log = celery_worker.log()
        assert "connector.sync_run" in worker_log and "connector.connection_validate" in worker_log
        found += hunt("the worker's log", worker_log)
        # Every page, as the org admin, support and a superuser.
        values = {
            "slug": organisation.slug, "number": 1, "run_id": run.id, "connection_id": connection.id,
            "object_name": "USERINFO", "recordno": Record.objects.filter(object_name="USERINFO").first().recordno,
            "action": "deactivate", "company_id": "SCAN-CO", "role_id": Role.objects.first().id,
            "user_id": SimUser.objects.first().id, "uidb64": "MQ", "token": "not-a-token", "app_label": "connector",
            "content_type_id": 1, "url": "nothing/", "id": admin.id, "object_path": "accounts-payable/bill",
            "endpoint_id": endpoint.pk, "message_id": webhook_message.pk, "handoff_id": 1,
        }
        for where, text in rendered_pages(organisation.slug, values).items():
            found += hunt(f"page {where}", text)
        assert not found, "\n".join(found)
    finally:
        settings.FIELD_ENCRYPTION_KEYS = [old_key]


def test_the_scanners_would_see_a_leak(celery_worker, published):
    """The scans are not blind: a secret put in each place on purpose is found there."""
    marker = "Leak-Marker-5150"
    services.organisation_create(name=f"Org {marker}", slug="leaky")
    assert any(marker in row for rows in database_rows().values() for row in rows)
    from connector import tasks

    result = tasks.ping.apply_async(kwargs={}, headers={"x-marker": marker}, queue=celery_worker.queue)
    result.get(timeout=30)
    assert any(marker.encode() in message for message in published)
