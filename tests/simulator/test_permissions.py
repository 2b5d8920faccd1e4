"""Login succeeds while reads fail: PL04000005 per function when a permission is missing."""

from __future__ import annotations

import pytest

from simulator.demo import build_company, without
from simulator.services import CONNECT_PERMISSIONS, create_user
from tests.simulator.conftest import envelope, login_xml, post, text, tree

pytestmark = pytest.mark.django_db


def rbq(obj: str, controlid: str = "q") -> str:
    return (
        f'<function controlid="{controlid}"><readByQuery><object>{obj}</object><fields>RECORDNO</fields>'
        "<query></query><pagesize>1</pagesize></readByQuery></function>"
    )


def call(client, company_id, functions, **kwargs):
    return tree(post(client, envelope(functions, auth=login_xml(company=company_id), **kwargs)))


def test_missing_bills_permission_login_ok_reads_fail(client):
    build_company("NOBILLS", permissions=without(CONNECT_PERMISSIONS, "Bills"))
    doc = call(client, "NOBILLS", rbq("APBILL", "bills") + rbq("DEPARTMENT", "depts"))
    assert text(doc, "//authentication/status") == "success"
    bills, depts = doc.xpath("//result")
    assert text(bills, "status") == "failure"
    assert text(bills, "errormessage/error/errorno") == "PL04000005"
    assert text(bills, "errormessage/error/description") == ""
    assert text(bills, "errormessage/error/description2") == (
        "You do not have permission for API operation READ_BY_QUERY on objects of type apbill"
    )
    assert text(depts, "status") == "success"


@pytest.mark.parametrize(
    "function, operation",
    [
        ("<query><object>APBILL</object><select><field>RECORDNO</field></select></query>", "QUERY"),
        ("<read><object>APBILL</object><keys>1</keys><fields>*</fields></read>", "READ"),
        ("<readByName><object>APBILL</object><keys>BILL-0000001</keys></readByName>", "READ"),
    ],
)
def test_each_read_function_checks_the_permission(client, function, operation):
    build_company("NOBILLS2", permissions=without(CONNECT_PERMISSIONS, "Bills"))
    doc = call(client, "NOBILLS2", f'<function controlid="x">{function}</function>')
    assert text(doc, "//result/errormessage/error/description2") == (
        f"You do not have permission for API operation {operation} on objects of type apbill"
    )


def test_permission_on_unassigned_role(client):
    build_company("UNASSIGNED", assign_role=False)
    doc = call(client, "UNASSIGNED", rbq("EMPLOYEE"))
    assert text(doc, "//authentication/status") == "success"
    assert text(doc, "//result/errormessage/error/errorno") == "PL04000005"


def test_user_based_company_uses_user_permissions(client):
    demo = build_company("USERBASED", permission_model="user")
    doc = call(client, "USERBASED", rbq("APBILL"))
    assert text(doc, "//result/status") == "success"
    create_user(demo.company, "bare", password="bare-pass-1")  # noqa: S106 - fake credential, user without permissions
    doc = tree(
        post(
            client,
            envelope(rbq("APBILL"), auth=login_xml(company="USERBASED", user="bare", password="bare-pass-1")),  # noqa: S106 - fake credential in a test
        )
    )
    assert text(doc, "//result/errormessage/error/errorno") == "PL04000005"


def test_role_permissions_ignored_in_user_based_company(client):
    demo = build_company("SWITCHED")
    demo.company.permission_model = "user"
    demo.company.save()
    doc = call(client, "SWITCHED", rbq("APBILL"))
    assert text(doc, "//result/errormessage/error/errorno") == "PL04000005"


def test_expense_summaries_grants_eexpenses_and_get_list(client):
    build_company("EXP", permissions=[("Time & Expenses", "Expense Summaries", "List|View")])
    doc = call(
        client,
        "EXP",
        rbq("EEXPENSES") + '<function controlid="g"><get_list object="expensereportbatch"/></function>' + rbq("APBILL"),
    )
    assert [text(r, "status") for r in doc.xpath("//result")] == ["success", "success", "failure"]
    build_company("EXP2", permissions=[])
    doc = call(client, "EXP2", '<function controlid="g"><get_list object="expensereportbatch"/></function>')
    assert text(doc, "//result/errormessage/error/description2") == (
        "You do not have permission for API operation GET_LIST on objects of type expensereportbatch"
    )


def test_userinfo_readable_by_any_user(client):
    build_company("NOPERMS", permissions=[])
    doc = call(client, "NOPERMS", rbq("USERINFO"))
    assert text(doc, "//result/status") == "success"


def test_employee_update_needs_edit(client):
    build_company("NOEDIT", permissions=without(CONNECT_PERMISSIONS, "Employees", "Edit"))
    doc = call(
        client,
        "NOEDIT",
        '<function controlid="u"><update><EMPLOYEE><EMPLOYEEID>E00001</EMPLOYEEID>'
        "<STATUS>inactive</STATUS></EMPLOYEE></update></function>" + rbq("EMPLOYEE", "r"),
    )
    update, read = doc.xpath("//result")
    assert text(update, "errormessage/error/description2") == (
        "You do not have permission for API operation UPDATE on objects of type employee"
    )
    assert text(read, "status") == "success"


def test_userinfo_update_needs_full_admin(client):
    build_company("LIMITED", admin_privileges="Limited")
    doc = call(
        client,
        "LIMITED",
        '<function controlid="u"><update><USERINFO><LOGINID>ws_connect</LOGINID>'
        "<STATUS>inactive</STATUS></USERINFO></update></function>",
    )
    assert text(doc, "//result/errormessage/error/description2") == (
        "You do not have permission for API operation UPDATE on objects of type userinfo"
    )


def test_get_user_permissions_of_another_user_needs_admin(client):
    demo = build_company("PERMQ", admin_privileges="Off")
    create_user(demo.company, "other", password="other-pass-1")  # noqa: S106 - fake credential in a test
    doc = call(
        client,
        "PERMQ",
        '<function controlid="p"><getUserPermissions><userId>other</userId>'
        "</getUserPermissions></function>"
        '<function controlid="s"><getUserPermissions><userId>ws_connect</userId>'
        "</getUserPermissions></function>",
    )
    other, own = doc.xpath("//result")
    assert text(other, "errormessage/error/description2") == (
        "You do not have permission for API operation GET_USER_PERMISSIONS on objects of type userinfo"
    )
    assert text(own, "status") == "success"


def test_update_validates_values(client):
    build_company("VALID")
    doc = call(
        client,
        "VALID",
        '<function controlid="u"><update><EMPLOYEE><EMPLOYEEID>E00001</EMPLOYEEID>'
        "<TERMINATIONTYPE>fired</TERMINATIONTYPE></EMPLOYEE></update></function>"
        '<function controlid="v"><update><EMPLOYEE><RECORDNO>2</RECORDNO><STATUS>inactive'
        "</STATUS><ENDDATE>06/30/2024</ENDDATE><TERMINATIONTYPE>voluntary</TERMINATIONTYPE>"
        "</EMPLOYEE></update></function>"
        '<function controlid="w"><update><USERINFO><LOGINID>ghost</LOGINID>'
        "<STATUS>inactive</STATUS></USERINFO></update></function>",
    )
    bad, good, missing = doc.xpath("//result")
    assert text(bad, "errormessage/error/errorno") == "BL01001973"
    assert text(bad, "errormessage/error/description") == "Could not update record."
    assert text(bad, "errormessage/error/description2").startswith(
        "Invalid value 'fired' for field TERMINATIONTYPE. [Support ID: "
    )
    assert text(good, "status") == "success" and text(good, "data/employee/EMPLOYEEID") == "E00002"
    assert text(missing, "errormessage/error/description2").startswith(
        "No USERINFO record with LOGINID 'ghost' was found. [Support ID: "
    )
