"""Configuration and credentials handed to the REST client: it reads no settings and no environment itself."""
from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx

from connector.intacct.config import RetryPolicy, endpoint_allowed

DEFAULT_BASE_URL = "https://api.intacct.com/ia/api/v1"
# Published: GET /oauth2/authorize, POST /oauth2/token. The revocation path is ours (RFC 7009 naming): Sage's
# pages we could read do not name one (docs/protocol-choices.md).
AUTHORIZE_PATH = "/oauth2/authorize"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a URL path, not a secret
REVOKE_PATH = "/oauth2/revoke"
QUERY_PATH = "/services/core/query"
OFFLINE_ACCESS = "offline_access"
# The only paths the client sends anything to, under the allowed base URL.
_ALLOWED_PATH = re.compile(
    r"^/(?:oauth2/(?:token|revoke)|services/core/query|objects/[a-z0-9-]+/[a-z0-9-]+(?:/[A-Za-z0-9%._-]+)?)$")


@dataclass(frozen=True, kw_only=True)
class RestConfig:
    """Everything about the API and our application in the Sage App Registry; the same for every company."""

    client_id: str
    client_secret: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    allowed_endpoints: tuple[str, ...] = ()
    # One deadline per request: connect, sending and every read of the answer together.
    timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_response_bytes: int = 256 * 1024 * 1024
    # One record's JSON may not exceed this: what the streamed parser holds at once.
    max_record_bytes: int = 1024 * 1024
    # Refresh this long before the access token's announced expiry, so no call is sent with a dying token.
    refresh_margin: float = 120.0
    user_agent: str = "intacct-connect/0.1"
    transport: httpx.BaseTransport | None = None
    request_slot: Callable[[], AbstractContextManager[object]] | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    logger: logging.Logger | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_endpoints", tuple(self.allowed_endpoints))
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if self.max_response_bytes <= 0 or self.max_record_bytes <= 0:
            raise ValueError("max_response_bytes and max_record_bytes must be positive")

    def url(self, path: str) -> str:
        return self.base_url + path

    def base_allowed(self) -> bool:
        """True for https://*.intacct.com or a base URL listed exactly in ``allowed_endpoints``."""
        return endpoint_allowed(self.base_url, self.allowed_endpoints)


def path_allowed(path: str) -> bool:
    """True for the API paths this client may call (token, revoke, query, objects)."""
    return bool(_ALLOWED_PATH.match(path))


@dataclass(frozen=True)
class TokenSet:
    """What the token endpoint answered; ``expires_at`` and ``refresh_expires_at`` are epoch seconds."""

    access_token: str = field(repr=False)
    expires_at: float
    refresh_token: str | None = field(default=None, repr=False)
    refresh_expires_at: float | None = None
    scope: str = ""

    def __repr__(self) -> str:
        return (f"TokenSet(access_token='REDACTED', expires_at={self.expires_at!r}, "
                f"refresh_token={'REDACTED' if self.refresh_token else None!r}, "
                f"refresh_expires_at={self.refresh_expires_at!r}, scope={self.scope!r})")


@dataclass(frozen=True)
class AuthorizationCodeGrant:
    """A connection made with "Connect with Sage Intacct": its tokens, and where rotated ones must be saved.

    ``on_tokens`` is called with every new TokenSet before it is used: the refresh token rotates, so a new one
    that is not stored is a connection lost. ``refresh_token_lifetime`` is what we know of the refresh token's
    life (Sage does not publish it), used to name an expired one as such.
    """

    tokens: TokenSet
    on_tokens: Callable[[TokenSet], None] = field(repr=False)
    refresh_token_lifetime: float | None = None
    # Entered around every refresh when several processes share the connection's tokens: it holds their lock
    # (so no two spend the same refresh token) and yields the tokens stored now. When those are newer than the
    # client's (another process rotated them meanwhile), the client uses them instead of its own; ``on_tokens``
    # is called inside it, so the new tokens are stored before the lock is let go.
    refresh_guard: Callable[[], AbstractContextManager[TokenSet | None]] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ClientCredentialsGrant:
    """A connection of a Web Services user: ``user@company``, or ``user@company|entity`` for an entity."""

    user_id: str
    company_id: str
    entity_id: str | None = None
    # An access token obtained earlier (a cache kept by the caller), and where new ones are handed to be kept.
    tokens: TokenSet | None = field(default=None, compare=False)
    on_tokens: Callable[[TokenSet], None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, value in (("user_id", self.user_id), ("company_id", self.company_id)):
            if not value or any(c in value for c in "@|"):
                raise ValueError(f"{name} must be non-empty and contain neither '@' nor '|'")
        if self.entity_id is not None and (not self.entity_id or "|" in self.entity_id):
            raise ValueError("entity_id must be non-empty and contain no '|'")

    @property
    def username(self) -> str:
        base = f"{self.user_id}@{self.company_id}"
        return f"{base}|{self.entity_id}" if self.entity_id else base


@dataclass(frozen=True)
class Pkce:
    """A PKCE pair (RFC 7636, S256): keep ``verifier`` secret until the code is exchanged."""

    verifier: str = field(repr=False)
    challenge: str
    method: str = "S256"

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)  # 64 characters, within RFC 7636's 43..128
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


def authorization_url(config: RestConfig, *, redirect_uri: str, state: str, pkce: Pkce | None = None,
                      offline: bool = True) -> str:
    """Where to send the admin's browser to sign in to Intacct and approve our application."""
    params = {"response_type": "code", "client_id": config.client_id, "redirect_uri": redirect_uri, "state": state}
    if offline:
        params["scope"] = OFFLINE_ACCESS
    if pkce is not None:
        params["code_challenge"], params["code_challenge_method"] = pkce.challenge, pkce.method
    return f"{config.url(AUTHORIZE_PATH)}?{urlencode(params)}"
