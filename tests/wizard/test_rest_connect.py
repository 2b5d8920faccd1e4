"""'Connect with Sage Intacct' without a browser: where the state and the PKCE verifier live, who may come back."""
from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings

from connector import crypto
from connector.models import AuditEvent, Connection
from wizard.models import OAuthAttempt

FORM = {"code-company_id": "ACME-CO", "code-company_timezone": "Europe/Paris", "return_to": "setup"}


@pytest.fixture
def started(admin_client, organisation, settings):
    settings.INTACCT_REST_BASE_URL = "https://api.intacct.com/ia/api/v1"
    response = admin_client.post(f"/organisations/{organisation.slug}/connect/sage-intacct/", FORM)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    return response, query


def test_the_browser_is_sent_to_intacct_with_state_and_challenge_only(started, admin_client):
    response, query = started
    location = response["Location"]
    assert location.startswith("https://api.intacct.com/ia/api/v1/oauth2/authorize?")
    assert query["redirect_uri"] == [settings.INTACCT_REST_REDIRECT_URI]
    assert query["code_challenge_method"] == ["S256"] and query["scope"] == ["offline_access"]
    attempt = OAuthAttempt.objects.get()
    # Only the state's hash is kept; the verifier only encrypted, and neither is in a cookie.
    assert attempt.state_hash == hashlib.sha256(query["state"][0].encode()).hexdigest()
    assert query["state"][0] not in attempt.state_hash
    cookies = " ".join(morsel.value for morsel in response.cookies.values())
    assert query["state"][0] not in cookies
    verifier = crypto.decrypt(attempt.verifier_token)
    assert verifier not in location and verifier not in cookies and verifier not in attempt.verifier_token
    assert attempt.company_id == "ACME-CO" and attempt.company_timezone == "Europe/Paris"


def test_someone_else_cannot_use_the_state_and_it_is_not_spent(started, outsider_client, admin_client,
                                                             organisation):
    _, query = started
    state = query["state"][0]
    assert outsider_client.get("/connect/sage-intacct/callback/", {"state": state, "code": "x"}).status_code == 404
    assert OAuthAttempt.objects.get().used_at is None
    # The admin who started it declines at Intacct: plain words, nothing changed, the state is spent.
    response = admin_client.get("/connect/sage-intacct/callback/", {"state": state, "error": "access_denied"},
                                follow=True)
    assert "You chose not to allow Intacct Connect" in response.content.decode()
    assert OAuthAttempt.objects.get().used_at is not None
    connection = Connection.objects.get(organisation=organisation)
    assert not connection.has_credentials
    assert not AuditEvent.objects.filter(action="rest_connection.connected").exists()


def test_an_unknown_state_is_refused_in_plain_words(admin_client):
    response = admin_client.get("/connect/sage-intacct/callback/", {"state": "made-up", "code": "x"}, follow=True)
    assert "expired or was already used" in response.content.decode()


def test_support_staff_cannot_start(support_client, organisation):
    response = support_client.post(f"/organisations/{organisation.slug}/connect/sage-intacct/", FORM)
    assert response.status_code in (403, 404)
    assert not OAuthAttempt.objects.exists()


def test_a_rest_connection_has_no_password_to_change(admin_client, organisation):
    """The link is hidden over REST; the address typed anyway says why and stores nothing."""
    Connection.objects.filter(organisation=organisation).update(
        protocol=Connection.Protocol.REST, rest_grant=Connection.RestGrant.CLIENT_CREDENTIALS, company_id="ACME-CO",
        user_id="ws_connect", company_timezone="Europe/Paris")
    url = f"/organisations/{organisation.slug}/connection/password/"
    for response in (admin_client.get(url, follow=True),
                     admin_client.post(url, {"password": "typed-anyway-1"}, follow=True)):
        assert response.redirect_chain[-1][0] == f"/organisations/{organisation.slug}/connection/"
        assert "signs in without the Web Services user" in response.content.decode()
    connection = Connection.objects.get(organisation=organisation)
    assert connection.password_token == "" and not connection.validation_runs.exists()
