"""Hostile answers, size caps, redaction, secrets in logs, and bounded memory while streaming."""
from __future__ import annotations

import logging
import sys
import time
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest

from connector.intacct import RetryPolicy, errors
from connector.intacct.redaction import HeldSecrets, RedactingFilter, redact, register_secret, unregister_secret

from .fakes import (
    SENDER_PASSWORD,
    SESSION_ID,
    SESSION_ID_2,
    USER_PASSWORD,
    Gateway,
    SleepRecorder,
    auth_failure,
    envelope,
    error_xml,
    make_client,
    records_xml,
    result_xml,
    session_body,
)

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<response><control><status>success</status></control><operation><authentication><status>success</status>
</authentication><result><status>success</status><function>getAPISession</function><controlid>f1</controlid>
<data><api><sessionid>&lol9;</sessionid><endpoint>https://api.intacct.com/ia/xml/xmlgw.phtml</endpoint></api>
</data></result></operation></response>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<response><control><status>success</status></control><operation><authentication><status>success</status>
</authentication><result><status>success</status><function>getAPISession</function><controlid>f1</controlid>
<data><api><sessionid>&xxe;</sessionid><endpoint>https://api.intacct.com/ia/xml/xmlgw.phtml</endpoint></api>
</data></result></operation></response>"""


def _chunked(body: bytes, size: int) -> httpx.Response:
    def gen() -> Iterator[bytes]:
        for i in range(0, len(body), size):
            yield body[i:i + size]
    return httpx.Response(200, content=gen(), headers={"content-type": "text/xml"})


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
@pytest.mark.parametrize("chunk", [7, 65536])
def test_doctype_and_entities_are_refused_fast(body: bytes, chunk: int) -> None:
    gateway = Gateway(login_script=[_chunked(body, chunk)])
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with make_client(gateway) as client, pytest.raises(errors.UnsafeResponse) as info:
            client.get_api_session()
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 5 * 1024 * 1024
    assert info.value.permanent
    assert b"root:" not in str(info.value).encode()
    assert len(gateway.received) == 1  # permanent: not retried


def test_doctype_after_a_comment_is_refused() -> None:
    prolog = b'<?xml version="1.0"?><!-- hi --><!DOCTYPE response SYSTEM "http://evil/x.dtd">'
    body = prolog + session_body()[38:]
    gateway = Gateway(login_script=[_chunked(body, 5)])
    with make_client(gateway) as client, pytest.raises(errors.UnsafeResponse):
        client.get_api_session()


def test_response_size_cap_is_enforced_while_streaming(sleeps: SleepRecorder) -> None:
    def endless() -> Iterator[bytes]:
        yield b'<?xml version="1.0" encoding="UTF-8"?><response><control><status>success</status></control>'
        while True:
            yield b"<x>" + b"a" * 8192 + b"</x>"
    response = httpx.Response(200, content=endless(), headers={"content-type": "text/xml"})
    gateway = Gateway(login_script=[response])
    with make_client(gateway, sleep=sleeps, max_response_bytes=1024 * 1024) as client, \
            pytest.raises(errors.ResponseTooLarge):
        client.get_api_session()
    assert len(gateway.received) == 1


def test_declared_content_length_over_cap_is_refused_before_reading() -> None:
    response = httpx.Response(200, content=session_body(), headers={"content-type": "text/xml"})
    gateway = Gateway(login_script=[response])
    with make_client(gateway, max_response_bytes=100) as client, pytest.raises(errors.ResponseTooLarge):
        client.get_api_session()


def test_not_xml_and_empty_bodies_are_invalid_responses(sleeps: SleepRecorder) -> None:
    gateway = Gateway(login_script=[httpx.Response(200, text="hello"), httpx.Response(200, content=b"")])
    policy = RetryPolicy(max_attempts=2, jitter=False)
    with make_client(gateway, sleep=sleeps, retry=policy) as client, pytest.raises(errors.InvalidResponse):
        client.get_api_session()
    assert len(gateway.received) == 2


def test_redact_blanks_sensitive_elements_case_insensitively_but_keeps_senderid() -> None:
    text = ("<senderid>SENDER</senderid><password>pw1</password><PassWord>pw2</PassWord>"
            "<sessionid attr='1'>sid</sessionid><accountnumber>123</accountnumber><cardnum>4111</cardnum>"
            "<ssn>078-05-1120</ssn><achaccountnumber>9</achaccountnumber><wireaccountnumber>8</wireaccountnumber>"
            "<taxid>12-3</taxid>")
    out = redact(text)
    assert "<senderid>SENDER</senderid>" in out
    for secret in ("pw1", "pw2", ">sid<", "123", "4111", "078-05-1120", ">9<", ">8<", "12-3"):
        assert secret not in out
    assert out.count("REDACTED") == 9


def test_registered_secrets_are_scrubbed_in_plain_and_escaped_form() -> None:
    secret = "Plain&<Secret>99"  # noqa: S105 - test value
    register_secret(secret)
    try:
        assert redact(f"x {secret} y") == "x REDACTED y"
        assert redact("x Plain&amp;&lt;Secret&gt;99 y") == "x REDACTED y"
    finally:
        unregister_secret(secret)
    assert redact(secret) == secret


def test_held_secrets_are_scrubbed_until_released_and_shared_strings_stay_with_their_other_holder() -> None:
    standing, shared = "Standing-secret-1", "Shared-token-2"  # noqa: S105 - test values
    tokens = [f"Token-{n:03d}-value" for n in range(5)]
    first, second = HeldSecrets(standing, None, ""), HeldSecrets(shared)
    try:
        assert len(first) == 1  # nothing held for an empty secret
        first.hold(shared)
        for token in tokens:
            first.hold(token)
        assert redact(f"{standing} {shared} {tokens[0]}") == "REDACTED REDACTED REDACTED"
        first.keep_recent(2, first=1)  # the standing secret stays, and the last two held
        assert redact(f"{standing} {tokens[3]} {tokens[4]}") == "REDACTED REDACTED REDACTED"
        assert redact(tokens[2]) == tokens[2] and len(first) == 3
        assert redact(shared) == "REDACTED"  # released by the first holder, still held by the second
        first.release_all()
        assert redact(f"{standing} {tokens[4]}") == f"{standing} {tokens[4]}" and len(first) == 0
        assert redact(shared) == "REDACTED"
    finally:
        first.release_all()
        second.release_all()
    assert redact(shared) == shared


def test_redacting_filter_scrubs_message_args_and_exception_text() -> None:
    register_secret("hunter2-secret")
    try:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "sent %s and %r (%d)",
                                   ("<password>abc</password>", "hunter2-secret", 5), None)
        assert RedactingFilter().filter(record) is True
        assert record.getMessage() == "sent <password>REDACTED</password> and 'REDACTED' (5)"
        try:
            raise ValueError("boom hunter2-secret")
        except ValueError:
            record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
        RedactingFilter().filter(record)
        assert "hunter2-secret" not in record.exc_text and "REDACTED" in record.exc_text
    finally:
        unregister_secret("hunter2-secret")


def test_secrets_never_appear_in_logs_exceptions_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    """A whole scripted run at DEBUG: logins, re-login, retries, failures of every level."""
    read_ok = envelope(result_xml("read", '<data listtype="USERINFO" count="1">'
                                          + records_xml("USERINFO", [{"RECORDNO": "1"}]) + "</data>"))
    # An error that (carelessly) echoes the secrets back, as some gateways do.
    echo = error_xml("BL01001973", f"Bad value {USER_PASSWORD}", f"session {SESSION_ID}", SENDER_PASSWORD)
    gateway = Gateway(
        script=[
            read_ok,
            auth_failure(error_xml("XL03000006", "", "Invalid session")),
            httpx.Response(502, text=f"upstream {SESSION_ID_2}"),
            read_ok,
            envelope(result_xml("read", status="failure", errors=[echo])),
            httpx.ReadTimeout("timed out"),
            envelope(result_xml("readByName", status="failure", errors=[echo])),  # the read-back fails
        ],
        login_script=[session_body(SESSION_ID), session_body(SESSION_ID_2)],
    )
    texts: list[str] = []
    caplog.set_level(logging.DEBUG, logger="connector.intacct")
    with make_client(gateway) as client:
        texts.append(repr(client.get_api_session()))
        client.read("USERINFO", [1])
        client.read("USERINFO", [1])  # invalid session -> re-login -> 502 -> retry
        with pytest.raises(errors.RecordError) as info:
            client.read("USERINFO", [1])
        texts += [str(info.value), repr(info.value), repr(info.value.errors)]
        with pytest.raises(errors.RequestTimeout) as info2:
            client.update("USERINFO", {"LOGINID": "x", "STATUS": "inactive"}, control_id="c-1")
        texts += [str(info2.value), repr(info2.value), repr(client), repr(client._config),
                  repr(client._credentials), repr(client.get_api_session())]
        assert client.stats.logins == 2
    texts += [r.getMessage() for r in caplog.records]
    assert any("<password>REDACTED</password>" in t for t in texts)  # request bodies were logged
    assert any("<sessionid>REDACTED</sessionid>" in t for t in texts)
    blob = "\n".join(texts)
    for secret in (USER_PASSWORD, SENDER_PASSWORD, SESSION_ID, SESSION_ID_2):
        assert secret not in blob
        assert secret.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") not in blob


def _streamed_read_by_query(total: int, page: int) -> Gateway:
    """Pages generated lazily in small chunks: no page ever exists as one bytes object."""
    fields = ("RECORDNO", "RECORDID", "VENDORID", "VENDORNAME", "STATE", "TOTALDUE", "WHENMODIFIED")
    pages = (total + page - 1) // page
    template = "<apbill>" + "".join(f"<{f}>{f[:3]}%d</{f}>" for f in fields) + "</apbill>"

    def page_body(index: int) -> Iterator[bytes]:
        start = index * page
        count = min(page, total - start)
        remaining = total - start - count
        function = "readByQuery" if index == 0 else "readMore"
        head = envelope(result_xml(function, "\x00")).split(b"\x00")
        yield head[0] + (f'<data listtype="apbill" count="{count}" totalcount="{total}" '
                         f'numremaining="{remaining}" resultId="RID">').encode()
        for first in range(start, start + count, 50):
            yield "".join(template % ((i,) * len(fields))
                          for i in range(first, min(first + 50, start + count))).encode()
        yield b"</data>" + head[1]

    steps = [
        (lambda request, i=i: httpx.Response(200, content=page_body(i), headers={"content-type": "text/xml"}))
        for i in range(pages)
    ]
    return Gateway(script=steps)


def test_streaming_200k_records_keeps_memory_small() -> None:
    total = 200_000
    gateway = _streamed_read_by_query(total, 1000)
    with make_client(gateway) as client:
        tracemalloc.start()
        try:
            seen = 0
            last = None
            for record in client.read_by_query("APBILL", page_size=1000):
                seen += 1
                last = record
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert seen == total
    assert last is not None and last["RECORDNO"] == f"REC{total - 1}"
    assert len(gateway.calls) == 200
    gateway.received.clear()
    print(f"tracemalloc peak while streaming {total} records: {peak / 1e6:.1f} MB")
    assert peak < 30 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
