"""How the REST API names each object the simulator serves, and how a generated record looks in JSON.

One company answers both protocols from the same records (``records.py``): a REST object is a view of an
XML object with REST field names. Paths and most field names come from Sage's REST reference
(docs/protocol-choices.md, "REST API"); names we could not confirm there are marked so in that table.
The simulator never imports ``connector``: this is its own table, as ``records.py`` is its own for XML.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from simulator.records import OBJECTS, ObjectDef, parse_ts

API_PREFIX = "/objects/"


@dataclass(frozen=True)
class RestObject:
    """One REST object: its path (``accounts-payable/bill``), its XML object and REST field -> XML field."""

    path: str
    xml_name: str
    fields: dict[str, str]
    id_field: str = "id"
    reverse: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reverse", {xml: rest for rest, xml in self.fields.items()})

    @property
    def xml(self) -> ObjectDef:
        return OBJECTS[self.xml_name]

    def href(self, key: str) -> str:
        return f"{API_PREFIX}{self.path}/{key}"


_COMMON = {"key": "RECORDNO", "audit.modifiedDateTime": "WHENMODIFIED"}

REST_OBJECTS: dict[str, RestObject] = {
    o.path: o
    for o in (
        RestObject("company-config/department", "DEPARTMENT", {
            **_COMMON, "id": "DEPARTMENTID", "name": "TITLE", "parent.id": "PARENTID",
            "supervisor.id": "SUPERVISORID", "status": "STATUS"}),
        RestObject("company-config/location", "LOCATION", {
            **_COMMON, "id": "LOCATIONID", "name": "NAME", "parent.id": "PARENTID",
            "supervisor.id": "SUPERVISORID", "status": "STATUS"}),
        RestObject("company-config/employee", "EMPLOYEE", {
            **_COMMON, "id": "EMPLOYEEID", "primaryContact.firstName": "PERSONALINFO.FIRSTNAME",
            "primaryContact.lastName": "PERSONALINFO.LASTNAME", "primaryContact.email1": "PERSONALINFO.EMAIL1",
            "jobTitle": "TITLE", "department.id": "DEPARTMENTID", "location.id": "LOCATIONID",
            "manager.id": "SUPERVISORID", "startDate": "STARTDATE", "endDate": "ENDDATE", "status": "STATUS"}),
        RestObject("company-config/user", "USERINFO", {
            **_COMMON, "id": "LOGINID", "userType": "USERTYPE", "adminPrivileges": "ADMIN", "status": "STATUS",
            "isLoginDisabled": "LOGINDISABLED", "contact.firstName": "CONTACTINFO.FIRSTNAME",
            "contact.lastName": "CONTACTINFO.LASTNAME", "contact.email1": "CONTACTINFO.EMAIL1"}),
        RestObject("cash-management/credit-card-txn", "CCTRANSACTION", {
            **_COMMON, "id": "RECORDID", "description": "DESCRIPTION", "currency.txnCurrency": "CURRENCY",
            "totalEntered": "TOTALENTERED", "totalDue": "TOTALDUE", "state": "STATE", "txnDate": "WHENCREATED"}),
        RestObject("general-ledger/account", "GLACCOUNT", {
            **_COMMON, "id": "ACCOUNTNO", "name": "TITLE", "accountType": "ACCOUNTTYPE",
            "normalBalance": "NORMALBALANCE", "category": "CATEGORY", "status": "STATUS"}),
        RestObject("accounts-payable/bill", "APBILL", {
            **_COMMON, "id": "RECORDID", "vendor.id": "VENDORID", "vendor.name": "VENDORNAME",
            "referenceNumber": "DOCNUMBER", "state": "STATE", "createdDate": "WHENCREATED", "dueDate": "WHENDUE",
            "totalTxnAmount": "TOTALENTERED", "totalTxnAmountDue": "TOTALDUE", "currency.txnCurrency": "CURRENCY"}),
        RestObject("accounts-payable/adjustment", "APADJUSTMENT", {
            **_COMMON, "id": "RECORDID", "vendor.id": "VENDORID", "vendor.name": "VENDORNAME", "state": "STATE"}),
        RestObject("expenses/employee-expense", "EEXPENSES", {
            **_COMMON, "id": "RECORDID", "state": "STATE", "description": "DESCRIPTION",
            "reimbursement.totalEntered": "TOTALENTERED", "reimbursement.totalDue": "TOTALDUE",
            "reimbursement.reimbursementCurrency": "CURRENCY", "createdDate": "WHENCREATED"}),
        RestObject("expenses/expense-summary", "EXPENSEREPORTBATCH", {
            **_COMMON, "id": "TITLE", "name": "TITLE", "glPostingDate": "BATCHDATE", "status": "STATUS",
            "totalAmount": "TOTAL"}),
    )
}


def rest_object(path: str) -> RestObject | None:
    """The REST object at ``path`` (``accounts-payable/bill``), or None when the simulator has none."""
    return REST_OBJECTS.get(path.strip().strip("/").lower())


# --- values ------------------------------------------------------------------------------------
def iso_utc(local_text: str, tz: ZoneInfo) -> str | None:
    """A company-local 'MM/DD/YYYY HH:MM:SS' as ISO 8601 UTC ('2023-11-10T18:36:30Z'), as REST answers it."""
    secs = parse_ts(local_text)
    if secs is None:
        return None
    local = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=secs)
    return local.replace(tzinfo=tz).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_date(local_text: str) -> str | None:
    secs = parse_ts(local_text)
    if secs is None:
        return None
    return (dt.date(1970, 1, 1) + dt.timedelta(days=secs // 86400)).isoformat()


def to_json_value(obj: ObjectDef, xml_field: str, raw: str | None, tz: ZoneInfo) -> object:
    """One XML value as REST gives it: null for empty, ISO dates, booleans; numbers stay strings."""
    if raw is None or raw == "":
        return None
    kind = obj.type_of(xml_field)
    if kind == "ts":
        return iso_utc(raw, tz)
    if kind == "date":
        return iso_date(raw)
    if kind == "bool":
        return raw.lower() == "true"
    return raw


def from_json_value(obj: ObjectDef, xml_field: str, value: object, tz: ZoneInfo) -> str:
    """A filter value given in REST form, as the XML record holds it (company-local MM/DD/YYYY times)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    kind = obj.type_of(xml_field)
    if kind in ("ts", "date"):
        parsed = _parse_iso(text)
        if parsed is None:
            raise ValueError(f"'{text}' is not a date or a date and time")
        if kind == "date":
            return parsed.strftime("%m/%d/%Y")
        local = parsed.astimezone(tz) if parsed.tzinfo else parsed
        return local.strftime("%m/%d/%Y %H:%M:%S")
    return text


def _parse_iso(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def flat_record(robj: RestObject, fields: list[str], record: dict[str, str], tz: ZoneInfo) -> dict[str, object]:
    """A query result row: the requested fields under their dotted names, as the query service answers them."""
    row: dict[str, object] = {}
    for name in fields:
        if name == "href":
            row["href"] = robj.href(record["RECORDNO"])
            continue
        xml_field = robj.fields[name]
        row[name] = to_json_value(robj.xml, xml_field, record.get(xml_field), tz)
    return row


def nested_record(robj: RestObject, record: dict[str, str], tz: ZoneInfo) -> dict[str, object]:
    """The whole object as ``GET /objects/{path}/{key}`` answers it: dotted names nested into objects."""
    out: dict[str, object] = {}
    for name, xml_field in robj.fields.items():
        node = out
        *parents, leaf = name.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            assert isinstance(child, dict)
            node = child
        node[leaf] = to_json_value(robj.xml, xml_field, record.get(xml_field), tz)
    out["href"] = robj.href(record["RECORDNO"])
    return out
