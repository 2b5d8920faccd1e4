"""Reads: readByQuery/readMore, query offset paging, read, get_list, permissions, record shapes, gzip."""
from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET

import httpx
import pytest

from connector.intacct import Permission, errors

from .fakes import (
    Gateway,
    Received,
    SleepRecorder,
    envelope,
    make_client,
    records_xml,
    result_xml,
    session_body,
)


def _rbq(records: list[dict], remaining: int, result_id: str, function: str = "readByQuery") -> bytes:
    total = len(records) + remaining
    data = (f'<data listtype="apbill" count="{len(records)}" totalcount="{total}" '
            f'numremaining="{remaining}" resultId="{result_id}">'
            + records_xml("apbill", records) + "</data>")
    return envelope(result_xml(function, data))


def _bills(start: int, n: int) -> list[dict]:
    return [{"RECORDNO": str(i), "WHENMODIFIED": "01/02/2024 10:00:00"} for i in range(start, start + n)]


def test_empty_read_by_query_makes_one_request() -> None:
    gateway = Gateway(script=[_rbq([], 0, "")])
    with make_client(gateway) as client:
        assert list(client.read_by_query("APBILL", ("RECORDNO",))) == []
    assert [c.function_name for c in gateway.calls] == ["readByQuery"]


def test_read_by_query_continues_with_read_more_until_none_remain() -> None:
    gateway = Gateway(script=[
        _rbq(_bills(1, 2), 3, "RID-1"),
        _rbq(_bills(3, 2), 1, "RID-1", "readMore"),
        _rbq(_bills(5, 1), 0, "RID-1", "readMore"),
    ])
    with make_client(gateway) as client:
        records = list(client.read_by_query("APBILL", ("RECORDNO", "WHENMODIFIED"), page_size=2))
    assert [r["RECORDNO"] for r in records] == ["1", "2", "3", "4", "5"]
    assert [c.function_name for c in gateway.calls] == ["readByQuery", "readMore", "readMore"]
    assert [c.function.findtext("resultId") for c in gateway.calls[1:]] == ["RID-1", "RID-1"]


def test_read_more_lost_page_during_retry_is_detected(sleeps: SleepRecorder) -> None:
    first = _rbq(_bills(1, 2), 4, "RID")
    lost = _rbq(_bills(3, 2), 2, "RID", "readMore")
    # The server served page 2 but the answer broke; the retry gets page 3.
    gateway = Gateway(script=[first, lost[:150], _rbq(_bills(5, 2), 0, "RID", "readMore")])
    with make_client(gateway, sleep=sleeps) as client, pytest.raises(errors.InvalidResponse) as info:
        list(client.read_by_query("APBILL", page_size=2))
    assert "lost" in str(info.value) and info.value.permanent


def test_read_by_query_refuses_pages_larger_than_asked() -> None:
    gateway = Gateway(script=[_rbq(_bills(1, 3), 0, "")])
    with make_client(gateway) as client, pytest.raises(errors.ResponseTooLarge):
        list(client.read_by_query("APBILL", page_size=2))


def _query_gateway(total: int) -> Gateway:
    def answer(request: httpx.Request) -> httpx.Response:
        body = request.read()
        fn = Received(str(request.url), request.headers, body, ET.fromstring(body)).function  # noqa: S314
        offset, size = int(fn.findtext("offset")), int(fn.findtext("pagesize"))
        rows = [{"RECORDNO": str(i)} for i in range(offset, min(total, offset + size))]
        remaining = max(0, total - offset - len(rows))
        return httpx.Response(200, content=envelope(result_xml(
            "query", f'<data listtype="APBILL" totalcount="{total}" offset="{offset}" count="{len(rows)}" '
                     f'numremaining="{remaining}">' + records_xml("APBILL", rows) + "</data>")))
    return Gateway(script=[answer] * 10)


@pytest.mark.parametrize(("total", "offsets"), [
    (0, [0]), (1, [0]), (999, [0]), (1000, [0]), (1001, [0, 1000]), (2500, [0, 1000, 2000]),
])
def test_query_pages_by_offset_and_never_fetches_a_page_twice(total: int, offsets: list[int]) -> None:
    gateway = _query_gateway(total)
    with make_client(gateway) as client:
        records = list(client.query("APBILL", ["RECORDNO"], page_size=1000))
    assert [int(r["RECORDNO"]) for r in records] == list(range(total))
    assert [int(c.function.findtext("offset")) for c in gateway.calls] == offsets
    assert all(c.function_name == "query" for c in gateway.calls)  # no count pre-query


def test_query_limit_and_start_offset() -> None:
    gateway = _query_gateway(5000)
    with make_client(gateway) as client:
        records = list(client.query("APBILL", ["RECORDNO"], page_size=1000, offset=10, limit=1500))
    assert len(records) == 1500 and records[0]["RECORDNO"] == "10"
    sent = [(int(c.function.findtext("offset")), int(c.function.findtext("pagesize"))) for c in gateway.calls]
    assert sent == [(10, 1000), (1010, 500)]


def test_query_page_returns_counters() -> None:
    gateway = _query_gateway(3)
    with make_client(gateway) as client:
        page = client.query_page("APBILL", ["RECORDNO"], page_size=1)
    assert (len(page.records), page.total_count, page.num_remaining, page.offset) == (1, 3, 2, 0)


def test_query_rejects_star_and_bad_page_size() -> None:
    with make_client(Gateway()) as client:
        with pytest.raises(ValueError):
            list(client.query("APBILL", ["*"]))
        with pytest.raises(ValueError):
            list(client.query("APBILL", ["RECORDNO"], page_size=2001))
        with pytest.raises(ValueError):
            list(client.read_by_query("APBILL", page_size=1001))


def test_read_not_found_is_empty_and_keys_go_100_per_call() -> None:
    gateway = Gateway(script=[
        envelope(result_xml("read", '<data listtype="USERINFO" count="0"/>')),
        envelope(result_xml("read", '<data listtype="USERINFO" count="1">'
                                    + records_xml("USERINFO", [{"RECORDNO": "150"}]) + "</data>")),
    ])
    with make_client(gateway) as client:
        assert client.read("USERINFO", range(1, 151)) == [{"RECORDNO": "150"}]
    assert [len(c.function.findtext("keys").split(",")) for c in gateway.calls] == [100, 50]


def test_nested_elements_flatten_and_repeats_become_lists() -> None:
    user = ("<USERINFO><RECORDNO>7</RECORDNO><LOGINID>jdoe</LOGINID><DESCRIPTION/>"
            "<CONTACTINFO><FIRSTNAME>Jane</FIRSTNAME><LASTNAME>Doe</LASTNAME></CONTACTINFO>"
            "<USERLOCATIONS><LOCATIONID>E1</LOCATIONID><LOCATIONID>E2</LOCATIONID></USERLOCATIONS></USERINFO>")
    data = f'<data listtype="USERINFO" count="1">{user}</data>'
    gateway = Gateway(script=[envelope(result_xml("read", data))])
    with make_client(gateway) as client:
        (record,) = client.read("USERINFO", [7])
    assert record == {
        "RECORDNO": "7", "LOGINID": "jdoe", "DESCRIPTION": None,
        "CONTACTINFO.FIRSTNAME": "Jane", "CONTACTINFO.LASTNAME": "Doe",
        "USERLOCATIONS.LOCATIONID": ["E1", "E2"],
    }


def test_records_with_unexpected_tag_are_still_returned() -> None:
    gateway = Gateway(script=[envelope(result_xml(
        "read", '<data listtype="objects" count="1"><userInfo><RECORDNO>1</RECORDNO></userInfo></data>'))])
    with make_client(gateway) as client:
        assert client.read("USERINFO", [1]) == [{"RECORDNO": "1"}]


def test_get_list_pages_with_start_and_maxitems() -> None:
    def page(start: int, rows: list[dict], total: int) -> bytes:
        end = start + len(rows) - 1
        return envelope(result_xml(
            "get_list", f'<listtype start="{start}" end="{end}" total="{total}">expensereportbatch</listtype>'
                        "<data>" + records_xml("expensereportbatch", rows) + "</data>"))
    gateway = Gateway(script=[
        page(0, [{"recordno": "1"}, {"recordno": "2"}], 3),
        page(2, [{"recordno": "3"}], 3),
    ])
    with make_client(gateway) as client:
        records = list(client.get_list("expensereportbatch", page_size=2))
    assert [r["recordno"] for r in records] == ["1", "2", "3"]
    sent = [(c.function.get("start"), c.function.get("maxitems")) for c in gateway.calls]
    assert sent == [("0", "2"), ("2", "2")]


def test_get_user_permissions_parses_applications_policies_and_rights() -> None:
    data = ("<data><permissions>"
            "<appSubscription><applicationName>Company</applicationName><policies>"
            "<policy><policyName>Users</policyName><rights>List|View|Edit</rights></policy>"
            "<policy><policyName>Employees</policyName><rights>View</rights></policy></policies></appSubscription>"
            "<appSubscription><applicationName>Accounts Payable</applicationName><policies>"
            "<policy><policyName>Bills</policyName><rights>List|View</rights></policy></policies>"
            "</appSubscription></permissions></data>")
    gateway = Gateway(script=[envelope(result_xml("getUserPermissions", data))])
    with make_client(gateway) as client:
        perms = client.get_user_permissions("ws_user")
    assert perms == [
        Permission("Company", "Users", frozenset({"List", "View", "Edit"})),
        Permission("Company", "Employees", frozenset({"View"})),
        Permission("Accounts Payable", "Bills", frozenset({"List", "View"})),
    ]


def test_gzip_encoded_response_is_decoded() -> None:
    body = _rbq(_bills(1, 3), 0, "")
    compressed = gzip.compress(body)
    gz = httpx.Response(200, content=compressed,
                        headers={"content-type": "text/xml", "content-encoding": "gzip"})
    gateway = Gateway(script=[gz])
    with make_client(gateway) as client:
        records = list(client.read_by_query("APBILL"))
        # bytes_received counts body bytes after decoding: what was parsed.
        assert client.stats.bytes_received == len(session_body()) + len(body)
    assert [r["RECORDNO"] for r in records] == ["1", "2", "3"]
