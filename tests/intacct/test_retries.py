"""Retries: what is retried, how long we wait, and what a write never repeats."""
from __future__ import annotations

import httpx
import pytest

from connector.intacct import RetryPolicy, errors

from .fakes import Gateway, SleepRecorder, envelope, make_client, records_xml, result_xml

READ_OK = envelope(result_xml("read", '<data listtype="APBILL" count="1">'
                                      + records_xml("APBILL", [{"RECORDNO": "1"}]) + "</data>"))
UPDATE_OK = envelope(result_xml("update", '<data listtype="objects" count="1">'
                                          + records_xml("USERINFO", [{"RECORDNO": "9"}]) + "</data>"))
TRUNCATED = READ_OK[: len(READ_OK) // 2]


def _status(code: int, body: str = "upstream trouble", ctype: str = "text/plain") -> httpx.Response:
    return httpx.Response(code, text=body, headers={"content-type": ctype})


def _update(client) -> dict:
    return client.update("USERINFO", {"LOGINID": "jdoe", "STATUS": "inactive"}, control_id="deprov-1-v1")


def test_5xx_are_retried_with_exponential_backoff_then_succeed(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[_status(500), _status(502), _status(503), READ_OK])
    with make_client(gateway, sleep=sleeps) as client:
        assert client.read("APBILL", [1]) == [{"RECORDNO": "1"}]
        assert client.stats.retries == 3
        assert client.stats.requests == 5  # login + 4 attempts
    assert sleeps.delays == [1.0, 2.0, 4.0]


def test_retries_stop_at_max_attempts(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[_status(502)] * 10)
    with make_client(gateway, sleep=sleeps) as client, pytest.raises(errors.GatewayUnavailable) as info:
        client.read("APBILL", [1])
    assert info.value.http_status == 502 and info.value.permanent is False
    assert len(gateway.calls) == 6
    assert sleeps.delays == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_backoff_is_capped_by_max_delay_and_total_budget(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[_status(500)] * 20)
    policy = RetryPolicy(max_attempts=20, base_delay=1.0, max_delay=5.0, total_budget=20.0, jitter=False)
    with make_client(gateway, sleep=sleeps, retry=policy) as client, pytest.raises(errors.GatewayUnavailable):
        client.read("APBILL", [1])
    # 1+2+4+5+5 = 17; one more 5 s wait would exceed the 20 s budget.
    assert sleeps.delays == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_jitter_stays_within_the_exponential_ceiling(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[_status(503)] * 6)
    policy = RetryPolicy(max_attempts=6, base_delay=1.0, max_delay=30.0, total_budget=120.0, jitter=True)
    with make_client(gateway, sleep=sleeps, retry=policy) as client, pytest.raises(errors.GatewayUnavailable):
        client.read("APBILL", [1])
    assert len(sleeps.delays) == 5
    for attempt, delay in enumerate(sleeps.delays, start=1):
        assert 0.0 <= delay <= 2 ** (attempt - 1)


def test_429_honours_retry_after_and_falls_back_to_backoff(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[httpx.Response(429, text="slow down", headers={"retry-after": "3"}),
                              httpx.Response(429, text="slow down"), READ_OK])
    with make_client(gateway, sleep=sleeps) as client:
        assert client.read("APBILL", [1]) == [{"RECORDNO": "1"}]
    assert sleeps.delays == [3.0, 2.0]


def test_524_on_update_is_never_retried(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[_status(524, "<html>timeout</html>", "text/html"), UPDATE_OK])
    with make_client(gateway, sleep=sleeps) as client, pytest.raises(errors.GatewayUnavailable) as info:
        _update(client)
    assert info.value.http_status == 524
    assert len(gateway.calls) == 1 and sleeps.delays == []


def test_524_on_read_and_on_login_is_retried(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[_status(524, "<html>timeout</html>", "text/html"), READ_OK],
                      login_script=[_status(524, "<html>timeout</html>", "text/html")])
    with make_client(gateway, sleep=sleeps) as client:
        assert client.read("APBILL", [1]) == [{"RECORDNO": "1"}]
    assert len(gateway.logins) == 2 and len(gateway.calls) == 2


def test_timeout_on_update_is_not_retried(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[httpx.ReadTimeout("read timed out"), UPDATE_OK])
    with make_client(gateway, sleep=sleeps) as client, pytest.raises(errors.RequestTimeout) as info:
        _update(client)
    assert info.value.permanent is False  # the caller may try later, with the same control id
    assert len(gateway.calls) == 1 and sleeps.delays == []


def test_dropped_connection_on_update_is_not_retried(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[httpx.RemoteProtocolError("peer closed connection"), UPDATE_OK])
    with make_client(gateway, sleep=sleeps) as client, pytest.raises(errors.ConnectionDropped):
        _update(client)
    assert len(gateway.calls) == 1


def test_update_is_retried_when_the_request_never_left_or_was_rate_limited(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[httpx.ConnectError("refused"), httpx.Response(429, text="busy"),
                              _status(502), UPDATE_OK])
    with make_client(gateway, sleep=sleeps) as client:
        assert _update(client) == {"RECORDNO": "9"}
    # Every repeat carries the same function control id, so Intacct refuses a second execution.
    ids = {c.xml.find("operation/content/function").get("controlid") for c in gateway.calls}
    assert ids == {"deprov-1-v1"} and len(gateway.calls) == 4


def test_timeout_and_dropped_connection_on_read_are_retried(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[httpx.ReadTimeout("slow"), httpx.ReadError("reset"), READ_OK])
    with make_client(gateway, sleep=sleeps) as client:
        assert client.read("APBILL", [1]) == [{"RECORDNO": "1"}]
    assert sleeps.delays == [1.0, 2.0]


def test_truncated_xml_is_retried_for_reads(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[TRUNCATED, READ_OK])
    with make_client(gateway, sleep=sleeps) as client:
        assert client.read("APBILL", [1]) == [{"RECORDNO": "1"}]
    assert client.stats.retries == 1


def test_truncated_xml_read_gives_up_as_transient_invalid_response(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[TRUNCATED] * 6)
    with make_client(gateway, sleep=sleeps) as client, pytest.raises(errors.InvalidResponse) as info:
        client.read("APBILL", [1])
    assert info.value.permanent is False and len(gateway.calls) == 6


def test_truncated_xml_to_a_write_is_raised_without_retry(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[UPDATE_OK[:80], UPDATE_OK])
    with make_client(gateway, sleep=sleeps) as client, pytest.raises(errors.InvalidResponse) as info:
        _update(client)
    assert info.value.permanent is True and len(gateway.calls) == 1


def test_stream_dropped_mid_body_on_read_is_retried(sleeps: SleepRecorder) -> None:
    def dropping(request: httpx.Request) -> httpx.Response:
        def body():
            yield READ_OK[:100]
            raise httpx.RemoteProtocolError("incomplete chunked read")
        return httpx.Response(200, content=body(), headers={"content-type": "text/xml"})

    gateway = Gateway(script=[dropping, READ_OK])
    with make_client(gateway, sleep=sleeps) as client:
        assert client.read("APBILL", [1]) == [{"RECORDNO": "1"}]


def test_permanent_errors_are_not_retried(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[httpx.Response(404, text="nope"), READ_OK])
    with make_client(gateway, sleep=sleeps) as client, pytest.raises(errors.InvalidResponse) as info:
        client.read("APBILL", [1])
    assert info.value.http_status == 404 and info.value.permanent
    assert sleeps.delays == []


def test_html_page_with_200_is_an_invalid_response_retried_for_reads(sleeps: SleepRecorder) -> None:
    page = httpx.Response(200, text="<!DOCTYPE html><html>Cloudflare</html>",
                          headers={"content-type": "text/html"})
    gateway = Gateway(script=[page, READ_OK])
    with make_client(gateway, sleep=sleeps) as client:
        assert client.read("APBILL", [1]) == [{"RECORDNO": "1"}]
