"""A client nobody here wrote — the pip package ``sageintacctsdk``, unchanged but for its URL — against a live
simulator over real HTTP: session, count, paging with its own default field lists, filters, wrong credentials.

The SDK keeps its gateway URL in a private attribute set in ``ApiBase.__init__`` and logs in from the
``SageIntacctSDK`` constructor; the only thing patched is that URL.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from django.conf import settings
from sageintacctsdk import SageIntacctSDK
from sageintacctsdk.apis import api_base
from sageintacctsdk.apis.constants import dimensions_fields_mapping
from sageintacctsdk.exceptions import InvalidTokenError, WrongParamsError

from simulator.demo import DEMO_LOGIN, DEMO_PASSWORD, build_company
from simulator.inflight import inflight_reset

SIZES = {"DEPARTMENT": 23, "LOCATION": 7, "EMPLOYEE": 45, "USERINFO": 5, "CCTRANSACTION": 31, "GLACCOUNT": 19,
         "APBILL": 2345, "APADJUSTMENT": 3, "EEXPENSES": 27, "EXPENSEREPORTBATCH": 4}
# SDK attribute -> (object, records in the company)
OBJECTS = {
    "departments": "DEPARTMENT",
    "locations": "LOCATION",
    "employees": "EMPLOYEE",
    "accounts": "GLACCOUNT",
    "bills": "APBILL",
    "charge_card_transactions": "CCTRANSACTION",
    "expense_reports": "EEXPENSES",
}


@pytest.fixture
def gateway_url(live_server, transactional_db, monkeypatch) -> Iterator[str]:
    """The live simulator's gateway, patched in as the SDK's endpoint URL (its only change)."""
    inflight_reset()
    url = live_server.url + settings.SIMULATOR_GATEWAY_PATH
    original_init = api_base.ApiBase.__init__

    def init_with_simulator_url(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._ApiBase__api_url = url

    monkeypatch.setattr(api_base.ApiBase, "__init__", init_with_simulator_url)
    build_company("SDK-CO", sizes=SIZES, seed=7)
    yield url


def connect(**overrides) -> SageIntacctSDK:
    options = dict(sender_id=settings.INTACCT_SENDER_ID, sender_password=settings.INTACCT_SENDER_PASSWORD,
                   user_id=DEMO_LOGIN, company_id="SDK-CO", user_password=DEMO_PASSWORD)
    options.update(overrides)
    return SageIntacctSDK(**options)


def test_session_count_and_paging_with_default_field_lists(gateway_url):
    client = connect()
    # The session endpoint the SDK follows is the simulator's own.
    assert client.departments._ApiBase__api_url == gateway_url
    for attribute, obj in OBJECTS.items():
        api = getattr(client, attribute)
        assert api.count(None) == SIZES[obj], obj
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the SDK warns when the pages do not add up to totalcount
            records = api.get_by_query()
        assert len(records) == SIZES[obj], obj
        assert len({r["RECORDNO"] for r in records}) == SIZES[obj], obj
        defaults = dimensions_fields_mapping[obj]
        # Every default field comes back, in the shape the SDK reads (dotted paths as element names).
        assert set(records[0]) == set(defaults), obj
        assert records[0]["RECORDNO"] == "1"
    bills = client.bills.get_by_query()
    assert all(b["RECORD_URL"].startswith("https://") for b in bills[:50])
    assert {b["ONHOLD"] for b in bills} <= {"true", "false"}
    employees = client.employees.get_by_query()
    assert all(e["CONTACT.FIRSTNAME"] for e in employees)
    assert {e["MEGAENTITYID"] for e in employees} <= {f"L{n:03d}" for n in range(1, 8)}


def test_paging_through_generator_and_offsets(gateway_url):
    client = connect()
    pages = list(client.bills.get_all_generator(order_by_field="RECORDNO", order="ascending"))
    assert [len(p) for p in pages] == [2000, 345]
    numbers = [int(b["RECORDNO"]) for page in pages for b in page]
    assert numbers == list(range(1, 2346))


def test_filters(gateway_url):
    client = connect()
    active = client.departments.count()  # the SDK's default count: STATUS = active
    everything = client.departments.get_by_query()
    assert active == sum(1 for d in everything if d["STATUS"] == "active")
    one = client.departments.get_by_query(and_filter=[("equalto", "DEPARTMENTID", "D003")])
    assert [d["DEPARTMENTID"] for d in one] == ["D003"]
    both = client.accounts.get_by_query(or_filter=[("equalto", "ACCOUNTNO", "1010"), ("equalto", "ACCOUNTNO", "1190")])
    assert sorted(a["ACCOUNTNO"] for a in both) == ["1010", "1190"]
    ranged = client.bills.get_by_query(and_filter=[("greaterthanorequalto", "RECORDNO", "2300"),
                                                    ("lessthan", "RECORDNO", "2310")])
    assert sorted(int(b["RECORDNO"]) for b in ranged) == list(range(2300, 2310))
    # readByQuery through the SDK's get(): a text condition, all fields, lower-case record elements.
    got = client.locations.get(field="LOCATIONID", value="L002")
    assert got["@count"] == "1" and got["location"]["LOCATIONID"] == "L002"
    assert got["location"]["CONTACTINFO"]["MAILADDRESS"]["CITY"]  # readByQuery nests dotted fields


def test_wrong_sender_is_refused_at_control_level(gateway_url):
    with pytest.raises(WrongParamsError) as caught:
        connect(sender_password="not-the-sender-password")
    error = caught.value.response["error"][0]
    assert error["errorno"] == "XL03000006"
    assert "Partner ID or password" in error["description2"]


def test_wrong_password_is_refused(gateway_url):
    with pytest.raises(InvalidTokenError) as caught:
        connect(user_password="wrong-password")
    assert caught.value.response["error"]["errorno"] == "XL03000006"
    assert "Sign-in information is incorrect" in caught.value.response["error"]["description2"]


def test_wrong_password_on_a_company_answering_http_401(gateway_url):
    build_company("SDK-401", sizes=SIZES, login_failure_style="http401")
    with pytest.raises(InvalidTokenError) as caught:
        connect(company_id="SDK-401", user_password="wrong-password")
    assert caught.value.response["error"]["errorno"] == "XMLGW_JPP0002"
