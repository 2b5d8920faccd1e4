"""REST client edge cases through httpx.MockTransport: hostile or broken answers, tokens, limits (no network)."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from connector import policy
from connector.intacct import RetryPolicy
from connector.intacct.redaction import redact
from connector.intacct_rest import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    IntacctRestClient,
    RestConfig,
    TokenSet,
    errors,
    retry_after_seconds,
)

BASE = "https://api.intacct.com/ia/api/v1"
SECRET = "edge-client-secret-77"  # noqa: S105 - fake


class Api:
    """A scripted API: token answers and query answers in order; records every request it received."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.token_answers: list[httpx.Response] = []
        self.api_answers: list[httpx.Response | Callable[[httpx.Request], httpx.Response]] = []
        self.issued = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/oauth2/token"):
            if self.token_answers:
                return self.token_answers.pop(0)
            self.issued += 1
            return httpx.Response(200, json={"token_type": "Bearer", "access_token": f"access-token-{self.issued:04d}",
                                             "expires_in": 3600, "refresh_token": f"refresh-token-{self.issued:04d}"})
        answer = self.api_answers.pop(0)
        return answer(request) if callable(answer) else answer

    def client(self, grant: Any = None, **overrides: Any) -> IntacctRestClient:
        options: dict[str, Any] = dict(client_id="edge.app", client_secret=SECRET, base_url=BASE,
                                       transport=httpx.MockTransport(self.handler), sleep=self.sleeps.append,
                                       retry=RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0,
                                                         total_budget=60.0, jitter=False))
        options.update(overrides)
        return IntacctRestClient(RestConfig(**options), grant or ClientCredentialsGrant("ws", "CO"))

    sleeps: list[float]

    def api_calls(self) -> list[httpx.Request]:
        return [r for r in self.requests if "/oauth2/" not in r.url.path]


@pytest.fixture
def api() -> Api:
    scripted = Api()
    scripted.sleeps = []
    return scripted


def page(records: list[dict[str, Any]], *, total: int | None = None, start: int = 1, nxt: int | None = None) -> bytes:
    meta = {"totalCount": len(records) if total is None else total, "start": start, "pageSize": 100,
            "next": nxt, "previous": None}
    return json.dumps({"ia::result": records, "ia::meta": meta}).encode()


def ok(body: bytes, **headers: str) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "application/json", **headers})


def test_query_sends_the_documented_body_with_a_bearer_token(api):
    api.api_answers.append(ok(page([{"key": "1", "id": "B-1"}])))
    with api.client() as client:
        result = client.query_page("accounts-payable/bill", ["key", "id"], filters=[{"$gt": {"key": "0"}}],
                                   order_by=[{"key": "asc"}], start=1, size=50)
    sent = api.api_calls()[0]
    assert sent.url == BASE + "/services/core/query" and sent.headers["authorization"] == "Bearer access-token-0001"
    assert json.loads(sent.content) == {"object": "accounts-payable/bill", "fields": ["key", "id"], "start": 1,
                                        "size": 50, "filters": [{"$gt": {"key": "0"}}], "orderBy": [{"key": "asc"}]}
    token_form = dict(httpx.QueryParams(api.requests[0].content.decode()))
    assert token_form == {"grant_type": "client_credentials", "username": "ws@CO", "client_id": "edge.app",
                          "client_secret": SECRET}
    assert result.records == [{"key": "1", "id": "B-1"}] and result.next_start is None


def test_paging_follows_next_until_null(api):
    api.api_answers += [ok(page([{"key": "1"}, {"key": "2"}], total=3, nxt=3)),
                        ok(page([{"key": "3"}], total=3, start=3))]
    with api.client() as client:
        keys = [r["key"] for r in client.query("general-ledger/account", ["key"], size=2)]
    assert keys == ["1", "2", "3"]
    assert [json.loads(r.content)["start"] for r in api.api_calls()] == [1, 3]


def test_a_next_that_does_not_move_forward_is_refused(api):
    api.api_answers += [ok(page([{"key": "1"}], total=9, start=5, nxt=5))] * 3
    with api.client() as client, pytest.raises(errors.InvalidResponse):
        client.query_page("general-ledger/account", ["key"], start=5, size=1)


def test_truncated_json_is_retried_then_reported(api):
    broken = ok(page([{"key": "1"}, {"key": "2"}])[:25])
    api.api_answers += [broken, ok(page([{"key": "1"}]))]
    with api.client() as client:
        assert client.query_page("general-ledger/account", ["key"]).records == [{"key": "1"}]
    assert len(api.api_calls()) == 2 and api.sleeps == [0.0]
    api.api_answers += [broken] * 3
    with api.client() as client, pytest.raises(errors.InvalidResponse) as caught:
        client.query_page("general-ledger/account", ["key"])
    assert policy.action_for(caught.value) == policy.Action.RETRY


def test_a_record_larger_than_the_cap_is_refused(api):
    api.api_answers.append(ok(page([{"key": "1", "description": "x" * 5000}])))
    with api.client(max_record_bytes=1000) as client, pytest.raises(errors.ResponseTooLarge):
        client.query_page("accounts-payable/bill", ["key", "description"])


def test_a_page_with_more_records_than_asked_is_refused(api):
    api.api_answers.append(ok(page([{"key": str(n)} for n in range(1, 4)])))
    with api.client() as client, pytest.raises(errors.ResponseTooLarge):
        client.query_page("accounts-payable/bill", ["key"], size=2)


def test_whole_answer_larger_than_the_cap_is_refused(api):
    api.api_answers.append(ok(page([{"key": str(n)} for n in range(1, 200)])))
    with api.client(max_response_bytes=500) as client, pytest.raises(errors.ResponseTooLarge):
        client.query_page("accounts-payable/bill", ["key"], size=1000)


def test_error_inside_a_200_answer_is_raised(api):
    body = {"ia::result": {"ia::error": {"code": "invalidRequest", "message": "Field 'x' not found"}}}
    api.api_answers.append(ok(json.dumps(body).encode()))
    with api.client() as client, pytest.raises(errors.ResultError) as caught:
        client.query_page("accounts-payable/bill", ["key"])
    assert "Field 'x' not found" in str(caught.value)


@pytest.mark.parametrize(("status", "cls", "action"), [
    (400, errors.InvalidQuery, policy.Action.FAIL_OBJECT),
    (403, errors.PermissionDenied, policy.Action.FAIL_OBJECT),
    (404, errors.UnknownObject, policy.Action.FAIL_OBJECT),
    (422, errors.ResultError, policy.Action.FAIL_OBJECT),
])
def test_http_status_names_the_error(api, status, cls, action):
    body = {"ia::result": {"ia::error": {"code": "someCode", "message": "words", "errorId": "REST-1",
                                         "details": [{"message": "more words"}], "supportId": "sup1"}}}
    api.api_answers.append(httpx.Response(status, json=body))
    with api.client() as client, pytest.raises(cls) as caught:
        client.query_page("accounts-payable/bill", ["key"])
    assert type(caught.value) is cls and policy.action_for(caught.value) == action
    assert caught.value.errorno == "someCode" and "more words" in caught.value.description2
    assert len(api.api_calls()) == 1  # permanent: not retried


def test_5xx_and_html_pages_are_transient(api):
    api.api_answers += [httpx.Response(502, text="Bad Gateway"),
                        httpx.Response(503, text="<html>down</html>", headers={"content-type": "text/html"}),
                        ok(page([]))]
    with api.client() as client:
        assert client.query_page("accounts-payable/bill", ["key"]).records == []
    assert len(api.api_calls()) == 3


def test_429_waits_retry_after_seconds_and_http_dates(api):
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    api.api_answers += [httpx.Response(429, headers={"Retry-After": "7"}),
                        httpx.Response(429, headers={"Retry-After": later}), ok(page([]))]
    with api.client() as client:
        client.query_page("accounts-payable/bill", ["key"])
    assert api.sleeps[0] == 7.0 and 25 < api.sleeps[1] <= 30
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_retry_budget_bounds_waiting(api):
    api.api_answers += [httpx.Response(429, headers={"Retry-After": "100"})]
    with api.client() as client, pytest.raises(errors.RateLimited):
        client.query_page("accounts-payable/bill", ["key"])
    assert api.sleeps == []  # 100 s is past the 60 s budget: reported at once


def test_refused_token_is_replaced_once_then_reported(api):
    refused = httpx.Response(401, json={"error": {"code": "tokenInvalid", "message": "Token is not valid",
                                                  "errorId": "REST-2102"}})
    api.api_answers += [refused, ok(page([{"key": "1"}]))]
    with api.client() as client:
        client.query_page("accounts-payable/bill", ["key"])
    assert [r.headers["authorization"] for r in api.api_calls()] == ["Bearer access-token-0001",
                                                                     "Bearer access-token-0002"]
    api.api_answers += [refused, refused]
    with api.client() as client, pytest.raises(errors.TokenInvalid) as caught:
        client.query_page("accounts-payable/bill", ["key"])
    assert caught.value.errorno == "tokenInvalid" and policy.action_for(caught.value) == policy.Action.STOP


def grant(api: Api, saved: list[TokenSet], *, expires_at: float, refresh_expires_at: float | None = None,
          lifetime: float | None = None) -> AuthorizationCodeGrant:
    tokens = TokenSet("old-access-token", expires_at, "old-refresh-token", refresh_expires_at)
    return AuthorizationCodeGrant(tokens, saved.append, lifetime)


def test_refresh_before_expiry_rotates_and_saves_before_use(api):
    saved: list[TokenSet] = []
    order: list[str] = []
    api.api_answers.append(lambda request: (order.append("call"), ok(page([])))[1])
    g = grant(api, saved, expires_at=time.time() + 30)  # within the refresh margin
    g = AuthorizationCodeGrant(g.tokens, lambda t: (order.append("saved"), saved.append(t)), None)
    with api.client(g) as client:
        client.query_page("accounts-payable/bill", ["key"])
    form = dict(httpx.QueryParams(api.requests[0].content.decode()))
    assert form["grant_type"] == "refresh_token" and form["refresh_token"] == "old-refresh-token"
    assert order == ["saved", "call"] and saved[0].refresh_token == "refresh-token-0001"


def test_refresh_refused_names_revoked_expired_or_consent(api):
    now = time.time()
    cases = [
        ({"error": "invalid_grant"}, None, errors.TokenRevoked),
        ({"error": "invalid_grant"}, now - 1, errors.RefreshTokenExpired),
        ({"error": "unauthorized_client"}, None, errors.ConsentWithdrawn),
        ({"error": "invalid_client"}, None, errors.ClientCredentialsRejected),
    ]
    for body, refresh_expires_at, cls in cases:
        api.token_answers.append(httpx.Response(400 if body["error"] != "invalid_client" else 401, json=body))
        g = grant(api, [], expires_at=0, refresh_expires_at=refresh_expires_at)
        with api.client(g) as client, pytest.raises(cls) as caught:
            client.query_page("accounts-payable/bill", ["key"])
        assert policy.action_for(caught.value) == policy.Action.STOP
    assert api.api_calls() == []


def test_a_refresh_whose_answer_was_lost_is_not_sent_again(api):
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset", request=request)

    transport = httpx.MockTransport(drop)
    with api.client(grant(api, [], expires_at=0), transport=transport) as client, \
            pytest.raises(errors.ConnectionDropped):
        client.query_page("accounts-payable/bill", ["key"])
    assert api.sleeps == []  # the old refresh token may already be spent: a person must look, not a loop


def test_endpoint_and_paths_are_allowlisted():
    with pytest.raises(errors.EndpointNotAllowed):
        IntacctRestClient(RestConfig(client_id="a", client_secret=SECRET, base_url="https://evil.example/ia/api/v1"))
    with pytest.raises(errors.EndpointNotAllowed):
        IntacctRestClient(RestConfig(client_id="a", client_secret=SECRET, base_url="http://api.intacct.com/ia"))
    client = IntacctRestClient(RestConfig(client_id="a", client_secret=SECRET,
                                          transport=httpx.MockTransport(lambda r: httpx.Response(500))),
                               ClientCredentialsGrant("ws", "CO"))
    with client, pytest.raises(errors.EndpointNotAllowed):
        client.get_object("../../oauth2", "token")


def test_usernames_with_separators_are_refused_before_sending():
    with pytest.raises(ValueError):
        ClientCredentialsGrant("ws@evil", "CO")
    with pytest.raises(ValueError):
        ClientCredentialsGrant("ws", "CO|E1")
    assert ClientCredentialsGrant("ws", "CO", "E1").username == "ws@CO|E1"


def test_secrets_and_tokens_are_redacted_in_logs_and_reprs(api, caplog):
    caplog.set_level(logging.DEBUG)
    api.api_answers += [httpx.Response(503), ok(page([]))]
    with api.client() as client:
        client.query_page("accounts-payable/bill", ["key"])
        tokens = client.tokens
        assert tokens is not None
        assert redact(f"token {tokens.access_token} and {SECRET}") == "token REDACTED and REDACTED"
        assert tokens.access_token not in repr(tokens) and "REDACTED" in repr(tokens)
    assert "access-token-0001" not in caplog.text and SECRET not in caplog.text


def test_a_trickling_answer_ends_at_the_deadline(api):
    def trickle() -> Iterator[bytes]:
        yield b'{"ia::result": ['
        for _ in range(50):
            time.sleep(0.05)
            yield b'{"key": "1"},'

    api.api_answers += [lambda request: httpx.Response(200, content=trickle())] * 3
    started = time.monotonic()
    with api.client(timeout=0.3) as client, pytest.raises(errors.RequestTimeout):
        client.query_page("accounts-payable/bill", ["key"], size=4000)
    assert time.monotonic() - started < 2.0 and len(api.api_calls()) == 3  # 3 attempts of 0.3 s, not 3 x 2.5 s


def test_two_threads_refused_at_once_refresh_once(api):
    """Rotation makes a second refresh with the same refresh token fail: concurrent refusals must share one."""
    import threading

    both_in = threading.Barrier(2, timeout=5)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer old-access-token":
            both_in.wait()  # both threads hold the old token before either is refused
            return httpx.Response(401, json={"ia::result": {"ia::error": {"code": "tokenInvalid"}}})
        return ok(page([{"key": "1"}]))

    api.api_answers += [answer] * 4
    saved: list[TokenSet] = []
    g = grant(api, saved, expires_at=time.time() + 3600)
    failures: list[BaseException] = []
    with api.client(g) as client:
        def read() -> None:
            try:
                client.query_page("accounts-payable/bill", ["key"])
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)

        threads = [threading.Thread(target=read) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    refreshes = [r for r in api.requests if r.url.path.endswith("/oauth2/token")]
    assert failures == [] and len(refreshes) == 1 and len(saved) == 1
    assert len(api.api_calls()) == 4
