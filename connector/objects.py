"""The single definition of every Intacct object we sync.

One row per object: what to read, which Intacct permission that needs, the wizard step that grants it,
and (``rest``) how the REST API names it and each of its fields. The wizard's permission table is generated
from this table and validation probes from it, so the two can never disagree. Adding an object is adding a
row (and its REST naming in connector/intacct_rest/names.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from connector import steps
from connector.intacct_rest.names import RestName, rest_name

# Wizard step numbers, from the one table in connector.steps.
STEP_SUBSCRIBE = steps.SUBSCRIBE.number
STEP_IP_FILTER = steps.IP_FILTER.number
STEP_SENDER = steps.SENDER.number
STEP_PERMISSIONS = steps.PERMISSIONS.number
STEP_USER = steps.USER.number
STEP_CONNECT = steps.CONNECT.number


def suggested_user_id(organisation_slug: str) -> str:
    """The Web Services user ID the wizard suggests for an organisation (pasted into Intacct, then into step 6).

    Intacct user IDs take letters, digits, "_" and "-"; ours stay short and tell whose integration it is.
    """
    tail = "".join(ch if ch.isalnum() else "_" for ch in organisation_slug.lower()).strip("_")[:20] or "app"
    return f"ws_connect_{tail}"

ROLE_BASED = "role"
USER_BASED = "user"


@dataclass(frozen=True)
class ObjectDefinition:
    """One synced object and the Intacct permission needed to read (and maybe write) it."""

    name: str                      # object name as the API spells it
    label: str                     # plain words for admins
    key_field: str
    fields: tuple[str, ...]
    application: str               # Intacct application (module) in the permission screens
    policy: str | None             # permission (policy) name; None = any active user may read
    read_right: str | None = "View"
    write_right: str | None = None  # only ever needed for deprovisioning
    legacy_get_list: bool = False   # only readable with the 2.1 get_list function
    # Sync: True = `query` with a (WHENMODIFIED, RECORDNO) keyset filter; False = read it whole each time.
    incremental: bool = True

    def permission_step(self, permission_model: str) -> int:
        """The wizard step where this object's permission is granted, for the company's model."""
        if self.policy is None or permission_model == USER_BASED:
            return STEP_USER
        return STEP_PERMISSIONS

    @property
    def recordno_field(self) -> str:
        """RECORDNO as this object's API spells it (the legacy functions use lower case)."""
        return "recordno" if self.legacy_get_list else "RECORDNO"

    @property
    def modified_field(self) -> str:
        return "whenmodified" if self.legacy_get_list else "WHENMODIFIED"

    @property
    def rest(self) -> RestName:
        """How this object is named over the REST API: its path and each field's REST name (the one table in
        connector.intacct_rest.names, keyed by ``name``)."""
        naming = rest_name(self.name)
        if naming is None:
            raise LookupError(f"{self.name} has no REST naming in connector.intacct_rest.names")
        return naming


OBJECTS: tuple[ObjectDefinition, ...] = (
    ObjectDefinition(
        name="DEPARTMENT", label="Departments", key_field="DEPARTMENTID",
        fields=("RECORDNO", "DEPARTMENTID", "TITLE", "PARENTID", "SUPERVISORID", "STATUS", "WHENMODIFIED"),
        application="Company", policy="Departments",
    ),
    ObjectDefinition(
        name="LOCATION", label="Locations", key_field="LOCATIONID",
        fields=("RECORDNO", "LOCATIONID", "NAME", "PARENTID", "SUPERVISORID", "STATUS", "WHENMODIFIED"),
        application="Company", policy="Locations",
    ),
    ObjectDefinition(
        name="EMPLOYEE", label="Employees", key_field="EMPLOYEEID",
        fields=("RECORDNO", "EMPLOYEEID", "PERSONALINFO.FIRSTNAME", "PERSONALINFO.LASTNAME",
                "PERSONALINFO.EMAIL1", "TITLE", "DEPARTMENTID", "LOCATIONID", "SUPERVISORID",
                "STARTDATE", "ENDDATE", "STATUS", "WHENMODIFIED"),
        application="Company", policy="Employees", write_right="Edit",
    ),
    ObjectDefinition(
        name="USERINFO", label="Users", key_field="LOGINID",
        fields=("RECORDNO", "LOGINID", "USERTYPE", "ADMIN", "STATUS", "LOGINDISABLED",
                "CONTACTINFO.FIRSTNAME", "CONTACTINFO.LASTNAME", "CONTACTINFO.EMAIL1", "WHENMODIFIED"),
        # Any active user may read USERINFO; writing (deprovisioning) needs admin privileges Full,
        # which is a field on the web services user (step 5), not a permission.
        application="Company", policy=None, read_right=None,
    ),
    ObjectDefinition(
        name="CCTRANSACTION", label="Credit card transactions", key_field="RECORDNO",
        fields=("RECORDNO", "RECORDID", "DESCRIPTION", "CURRENCY", "TOTALENTERED", "TOTALDUE", "STATE",
                "WHENCREATED", "WHENMODIFIED"),
        application="Cash Management", policy="Credit Card Transactions",
    ),
    ObjectDefinition(
        name="GLACCOUNT", label="General ledger accounts", key_field="ACCOUNTNO",
        fields=("RECORDNO", "ACCOUNTNO", "TITLE", "ACCOUNTTYPE", "NORMALBALANCE", "CATEGORY", "STATUS",
                "WHENMODIFIED"),
        application="General Ledger", policy="Accounts",
    ),
    ObjectDefinition(
        name="APBILL", label="Bills", key_field="RECORDNO",
        fields=("RECORDNO", "RECORDID", "VENDORID", "VENDORNAME", "DOCNUMBER", "STATE", "WHENCREATED",
                "WHENDUE", "TOTALENTERED", "TOTALDUE", "CURRENCY", "WHENMODIFIED"),
        application="Accounts Payable", policy="Bills",
    ),
    ObjectDefinition(
        name="APADJUSTMENT", label="Bill adjustments", key_field="RECORDNO",
        fields=("RECORDNO", "VENDORID", "VENDORNAME", "STATE", "WHENMODIFIED"),
        application="Accounts Payable", policy="Adjustments",
    ),
    ObjectDefinition(
        name="EEXPENSES", label="Expense reports", key_field="RECORDNO",
        fields=("RECORDNO", "RECORDID", "STATE", "DESCRIPTION", "TOTALENTERED", "TOTALDUE", "CURRENCY",
                "WHENCREATED", "WHENMODIFIED"),
        # The seed's permission list grants expense reports through Expense Summaries View.
        application="Time & Expenses", policy="Expense Summaries",
    ),
    ObjectDefinition(
        name="expensereportbatch", label="Expense summaries", key_field="recordno",
        fields=("recordno", "title", "batchdate", "status", "total", "whenmodified"),
        application="Time & Expenses", policy="Expense Summaries", legacy_get_list=True,
        incremental=False,
    ),
)

OBJECTS_BY_NAME = {definition.name: definition for definition in OBJECTS}


def object_for(name: str) -> ObjectDefinition | None:
    """The definition of an object, matching the API's name case-insensitively."""
    lowered = name.lower()
    return next((o for o in OBJECTS if o.name.lower() == lowered), None)


@dataclass(frozen=True)
class PermissionRow:
    """One line of the wizard's permission table: an application's permission and its rights."""

    application: str
    policy: str
    rights: tuple[str, ...]
    deprovisioning_rights: tuple[str, ...]
    objects: tuple[str, ...]

    def rights_for(self, *, wants_deprovisioning: bool) -> tuple[str, ...]:
        return self.rights + (self.deprovisioning_rights if wants_deprovisioning else ())


def permission_table() -> list[PermissionRow]:
    """The permissions the web services user needs, merged per (application, policy), in table order."""
    rows: dict[tuple[str, str], dict] = {}
    for definition in OBJECTS:
        if definition.policy is None:
            continue
        row = rows.setdefault((definition.application, definition.policy),
                              {"rights": [], "deprovisioning": [], "objects": []})
        if definition.read_right and definition.read_right not in row["rights"]:
            row["rights"].append(definition.read_right)
        if definition.write_right and definition.write_right not in row["deprovisioning"]:
            row["deprovisioning"].append(definition.write_right)
        row["objects"].append(definition.name)
    return [
        PermissionRow(application=application, policy=policy, rights=tuple(row["rights"]),
                      deprovisioning_rights=tuple(row["deprovisioning"]), objects=tuple(row["objects"]))
        for (application, policy), row in rows.items()
    ]
