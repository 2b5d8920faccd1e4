"""Hostile gateway answers streamed through the real client, with the process's peak RSS measured.

Run in a fresh process (``python -m tests.intacct.hostile CASE``) so the peak belongs to this case
alone; it prints one JSON line: what the call did and how much the peak RSS grew during it. Used by
tests/intacct/test_memory.py and bench/bench_client.py.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable, Iterator

import httpx

from connector.intacct import ClientConfig, Credentials, IntacctClient, RetryPolicy, errors

MB = 1024 * 1024
CHUNK = 64 * 1024
ENDPOINT = "https://api.intacct.com/ia/xml/xmlgw.phtml"

HEAD = (b'<?xml version="1.0" encoding="UTF-8"?><response><control><status>success</status>'
        b"<senderid>S</senderid><controlid>c</controlid><uniqueid>false</uniqueid><dtdversion>3.0</dtdversion>")
AUTH = (b"<authentication><status>success</status><userid>U</userid><companyid>C</companyid>"
        b"<sessiontimestamp>2024-05-01T10:00:00+00:00</sessiontimestamp>"
        b"<sessiontimeout>2024-05-01T18:00:00+00:00</sessiontimeout></authentication>")
RESULT_HEAD = b"<result><status>success</status><function>query</function><controlid>f1</controlid>"
SESSION = (b"<data><api><sessionid>S1</sessionid><endpoint>" + ENDPOINT.encode()
           + b"</endpoint><locationid></locationid></api></data>")
RECORD = (b"<APBILL><RECORDNO>%d</RECORDNO><VENDORID>V100</VENDORID><STATE>Posted</STATE>"
          b"<TOTALDUE>5900</TOTALDUE><WHENMODIFIED>05/01/2024 10:00:00</WHENMODIFIED></APBILL>")


def _repeat(unit: bytes, total: int) -> Iterator[bytes]:
    block = unit * max(1, CHUNK // len(unit))
    sent = 0
    while sent < total:
        yield block
        sent += len(block)


def junk_in_data(size: int) -> Iterator[bytes]:
    """A query answer whose <data> holds ``size`` bytes of <x/> and no record."""
    yield HEAD + b"</control><operation>" + AUTH + RESULT_HEAD
    yield b'<data listtype="APBILL" totalcount="0" offset="0" count="0" numremaining="0">'
    yield from _repeat(b"<x/>", size)
    yield b"</data></result></operation></response>"


def junk_in_control(size: int) -> Iterator[bytes]:
    """A valid, successful query answer with ``size`` bytes of junk elements inside <control>."""
    yield HEAD
    yield from _repeat(b"<junk>0123456789</junk>", size)
    yield b"</control><operation>" + AUTH + RESULT_HEAD
    yield b'<data listtype="APBILL" totalcount="1" offset="0" count="1" numremaining="0">'
    yield RECORD % 1
    yield b"</data></result></operation></response>"


def text_in_control(size: int) -> Iterator[bytes]:
    """A valid, successful query answer with ``size`` bytes of text between the control block's fields."""
    yield HEAD
    yield from _repeat(b"junk text " * 100 + b"<x/>", size)
    yield b"</control><operation>" + AUTH + RESULT_HEAD
    yield b'<data listtype="APBILL" totalcount="1" offset="0" count="1" numremaining="0">'
    yield RECORD % 1
    yield b"</data></result></operation></response>"


def junk_in_one_element(size: int) -> Iterator[bytes]:
    """A valid query answer whose <status> leaf (still open) holds ``size`` bytes of <x/> children."""
    yield HEAD.replace(b"<status>success</status>", b"<status>success")
    yield from _repeat(b"<x/>", size)
    yield b"</status></control><operation>" + AUTH + RESULT_HEAD
    yield b'<data listtype="APBILL" totalcount="0" offset="0" count="0" numremaining="0"/>'
    yield b"</result></operation></response>"


CASES: dict[str, Callable[[int], Iterator[bytes]]] = {
    "junk-in-data": junk_in_data, "junk-in-control": junk_in_control, "text-in-control": text_in_control,
    "junk-in-one-element": junk_in_one_element}


def run(case: str, size: int) -> dict[str, object]:
    """Stream one answer of ``case`` through a client's query and report the outcome and RSS growth."""
    make = CASES[case]

    def handler(request: httpx.Request) -> httpx.Response:
        if b"<login>" in request.read():
            return httpx.Response(200, content=HEAD + b"</control><operation>" + AUTH
                                  + b"<result><status>success</status><function>getAPISession</function>"
                                  + b"<controlid>f1</controlid>" + SESSION + b"</result></operation></response>",
                                  headers={"content-type": "text/xml"})
        return httpx.Response(200, content=make(size), headers={"content-type": "text/xml"})

    config = ClientConfig(sender_id="S", sender_password="sp", transport=httpx.MockTransport(handler),
                          retry=RetryPolicy(max_attempts=1), timeout=600)
    with IntacctClient(config, Credentials("C", "U", "pw")) as client:
        client.get_api_session()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        outcome: dict[str, object] = {"case": case, "bytes": size}
        try:
            got = sum(1 for _ in client.query("APBILL", ["RECORDNO"], page_size=2000))
            outcome.update(result="succeeded", records=got)
        except errors.IntacctError as exc:
            outcome.update(result="refused", error=type(exc).__name__, message=str(exc)[:200],
                           permanent=exc.permanent)
        outcome["seconds"] = round(time.monotonic() - started, 2)
        outcome["received_mb"] = round(client.stats.bytes_received / MB, 1)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome["peak_rss_growth_mb"] = round((after - before) / 1024, 1)
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--mb", type=float, default=40)
    args = parser.parse_args()
    print(json.dumps(run(args.case, int(args.mb * MB))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
