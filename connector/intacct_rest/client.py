"""The Intacct REST API client: OAuth 2.0 tokens (refresh with rotation), the query service, object reads.

Same rules as the XML client: httpx, no Django, no settings; typed errors with ``permanent``; bounded retries
(429 waits Retry-After); one overall deadline per request; answers streamed with bounded memory; tokens and
secrets registered for redaction and never logged; nothing sent outside https://*.intacct.com (or an
explicitly allowed base URL) and the API paths this client knows.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from connector.intacct.client import ClientStats
from connector.intacct.redaction import HeldSecrets
from connector.intacct.transport import (
    ClosingClient,
    DeadlineTransport,
    deadline_passed,
    request_deadline,
    retry_after_seconds,
)

from .config import (
    QUERY_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RestConfig,
    TokenSet,
    path_allowed,
)
from .errors import (
    ConnectionDropped,
    EndpointNotAllowed,
    IntacctError,
    InvalidResponse,
    RateLimited,
    RequestTimeout,
    ResponseTooLarge,
    TokenInvalid,
    TokenProblem,
    api_error,
    error_details,
    token_error,
)
from .jsonstream import READ_SIZE, ChunkReader, QueryAnswer

QUERY_MAX_SIZE = 4000
_SMALL_BODY = 64 * 1024
_KEEP_OLD_SECRETS = 4


@dataclass(frozen=True)
class RestPage:
    """One page of a query: its records and ``ia::meta`` (``next_start`` is None on the last page)."""

    records: list[dict[str, Any]]
    total_count: int | None
    start: int
    page_size: int | None
    next_start: int | None
    previous_start: int | None


Auth = AuthorizationCodeGrant | ClientCredentialsGrant


class IntacctRestClient(ClosingClient):
    """Client for one company's connection (either grant); safe to share between threads."""

    def __init__(self, config: RestConfig, auth: Auth | None = None) -> None:
        self._config = config
        self._auth = auth
        self._log = config.logger or logging.getLogger("connector.intacct_rest")
        self._secrets = HeldSecrets(config.client_secret)
        self._standing_secrets = len(self._secrets)  # held for the client's life; tokens come and go after them
        if not config.base_allowed():
            self.close()
            raise EndpointNotAllowed(f"base URL {config.base_url!r} is not an allowed Intacct endpoint")
        self.stats = ClientStats()
        self._tokens: TokenSet | None = auth.tokens if auth is not None else None
        if self._tokens is not None:
            self._remember_tokens(self._tokens)
        self._token_lock = threading.Lock()
        self._random = random.Random()  # noqa: S311 - jitter, not security
        self._http = httpx.Client(
            transport=config.transport or DeadlineTransport(),
            timeout=config.timeout,
            follow_redirects=False,  # a redirect could carry the bearer token to another host
            trust_env=False,
            headers={"Accept": "application/json", "Accept-Encoding": "gzip", "User-Agent": config.user_agent},
        )

    # --- lifecycle --------------------------------------------------------------------------------
    # __enter__, __exit__ and close: ClosingClient's (connector.intacct.transport).

    def _remember_tokens(self, tokens: TokenSet) -> None:
        self._secrets.hold(tokens.access_token)
        self._secrets.hold(tokens.refresh_token)
        # The client secret stays; of the tokens, the last few pairs (a late log line may still name one).
        self._secrets.keep_recent(2 * _KEEP_OLD_SECRETS, first=self._standing_secrets)

    @property
    def tokens(self) -> TokenSet | None:
        """The tokens in use (None before the first call of a client-credentials connection)."""
        return self._tokens

    # --- tokens -----------------------------------------------------------------------------------
    def exchange_code(self, code: str, *, redirect_uri: str, code_verifier: str | None = None,
                      on_tokens: Callable[[TokenSet], None] | None = None,
                      refresh_token_lifetime: float | None = None) -> TokenSet:
        """Redeem the authorization code from the redirect; the client then uses these tokens."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if code_verifier:
            form["code_verifier"] = code_verifier
        self._secrets.hold(code)
        self._secrets.hold(code_verifier)
        tokens = self._token_request(form, refresh_token_lifetime)
        if on_tokens is not None:
            self._auth = AuthorizationCodeGrant(tokens, on_tokens, refresh_token_lifetime)
            on_tokens(tokens)
        self._tokens = tokens
        return tokens

    def revoke(self) -> None:
        """Revoke the refresh token (or the access token) at Intacct: used when a connection is removed."""
        tokens = self._tokens
        if tokens is None:
            return
        form = {"token": tokens.refresh_token or tokens.access_token}
        self._send_form(REVOKE_PATH, form, grant_type="revoke")

    def renew_access_token(self) -> TokenSet:
        """Get a new access token now (refreshing, and so rotating, the refresh token of a code grant)."""
        self._access_token(force=True)
        assert self._tokens is not None
        return self._tokens

    def _access_token(self, *, force: bool = False, stale: str | None = None) -> str:
        """A usable access token: refreshed (rotated) or fetched when near expiry, refused, or absent."""
        with self._token_lock:
            tokens = self._tokens
            if tokens is not None and stale is not None and tokens.access_token != stale:
                return tokens.access_token  # another thread already replaced the refused token
            fresh = tokens is not None and tokens.expires_at - self._config.refresh_margin > self._config.clock()
            if fresh and not force:
                assert tokens is not None
                return tokens.access_token
            auth = self._auth
            if isinstance(auth, ClientCredentialsGrant):
                new = self._token_request({"grant_type": "client_credentials", "username": auth.username}, None)
                if auth.on_tokens is not None:
                    auth.on_tokens(new)
            elif isinstance(auth, AuthorizationCodeGrant):
                guard = auth.refresh_guard() if auth.refresh_guard is not None else nullcontext(None)
                with guard as stored:
                    if stored is not None and tokens is not None and stored.refresh_token != tokens.refresh_token:
                        # Another process refreshed meanwhile: its tokens are the live ones (ours are spent).
                        self._remember_tokens(stored)
                        self._tokens = tokens = stored
                        usable = stored.expires_at - self._config.refresh_margin > self._config.clock()
                        if usable and stored.access_token != stale:
                            return stored.access_token
                    if tokens is None or not tokens.refresh_token:
                        raise TokenInvalid("the access token expired and this connection holds no refresh token",
                                           function="token:refresh_token")
                    lifetime = auth.refresh_token_lifetime
                    new = self._token_request({"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
                                              lifetime, refresh_expires_at=tokens.refresh_expires_at)
                    # Saved before use: the old refresh token no longer works once Intacct answered.
                    auth.on_tokens(new)
            else:
                raise TokenInvalid("this client has no connection to authenticate with", function="token")
            self._tokens = new
            return new.access_token

    def _token_request(self, form: dict[str, str], refresh_lifetime: float | None, *,
                       refresh_expires_at: float | None = None) -> TokenSet:
        grant_type = form["grant_type"]
        sent_at = self._config.clock()
        status, body = self._send_form(TOKEN_PATH, form, grant_type=grant_type, refresh_expires_at=refresh_expires_at)
        try:
            answer = json.loads(body)
            access = str(answer["access_token"])
            expires_in = float(answer.get("expires_in", 0))
        except (ValueError, KeyError, TypeError):
            raise InvalidResponse(f"the token endpoint's answer (HTTP {status}) has no access token",
                                  http_status=status, function=f"token:{grant_type}") from None
        refresh = answer.get("refresh_token")
        tokens = TokenSet(
            access_token=access, expires_at=sent_at + expires_in,
            refresh_token=str(refresh) if refresh else None,
            refresh_expires_at=sent_at + refresh_lifetime if refresh and refresh_lifetime else None,
            scope=str(answer.get("scope") or ""),
        )
        self._remember_tokens(tokens)
        self.stats.add(logins=1)
        return tokens

    def _send_form(self, path: str, form: dict[str, str], *, grant_type: str,
                   refresh_expires_at: float | None = None) -> tuple[int, bytes]:
        """POST to the token or revoke endpoint with our client credentials; retries transient failures."""
        data = {**form, "client_id": self._config.client_id, "client_secret": self._config.client_secret}
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                status, headers, body = self._roundtrip("POST", path, data=data, function=f"token:{grant_type}")
                if 200 <= status < 300:
                    return status, body
                expired = refresh_expires_at is not None and refresh_expires_at <= self._config.clock()
                raise token_error(status, body, grant_type=grant_type, refresh_expired=expired,
                                  retry_after=retry_after_seconds(headers.get("retry-after")))
            except IntacctError as exc:
                # A refresh whose answer was lost may have rotated the token already: sending the old one
                # again would be refused, so only a refresh that provably never left is repeated.
                unsafe = grant_type == "refresh_token" and not _never_sent(exc)
                delay = None if unsafe else self._retry_delay(exc, attempt, time.monotonic() - started)
                if delay is None:
                    self._log.info("Intacct REST %s failed after %d attempt(s): %s: %s", path, attempt,
                                   type(exc).__name__, exc)
                    raise
                self._wait(path, attempt, exc, delay)

    # --- HTTP -------------------------------------------------------------------------------------
    def _retry_delay(self, exc: IntacctError, attempt: int, elapsed: float) -> float | None:
        policy = self._config.retry
        if exc.permanent or attempt >= policy.max_attempts:
            return None
        retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
        if retry_after is not None:
            delay = float(retry_after)
        else:
            ceiling = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
            delay = self._random.uniform(0.0, ceiling) if policy.jitter else ceiling
        return None if elapsed + delay > policy.total_budget else delay

    def _wait(self, what: str, attempt: int, exc: IntacctError, delay: float) -> None:
        self.stats.add(retries=1)
        self._log.warning("Intacct REST %s attempt %d failed (%s: %s); retrying in %.2fs", what, attempt,
                          type(exc).__name__, exc, delay)
        self._config.sleep(delay)

    def _roundtrip(self, method: str, path: str, *, data: Mapping[str, str] | None = None,
                   json_body: object = None, token: str | None = None, function: str,
                   reader: Any = None) -> tuple[int, httpx.Headers, Any]:
        """One request; the body is read whole (bounded) or handed to ``reader`` as a stream."""
        if not path_allowed(path) or not self._config.base_allowed():
            raise EndpointNotAllowed(f"{method} {path!r} is not an allowed Intacct REST call", function=function)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        slot = self._config.request_slot() if self._config.request_slot and token else nullcontext()
        self.stats.add(requests=1)
        started = time.monotonic()
        try:
            with slot, request_deadline(self._config.timeout), self._http.stream(
                    method, self._config.url(path), data=data, json=json_body, headers=headers) as response:
                status = response.status_code
                if reader is not None and status == 200:
                    result = reader(self._body(response))
                else:
                    # Error bodies and token answers are small; an object read may be as large as the cap.
                    small = status >= 300 or path.startswith("/oauth2")
                    result = self._read_small(response, _SMALL_BODY if small else self._config.max_response_bytes)
                self._log.debug("Intacct REST %s %s: HTTP %d in %.3fs", method, path, status,
                                time.monotonic() - started)
                return status, response.headers, result
        except (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ConnectError) as exc:
            raise ConnectionDropped(f"could not connect to {self._config.base_url}: {type(exc).__name__}",
                                    function=function, request_sent=False) from None
        except httpx.TimeoutException as exc:
            raise RequestTimeout(f"no complete answer within the {self._config.timeout}s deadline: "
                                 f"{type(exc).__name__}", function=function) from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise ConnectionDropped(f"connection dropped: {type(exc).__name__}", function=function) from None
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise InvalidResponse(f"HTTP failure: {type(exc).__name__}", function=function, permanent=False) from None
        except IntacctError as exc:
            exc.function = exc.function or function
            raise

    def _body(self, response: httpx.Response) -> Iterator[bytes]:
        """Decoded chunks, counted, cut off at the size cap and at the request's deadline."""
        received = 0
        limit = self._config.max_response_bytes
        for chunk in response.iter_bytes():
            received += len(chunk)
            self.stats.add(bytes_received=len(chunk))
            if received > limit:
                raise ResponseTooLarge(f"response exceeds the {limit}-byte cap", http_status=response.status_code)
            if deadline_passed():
                raise RequestTimeout(f"the answer was still arriving at the {self._config.timeout}s deadline",
                                     http_status=response.status_code)
            yield chunk

    def _read_small(self, response: httpx.Response, limit: int) -> bytes:
        data = bytearray()
        for chunk in self._body(response):
            data += chunk
            if len(data) > limit:
                if response.status_code >= 300:
                    break  # an error body: its beginning is enough to name the error
                raise ResponseTooLarge(f"response exceeds the {limit}-byte cap", http_status=response.status_code)
        return bytes(data[:limit])

    def _api(self, method: str, path: str, *, function: str, json_body: object = None, reader: Any = None) -> Any:
        """An API call with a bearer token: refresh on a refused token once, retry transient failures."""
        if not path_allowed(path):
            # Refused before a token is even fetched: nothing at all is sent for a path we do not know.
            raise EndpointNotAllowed(f"{method} {path!r} is not an allowed Intacct REST call", function=function)
        started = time.monotonic()
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            token = self._access_token()
            try:
                status, headers, result = self._roundtrip(method, path, json_body=json_body, token=token,
                                                          function=function, reader=reader)
                if status == 200:
                    return result
                raise api_error(status, result, function=function, content_type=headers.get("content-type", ""),
                                retry_after=retry_after_seconds(headers.get("retry-after")))
            except TokenInvalid:
                if refreshed:
                    raise
                # The token expired early or was replaced: get a new one (rotating the refresh token) once.
                refreshed = True
                attempt -= 1
                self._log.info("Intacct REST refused the access token during %s; getting a new one", function)
                self._access_token(force=True, stale=token)
            except TokenProblem:
                raise
            except IntacctError as exc:
                delay = self._retry_delay(exc, attempt, time.monotonic() - started)
                if delay is None:
                    self._log.info("Intacct REST %s failed after %d attempt(s): %s: %s", function, attempt,
                                   type(exc).__name__, exc)
                    raise
                self._wait(function, attempt, exc, delay)

    # --- reads ------------------------------------------------------------------------------------
    def query_page(self, object_path: str, fields: Sequence[str], *, filters: Sequence[Mapping[str, Any]] = (),
                   filter_expression: str | None = None, order_by: Sequence[Mapping[str, str]] = (),
                   start: int = 1, size: int = 1000) -> RestPage:
        """One page of ``POST /services/core/query`` (``start`` is 1-based)."""
        if not 1 <= size <= QUERY_MAX_SIZE:
            raise ValueError(f"size must be between 1 and {QUERY_MAX_SIZE}")
        if start < 1 or not fields:
            raise ValueError("start must be 1 or more and fields non-empty")
        body: dict[str, Any] = {"object": object_path, "fields": list(fields), "start": start, "size": size}
        if filters:
            body["filters"] = [dict(f) for f in filters]
        if filter_expression:
            body["filterExpression"] = filter_expression
        if order_by:
            body["orderBy"] = [dict(o) for o in order_by]
        function = f"query:{object_path}"

        def read(chunks: Iterator[bytes]) -> RestPage:
            # A value may not take more than one record's bytes (plus one read) to arrive.
            reader = ChunkReader(chunks, quiet_limit=self._config.max_record_bytes + READ_SIZE)
            answer = QueryAnswer(reader, max_records=size,
                                 max_record_bytes=self._config.max_record_bytes)
            records = list(answer.records())
            if answer.error is not None:
                raise api_error(200, json.dumps({"ia::error": answer.error}).encode(), function=function)
            return _page(answer.meta, records, start)

        page: RestPage = self._api("POST", QUERY_PATH, function=function, json_body=body, reader=read)
        return page

    def query(self, object_path: str, fields: Sequence[str], *, filters: Sequence[Mapping[str, Any]] = (),
              filter_expression: str | None = None, order_by: Sequence[Mapping[str, str]] = (),
              size: int = 1000) -> Iterator[dict[str, Any]]:
        """Every record of a query, page after page (offset paging: for a moving data set prefer a keyset)."""
        start: int | None = 1
        while start is not None:
            page = self.query_page(object_path, fields, filters=filters, filter_expression=filter_expression,
                                   order_by=order_by, start=start, size=size)
            yield from page.records
            start = page.next_start if page.records else None

    def patch_object(self, object_path: str, key: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """``PATCH /objects/{path}/{key}``: set the given values (nested, REST names); Intacct's ``ia::result``.

        Absolute values, so a repeat after a lost answer is harmless: transient failures are retried as reads are."""
        path = f"/objects/{object_path.strip('/')}/{quote(str(key), safe='')}"
        body = self._api("PATCH", path, function=f"update:{object_path}", json_body=dict(values))
        try:
            result = json.loads(body)["ia::result"]
        except (ValueError, KeyError, TypeError):
            raise InvalidResponse(f"the answer to PATCH {object_path} has no ia::result", permanent=False,
                                  function=f"update:{object_path}") from None
        return result if isinstance(result, dict) else {}

    def get_object(self, object_path: str, key: str) -> dict[str, Any]:
        """``GET /objects/{path}/{key}``: the whole object."""
        path = f"/objects/{object_path.strip('/')}/{quote(str(key), safe='')}"
        body = self._api("GET", path, function=f"get:{object_path}")
        try:
            result = json.loads(body)["ia::result"]
        except (ValueError, KeyError, TypeError):
            raise InvalidResponse(f"the answer to GET {object_path} has no ia::result",
                                  function=f"get:{object_path}") from None
        if not isinstance(result, dict):
            raise InvalidResponse(f"the answer to GET {object_path} is not one object", function=f"get:{object_path}")
        return result


def _never_sent(exc: IntacctError) -> bool:
    return isinstance(exc, ConnectionDropped) and not exc.request_sent or isinstance(exc, RateLimited)


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidResponse(f"ia::meta value {value!r} is not a number") from None


def _page(meta: Mapping[str, Any], records: list[dict[str, Any]], start: int) -> RestPage:
    next_start = _int_or_none(meta.get("next"))
    if next_start is not None and next_start <= start:
        raise InvalidResponse(f"ia::meta.next {next_start} does not move past start {start}")
    return RestPage(records=records, total_count=_int_or_none(meta.get("totalCount")),
                    start=_int_or_none(meta.get("start")) or start, page_size=_int_or_none(meta.get("pageSize")),
                    next_start=next_start, previous_start=_int_or_none(meta.get("previous")))


__all__ = ["IntacctRestClient", "RestPage", "error_details", "retry_after_seconds"]
