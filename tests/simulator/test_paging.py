"""readByQuery + readMore and query offset paging, filters, laziness on a million-record company."""

from __future__ import annotations

import pytest

from simulator.demo import build_company
from simulator.models import RecordOverride, ResultCursor
from simulator.records import create_record, delete_record, modify_record
from tests.simulator.conftest import envelope, login_xml, post, text, tree

pytestmark = pytest.mark.django_db


def rbq(query: str, pagesize: int = 1000, fields: str = "RECORDNO", obj: str = "APBILL") -> str:
    query = query.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        f'<function controlid="q"><readByQuery><object>{obj}</object><fields>{fields}</fields>'
        f"<query>{query}</query><pagesize>{pagesize}</pagesize></readByQuery></function>"
    )


def read_more(result_id: str) -> str:
    return f'<function controlid="m"><readMore><resultId>{result_id}</resultId></readMore></function>'


def read_all(gw, query: str, pagesize: int = 1000, obj: str = "APBILL") -> tuple[list[int], list[dict]]:
    """Every RECORDNO through readByQuery + readMore, and the data attributes of every page."""
    _, doc = gw(rbq(query, pagesize, obj=obj))
    pages = []
    numbers: list[int] = []
    while True:
        data = doc.xpath("//result/data")[0]
        pages.append(dict(data.attrib))
        numbers += [int(r.findtext("RECORDNO")) for r in data]
        if data.get("numremaining") == "0":
            # A single page has no resultId; readMore's last page keeps the one it was asked for.
            assert data.get("resultId") == ("" if len(pages) == 1 else pages[-2]["resultId"])
            return numbers, pages
        _, doc = gw(read_more(data.get("resultId")))


@pytest.mark.parametrize("total", [0, 1, 999, 1000, 1001])
def test_read_by_query_and_read_more_totals(gw, total):
    numbers, pages = read_all(gw, f"RECORDNO <= {total}")
    assert numbers == list(range(1, total + 1))
    assert all(p["totalcount"] == str(total) for p in pages)
    expected_pages = max(1, -(-total // 1000))
    assert len(pages) == expected_pages
    assert [int(p["count"]) for p in pages] == (
        [0] if total == 0 else [min(1000, total - 1000 * i) for i in range(expected_pages)]
    )
    assert [int(p["numremaining"]) for p in pages] == [max(0, total - 1000 * (i + 1)) for i in range(len(pages))]
    assert all(p["listtype"] == "apbill" for p in pages)
    assert ResultCursor.objects.count() == 0


def test_default_pagesize_is_100_and_limit_is_1000(gw):
    _, doc = gw(
        '<function controlid="q"><readByQuery><object>APBILL</object><fields>RECORDNO</fields><query/>'
        "</readByQuery></function>"
    )
    assert doc.xpath("//result/data")[0].get("count") == "100"
    _, doc = gw(rbq("", 1001))
    assert text(doc, "//result/errormessage/error/errorno") == "DL02000001"


def test_read_more_with_unknown_result_id(gw):
    _, doc = gw(read_more("0000000000Xnope"))
    error = doc.xpath("//result/errormessage/error")[0]
    assert (text(error, "errorno"), text(error, "description"), text(error, "description2")) == (
        "DL02000001",
        "There was an error processing the request.",
        "Invalid or expired resultId",
    )


def test_read_more_by_object(gw):
    gw(rbq("RECORDNO <= 15", 10))
    _, doc = gw('<function controlid="m"><readMore><object>APBILL</object></readMore></function>')
    assert [int(r.findtext("RECORDNO")) for r in doc.xpath("//result/data/apbill")] == list(range(11, 16))


def test_paging_stays_consistent_while_records_change(gw, company):
    _, doc = gw(rbq("RECORDNO <= 30", 10))
    result_id = doc.xpath("//result/data")[0].get("resultId")
    modify_record(company, "APBILL", 25, {"STATE": "Paid"})
    create_record(company, "APBILL", {"VENDORNAME": "Late Arrival"})
    _, doc = gw(read_more(result_id))
    assert [int(r.findtext("RECORDNO")) for r in doc.xpath("//result/data/apbill")] == list(range(11, 21))
    _, doc = gw(read_more(result_id))
    data = doc.xpath("//result/data")[0]
    assert [int(r.findtext("RECORDNO")) for r in data] == list(range(21, 31))
    assert data.get("numremaining") == "0" and data.get("totalcount") == "30"


def query_fn(offset: int, pagesize: int, filter_xml: str = "", order: str = "", obj: str = "APBILL") -> str:
    return (
        f'<function controlid="q"><query><object>{obj}</object><select><field>RECORDNO</field>'
        f"<field>WHENMODIFIED</field></select>{filter_xml}{order}<pagesize>{pagesize}</pagesize>"
        f"<offset>{offset}</offset></query></function>"
    )


def test_query_offset_paging(gw):
    numbers = []
    offset = 0
    while True:
        _, doc = gw(query_fn(offset, 2000))
        data = doc.xpath("//result/data")[0]
        assert data.get("totalcount") == "2500" and data.get("offset") == str(offset)
        numbers += [int(r.findtext("RECORDNO")) for r in data]
        offset += int(data.get("count"))
        if data.get("numremaining") == "0":
            break
        assert data.get("numremaining") == str(2500 - offset)
    assert numbers == list(range(1, 2501))
    _, doc = gw(query_fn(0, 2001))
    assert text(doc, "//result/errormessage/error/errorno") == "DL02000001"


def test_query_offset_beyond_end(gw):
    _, doc = gw(query_fn(5000, 10))
    data = doc.xpath("//result/data")[0]
    assert (data.get("count"), data.get("numremaining"), data.get("totalcount")) == ("0", "0", "2500")


WM = "<field>WHENMODIFIED</field>"


def test_generated_whenmodified_is_monotonic_with_ties(gw):
    _, doc = gw(query_fn(0, 300))
    stamps = [r.findtext("WHENMODIFIED") for r in doc.xpath("//result/data/APBILL")]
    from simulator.records import parse_ts

    seconds = [parse_ts(s) for s in stamps]
    assert seconds == sorted(seconds)
    assert len(set(seconds)) < len(seconds)  # several records share a second


FILTER_CASES = [
    ("RECORDNO = 5", [5]),
    ("RECORDNO != 2 AND RECORDNO < 5", [1, 3, 4]),
    ("RECORDNO <> 2 AND RECORDNO <= 4", [1, 3, 4]),
    ("RECORDNO > 2497", [2498, 2499, 2500]),
    ("RECORDNO >= 2499", [2499, 2500]),
    ("RECORDNO in (3, 1, 7)", [1, 3, 7]),
    ("RECORDNO not in (1,2,3) AND RECORDNO < 6", [4, 5]),
    ("(RECORDNO < 3 OR RECORDNO > 2498) AND NOT RECORDNO = 2", [1, 2499, 2500]),
    ("RECORDID = 'BILL-0000042'", [42]),
    ("RECORDID like 'BILL-000001_'", list(range(10, 20))),
    ("RECORDID not like 'BILL-000000%' AND RECORDNO < 12", [10, 11]),
    ("RECORDNO < 20 AND WHENPAID IS NULL AND NOT STATE in ('Paid', 'Partially Paid')", "nopaid"),
    ("RECORDNO < 20 AND WHENPAID IS NOT NULL", "paid"),
    ("RECORDID = 'it\\'s'", []),
    ("RECORDNO < 4 AND VENDORNAME like '%'", [1, 2, 3]),
    ("WHENMODIFIED < '01/01/2021'", []),
]


@pytest.mark.parametrize("query, expected", FILTER_CASES)
def test_read_by_query_filters(gw, company, query, expected):
    from simulator.records import get_record

    if expected in ("paid", "nopaid"):
        rows = {r: get_record(company, "APBILL", r) for r in range(1, 20)}
        expected = [r for r, rec in rows.items() if (rec["WHENPAID"] != "") == (expected == "paid")]
    numbers, _ = read_all(gw, query)
    assert numbers == expected


def test_whenmodified_bounds_and_keyset(gw, company):
    from simulator.records import get_record

    stamp = get_record(company, "APBILL", 1000)["WHENMODIFIED"]
    same_second = [r for r in range(995, 1006) if get_record(company, "APBILL", r)["WHENMODIFIED"] == stamp]
    assert len(same_second) >= 2
    numbers, _ = read_all(gw, f"WHENMODIFIED = '{stamp}'")
    assert numbers == same_second
    first = same_second[0]
    # Keyset continuation: strictly after (stamp, first).
    numbers, _ = read_all(gw, f"WHENMODIFIED > '{stamp}' OR (WHENMODIFIED = '{stamp}' AND RECORDNO > {first})")
    assert numbers == list(range(first + 1, 2501))


QUERY_FILTERS = [
    ("<equalto><field>RECORDNO</field><value>9</value></equalto>", [9]),
    (
        "<notequalto><field>RECORDNO</field><value>9</value></notequalto>",
        [n for n in range(1, 2501) if n != 9],
    ),
    ("<lessthan><field>RECORDNO</field><value>3</value></lessthan>", [1, 2]),
    ("<greaterthan><field>RECORDNO</field><value>2498</value></greaterthan>", [2499, 2500]),
    ("<between><field>RECORDNO</field><value>10</value><value>12</value></between>", [10, 11, 12]),
    ("<in><field>RECORDID</field><value>BILL-0000004</value><value>BILL-0000002</value></in>", [2, 4]),
    (
        "<and><notin><field>RECORDNO</field><value>1</value></notin><lessthanorequalto><field>RECORDNO</field>"
        "<value>3</value></lessthanorequalto></and>",
        [2, 3],
    ),
    (
        "<or><equalto><field>RECORDNO</field><value>1</value></equalto><and><greaterthanorequalto>"
        "<field>RECORDNO</field><value>2499</value></greaterthanorequalto><isnotnull><field>RECORDID</field>"
        "</isnotnull></and></or>",
        [1, 2499, 2500],
    ),
    (
        "<and><like><field>RECORDID</field><value>bill-000000_</value></like><lessthan><field>RECORDNO</field>"
        "<value>4</value></lessthan></and>",
        [1, 2, 3],
    ),
    (
        "<and><notlike><field>RECORDID</field><value>BILL-000000%</value></notlike><lessthan><field>RECORDNO</field>"
        "<value>12</value></lessthan></and>",
        [10, 11],
    ),
    ("<isnull><field>RECORDID</field></isnull>", []),
]


@pytest.mark.parametrize("filter_xml, expected", QUERY_FILTERS)
def test_query_filters(gw, filter_xml, expected):
    options = "<options><caseinsensitive>true</caseinsensitive></options>"
    _, doc = gw(query_fn(0, 2000, f"<filter>{filter_xml}</filter>", options) + "")
    found = [int(r.findtext("RECORDNO")) for r in doc.xpath("//result/data/APBILL")]
    total = int(doc.xpath("//result/data")[0].get("totalcount"))
    assert total == len(expected)
    assert found == expected[:2000]


def test_query_like_is_case_sensitive_by_default(gw):
    _, doc = gw(query_fn(0, 10, "<filter><like><field>RECORDID</field><value>bill%</value></like></filter>"))
    assert doc.xpath("//result/data")[0].get("totalcount") == "0"


def test_query_orderby_descending_and_by_text(gw):
    order = "<orderby><order><field>RECORDNO</field><descending/></order></orderby>"
    _, doc = gw(query_fn(0, 3, "", order))
    assert [r.findtext("RECORDNO") for r in doc.xpath("//result/data/APBILL")] == ["2500", "2499", "2498"]
    order = (
        "<orderby><order><field>VENDORNAME</field><ascending/></order><order><field>RECORDNO</field>"
        "<descending/></order></orderby>"
    )
    _, doc = gw(
        query_fn(0, 5, "<filter><lessthan><field>RECORDNO</field><value>50</value></lessthan></filter>", order).replace(
            "<field>WHENMODIFIED</field>", "<field>VENDORNAME</field>"
        )
    )
    names = [r.findtext("VENDORNAME") for r in doc.xpath("//result/data/APBILL")]
    assert names == sorted(names)


def test_query_count_aggregate(gw):
    _, doc = gw(
        '<function controlid="c"><query><object>APBILL</object><select><count>RECORDNO</count></select>'
        "</query></function>"
    )
    assert text(doc, "//result/data/APBILL/COUNT.RECORDNO") == "2500"


def test_invalid_query_and_field(gw):
    _, doc = gw(rbq("RECORDNO ="))
    assert text(doc, "//result/errormessage/error/errorno") == "Query Failed"
    _, doc = gw(rbq("", fields="RECORDNO,NOPE"))
    assert text(doc, "//result/errormessage/error/description2") == "Field 'NOPE' not found in object APBILL"


def test_modifications_and_deletes_move_whenmodified_and_show_incrementally(gw, company):
    from simulator.records import get_record

    last_generated = get_record(company, "APBILL", 2500)["WHENMODIFIED"]
    before = get_record(company, "APBILL", 7)["WHENMODIFIED"]
    modify_record(company, "APBILL", 7, {"STATE": "Paid", "TOTALDUE": "0.00"})
    delete_record(company, "APBILL", 8)
    new = create_record(company, "APBILL", {"VENDORNAME": "Smith & Sons Hardware", "STATE": "Draft"})
    assert new == 2501
    after = get_record(company, "APBILL", 7)
    assert after["STATE"] == "Paid" and after["WHENMODIFIED"] != before
    assert get_record(company, "APBILL", 8) is None
    numbers, pages = read_all(gw, f"WHENMODIFIED > '{last_generated}'")
    assert numbers == [7, 2501]
    _, doc = gw(
        query_fn(
            0,
            10,
            f"<filter><greaterthan><field>WHENMODIFIED</field><value>{last_generated}</value></greaterthan></filter>",
            "<orderby><order><field>WHENMODIFIED</field><ascending/></order><order><field>RECORDNO"
            "</field><ascending/></order></orderby>",
        )
    )
    assert [r.findtext("RECORDNO") for r in doc.xpath("//result/data/APBILL")] == ["7", "2501"]
    # Full reads: the deleted record is gone, the created one is at the end, the total adjusts.
    numbers, _ = read_all(gw, "")
    assert len(numbers) == 2500 and 8 not in numbers and numbers[-1] == 2501
    # Ordered by WHENMODIFIED the changed record moves to the end, before the later created one.
    _, doc = gw(query_fn(2497, 5, "", "<orderby><order><field>WHENMODIFIED</field><ascending/></order></orderby>"))
    assert [r.findtext("RECORDNO") for r in doc.xpath("//result/data/APBILL")] == ["2500", "7", "2501"]


def test_read_returns_override_and_escapes_text(gw, company):
    create_record(company, "APBILL", {"VENDORNAME": "Smith & Sons <Hardware>"})
    _, doc = gw(
        '<function controlid="r"><read><object>APBILL</object><keys>2501</keys><fields>VENDORNAME</fields>'
        "</read></function>"
    )
    assert text(doc, "//APBILL/VENDORNAME") == "Smith & Sons <Hardware>"


# A page costs a fixed number of queries whatever its size: the request's own (sender, company, user,
# permissions, stored changes) plus the concurrency ticket taken and given back and the month's API count.
MAX_QUERIES = 30


def test_million_records_are_lazy(client, django_assert_max_num_queries):
    demo = build_company("BIG-CO", sizes={"APBILL": 1_000_000})
    auth = login_xml(company="BIG-CO")
    with django_assert_max_num_queries(MAX_QUERIES):
        doc = tree(post(client, envelope(rbq("", 1000), auth=auth)))
    data = doc.xpath("//result/data")[0]
    assert (data.get("count"), data.get("totalcount"), data.get("numremaining")) == (
        "1000",
        "1000000",
        "999000",
    )
    with django_assert_max_num_queries(MAX_QUERIES):
        doc = tree(post(client, envelope(read_more(data.get("resultId")), auth=auth)))
    assert doc.xpath("//result/data/apbill/RECORDNO")[0].text == "1001"
    with django_assert_max_num_queries(MAX_QUERIES):
        doc = tree(post(client, envelope(query_fn(999_000, 2000), auth=auth)))
    data = doc.xpath("//result/data")[0]
    assert (data.get("count"), data.get("numremaining")) == ("1000", "0")
    assert data[-1].findtext("RECORDNO") == "1000000"
    with django_assert_max_num_queries(MAX_QUERIES):
        doc = tree(post(client, envelope(rbq("RECORDNO > 999500 AND WHENMODIFIED >= '01/01/2020'", 1000), auth=auth)))
    assert doc.xpath("//result/data")[0].get("totalcount") == "500"
    assert RecordOverride.objects.filter(company=demo.company).count() == 0


def test_every_row_of_the_size_table_sizes_every_synced_object():
    from connector.objects import OBJECTS
    from simulator.demo import SIZES

    for name, sizes in SIZES.items():
        assert set(sizes) == {o.name.upper() for o in OBJECTS}, name
        assert all(count > 0 for count in sizes.values()), name
    # What the rows are for: a paging test needs bills over one page, a sync test every object within one.
    assert SIZES["two_pages"]["APBILL"] > 2000 >= max(SIZES["one_page"].values())
