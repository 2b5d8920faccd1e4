"""The one place that builds an Intacct client (XML or REST) from settings and a connection's credentials."""
from __future__ import annotations

from dataclasses import replace

from django.conf import settings

from connector import crypto, limits, rest_tokens
from connector.intacct import ClientConfig, Credentials, IntacctClient, RetryPolicy
from connector.intacct_rest import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    IntacctRestClient,
    RestConfig,
    TokenSet,
)
from connector.intacct_rest.errors import TokenInvalid
from connector.models import Connection


def client_config() -> ClientConfig:
    """The client configuration for the operator's Sender ID and the configured endpoint."""
    endpoint = settings.INTACCT_ENDPOINT_URL
    return ClientConfig(
        endpoint_url=endpoint,
        sender_id=settings.INTACCT_SENDER_ID,
        sender_password=settings.INTACCT_SENDER_PASSWORD,
        # The simulator lives on our own host; production only ever talks to *.intacct.com.
        allowed_endpoints=(endpoint,) if settings.SIMULATOR_ENABLED else (),
        timeout=settings.INTACCT_TIMEOUT_SECONDS,
        retry=RetryPolicy(max_attempts=settings.INTACCT_MAX_RETRIES + 1,
                          total_budget=settings.INTACCT_RETRY_BUDGET_SECONDS),
        transport=None,
    )


def client_for(connection: Connection, *, limit: int | None = None) -> IntacctClient:
    """A client logged in as the connection's web services user (use it as a context manager).

    With ``limit``, every request holds one of the company's request slots, shared with its syncs across
    workers, so the company's concurrency limit holds whatever runs at once."""
    credentials = Credentials(
        company_id=connection.company_id,
        user_id=connection.user_id,
        password=crypto.decrypt(connection.password_token),
        entity_id=connection.entity_id or None,
    )
    config = client_config()
    if limit is not None:
        config = replace(config, request_slot=limits.request_slot_for(connection.company_id, limit))
    return IntacctClient(config, credentials)


# --- REST -----------------------------------------------------------------------------------------

def rest_config() -> RestConfig:
    """The REST client's configuration: our application in the Sage App Registry and the configured API."""
    base = settings.INTACCT_REST_BASE_URL
    return RestConfig(
        client_id=settings.INTACCT_REST_CLIENT_ID,
        client_secret=settings.INTACCT_REST_CLIENT_SECRET,
        base_url=base,
        # As client_config: the simulator lives on our own host; production only ever talks to *.intacct.com.
        allowed_endpoints=(base,) if settings.SIMULATOR_ENABLED else (),
        timeout=settings.INTACCT_TIMEOUT_SECONDS,
        retry=RetryPolicy(max_attempts=settings.INTACCT_MAX_RETRIES + 1,
                          total_budget=settings.INTACCT_RETRY_BUDGET_SECONDS),
    )


def refresh_token_lifetime() -> float:
    """What we know of a refresh token's life, in seconds (only used to name an expired one)."""
    return settings.INTACCT_REST_REFRESH_TOKEN_DAYS * 86400.0


def rest_client_without_grant() -> IntacctRestClient:
    """A REST client of no connection yet: to exchange the code "Connect with Sage Intacct" came back with."""
    return IntacctRestClient(rest_config())


def rest_client_for(connection: Connection, *, limit: int | None = None) -> IntacctRestClient:
    """A REST client for the connection's grant (use it as a context manager), the REST twin of ``client_for``.

    Every new token is stored (encrypted) before it is used; a rotated refresh token is obtained only under
    ``rest_tokens.refresh_lock``, so two workers never spend the same one. With ``limit``, every API request holds
    one of the company's request slots, the same slots as the XML client's."""
    config = rest_config()
    if limit is not None:
        config = replace(config, request_slot=limits.request_slot_for(connection.company_id, limit))
    connection_id = connection.pk

    def keep(tokens: TokenSet) -> None:
        rest_tokens.store(connection_id=connection_id, tokens=tokens)

    tokens = rest_tokens.stored(connection)
    grant: AuthorizationCodeGrant | ClientCredentialsGrant
    if connection.rest_grant == Connection.RestGrant.AUTHORIZATION_CODE:
        if tokens is None or not tokens.refresh_token:
            raise TokenInvalid("this connection holds no refresh token: connect with Sage Intacct again",
                               function="token:refresh_token")
        grant = AuthorizationCodeGrant(tokens, keep, refresh_token_lifetime(),
                                       refresh_guard=lambda: rest_tokens.refresh_lock(connection_id))
    elif connection.rest_grant == Connection.RestGrant.CLIENT_CREDENTIALS:
        grant = ClientCredentialsGrant(connection.user_id, connection.company_id, connection.entity_id or None,
                                       tokens=tokens if tokens and tokens.access_token else None, on_tokens=keep)
    else:
        raise ValueError(f"connection {connection_id} is not a REST connection")
    return IntacctRestClient(config, grant)

