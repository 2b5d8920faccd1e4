"""A REST connection's tokens: exchanged, stored encrypted, rotated under the row lock, revoked at disconnect."""
from __future__ import annotations

import threading
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

from connector import clients, requeue, rest_tokens, services
from connector.intacct_rest import Pkce, authorization_url, errors
from connector.models import AuditEvent, Connection
from simulator import inflight
from simulator.demo import build_company
from simulator.models import OAuthGrant
from tests.rest.oauth_walk import approve
from tests.simulator.conftest import SMALL_SIZES


@pytest.fixture
def rest_org(organisation, our_rest_app, transactional_db, settings, monkeypatch) -> Any:
    # The validation a connect queues is not sent: a Celery worker left running by an earlier test of this
    # process would otherwise check (and so refresh) the tokens while these tests count refreshes.
    monkeypatch.setattr(requeue, "run_send", lambda run, countdown=0: None)
    inflight.inflight_reset()
    settings.INTACCT_MAX_RETRIES = 1
    settings.INTACCT_RETRY_BUDGET_SECONDS = 3.0
    build_company("TOK-CO", sizes=SMALL_SIZES)
    return organisation


def connect_with_code(organisation: Any) -> Connection:
    pkce = Pkce.new()
    url = authorization_url(clients.rest_config(), redirect_uri=settings.INTACCT_REST_REDIRECT_URI, state="s-1",
                            pkce=pkce)
    answer = approve(url, company_id="TOK-CO")
    assert answer["state"] == "s-1"
    connection = services.connection_get(organisation=organisation)
    services.connection_connect_rest_code(connection=connection, code=answer["code"], code_verifier=pkce.verifier,
                                          company_id="TOK-CO", company_timezone="America/Los_Angeles", by=None)
    return Connection.objects.get(pk=connection.pk)


def test_code_exchange_stores_encrypted_tokens_and_makes_a_rest_connection(rest_org):
    connection = connect_with_code(rest_org)
    assert connection.protocol == Connection.Protocol.REST
    assert connection.rest_grant == Connection.RestGrant.AUTHORIZATION_CODE
    assert connection.has_credentials and Connection.objects.with_credentials().filter(pk=connection.pk).exists()
    tokens = rest_tokens.stored(connection)
    assert tokens is not None and tokens.refresh_token
    # Encrypted at rest: neither token appears in the row as stored.
    assert tokens.refresh_token not in connection.rest_refresh_token
    assert tokens.access_token not in connection.rest_access_token
    assert connection.rest_refresh_expires_at is not None and connection.rest_access_expires_at is not None
    event = AuditEvent.objects.get(action="rest_connection.connected")
    assert tokens.refresh_token not in str(event.details) and event.details["grant"] == "authorization_code"
    with clients.rest_client_for(connection) as client:
        assert client.query_page("general-ledger/account", ["id"], size=2).records


def test_a_second_worker_with_the_old_tokens_uses_the_rotated_ones_instead_of_spending_a_spent_token(rest_org):
    connection = connect_with_code(rest_org)
    stale_snapshot = Connection.objects.get(pk=connection.pk)  # what a second worker read before the refresh
    with clients.rest_client_for(connection) as first:
        first.renew_access_token()
    rotated = rest_tokens.stored(Connection.objects.get(pk=connection.pk))
    assert rotated is not None and rotated.refresh_token != rest_tokens.stored(stale_snapshot).refresh_token
    with clients.rest_client_for(stale_snapshot) as second:
        # Forced: it would refresh with the spent token, but re-reads the row under the lock and takes the new one.
        second.renew_access_token()
        assert second.query_page("general-ledger/account", ["id"], size=1).records
    grant = OAuthGrant.objects.get(company__company_id="TOK-CO")
    assert grant.refreshes == 1 and not grant.revoked_reason


def test_concurrent_refreshes_from_two_threads_with_their_own_database_connections_spend_the_token_once(rest_org):
    connection = connect_with_code(rest_org)
    results: list[object] = []

    def refresh() -> None:
        try:
            snapshot = Connection.objects.get(pk=connection.pk)
            with clients.rest_client_for(snapshot) as client:
                client.renew_access_token()
                client.query_page("general-ledger/account", ["id"], size=1)
            results.append("ok")
        except Exception as exc:  # noqa: BLE001 - reported below
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == ["ok", "ok"], results
    grant = OAuthGrant.objects.get(company__company_id="TOK-CO")
    assert grant.refreshes == 1 and not grant.revoked_reason


def test_client_credentials_connection_caches_its_access_token(rest_org):
    connection = services.connection_get(organisation=rest_org)
    services.connection_connect_rest_client_credentials(connection=connection, company_id="TOK-CO",
                                                        user_id="ws_connect", by=None)
    connection = Connection.objects.get(pk=connection.pk)
    assert connection.has_credentials and not connection.rest_refresh_token
    with clients.rest_client_for(connection) as client:
        client.query_page("general-ledger/account", ["id"], size=1)
        assert client.stats.snapshot()["logins"] == 1
    connection = Connection.objects.get(pk=connection.pk)
    assert connection.rest_access_token and connection.rest_access_expires_at is not None
    with clients.rest_client_for(connection) as client:
        client.query_page("general-ledger/account", ["id"], size=1)
        assert client.stats.snapshot()["logins"] == 0  # the stored token was used


def test_disconnect_revokes_the_refresh_token_at_intacct_and_deletes_it_here(rest_org):
    connection = connect_with_code(rest_org)
    tokens = rest_tokens.stored(connection)
    services.connection_disconnect(connection=connection, by=None)
    connection = Connection.objects.get(pk=connection.pk)
    assert not connection.rest_refresh_token and not connection.rest_access_token and not connection.has_credentials
    assert OAuthGrant.objects.get(company__company_id="TOK-CO").revoked_reason
    event = AuditEvent.objects.get(action="connection.disconnected")
    assert event.details["refresh_token"] == "revoked at Intacct and deleted"
    assert tokens is not None and tokens.refresh_token not in str(event.details)


def test_disconnect_revokes_the_token_a_worker_rotated_after_the_page_read_the_connection(rest_org):
    """The page holds the connection as it read it; a worker's refresh then rotated the refresh token. The
    revocation must reach the token live at Intacct now, not the spent one the page holds."""
    page_copy = connect_with_code(rest_org)
    with clients.rest_client_for(Connection.objects.get(pk=page_copy.pk)) as worker_client:
        worker_client.renew_access_token()
    assert OAuthGrant.objects.get(company__company_id="TOK-CO").refreshes == 1
    services.connection_disconnect(connection=page_copy, by=None)
    assert OAuthGrant.objects.get(company__company_id="TOK-CO").revoked_reason
    connection = Connection.objects.get(pk=page_copy.pk)
    assert not connection.rest_refresh_token and not connection.rest_access_token


def test_switching_an_xml_connection_keeps_its_records_and_deletes_the_password(rest_org):
    connection = services.connection_get(organisation=rest_org)
    services.connection_set_credentials(connection=connection, company_id="TOK-CO", user_id="ws_connect",
                                        password="x-Password-1", by=None)
    with pytest.raises(ValueError, match="time zone"):
        services.connection_switch_to_rest(connection=connection, grant="client_credentials", company_id="TOK-CO",
                                           user_id="ws_connect", company_timezone="", by=None)
    services.connection_connect_rest_client_credentials(connection=connection, company_id="TOK-CO",
                                                        user_id="ws_connect", company_timezone="Europe/London",
                                                        by=None)
    connection = Connection.objects.get(pk=connection.pk)
    assert connection.protocol == "rest" and not connection.password_token
    assert connection.company_timezone == "Europe/London"
    assert AuditEvent.objects.filter(action="connection.switched_to_rest").count() == 1


def test_a_revoked_grant_is_a_token_problem(rest_org):
    connection = connect_with_code(rest_org)
    OAuthGrant.objects.update(revoked_reason="revoked")
    with clients.rest_client_for(connection) as client, pytest.raises(errors.TokenRevoked):
        client.renew_access_token()
