"""The client fed truncated, invalid, huge and hostile XML: always a typed error (or a correct answer),
fast, with bounded memory — never an unexpected exception, a hang or a runaway allocation."""
from __future__ import annotations

import time
import tracemalloc

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connector.intacct import ClientConfig, Credentials, IntacctClient, RetryPolicy, errors

URL = "https://api.intacct.com/ia/xml/xmlgw.phtml"
SESSION_OK = (b'<?xml version="1.0" encoding="UTF-8"?><response><control><status>success</status></control>'
              b"<operation><authentication><status>success</status><sessiontimeout>2026-01-01T00:00:00+00:00"
              b"</sessiontimeout></authentication><result><status>success</status><function>getAPISession"
              b"</function><controlid>f</controlid><data><api><sessionid>SESSION-FUZZ-123</sessionid><endpoint>"
              + URL.encode() + b"</endpoint><locationid></locationid></api></data></result></operation></response>")
PAGE_OK = (b'<?xml version="1.0" encoding="UTF-8"?><response><control><status>success</status></control>'
           b"<operation><authentication><status>success</status></authentication><result><status>success"
           b"</status><function>readByQuery</function><controlid>f</controlid><data listtype=\"apbill\" count=\"2\" "
           b'totalcount="2" numremaining="0" resultId=""><apbill><RECORDNO>1</RECORDNO><STATE>Posted</STATE>'
           b"</apbill><apbill><RECORDNO>2</RECORDNO><STATE>Draft</STATE></apbill></data></result></operation>"
           b"</response>")


def client_answering(body: bytes, *, status: int = 200, cap: int = 1_000_000) -> IntacctClient:
    """A client whose gateway answers getAPISession properly, then `body` to every function."""
    def handler(request: httpx.Request) -> httpx.Response:
        if b"<getAPISession" in request.content:
            return httpx.Response(200, content=SESSION_OK, headers={"content-type": "application/xml"})
        return httpx.Response(status, content=body, headers={"content-type": "application/xml"})

    config = ClientConfig(endpoint_url=URL, sender_id="S", sender_password="fuzz-sender-pw",
                          transport=httpx.MockTransport(handler), max_response_bytes=cap,
                          retry=RetryPolicy(max_attempts=2, base_delay=0, max_delay=0, total_budget=1),
                          sleep=lambda _s: None)
    return IntacctClient(config, Credentials("C", "U", "fuzz-user-pw"))


def read_with(body: bytes, **kwargs) -> list | errors.IntacctError:
    started = time.monotonic()
    with client_answering(body, **kwargs) as client:
        try:
            outcome = list(client.read_by_query("APBILL", fields=("RECORDNO", "STATE")))
        except errors.IntacctError as exc:  # the only kind of exception allowed out
            outcome = exc
    assert time.monotonic() - started < 2.0
    return outcome


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.integers(min_value=0, max_value=len(PAGE_OK) - 1))
def test_every_truncation_is_a_typed_error(cut):
    outcome = read_with(PAGE_OK[:cut])
    assert isinstance(outcome, errors.IntacctError)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_are_a_typed_error(body):
    assert isinstance(read_with(body), errors.IntacctError)


@FUZZ
@given(st.integers(min_value=0, max_value=len(PAGE_OK)), st.binary(min_size=1, max_size=64))
def test_inserted_garbage_gives_a_typed_error_or_the_right_records(position, garbage):
    outcome = read_with(PAGE_OK[:position] + garbage + PAGE_OK[position:])
    if not isinstance(outcome, errors.IntacctError):
        # Garbage that still parses (e.g. text inside a field) must not invent or lose records.
        # Garbage inside a value's text is that value's text now (" 2", "!2"): no record is invented or doubled.
        assert len(outcome) <= 2
        assert len([r for r in outcome if "RECORDNO" in r]) <= 2


@FUZZ
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=200))
def test_any_unicode_in_a_field_round_trips_or_fails_typed(text):
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode("utf-8")
    body = PAGE_OK.replace(b"<STATE>Posted</STATE>", b"<STATE>" + escaped + b"</STATE>")
    outcome = read_with(body)
    if isinstance(outcome, errors.IntacctError):
        # Only characters XML 1.0 forbids (controls) may make the answer unreadable.
        assert any(ord(c) < 0x20 and c not in "\t\n\r" or c in "\ufffe\uffff" for c in text)
    else:
        assert outcome[0]["STATE"] == (text or None).replace("\r\n", "\n").replace("\r", "\n") \
            if text else outcome[0]["STATE"] is None


def result_failure(description: bytes) -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?><response><control><status>success</status></control>'
            b"<operation><authentication><status>success</status></authentication><result><status>failure"
            b"</status><function>readByQuery</function><controlid>f</controlid><errormessage><error><errorno>"
            b"BL01001973</errorno><description>" + description + b"</description><description2>Short."
            b"</description2><correction></correction></error></errormessage></result></operation></response>")


@FUZZ
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40),
       st.sampled_from([b"", b"\x00", b"&#0;", b"&#x1b;", b"%00"]), st.integers(min_value=0, max_value=3000))
@example(text="00000", nul=b"%00", repeat=250)  # exactly MAX_ERROR_TEXT characters: kept whole, no mark
def test_any_error_text_nul_bytes_included_fails_typed_and_bounded(text, nul, repeat):
    """Intacct's words, however long or hostile (a NUL byte raw or as a reference), come out bounded."""
    piece = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode("utf-8") + nul
    outcome = read_with(result_failure(piece * repeat))
    assert isinstance(outcome, errors.IntacctError)
    for part in (outcome.errorno, outcome.description, outcome.description2, outcome.correction, str(outcome)):
        assert len(part) <= errors.MAX_ERROR_TEXT
        assert "\x00" not in part
    if len(outcome.description) == errors.MAX_ERROR_TEXT and not outcome.description.endswith(errors.CUT_MARK):
        # Uncut at exactly the limit: only a text that long itself ("00000%00" x 250 is 2,000 characters).
        assert len(piece * repeat) >= errors.MAX_ERROR_TEXT

HOSTILE = {
    "deep-nesting": b"<response>" + b"<a>" * 200_000 + b"</a>" * 200_000 + b"</response>",
    "internal-entity-bomb": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "' + b"x" * 1000 + b'">'
                            + b"".join(b'<!ENTITY a%d "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">' % i for i in range(8))
                            + b"]><response>&a7;</response>",
    "external-entity": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                       b"<response>&x;</response>",
    "parameter-entity": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x">%p;]>'
                        b"<response/>",
    "doctype-after-comment": b"<!-- hi --><!DOCTYPE response SYSTEM \"http://127.0.0.1:9/x.dtd\"><response/>",
    "huge-text": b"<response><control><status>" + b"A" * 3_000_000 + b"</status></control></response>",
    "huge-attribute": b'<response><control status="' + b"B" * 3_000_000 + b'"/></response>',
    "many-records": PAGE_OK.replace(b"<apbill><RECORDNO>2", b"<apbill><RECORDNO>9</RECORDNO></apbill>" * 50_000
                                    + b"<apbill><RECORDNO>2"),
    "html-error-page": b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    "empty": b"",
    "utf16-bom": "<response/>".encode("utf-16"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_answers_fail_typed_fast_and_small(name):
    tracemalloc.start()
    try:
        outcome = read_with(HOSTILE[name], cap=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(outcome, errors.IntacctError), name
    assert peak < 40 * 1024 * 1024, (name, peak)
    if "entity" in name or "doctype" in name:
        assert isinstance(outcome, errors.UnsafeResponse)
    if name in ("huge-text", "huge-attribute", "many-records"):
        assert isinstance(outcome, errors.ResponseTooLarge | errors.InvalidResponse)


def test_no_fuzzed_error_text_carries_a_secret():
    texts = []
    for body in [*HOSTILE.values(), PAGE_OK[:100], b"\x00\xff" * 10]:
        outcome = read_with(body)
        if isinstance(outcome, errors.IntacctError):
            texts += [str(outcome), repr(outcome)]
    joined = "\n".join(texts)
    for secret in ("fuzz-user-pw", "fuzz-sender-pw", "SESSION-FUZZ-123"):
        assert secret not in joined
