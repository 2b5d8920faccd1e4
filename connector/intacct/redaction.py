"""Scrub secrets from text before it is logged or put in an exception.

Two layers, like the official SDKs plus one: the content of sensitive XML elements is blanked
whatever it is, and any secret string the client registered (user password, sender password,
session ids — also in their XML-escaped form) is replaced wherever it appears. ``<senderid>`` stays
visible: it is an identifier, not a secret.
"""
from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from xml.sax.saxutils import escape

REDACTED = "REDACTED"

SENSITIVE_TAGS = (
    "password", "sessionid", "accountnumber", "cardnum", "ssn", "achaccountnumber",
    "wireaccountnumber", "taxid",
)
# Shorter strings would blank ordinary words in every log line; Intacct passwords are longer.
MIN_SECRET_LENGTH = 4

_TAG_RE = re.compile(
    r"(<(" + "|".join(SENSITIVE_TAGS) + r")\b[^>]*>)(.*?)(</\2\s*>)",
    re.IGNORECASE | re.DOTALL,
)


class SecretRegistry:
    """Reference-counted set of secret strings, shared by every client in the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._pattern: re.Pattern[str] | None = None

    @staticmethod
    def _variants(secret: str) -> set[str]:
        # Requests carry secrets XML-escaped; logs may show either form.
        forms = {secret, escape(secret), escape(secret, {'"': "&quot;", "'": "&apos;"})}
        return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}

    def register(self, secret: str | None) -> None:
        """Start scrubbing ``secret`` (and its XML-escaped form) from redacted text."""
        if not secret:
            return
        with self._lock:
            for form in self._variants(secret):
                self._counts[form] += 1
            self._pattern = None

    def unregister(self, secret: str | None) -> None:
        """Drop one registration of ``secret``; it is forgotten when nobody holds it any more."""
        if not secret:
            return
        with self._lock:
            for form in self._variants(secret):
                self._counts[form] -= 1
                if self._counts[form] <= 0:
                    del self._counts[form]
            self._pattern = None

    def pattern(self) -> re.Pattern[str] | None:
        """Return one compiled alternation of all secrets, longest first so overlaps go whole."""
        with self._lock:
            if self._pattern is None and self._counts:
                ordered = sorted(self._counts, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(s) for s in ordered))
            return self._pattern


registry = SecretRegistry()


def register_secret(secret: str | None) -> None:
    """Register a secret string with the process-wide registry."""
    registry.register(secret)


def unregister_secret(secret: str | None) -> None:
    """Release a secret string from the process-wide registry."""
    registry.unregister(secret)


class HeldSecrets:
    """The secrets one client holds in the process-wide registry (password, sender password, client secret,
    session ids, tokens): each is scrubbed from redacted text while held; ``release_all`` (the client's close)
    lets them all go. Safe to share between threads."""

    def __init__(self, *secrets: str | None) -> None:
        self._lock = threading.Lock()
        self._held: list[str] = []
        for secret in secrets:
            self.hold(secret)

    def hold(self, secret: str | None) -> None:
        """Scrub ``secret`` until released (nothing for an empty one)."""
        if not secret:
            return
        with self._lock:
            self._held.append(secret)
        registry.register(secret)

    def keep_recent(self, count: int, *, first: int = 0) -> None:
        """Release what was held after the ``first`` ones and before the last ``count``: replaced tokens stay
        scrubbed for a while (a late log line may still name one), not every one ever held."""
        with self._lock:
            end = len(self._held) - count
            if end <= first:
                return
            released = self._held[first:end]
            del self._held[first:end]
        for secret in released:
            registry.unregister(secret)

    def release_all(self) -> None:
        """Stop scrubbing every secret held here (other holders of the same string keep theirs)."""
        with self._lock:
            released, self._held = self._held, []
        for secret in released:
            registry.unregister(secret)

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)


def redact(text: str) -> str:
    """Blank sensitive XML element content and every registered secret in ``text``."""
    if not text:
        return text
    text = _TAG_RE.sub(lambda m: m.group(1) + REDACTED + m.group(4), text)
    pattern = registry.pattern()
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    return text


def _redact_value(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", "replace"))
    if isinstance(value, BaseException):
        return redact(str(value))
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact(str(value))


class RedactingFilter(logging.Filter):
    """Logging filter that redacts a record's message, arguments and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place and always let it through."""
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        elif record.msg is not None and not isinstance(record.msg, (int, float)):
            record.msg = redact(str(record.msg))
        if isinstance(record.args, dict):
            record.args = {k: _redact_value(v) for k, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_redact_value(v) for v in record.args)
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            # Format the traceback now, redacted, so handlers reuse it instead of the raw text.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
