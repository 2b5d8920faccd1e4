"""Retries: what is retried, how long we wait, and what a write never repeats."""
from __future__ import annotations

import httpx
import pytest

from connector.intacct import RetryPolicy, errors

from .fakes import Gateway, SleepRecorder, envelope, error_xml, make_client, records_xml, result_xml

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


def _user(status: str) -> bytes:
    return envelope(result_xml("readByName", '<data listtype="USERINFO" count="1">' + records_xml(
        "USERINFO", [{"LOGINID": "jdoe", "STATUS": status}]) + "</data>"))


def _function_ids(gateway: Gateway) -> list[tuple[str, str]]:
    return [(c.function_name, c.xml.find("operation/content/function").get("controlid")) for c in gateway.calls]


LOST_ANSWERS = {
    "524": _status(524, "<html>timeout</html>", "text/html"),
    "502": _status(502),
    "timeout": httpx.ReadTimeout("read timed out"),
    "dropped": httpx.RemoteProtocolError("peer closed connection"),
    "truncated": UPDATE_OK[:80],
    "html page": httpx.Response(200, text="<html>Cloudflare</html>", headers={"content-type": "text/html"}),
    "junk-filled answer": UPDATE_OK.replace(b'count="1">', b'count="1">' + b"<x/>" * 20_000),
}


@pytest.mark.parametrize("lost", LOST_ANSWERS.values(), ids=LOST_ANSWERS.keys())
def test_a_lost_answer_to_an_update_that_went_through_is_confirmed_by_reading_back(sleeps, lost) -> None:
    gateway = Gateway(script=[lost, _user("inactive")])
    with make_client(gateway, sleep=sleeps) as client:
        outcome = client.update_confirmed("USERINFO", {"LOGINID": "jdoe", "STATUS": "inactive"}, "deprov-1-v1")
    assert outcome.confirmed_by_read_back and outcome.answer == "applied (confirmed by read-back)"
    assert outcome.record == {"LOGINID": "jdoe", "STATUS": "inactive"} and len(outcome.lost_answers) == 1
    # Never sent twice: the read-back showed it applied.
    assert _function_ids(gateway) == [("update", "deprov-1-v1"), ("readByName", _function_ids(gateway)[1][1])]
    assert gateway.calls[1].function.findtext("keys") == "jdoe"
    assert sleeps.delays == []


@pytest.mark.parametrize("lost", LOST_ANSWERS.values(), ids=LOST_ANSWERS.keys())
def test_a_lost_update_that_did_not_go_through_is_sent_again_with_the_same_control_id(sleeps, lost) -> None:
    gateway = Gateway(script=[lost, _user("active"), UPDATE_OK])
    with make_client(gateway, sleep=sleeps) as client:
        outcome = client.update_confirmed("USERINFO", {"LOGINID": "jdoe", "STATUS": "inactive"}, "deprov-1-v1")
    assert not outcome.confirmed_by_read_back and outcome.answer == "applied" and outcome.attempts == 2
    assert outcome.record == {"RECORDNO": "9"}
    assert [f for f in _function_ids(gateway) if f[0] == "update"] == [("update", "deprov-1-v1")] * 2
    assert sleeps.delays == [1.0]


@pytest.mark.parametrize("refusal", [
    error_xml("XL03000011", "Duplicate request", "A function with control ID 'X' has already been executed."),
    error_xml("BL01001973", "Could not update record.", "Some wording nobody published."),
], ids=["duplicate wording", "any other wording"])
def test_a_refused_repeat_after_a_lost_answer_is_settled_by_reading_back_whatever_the_words(sleeps, refusal):
    refused = envelope(result_xml("update", status="failure", errors=[refusal]))
    gateway = Gateway(script=[_status(502), _user("active"), refused, _user("inactive")])
    with make_client(gateway, sleep=sleeps) as client:
        outcome = client.update_confirmed("USERINFO", {"LOGINID": "jdoe", "STATUS": "inactive"}, "deprov-1-v1")
    assert outcome.confirmed_by_read_back and outcome.attempts == 2


def test_a_refused_repeat_that_read_back_does_not_confirm_is_raised(sleeps) -> None:
    refused = envelope(result_xml("update", status="failure", errors=[error_xml(
        "BL01001973", "Could not update record.", "Invalid value.")]))
    gateway = Gateway(script=[_status(502), _user("active"), refused, _user("active")])
    with make_client(gateway, sleep=sleeps) as client, pytest.raises(errors.RecordError):
        _update(client)


def test_a_first_refusal_is_raised_without_reading_back(sleeps) -> None:
    refused = envelope(result_xml("update", status="failure", errors=[error_xml(
        "XL03000011", "Duplicate request", "A function with control ID 'X' has already been executed.")]))
    gateway = Gateway(script=[refused])
    with make_client(gateway, sleep=sleeps) as client, pytest.raises(errors.DuplicateRequest):
        _update(client)
    assert len(gateway.calls) == 1


def test_answers_lost_every_time_end_within_the_retry_policy(sleeps) -> None:
    gateway = Gateway(script=[_status(502), _user("active")] * 3)
    policy = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=30.0, total_budget=120.0, jitter=False)
    with make_client(gateway, sleep=sleeps, retry=policy) as client, pytest.raises(errors.GatewayUnavailable):
        _update(client)
    assert [f[0] for f in _function_ids(gateway)] == ["update", "readByName"] * 3
    assert sleeps.delays == [1.0, 2.0]


def test_when_reading_back_fails_the_lost_answer_is_raised(sleeps) -> None:
    gateway = Gateway(script=[httpx.ReadTimeout("slow"), httpx.Response(403, text="Forbidden")])
    with make_client(gateway, sleep=sleeps) as client, pytest.raises(errors.RequestTimeout) as info:
        _update(client)
    assert info.value.permanent is False


def test_update_by_recordno_reads_back_by_recordno(sleeps) -> None:
    back = envelope(result_xml("read", '<data listtype="EMPLOYEE" count="1">' + records_xml(
        "EMPLOYEE", [{"RECORDNO": "4", "STATUS": "inactive", "ENDDATE": "06/30/2024"}]) + "</data>"))
    gateway = Gateway(script=[_status(503), back])
    with make_client(gateway, sleep=sleeps) as client:
        outcome = client.update_confirmed("EMPLOYEE", {"RECORDNO": "4", "STATUS": "inactive",
                                                       "ENDDATE": "06/30/2024"}, "deprov-emp-4")
    assert outcome.confirmed_by_read_back
    read = gateway.calls[1]
    assert read.function_name == "read" and read.function.findtext("keys") == "4"
    assert read.function.findtext("fields") == "RECORDNO,STATUS,ENDDATE"


def test_update_is_retried_when_the_request_never_left_or_was_rate_limited(sleeps: SleepRecorder) -> None:
    gateway = Gateway(script=[httpx.ConnectError("refused"), httpx.Response(429, text="busy"), UPDATE_OK])
    with make_client(gateway, sleep=sleeps) as client:
        assert _update(client) == {"RECORDNO": "9"}
    # Every repeat carries the same function control id, so Intacct refuses a second execution.
    ids = {c.xml.find("operation/content/function").get("controlid") for c in gateway.calls}
    assert ids == {"deprov-1-v1"} and len(gateway.calls) == 3


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
