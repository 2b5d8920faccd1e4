"""A page that cannot reach the database answers 503 with plain words and Retry-After, never a 500."""
from __future__ import annotations

from unittest import mock

from django.db import OperationalError
from django.test import Client

from tests.conftest import PASSWORD


def test_a_page_during_a_database_outage_is_a_503_that_says_so(organisation, settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    assert client.login(username="alice", password=PASSWORD)
    # What PostgreSQL refusing connections looks like to Django: every query raises OperationalError.
    refused = OperationalError('connection failed: FATAL:  database "intacct" is not currently accepting connections')
    with mock.patch("django.db.backends.base.base.BaseDatabaseWrapper.ensure_connection", side_effect=refused):
        from django.db import connections

        connections.close_all()
        response = client.get("/organisations/acme/connection/")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    html = response.content.decode()
    assert "We can't reach our database right now" in html and "try again" in html
    assert "OperationalError" not in html and "FATAL" not in html


def test_any_other_error_is_still_a_500(organisation, settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    assert client.login(username="alice", password=PASSWORD)
    with mock.patch("wizard.views.render", side_effect=RuntimeError("a bug")):
        response = client.get("/organisations/acme/setup/step-6/")
    assert response.status_code == 500
