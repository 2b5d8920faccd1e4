"""Configuration handed to the client: it reads no settings and no environment itself."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

DEFAULT_ENDPOINT = "https://api.intacct.com/ia/xml/xmlgw.phtml"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry transient failures (exponential backoff, full jitter)."""

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 30.0
    total_budget: float = 120.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.total_budget < 0:
            raise ValueError("delays and budget must not be negative")


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """Everything about the gateway and the Web Services sender; the same for every company."""

    sender_id: str
    sender_password: str = field(repr=False)
    endpoint_url: str = DEFAULT_ENDPOINT
    allowed_endpoints: tuple[str, ...] = ()
    # One deadline per request: connect, sending and every read of the answer together.
    timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_response_bytes: int = 256 * 1024 * 1024
    user_agent: str = "intacct-connect/0.1"
    transport: httpx.BaseTransport | None = None
    request_slot: Callable[[], AbstractContextManager[object]] | None = None
    sleep: Callable[[float], None] = time.sleep
    logger: logging.Logger | None = None

    def __post_init__(self) -> None:
        # A list would be accepted silently by `in` checks; freeze it so the config stays hashable.
        object.__setattr__(self, "allowed_endpoints", tuple(self.allowed_endpoints))
        if self.max_response_bytes <= 0:
            raise ValueError("max_response_bytes must be positive")


@dataclass(frozen=True)
class Credentials:
    """One company's Web Services user; ``entity_id`` logs in at an entity of a multi-entity company."""

    company_id: str
    user_id: str
    password: str = field(repr=False)
    entity_id: str | None = None


def endpoint_allowed(url: str, allowed_endpoints: tuple[str, ...] = ()) -> bool:
    """Return True for https URLs on intacct.com or its subdomains, or one of the exact allowed URLs."""
    if url in allowed_endpoints:
        return True
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    # userinfo in the URL could be used to disguise the real host to a human reader; refuse it.
    if parts.scheme != "https" or parts.username is not None or parts.password is not None:
        return False
    return host == "intacct.com" or host.endswith(".intacct.com")
