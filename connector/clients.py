"""The one place that builds an Intacct client from settings and a connection's credentials."""
from __future__ import annotations

from dataclasses import replace

from django.conf import settings

from connector import crypto, limits
from connector.intacct import ClientConfig, Credentials, IntacctClient, RetryPolicy
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
