"""A NUL byte or other control character in any query parameter is a 400 with a clear message, in one place.

PostgreSQL refuses NUL in text (a 500 from deep inside a search) and SQLite silently matches nothing (an
empty CSV): neither is an answer. Run this file with DATABASE_URL pointing at PostgreSQL too.
"""
from __future__ import annotations

import pytest
from django.db import connection as db_connection
from django.test import Client

from connector.models import Connection, Record

MESSAGE = "control character"


@pytest.fixture
def connected(organisation):
    Connection.objects.filter(organisation=organisation).update(company_id="ACME", user_id="ws_connect",
                                                                status=Connection.Status.CONNECTED)
    Record.objects.create(connection=organisation.connection, object_name="USERINFO", recordno=5, key_value="jdoe",
                          whenmodified="2024-01-02 03:04:05", data={"LOGINID": "jdoe"})
    return organisation.connection


URLS = [
    ("support", "/support/", "q"),
    ("support", "/support/connections.csv", "q"),
    ("support", "/support/connections.csv", "organisation"),
    ("admin", "/organisations/acme/records/USERINFO/", "q"),
    ("admin", "/organisations/acme/records/USERINFO/csv/", "q"),
    ("admin", "/api/v1/organisations/acme/objects/USERINFO/records/", "cursor"),
    ("anonymous", "/accounts/login/", "next"),
    ("anonymous", "/healthz", "x"),
]


@pytest.mark.parametrize("who,url,name", URLS)
@pytest.mark.parametrize("value", ["a\x00b", "\x00", "jdoe\x1b[31m", "a\x7fb", "x\r\ny"])
def test_a_control_character_in_a_query_parameter_is_a_clear_400(who, url, name, value, connected, admin_client,
                                                                 support_client):
    client = {"admin": admin_client, "support": support_client, "anonymous": Client()}[who]
    response = client.get(url, {name: value})
    assert response.status_code == 400, (db_connection.vendor, url, response.status_code)
    body = response.content.decode()
    assert MESSAGE in body and name in body
    assert response["Content-Type"].startswith("text/plain")


def test_a_control_character_in_a_parameter_name_is_refused_too(support_client):
    assert support_client.get("/support/?q%00x=1").status_code == 400


def test_ordinary_unicode_and_percent_signs_still_search(connected, admin_client):
    for value in ("jdoe", "ｊｄｏｅ", "100%", "a+b", "é"):
        assert admin_client.get("/organisations/acme/records/USERINFO/", {"q": value}).status_code == 200
    response = admin_client.get("/organisations/acme/records/USERINFO/csv/", {"q": "jdoe"})
    assert b"jdoe" in b"".join(response.streaming_content)
