"""The OpenAPI 3.1 document (/api/v1/openapi.json) against the real answers of every JSON endpoint."""
from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import get_resolver, reverse
from jsonschema import Draft202012Validator

from connector import sync, webhooks
from connector.models import ApiToken, SyncRun, WebhookMessage
from simulator import records as sim_records
from tests.security.test_every_url import all_patterns


@pytest.fixture
def document() -> dict:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    return response.json()


def check(document: dict, path: str, method: str, response) -> None:
    """The answer's status is documented for this operation and its JSON body is valid against its schema."""
    operation = document["paths"][path][method]
    status = str(response.status_code)
    assert status in operation["responses"], (path, method, status)
    documented = operation["responses"][status]
    if "content" not in documented:
        assert not response.content, (path, status)
        return
    schema = {**documented["content"]["application/json"]["schema"], "components": document["components"]}
    Draft202012Validator.check_schema(schema)
    errors = sorted(Draft202012Validator(schema).iter_errors(response.json()), key=str)
    assert not errors, (path, method, status, [e.message for e in errors[:5]])


def test_the_document_is_openapi_3_1_and_covers_every_json_url(document):
    assert document["openapi"] == "3.1.0"
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    documented = set(document["paths"])
    covered = 0
    for pattern in all_patterns():
        if pattern.route.startswith("api/v1/organisations/"):  # every JSON endpoint of the platform API
            route = "/" + pattern.route
            for name in pattern.converters:
                route = route.replace(f"<slug:{name}>", "{" + name + "}").replace(f"<str:{name}>", "{object}") \
                    .replace(f"<int:{name}>", "{" + name + "}")
            assert route in documented, f"{pattern.key} ({route}) is not in the OpenAPI document"
            covered += 1
    assert covered == len(documented) == 7
    assert set(document["webhooks"]) == {"connection.status_changed", "sync.finished", "validation.finished",
                                         "records.changed"}
    assert get_resolver().resolve("/api/v1/openapi.json")
    # The schemas do refuse a wrong answer: an upsert without its data, a change of an unknown kind.
    changes = {**document["components"]["schemas"]["Changes"], "components": document["components"]}
    for wrong in ({"seq": 1, "object": "APBILL", "recordno": 1, "op": "upsert", "whenmodified": ""},
                  {"seq": 1, "object": "APBILL", "recordno": 1, "op": "moved", "whenmodified": ""}):
        assert list(Draft202012Validator(changes).iter_errors({"changes": [wrong], "next_cursor": "x",
                                                               "has_more": False}))


def test_every_endpoint_answers_as_the_document_says(synced, document, monkeypatch):
    from connector import tasks

    monkeypatch.setattr(tasks.webhook_deliver, "delay", lambda message_id: None)  # nothing leaves the test
    connection, company = synced.connection, synced.company
    run = SyncRun.objects.create(connection=connection, kind=SyncRun.Kind.FULL)
    assert sync.run_sync(run_id=run.pk).status == SyncRun.Status.SUCCEEDED
    sim_records.delete_record(company, "APBILL", 3)
    sync.run_sync(run_id=SyncRun.objects.create(connection=connection, kind=SyncRun.Kind.RECONCILE).pk)
    _, token = ApiToken.issue(organisation=synced.organisation, name="platform")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    client = Client()
    base = "/api/v1/organisations/{slug}/"

    check(document, base + "status/", "get", client.get(reverse("api_connection_status", args=["acme"]), **auth))
    check(document, base + "status/", "get", client.get(reverse("api_connection_status", args=["acme"])))  # 401
    check(document, base + "objects/", "get", client.get(reverse("api_objects", args=["acme"]), **auth))
    records = base + "objects/{object}/records/"
    url = reverse("api_records", args=["acme", "APBILL"])
    check(document, records, "get", client.get(url, {"limit": 5, "include_deleted": "1"}, **auth))
    check(document, records, "get", client.get(url, {"modified_since": "yesterday"}, **auth))  # 400

    changes = base + "changes/"
    url = reverse("api_changes", args=["acme"])
    page = client.get(url, {"object": "APBILL", "limit": 1000}, **auth)
    assert {c["op"] for c in page.json()["changes"]} == {"upsert", "delete"}
    check(document, changes, "get", page)
    check(document, changes, "get", client.get(url, {"after": "nope"}, **auth))  # 400
    check(document, changes, "get", client.get(url, **auth))

    hooks = base + "webhooks/"
    url = reverse("api_webhooks", args=["acme"])
    created = client.post(url, json.dumps({"url": "https://hooks.platform.example/in",
                                           "events": ["sync.finished"]}), content_type="application/json", **auth)
    check(document, hooks, "post", created)
    check(document, hooks, "post", client.post(url, json.dumps({"url": "http://x.example/", "events": []}),
                                               content_type="application/json", **auth))  # 400
    check(document, hooks, "get", client.get(url, **auth))
    endpoint_id = created.json()["id"]
    webhooks.emit(synced.organisation.pk, "sync.finished", {"run_id": run.pk})
    assert WebhookMessage.objects.count() == 1
    one = hooks + "{endpoint_id}/"
    check(document, one, "get", client.get(reverse("api_webhook", args=["acme", endpoint_id]), **auth))
    check(document, one + "rotate-secret/", "post",
          client.post(reverse("api_webhook_rotate", args=["acme", endpoint_id]), **auth))
    check(document, one, "delete", client.delete(reverse("api_webhook", args=["acme", endpoint_id]), **auth))
