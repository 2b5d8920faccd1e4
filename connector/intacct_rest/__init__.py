"""Pure-Python client for Sage Intacct's REST API with OAuth 2.0 (no Django, no settings); see client.py."""
from . import errors
from .client import IntacctRestClient, RestPage, retry_after_seconds
from .config import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    Pkce,
    RestConfig,
    TokenSet,
    authorization_url,
)
from .names import REST_NAMES, RestName, rest_name

__all__ = [
    "REST_NAMES", "AuthorizationCodeGrant", "ClientCredentialsGrant", "IntacctRestClient", "Pkce", "RestConfig",
    "RestName", "RestPage", "TokenSet", "authorization_url", "errors", "rest_name", "retry_after_seconds",
]
