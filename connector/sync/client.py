"""The Intacct client a sync (or a deprovisioning) reads with: the connection's credentials, every request
holding one of the company's slots."""
from __future__ import annotations

from dataclasses import replace

from connector import clients, crypto, limits, policy
from connector.intacct import Credentials, IntacctClient
from connector.models import Connection


def client_for_sync(connection: Connection, limit: int) -> IntacctClient:
    """A client whose every request holds one of the company's slots (the cross-worker concurrency cap)."""
    config = replace(clients.client_config(), request_slot=limits.request_slot_for(connection.company_id, limit))
    try:
        password = crypto.decrypt(connection.password_token)
    except crypto.InvalidToken:
        raise policy.KeyUnavailable("no configured key decrypts this connection's password") from None
    credentials = Credentials(company_id=connection.company_id, user_id=connection.user_id, password=password,
                              entity_id=connection.entity_id or None)
    return IntacctClient(config, credentials)

