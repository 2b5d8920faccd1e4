from connector import objects, validation


def test_permission_table_is_exactly_what_the_issue_lists():
    rows = [(r.application, r.policy, r.rights, r.deprovisioning_rights) for r in objects.permission_table()]
    assert rows == [
        ("Company", "Departments", ("View",), ()),
        ("Company", "Locations", ("View",), ()),
        ("Company", "Employees", ("View",), ("Edit",)),
        ("Cash Management", "Credit Card Transactions", ("View",), ()),
        ("General Ledger", "Accounts", ("View",), ()),
        ("Accounts Payable", "Bills", ("View",), ()),
        ("Accounts Payable", "Adjustments", ("View",), ()),
        ("Time & Expenses", "Expense Summaries", ("View",), ()),
    ]


def test_deprovisioning_adds_employees_edit_only():
    table = {r.policy: r for r in objects.permission_table()}
    assert table["Employees"].rights_for(wants_deprovisioning=True) == ("View", "Edit")
    assert table["Employees"].rights_for(wants_deprovisioning=False) == ("View",)
    others = [row for policy, row in table.items() if policy != "Employees"]
    assert all(row.rights_for(wants_deprovisioning=True) == ("View",) for row in others)


def test_every_object_with_a_permission_is_in_the_table_and_probed_by_validation():
    table_objects = {name for row in objects.permission_table() for name in row.objects}
    probes = {check.key for check in validation.CHECKS}
    for definition in objects.OBJECTS:
        assert f"read_{definition.name.lower()}" in probes
        if definition.policy:
            assert definition.name in table_objects
        else:
            assert definition.name == "USERINFO"  # any active user may read it


def test_synced_objects_are_the_issue_list():
    assert [o.name for o in objects.OBJECTS] == [
        "DEPARTMENT", "LOCATION", "EMPLOYEE", "USERINFO", "CCTRANSACTION", "GLACCOUNT", "APBILL",
        "APADJUSTMENT", "EEXPENSES", "expensereportbatch",
    ]
    assert objects.object_for("APBILL").key_field == "RECORDNO"
    assert objects.object_for("ExpenseReportBatch").legacy_get_list


def test_permission_step_follows_the_branch():
    bills = objects.OBJECTS_BY_NAME["APBILL"]
    assert bills.permission_step(objects.ROLE_BASED) == objects.STEP_PERMISSIONS
    assert bills.permission_step(objects.USER_BASED) == objects.STEP_USER


def test_the_object_table_names_every_object_and_field_over_rest_too():
    """Sync and validation read either protocol from the one table: a new object or field without its REST name
    fails here, not in a customer's first REST sync."""
    for definition in objects.OBJECTS:
        naming = definition.rest
        assert naming.xml_name == definition.name.upper()
        assert naming.path.count("/") == 1 and naming.path == naming.path.lower()
        assert len(naming.rest_fields(definition.fields)) == len(definition.fields)
    assert objects.OBJECTS[0].rest.path == "company-config/department"
