"""How each object we sync is named over REST: its path and, per XML field we read, its REST field.

Keyed by the XML object name of ``connector/objects.py`` so sync and validation can read either protocol from
one object table. Paths are from Sage's REST reference; field names we could not confirm there are listed in
docs/protocol-choices.md ("REST API"), and the simulator names them the same way in its own table.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RestName:
    """One object over REST: ``path`` for the query service, ``fields`` maps XML field -> REST field."""

    xml_name: str
    path: str
    fields: dict[str, str]
    key_field: str = "key"
    modified_field: str = "audit.modifiedDateTime"
    reverse: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reverse", {rest: xml for xml, rest in self.fields.items()})

    def rest_fields(self, xml_fields: tuple[str, ...] | list[str]) -> list[str]:
        """The REST names of XML fields (a field without a REST name raises KeyError: the table is incomplete)."""
        return [self.fields[f.upper()] for f in xml_fields]


_COMMON = {"RECORDNO": "key", "WHENMODIFIED": "audit.modifiedDateTime"}

REST_NAMES: dict[str, RestName] = {
    n.xml_name: n
    for n in (
        RestName("DEPARTMENT", "company-config/department", {
            **_COMMON, "DEPARTMENTID": "id", "TITLE": "name", "PARENTID": "parent.id",
            "SUPERVISORID": "supervisor.id", "STATUS": "status"}),
        RestName("LOCATION", "company-config/location", {
            **_COMMON, "LOCATIONID": "id", "NAME": "name", "PARENTID": "parent.id",
            "SUPERVISORID": "supervisor.id", "STATUS": "status"}),
        RestName("EMPLOYEE", "company-config/employee", {
            **_COMMON, "EMPLOYEEID": "id", "PERSONALINFO.FIRSTNAME": "primaryContact.firstName",
            "PERSONALINFO.LASTNAME": "primaryContact.lastName", "PERSONALINFO.EMAIL1": "primaryContact.email1",
            "TITLE": "jobTitle", "DEPARTMENTID": "department.id", "LOCATIONID": "location.id",
            "SUPERVISORID": "manager.id", "STARTDATE": "startDate", "ENDDATE": "endDate", "STATUS": "status"}),
        RestName("USERINFO", "company-config/user", {
            **_COMMON, "LOGINID": "id", "USERTYPE": "userType", "ADMIN": "adminPrivileges", "STATUS": "status",
            "LOGINDISABLED": "isLoginDisabled", "CONTACTINFO.FIRSTNAME": "contact.firstName",
            "CONTACTINFO.LASTNAME": "contact.lastName", "CONTACTINFO.EMAIL1": "contact.email1"}),
        RestName("CCTRANSACTION", "cash-management/credit-card-txn", {
            **_COMMON, "RECORDID": "id", "DESCRIPTION": "description", "CURRENCY": "currency.txnCurrency",
            "TOTALENTERED": "totalEntered", "TOTALDUE": "totalDue", "STATE": "state", "WHENCREATED": "txnDate"}),
        RestName("GLACCOUNT", "general-ledger/account", {
            **_COMMON, "ACCOUNTNO": "id", "TITLE": "name", "ACCOUNTTYPE": "accountType",
            "NORMALBALANCE": "normalBalance", "CATEGORY": "category", "STATUS": "status"}),
        RestName("APBILL", "accounts-payable/bill", {
            **_COMMON, "RECORDID": "id", "VENDORID": "vendor.id", "VENDORNAME": "vendor.name",
            "DOCNUMBER": "referenceNumber", "STATE": "state", "WHENCREATED": "createdDate", "WHENDUE": "dueDate",
            "TOTALENTERED": "totalTxnAmount", "TOTALDUE": "totalTxnAmountDue", "CURRENCY": "currency.txnCurrency"}),
        RestName("APADJUSTMENT", "accounts-payable/adjustment", {
            **_COMMON, "RECORDID": "id", "VENDORID": "vendor.id", "VENDORNAME": "vendor.name", "STATE": "state"}),
        RestName("EEXPENSES", "expenses/employee-expense", {
            **_COMMON, "RECORDID": "id", "STATE": "state", "DESCRIPTION": "description",
            "TOTALENTERED": "reimbursement.totalEntered", "TOTALDUE": "reimbursement.totalDue",
            "CURRENCY": "reimbursement.reimbursementCurrency", "WHENCREATED": "createdDate"}),
        RestName("EXPENSEREPORTBATCH", "expenses/expense-summary", {
            **_COMMON, "TITLE": "name", "BATCHDATE": "glPostingDate", "STATUS": "status", "TOTAL": "totalAmount"}),
    )
}


def rest_name(xml_name: str) -> RestName | None:
    """The REST naming of an object by its XML name (case-insensitive), or None."""
    return REST_NAMES.get(xml_name.upper())
