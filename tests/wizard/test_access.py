"""Every URL naming an organisation, for each of the three people (and anonymous)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from connector import services
from connector.models import AuditEvent, StepCompletion

GET_URLS = [
    ("setup", {}),
    ("setup_step", {"number": 1}),
    ("setup_step", {"number": 2}),
    ("setup_step", {"number": 3}),
    ("setup_step", {"number": 4}),
    ("setup_step", {"number": 5}),
    ("setup_step", {"number": 6}),
    ("connection", {}),
    ("connection_password", {}),
    ("connection_entity", {}),
    ("connection_disconnect", {}),
]
POST_URLS = [
    ("setup_step", {"number": 1}, {"action": "done"}),
    ("setup_step", {"number": 4}, {"action": "permission_model", "permission_model": "role"}),
    ("setup_step", {"number": 5}, {"action": "deprovisioning", "wants_deprovisioning": "on"}),
    ("setup_step", {"number": 6}, {"company_id": "ACME", "user_id": "ws", "password": "pw"}),
    ("connection_revalidate", {}, {}),
    ("connection_password", {}, {"password": "pw"}),
    ("connection_entity", {}, {"entity_id": "E1"}),
    ("connection_disconnect", {}, {}),
]


def url(name: str, kwargs: dict, slug: str = "acme") -> str:
    return reverse(name, kwargs={"slug": slug, **kwargs})


@pytest.mark.parametrize(("name", "kwargs"), GET_URLS)
def test_admin_and_support_can_read_outsider_gets_404(name, kwargs, admin_client, support_client,
                                                      outsider_client, client):
    target = url(name, kwargs)
    assert admin_client.get(target, follow=True).status_code == 200
    assert support_client.get(target, follow=True).status_code == 200
    assert outsider_client.get(target).status_code == 404
    anonymous = client.get(target)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("name", "kwargs", "data"), POST_URLS)
def test_support_cannot_change_and_outsider_gets_404(name, kwargs, data, organisation, support_client,
                                                     outsider_client, client):
    target = url(name, kwargs)
    before = AuditEvent.objects.count()
    assert support_client.post(target, data).status_code == 403
    assert outsider_client.post(target, data).status_code == 404
    assert client.post(target, data).status_code == 302  # to the login page
    assert AuditEvent.objects.count() == before
    organisation.connection.refresh_from_db()
    assert organisation.connection.password_token == ""


def test_unknown_organisation_is_404_for_everyone(admin_client, support_client):
    assert admin_client.get(url("connection", {}, slug="nope")).status_code == 404
    assert support_client.get(url("connection", {}, slug="nope")).status_code == 404


def test_validation_status_of_another_org_is_404(organisation, other_organisation, admin_client,
                                                 outsider_client):
    run = services.validation_request(connection=other_organisation.connection, by=None)
    assert admin_client.get(reverse("validation_status", args=["other", run.id])).status_code == 404
    assert admin_client.get(reverse("validation_status", args=["acme", run.id])).status_code == 404
    assert outsider_client.get(reverse("validation_status", args=["other", run.id])).status_code == 200


def test_support_sees_every_organisation_admin_does_not(organisation, other_organisation, support_client,
                                                        admin_client):
    page = support_client.get(reverse("organisation_list"))
    assert page.status_code == 200
    assert b"Acme Ltd" in page.content and b"Other plc" in page.content
    assert admin_client.get(reverse("organisation_list")).status_code == 404


def test_home_sends_each_person_to_their_place(organisation, admin_client, support_client, client):
    assert client.get("/")["Location"] == reverse("login")
    assert support_client.get("/")["Location"] == reverse("dashboard")
    assert admin_client.get("/")["Location"] == reverse("setup", args=["acme"])


def test_admin_marks_a_step_done_and_resumes_there(organisation, admin_client):
    response = admin_client.post(url("setup_step", {"number": 1}), {"action": "done"})
    assert response["Location"] == url("setup_step", {"number": 2})
    done = StepCompletion.objects.get(connection=organisation.connection, step=1)
    assert done.done_by.username == "alice"
    organisation.connection.refresh_from_db()
    assert organisation.connection.status == "in_setup"
    assert admin_client.get(url("setup", {}))["Location"] == url("setup_step", {"number": 2})
    event = AuditEvent.objects.filter(action="step.marked_done").get()
    assert (event.actor.username, event.ip_address, event.details) == ("alice", "127.0.0.1", {"step": 1})


def test_every_form_has_a_csrf_token(organisation, admin_client):
    from django.test import Client

    from tests.conftest import PASSWORD

    strict = Client(enforce_csrf_checks=True)
    strict.login(username="alice", password=PASSWORD)
    assert strict.post(url("setup_step", {"number": 1}), {"action": "done"}).status_code == 403
    for name, kwargs in GET_URLS:
        page = admin_client.get(url(name, kwargs), follow=True)
        assert page.content.count(b"<form") == page.content.count(b"csrfmiddlewaretoken"), name
