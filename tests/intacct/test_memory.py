"""Memory is bounded by what an answer holds: content outside records is dropped, counted and capped."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from connector.intacct import errors
from connector.intacct.response import ResponseParser, ResponseSyntaxError

from .fakes import Gateway, envelope, make_client, records_xml, result_xml

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = [("junk-in-data", 20), ("junk-in-control", 40), ("text-in-control", 40), ("junk-in-one-element", 40)]


@pytest.mark.parametrize(("case", "megabytes"), HOSTILE, ids=[case for case, _ in HOSTILE])
def test_a_hostile_answer_is_refused_within_50_mb(case: str, megabytes: int) -> None:
    # A fresh process, so its peak RSS belongs to this answer alone (the parser's memory is libxml2's,
    # which tracemalloc cannot see).
    run = subprocess.run([sys.executable, "-m", "tests.intacct.hostile", case, "--mb", str(megabytes)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    assert outcome["result"] == "refused", outcome
    assert outcome["error"] == "UnexpectedContent" and outcome["permanent"] is False  # a read may try again
    assert outcome["peak_rss_growth_mb"] < 50, outcome


def _page(*parts: str) -> bytes:
    return envelope(result_xml("read", '<data listtype="APBILL" count="2">' + "".join(parts) + "</data>"))


def _feed(parser: ResponseParser, body: bytes, chunk: int = 64):
    for offset in range(0, len(body), chunk):
        parser.feed(body[offset:offset + chunk])
    return parser.close()


def test_a_few_unexpected_elements_anywhere_are_ignored_and_never_become_records() -> None:
    body = _page("<x/>", records_xml("APBILL", [{"RECORDNO": "1"}]), "<note>hello</note>",
                 records_xml("APBILL", [{"RECORDNO": "2"}]), "<y><z/></y>")
    body = body.replace(b"<status>success</status><senderid>",
                        b"<status>success</status><newflag>T</newflag><senderid>", 1)
    body = body.replace(b"<function>read</function>", b"<function>read</function><timing>3</timing>")
    gateway = Gateway(script=[body])
    with make_client(gateway) as client:
        assert client.read("APBILL", [1, 2]) == [{"RECORDNO": "1"}, {"RECORDNO": "2"}]


def test_strays_spread_through_a_page_are_dropped_as_they_come_and_counted() -> None:
    rows = "".join(records_xml("APBILL", [{"RECORDNO": str(n)}]) + "<x/>" * 3 for n in range(1, 201))
    body = _page(rows)
    parsed = _feed(ResponseParser(("APBILL",), max_stray_elements=600), body)
    assert [r["RECORDNO"] for r in parsed.results[0].records] == [str(n) for n in range(1, 201)]
    with pytest.raises(errors.UnexpectedContent):
        _feed(ResponseParser(("APBILL",), max_stray_elements=599), body)


def test_stray_text_in_the_envelope_is_capped() -> None:
    body = _page(records_xml("APBILL", [{"RECORDNO": "1"}]))
    noisy = body.replace(b"<operation>", b"<operation>" + b"noise " * 2000, 1)
    assert len(_feed(ResponseParser(("APBILL",), max_stray_text=20_000), noisy).results[0].records) == 1
    with pytest.raises(errors.UnexpectedContent):
        _feed(ResponseParser(("APBILL",), max_stray_text=10_000), noisy)


def test_one_giant_record_is_refused_as_too_large() -> None:
    big = "<APBILL>" + "<LINE><A>1</A></LINE>" * 3000 + "</APBILL>"
    with pytest.raises(errors.ResponseTooLarge):
        _feed(ResponseParser(("APBILL",), max_held_elements=5000), _page(big), chunk=4096)
    assert len(_feed(ResponseParser(("APBILL",)), _page(big), chunk=4096).results[0].records) == 1


def test_a_payload_without_record_tags_is_kept_but_capped() -> None:
    payload = envelope(result_xml("getUserPermissions", "<data><permissions>" + "<p>x</p>" * 2000
                                  + "</permissions></data>"))
    assert _feed(ResponseParser(), payload).results[0].data_element is not None
    with pytest.raises(errors.ResponseTooLarge):
        _feed(ResponseParser(max_held_elements=1000), payload)


@pytest.mark.parametrize("split", [None, 24, 25, 26, 27, 30])
def test_a_root_other_than_response_is_refused_at_its_first_bytes(split) -> None:
    head = b'<?xml version="1.0"?>\n<html><body>' + b"<p>x</p>" * 10
    parser = ResponseParser(("APBILL",))
    with pytest.raises(ResponseSyntaxError):
        if split is None:
            parser.feed(head)
        else:  # the root's name cut between two chunks
            parser.feed(head[:split])
            parser.feed(head[split:])


@pytest.mark.parametrize("split", [22, 23, 25, 28, 30, 31])
def test_a_response_root_cut_between_chunks_is_accepted(split) -> None:
    body = _page(records_xml("APBILL", [{"RECORDNO": "1"}]))
    parser = ResponseParser(("APBILL",))
    cut = body.index(b"<response>") + split - 22
    parser.feed(body[:cut])
    parser.feed(body[cut:])
    assert parser.close().results[0].records == [{"RECORDNO": "1"}]


def test_a_record_tag_in_another_case_is_still_a_record() -> None:
    body = _page("<apBill><RECORDNO>1</RECORDNO></apBill>", records_xml("APBILL", [{"RECORDNO": "2"}]),
                 "<ApBill><RECORDNO>3</RECORDNO></ApBill>")
    parsed = _feed(ResponseParser(("APBILL", "apbill")), body, chunk=16)
    assert sorted(r["RECORDNO"] for r in parsed.results[0].records) == ["1", "2", "3"]
