"""Webhooks (issue 16): Standard Webhooks signatures checked by the `standardwebhooks` package (an independent
implementation of the spec) and by hand from the spec's text, retries then disable, refused addresses, the
delivery log with resend, and the whole path through a real worker after a real sync."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from connector import crypto, deprovision, services, sync, webhooks
from connector.models import (
    ApiToken,
    AuditEvent,
    Connection,
    Record,
    SyncRun,
    ValidationRun,
    WebhookEndpoint,
    WebhookMessage,
)
from connector.models.webhooks import EVENT_TYPES
from simulator import records as sim_records
from tests.conftest import PASSWORD, wait_for
from tests.sync.conftest import connect


class Receiver:
    """The platform's webhook receiver on loopback: records every request, answers as told."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict, bytes]] = []  # consumed in order; then 200
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                          "body": body.decode()})
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, headers, payload = receiver.answers.pop(0) if receiver.answers else (200, {}, b"ok")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/intacct"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def queued(request, monkeypatch) -> list:
    """Messages handed to Celery: recorded, not sent, except where a real worker delivers them (so a worker left
    running by another test never races the attempts these tests make themselves)."""
    sent: list = []
    if "celery_worker" not in request.fixturenames:
        from connector import tasks

        monkeypatch.setattr(tasks.webhook_deliver, "delay", sent.append)
    return sent


@pytest.fixture
def receiver():
    found = Receiver()
    yield found
    found.close()


def spec_verify(secret: str, headers: dict, body: str) -> bool:
    """The spec's verification written out here: base64(HMAC-SHA256(base64decode(secret minus 'whsec_'),
    '<webhook-id>.<webhook-timestamp>.<body>')) equals one of the space-separated 'v1,<sig>' values."""
    key = base64.b64decode(secret.split("_", 1)[1])
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return any(part.split(",", 1)[1] == expected for part in headers["webhook-signature"].split(" ")
               if part.startswith("v1,"))


def endpoint_for(organisation, url: str, events=("sync.finished",)) -> tuple[WebhookEndpoint, str]:
    return webhooks.endpoint_create(organisation=organisation, url=url, events=list(events))


def test_a_message_is_signed_per_standard_webhooks_and_the_secret_is_stored_encrypted(synced, receiver, queued):
    endpoint, secret = endpoint_for(synced.organisation, receiver.url)
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert secret not in endpoint.secret_token and crypto.decrypt(endpoint.secret_token) == secret
    [message] = webhooks.emit(synced.organisation.pk, "sync.finished", {"run_id": 1, "status": "succeeded"})
    assert queued == [message.pk], "handed to Celery once committed"
    delivered = webhooks.deliver(message.pk)
    assert delivered.status == WebhookMessage.Status.DELIVERED and delivered.last_status_code == 200
    [got] = receiver.requests
    headers, body = got["headers"], got["body"]
    assert headers["webhook-id"] == message.msg_id and got["path"] == "/hooks/intacct"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 10
    stamp = json.loads(body)["timestamp"]
    assert Webhook(secret).verify(body, headers) == {"type": "sync.finished", "timestamp": stamp,
                                                     "data": {"run_id": 1, "status": "succeeded"}}
    assert spec_verify(secret, headers, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("succeeded", "failed"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(body, headers)


def test_a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends(synced, receiver, settings):
    endpoint, old = endpoint_for(synced.organisation, receiver.url)
    new = webhooks.secret_rotate(endpoint)
    assert new != old
    [message] = webhooks.emit(synced.organisation.pk, "sync.finished", {"run_id": 2})
    webhooks.deliver(message.pk)
    headers, body = receiver.requests[-1]["headers"], receiver.requests[-1]["body"]
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(body, headers) and Webhook(new).verify(body, headers)
    # The overlap is over: only the new secret signs.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_until=timezone.now() - timedelta(seconds=1))
    webhooks.resend(message)
    webhooks.deliver(message.pk)
    headers, body = receiver.requests[-1]["headers"], receiver.requests[-1]["body"]
    assert headers["webhook-id"] == message.msg_id, "the same id on every attempt"
    assert Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, headers)


def test_failures_are_retried_with_backoff_then_the_endpoint_is_disabled_and_admins_told(synced, receiver,
                                                                                          settings):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [5, 60, 600]
    endpoint, _ = endpoint_for(synced.organisation, receiver.url)
    receiver.answers = [(500, {}, b"boom")] * 4
    [message] = webhooks.emit(synced.organisation.pk, "sync.finished", {"run_id": 3})
    now = timezone.now()
    waits = []
    for _ in range(3):
        message = webhooks.deliver(message.pk, now=now)
        assert message.status == WebhookMessage.Status.PENDING and message.last_status_code == 500
        waits.append(round((message.next_attempt_at - message.last_attempt_at).total_seconds()))
        assert webhooks.deliver(message.pk, now=now) is None, "not due yet: nothing sent"
        now = message.next_attempt_at + timedelta(seconds=1)
    assert waits == [5, 60, 600]
    message = webhooks.deliver(message.pk, now=now)
    assert message.status == WebhookMessage.Status.FAILED and message.attempts == 4
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "failed 4 times" in endpoint.disabled_reason
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {message.msg_id}
    assert len(receiver.requests) == 4
    [sent] = mail.outbox
    assert sent.to == ["alice@acme.test"] and "disabled" in sent.subject and receiver.url in sent.body
    # A disabled endpoint gets no new messages.
    assert webhooks.emit(synced.organisation.pk, "sync.finished", {"run_id": 4}) == []


def test_the_default_schedule_retries_for_about_a_day():
    total = sum(webhooks.DEFAULT_RETRY_SCHEDULE)
    assert 22 * 3600 <= total <= 26 * 3600
    assert list(webhooks.DEFAULT_RETRY_SCHEDULE[:5]) == sorted(webhooks.DEFAULT_RETRY_SCHEDULE[:5])


@pytest.mark.parametrize(("address", "kind"), [
    ("10.1.2.3", "private"), ("192.168.0.10", "private"), ("172.16.5.5", "private"), ("127.0.0.1", "loopback"),
    ("169.254.169.254", "link-local"), ("::1", "loopback"), ("fe80::1", "link-local"), ("fc00::5", "private"),
    ("::ffff:10.0.0.1", "private"), ("0.0.0.0", "unspecified"), ("100.64.0.1", "non-public"),  # noqa: S104
])
def test_an_https_endpoint_resolving_to_a_forbidden_address_is_never_called(synced, monkeypatch, address,
                                                                             kind):
    endpoint, _ = endpoint_for(synced.organisation, "https://hooks.platform.example/in")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, **kw: [(family, socket.SOCK_STREAM, 6, "",
                                                                          (address, port))])
    connects = []
    monkeypatch.setattr(webhooks.httpx.Client, "send", lambda *a, **k: connects.append(a))
    [message] = webhooks.emit(synced.organisation.pk, "sync.finished", {"run_id": 5})
    message = webhooks.deliver(message.pk)
    assert connects == []
    assert message.status == WebhookMessage.Status.PENDING and message.attempts == 1
    assert message.last_error.startswith("Not sent:") and kind in message.last_error


def test_addresses_are_checked_again_on_every_attempt(synced, monkeypatch):
    """DNS that answers a public address at registration and a private one later (rebinding) is refused."""
    endpoint, _ = endpoint_for(synced.organisation, "https://hooks.platform.example/in")
    answers = iter(["93.184.216.34", "10.0.0.8"])
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, **kw: [(socket.AF_INET, socket.SOCK_STREAM, 6, "",
                                                                          (next(answers), port))])
    assert webhooks.resolve_checked(endpoint.url) == ("hooks.platform.example", 443, "93.184.216.34")
    with pytest.raises(webhooks.AddressRefused, match="private"):
        webhooks.resolve_checked(endpoint.url)


@pytest.mark.parametrize("url", ["http://hooks.platform.example/in", "ftp://x.example/", "https://u:p@x.example/",
                                 "not a url", "http://10.0.0.1/"])
def test_registration_refuses_urls_that_are_not_https(synced, url):
    with pytest.raises(webhooks.EndpointRefused):
        webhooks.endpoint_create(organisation=synced.organisation, url=url, events=["sync.finished"])


def test_plain_http_to_loopback_is_refused_in_production(synced, settings):
    settings.WEBHOOK_ALLOW_LOOPBACK_HTTP = False
    with pytest.raises(webhooks.EndpointRefused):
        webhooks.endpoint_create(organisation=synced.organisation, url="http://127.0.0.1:9/x", events=["sync.finished"])


def test_redirects_are_not_followed_and_only_1_kb_of_an_answer_is_kept(synced, receiver):
    endpoint, _ = endpoint_for(synced.organisation, receiver.url)
    other = Receiver()
    try:
        receiver.answers = [(302, {"Location": other.url}, b"moved"), (200, {}, b"x" * 5000)]
        [first] = webhooks.emit(synced.organisation.pk, "sync.finished", {"run_id": 6})
        first = webhooks.deliver(first.pk)
        assert first.status == WebhookMessage.Status.PENDING and first.last_status_code == 302
        assert "redirect, not followed" in first.last_error and other.requests == []
        [second] = webhooks.emit(synced.organisation.pk, "sync.finished", {"run_id": 7})
        second = webhooks.deliver(second.pk)
        assert second.status == WebhookMessage.Status.DELIVERED and second.last_response == "x" * 1024
    finally:
        other.close()


def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(synced, receiver, monkeypatch):
    assert webhooks.TIMEOUT_SECONDS == 5.0
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 0.5)  # the same path, without waiting 5 s in the test
    endpoint_for(synced.organisation, receiver.url)
    receiver.delay = 1.5
    [message] = webhooks.emit(synced.organisation.pk, "sync.finished", {"run_id": 8})
    message = webhooks.deliver(message.pk)
    assert message.status == WebhookMessage.Status.PENDING and "No answer within" in message.last_error


def test_the_delivery_log_shows_each_message_to_the_admin_and_support_who_may_resend(synced, receiver,
                                                                                   admin_client, support_client,
                                                                                   outsider_client):
    endpoint, _ = endpoint_for(synced.organisation, receiver.url)
    receiver.answers = [(503, {}, b"busy, try later")]
    [message] = webhooks.emit(synced.organisation.pk, "sync.finished", {"run_id": 9})
    webhooks.deliver(message.pk)
    url = reverse("webhook_detail", args=["acme", endpoint.pk])
    for client in (admin_client, support_client):
        page = client.get(url).content.decode()
        assert message.msg_id in page and "503" in page and "busy, try later" in page and " ms" in page
        assert "Pending" in page
    assert outsider_client.get(url).status_code == 404
    resend = reverse("webhook_resend", args=["acme", endpoint.pk, message.pk])
    assert support_client.post(resend).status_code == 302
    message.refresh_from_db()
    assert message.status == WebhookMessage.Status.PENDING and message.attempts == 0
    assert AuditEvent.objects.filter(action="webhook_resent").count() == 1
    # Support reads but does not configure.
    assert support_client.post(url, {"action": "rotate"}).status_code == 403


def test_the_admin_registers_an_endpoint_on_the_page_and_sees_the_secret_once(synced, admin_client):
    url = reverse("webhook_list", args=["acme"])
    page = admin_client.post(url, {"url": "https://hooks.platform.example/in",
                                   "events": ["sync.finished", "records.changed"]}).content.decode()
    endpoint = WebhookEndpoint.objects.get(organisation=synced.organisation)
    secret = crypto.decrypt(endpoint.secret_token)
    assert secret in page and endpoint.events == ["records.changed", "sync.finished"]
    assert secret not in admin_client.get(url).content.decode()
    assert secret not in admin_client.get(reverse("webhook_detail", args=["acme", endpoint.pk])).content.decode()
    refused = admin_client.post(url, {"url": "http://hooks.platform.example/in", "events": ["sync.finished"]})
    assert "must use https" in refused.content.decode() and WebhookEndpoint.objects.count() == 1


def test_the_platform_registers_through_the_api_with_its_token(synced):
    _, token = ApiToken.issue(organisation=synced.organisation, name="platform")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    url = reverse("api_webhooks", args=["acme"])
    created = Client().post(url, json.dumps({"url": "https://hooks.platform.example/in",
                                              "events": ["connection.status_changed"]}),
                            content_type="application/json", **headers)
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_")
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert crypto.decrypt(endpoint.secret_token) == body["secret"]
    listed = Client().get(url, **headers).json()
    assert [w["id"] for w in listed["webhooks"]] == [endpoint.pk] and "secret" not in listed["webhooks"][0]
    rotated = Client().post(reverse("api_webhook_rotate", args=["acme", endpoint.pk]), **headers).json()
    assert rotated["secret"] != body["secret"] and rotated["previous_secret_until"]
    bad = Client().post(url, json.dumps({"url": "https://x.example/", "events": ["nope"]}),
                        content_type="application/json", **headers)
    assert bad.status_code == 400 and "Pick one or more events" in bad.json()["error"]
    assert Client().post(url, "{}", content_type="application/json").status_code == 401
    assert Client().delete(reverse("api_webhook", args=["acme", endpoint.pk]), **headers).status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_a_real_sync_through_the_worker_sends_signed_sync_finished_and_records_changed(synced, receiver,
                                                                                      celery_worker):
    _, token = ApiToken.issue(organisation=synced.organisation, name="platform")
    created = Client().post(reverse("api_webhooks", args=["acme"]),
                            json.dumps({"url": receiver.url, "events": ["sync.finished", "records.changed"]}),
                            content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    secret = created["secret"]
    run, _ = services.sync_request(connection=synced.connection, kind=SyncRun.Kind.FULL)
    wait_for(lambda: len(receiver.requests) >= 1 + 10, timeout=60, message="sync.finished and records.changed")
    run.refresh_from_db()
    events = [Webhook(secret).verify(r["body"], r["headers"]) for r in receiver.requests]
    [finished] = [e for e in events if e["type"] == "sync.finished"]
    assert finished["data"]["run_id"] == run.pk and finished["data"]["status"] == run.status
    changed = [e["data"] for e in events if e["type"] == "records.changed"]
    assert {c["object"] for c in changed} >= {"APBILL", "EMPLOYEE"} and all("data" not in c for c in changed)
    # The announced range reads back from the feed: exactly that object's changes.
    apbill = next(c for c in changed if c["object"] == "APBILL")
    page = Client().get(reverse("api_changes", args=["acme"]), {"object": "APBILL", "after": apbill["after"]},
                        HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert len(page["changes"]) == apbill["changes"] == 700
    assert page["changes"][-1]["seq"] == apbill["last_seq"]
    assert WebhookMessage.objects.filter(status=WebhookMessage.Status.DELIVERED).count() == len(receiver.requests)


def test_status_changes_and_finished_validations_become_events_with_the_cause_and_the_wizard_step(synced):
    endpoint, _ = endpoint_for(synced.organisation, "https://hooks.platform.example/in",
                               events=["connection.status_changed", "validation.finished"])
    connection = synced.connection
    run = ValidationRun.objects.create(connection=connection, status=ValidationRun.Status.FAILED,
                                       failed_check="read_apbill", failed_step=4, summary="Bills View is missing.",
                                       finished_at=timezone.now())
    services.connection_transition(connection=connection, to=Connection.Status.NEEDS_ATTENTION,
                                   check_key="read_apbill", run=run, reason="Bills View is missing.",
                                   cause="permission_missing")
    run.save()  # saved again after it finished (a counter, a summary): still one event
    sent = {m.event_type: json.loads(m.payload) for m in WebhookMessage.objects.filter(endpoint=endpoint)}
    assert WebhookMessage.objects.filter(endpoint=endpoint).count() == 2
    status = sent["connection.status_changed"]["data"]
    assert (status["from"], status["to"], status["cause"], status["failing_check"], status["wizard_step"]) == \
        ("connected", "needs_attention", "permission_missing", "read_apbill", 4)
    validation = sent["validation.finished"]["data"]
    assert (validation["validation_id"], validation["status"], validation["wizard_step"]) == (run.pk, "failed", 4)
    # An event nobody subscribed to makes no message.
    SyncRun.objects.create(connection=connection, status=SyncRun.Status.SUCCEEDED, finished_at=timezone.now())
    assert not WebhookMessage.objects.filter(event_type="sync.finished").exists()


def test_in_the_browser_the_admin_adds_an_endpoint_reads_the_log_and_resends(page, live_server, synced, receiver,
                                                                            celery_worker):
    base = live_server.url
    page.goto(base + "/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{base}/organisations/acme/webhooks/")
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_role("button", name="Add the endpoint").click()
    shown = page.get_by_role("status").inner_text()
    endpoint = WebhookEndpoint.objects.get(organisation=synced.organisation)
    secret = crypto.decrypt(endpoint.secret_token)
    assert secret in shown and sorted(endpoint.events) == sorted(EVENT_TYPES)
    # A real event, delivered by the real worker.
    services.connection_transition(connection=synced.connection, to=Connection.Status.BROKEN, check_key="login",
                                   reason="The password was refused.", cause="password_refused")
    wait_for(lambda: len(receiver.requests) == 1, timeout=30, message="the event to arrive")
    assert Webhook(secret).verify(receiver.requests[0]["body"], receiver.requests[0]["headers"])["data"]["to"] == \
        "broken"
    page.get_by_role("link", name=receiver.url).click()
    log = page.locator("#delivery-log")
    assert "connection.status_changed" in log.inner_text() and "Delivered" in log.inner_text()
    assert secret not in page.content()
    page.get_by_role("button", name="Resend").click()
    wait_for(lambda: len(receiver.requests) == 2, timeout=30, message="the resent message to arrive")
    assert receiver.requests[1]["headers"]["webhook-id"] == receiver.requests[0]["headers"]["webhook-id"]
    assert "queued again" in page.get_by_role("status").first.inner_text()


def test_a_failing_webhook_event_never_stops_the_sync_that_raised_it(synced, monkeypatch, caplog):
    endpoint_for(synced.organisation, "https://hooks.platform.example/in")

    def broken(*args, **kwargs):
        raise RuntimeError("event store broken")

    monkeypatch.setattr(webhooks, "emit", broken)
    run = SyncRun.objects.create(connection=synced.connection, kind=SyncRun.Kind.FULL)
    finished = sync.run_sync(run_id=run.pk)
    assert finished.status == SyncRun.Status.SUCCEEDED, finished.summary
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED and run.finished_at is not None
    assert "webhook event from SyncRun not recorded" in caplog.text
    assert not WebhookMessage.objects.exists()


def test_a_sync_ended_by_the_sweep_or_a_lost_database_is_announced_finished_too(synced):
    """Runs ended by a conditional UPDATE (not a save) were never announced: the platform waited forever."""
    endpoint, _ = endpoint_for(synced.organisation, "https://hooks.platform.example/in")
    interrupted = SyncRun.objects.create(connection=synced.connection, status=SyncRun.Status.RUNNING,
                                         started_at=timezone.now())
    lost = SyncRun.objects.create(connection=synced.connection, status=SyncRun.Status.RUNNING,
                                  started_at=timezone.now())
    assert sync.interrupted_close(SyncRun.objects.filter(pk=interrupted.pk)) == [interrupted]
    sync.fail_after_database_error(lost)
    sent = {json.loads(m.payload)["data"]["run_id"]: json.loads(m.payload)["data"]
            for m in WebhookMessage.objects.filter(endpoint=endpoint, event_type="sync.finished")}
    assert sent[interrupted.pk]["status"] == "interrupted" and "Interrupted" in sent[interrupted.pk]["summary"]
    assert sent[lost.pk]["status"] == "failed" and "database" in sent[lost.pk]["summary"]
    assert len(sent) == 2


def test_a_user_deactivated_from_our_pages_is_announced_as_records_changed_at_once(synced):
    connection = connect(synced.organisation, "SYNC-CO", deprovisioning=True)
    sim_records.modify_record(synced.company, "USERINFO", 3, {"STATUS": "active"})
    assert sync.run_sync(run_id=SyncRun.objects.create(connection=connection).pk).status == SyncRun.Status.SUCCEEDED
    endpoint, _ = endpoint_for(synced.organisation, "https://hooks.platform.example/in", events=["records.changed"])
    webhooks.records_changed_announce(connection)  # what the sync already announced
    before = WebhookMessage.objects.filter(endpoint=endpoint).count()
    user = Record.objects.get(connection=connection, object_name="USERINFO", recordno=3)
    deprovision.apply(connection=connection, user=user, action=deprovision.DEACTIVATE, with_employee=False,
                      by=get_user_model().objects.get(username="alice"))
    [message] = WebhookMessage.objects.filter(endpoint=endpoint).order_by("-id")[:1]
    data = json.loads(message.payload)["data"]
    assert WebhookMessage.objects.filter(endpoint=endpoint).count() == before + 1
    assert (data["object"], data["changes"]) == ("USERINFO", 1)
    user.refresh_from_db()
    assert data["last_seq"] == user.change_seq
