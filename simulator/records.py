"""Synthetic Intacct records, computed lazily: record *i* of an object is a pure function of (seed, size, i).

A company with a million APBILL rows costs nothing until a page is read. WHENMODIFIED of generated
records never decreases with RECORDNO and several records share each second, so keyset paging on
(WHENMODIFIED, RECORDNO) can be exercised. Changes live in ``RecordOverride`` rows and move
WHENMODIFIED to the moment of the change.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from simulator.models import Entity, RecordOverride, SimCompany, SimUser

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
# Generated history starts 2021-01-01 local time and spans about 3.5 years, always before "now".
HISTORY_START = 1_609_459_200
HISTORY_SPAN = 110_000_000


def mix(x: int) -> int:
    """A 64-bit integer hash (splitmix64 finaliser): cheap, deterministic pseudo-randomness."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def text_seed(text: str) -> int:
    """A stable integer from a string (Python's hash() is salted per process)."""
    value = 1469598103934665603
    for ch in text.encode():
        value = ((value ^ ch) * 1099511628211) & M64
    return value


# --- Time formatting -------------------------------------------------------------------------
@lru_cache(maxsize=20000)
def fmt_date_from_day(day: int) -> str:
    """MM/DD/YYYY for a day number counted from 1970-01-01."""
    d = dt.date.fromordinal(day + EPOCH_ORDINAL)
    return f"{d.month:02d}/{d.day:02d}/{d.year:04d}"


def fmt_ts(secs: int) -> str:
    """MM/DD/YYYY HH:MM:SS for local seconds since 1970-01-01 00:00:00."""
    day, rem = divmod(secs, 86400)
    return f"{fmt_date_from_day(day)} {rem // 3600:02d}:{rem // 60 % 60:02d}:{rem % 60:02d}"


def fmt_date(secs: int) -> str:
    return fmt_date_from_day(secs // 86400)


_TS_RE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$")
_ISO_RE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?\s*$")


def parse_ts(value: str) -> int | None:
    """Local seconds for 'MM/DD/YYYY[ HH:MM[:SS]]' (or ISO 'YYYY-MM-DD[ HH:MM:SS]'); None if not a time."""
    match = _TS_RE.match(value)
    if match:
        month, day, year, hh, mm, ss = match.groups()
    else:
        match = _ISO_RE.match(value)
        if not match:
            return None
        year, month, day, hh, mm, ss = match.groups()
    try:
        days = dt.date(int(year), int(month), int(day)).toordinal() - EPOCH_ORDINAL
    except ValueError:
        return None
    return days * 86400 + int(hh or 0) * 3600 + int(mm or 0) * 60 + int(ss or 0)


def local_secs(moment: dt.datetime, tz: ZoneInfo) -> int:
    """An aware datetime as local seconds in the company's time zone."""
    local = moment.astimezone(tz).replace(tzinfo=None)
    return (local.toordinal() - EPOCH_ORDINAL) * 86400 + local.hour * 3600 + local.minute * 60 + local.second


# --- Name pools ------------------------------------------------------------------------------
FIRST_NAMES = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Carlos",
    "Karen",
    "Wei",
    "Lisa",
    "Daniel",
    "Nancy",
    "Aisha",
    "Betty",
    "Mark",
    "Sandra",
    "Ravi",
    "Ashley",
    "Paul",
    "Kimberly",
    "Kenji",
    "Emily",
    "Andrew",
    "Donna",
    "Zoë",
    "Michelle",
    "Joshua",
    "Chloé",
)
LAST_NAMES = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Nguyen",
    "O'Brien",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Patel",
    "Müller",
    "Kowalski",
)
DEPARTMENT_NAMES = (
    "Finance",
    "Engineering",
    "Sales",
    "Marketing",
    "Operations",
    "Human Resources",
    "Legal",
    "Customer Success",
    "Research & Development",
    "Procurement",
    "IT",
    "Facilities",
    "Product",
    "Support",
    "Quality Assurance",
)
CITIES = (
    ("San Jose", "CA", "United States"),
    ("Austin", "TX", "United States"),
    ("New York", "NY", "United States"),
    ("Chicago", "IL", "United States"),
    ("Toronto", "ON", "Canada"),
    ("London", "", "United Kingdom"),
    ("Dublin", "", "Ireland"),
    ("Denver", "CO", "United States"),
    ("Seattle", "WA", "United States"),
    ("Atlanta", "GA", "United States"),
    ("Boston", "MA", "United States"),
    ("Sydney", "NSW", "Australia"),
)
VENDOR_NAMES = (
    "Acme Supplies",
    "Globex Corporation",
    "Initech",
    "Umbrella Logistics",
    "Stark Industries",
    "Wayne Enterprises",
    "Smith & Sons Hardware",
    "Blue Sky Travel",
    "Northwind Traders",
    "Contoso Ltd",
    "Fabrikam Inc",
    "Tailspin Toys",
    "Wide World Importers",
    "Litware Inc",
    "Proseware",
    "Adventure Works",
    "Alpine Ski House",
    "Coho Winery",
    "Fourth Coffee",
    "Graphic Design Institute",
    "Humongous Insurance",
    "Lucerne Publishing",
    "Margie's Travel",
    "Consolidated Messenger",
    "Trey Research",
    "Wingtip Toys",
    "Woodgrove Bank",
    "City Power & Light",
    "Bellows College",
    "Datum Corporation",
)
GL_ACCOUNTS = (
    ("Cash", "balancesheet", "debit", "Cash and Cash Equivalents"),
    ("Accounts Receivable", "balancesheet", "debit", "Accounts Receivable"),
    ("Prepaid Expenses", "balancesheet", "debit", "Other Current Assets"),
    ("Fixed Assets", "balancesheet", "debit", "Fixed Assets"),
    ("Accounts Payable", "balancesheet", "credit", "Accounts Payable"),
    ("Accrued Liabilities", "balancesheet", "credit", "Other Current Liabilities"),
    ("Credit Card Payable", "balancesheet", "credit", "Other Current Liabilities"),
    ("Retained Earnings", "balancesheet", "credit", "Retained Earnings"),
    ("Revenue", "incomestatement", "credit", "Revenue"),
    ("Cost of Goods Sold", "incomestatement", "debit", "Cost of Sales"),
    ("Salaries & Wages", "incomestatement", "debit", "Payroll Expense"),
    ("Rent", "incomestatement", "debit", "Occupancy Expense"),
    ("Travel", "incomestatement", "debit", "Travel Expense"),
    ("Meals & Entertainment", "incomestatement", "debit", "Travel Expense"),
    ("Software Subscriptions", "incomestatement", "debit", "Other Operating Expense"),
    ("Office Supplies", "incomestatement", "debit", "Other Operating Expense"),
)
JOB_TITLES = (
    "Accountant",
    "Engineer",
    "Sales Representative",
    "Analyst",
    "Manager",
    "Director",
    "Controller",
    "Designer",
    "Support Specialist",
    "Recruiter",
    "Buyer",
    "Administrator",
)
BILL_DESCRIPTIONS = (
    "Monthly services",
    "Office supplies",
    "Consulting fees",
    "Software licence renewal",
    "Hardware purchase",
    "Travel booking",
    "Freight <express>",
    "Maintenance contract",
    "Marketing campaign",
    "Utilities",
)
BILL_STATES = (
    ("Posted", "A"),
    ("Posted", "A"),
    ("Paid", "A"),
    ("Paid", "A"),
    ("Partially Paid", "A"),
    ("Draft", "D"),
    ("Submitted", "S"),
    ("Reversed", "R"),
)
EXPENSE_STATES = (
    "Draft",
    "Submitted",
    "Approved",
    "Approved",
    "Paid",
    "Paid",
    "Partially Approved",
    "Declined",
)
TERMS = ("Net 30", "Net 15", "Net 45", "Due on Receipt", "Net 60")
TERM_DAYS = {"Net 30": 30, "Net 15": 15, "Net 45": 45, "Due on Receipt": 0, "Net 60": 60}


# --- Object definitions ----------------------------------------------------------------------
@dataclass
class Gen:
    """What a generator needs for one company and object: its seed, size and time layout."""

    obj: str
    seed: int
    size: int
    sizes: dict[str, int]
    company_seed: int
    ties: int
    base: int = 0
    gap: int = 1

    def __post_init__(self) -> None:
        groups = max(1, -(-self.size // self.ties))
        self.gap = max(1, HISTORY_SPAN // groups)
        self.base = HISTORY_START + self.seed % 3600

    def t(self, i: int) -> int:
        """WHENMODIFIED (local seconds) of generated record i: non-decreasing, ``ties`` per second."""
        return self.base + ((i - 1) // self.ties) * self.gap

    def first_ge(self, secs: int) -> int:
        """Smallest i with t(i) >= secs (size + 1 when none)."""
        if secs <= self.base:
            return 1
        group = -(-(secs - self.base) // self.gap)
        return min(self.size + 1, group * self.ties + 1)

    def first_gt(self, secs: int) -> int:
        """Smallest i with t(i) > secs (size + 1 when none)."""
        return self.first_ge(secs + 1)

    def r(self, i: int) -> int:
        return mix((self.seed + i * GOLDEN) & M64)


# Types of standard fields shared by several objects.
STANDARD_TYPES = {
    "CREATEDBY": "int",
    "MODIFIEDBY": "int",
    "MEGAENTITYKEY": "int",
    "CONTACTKEY": "int",
    "DUE_IN_DAYS": "int",
    "TOTALSELECTED": "dec",
    "TRX_TOTALENTERED": "dec",
    "TRX_TOTALPAID": "dec",
    "TRX_TOTALDUE": "dec",
    "TRX_TOTALSELECTED": "dec",
    "BIRTHDATE": "date",
    "RECPAYMENTDATE": "date",
    "AUWHENCREATED": "ts",
}
# readByQuery accepts these single-letter codes for USERINFO.USERTYPE (developer docs, Users object).
USERTYPE_CODES = {
    "B": "business user",
    "E": "employee user",
    "R": "view only user",
    "W": "writeup user",
    "D": "dashboard user",
    "P": "project manager user",
    "C": "construction manager user",
    "A": "payment approver",
    "T": "platform user",
    "S": "CRM user",
    "H": "warehouse user",
}
# ... and T/F for an active/inactive STATUS.
STATUS_CODES = {"T": "active", "F": "inactive"}


@dataclass(kw_only=True)  # rows are written field by name: eleven rows of nine values read badly by position
class ObjectDef:
    """One Intacct object the simulator serves: fields (with types), ID field, permission, generator."""

    name: str
    fields: tuple[str, ...]
    types: dict[str, str]
    id_field: str
    application: str
    policy: str
    default_size: int
    ties: int
    generate: Callable[[Gen, int], dict[str, str]]
    write_right: str | None = None
    generic: bool = True
    id_number: Callable[[int], int] = staticmethod(lambda n: n)  # type: ignore[assignment]
    # The rest of the object's standard field set, computed only when a request names one of them.
    extend: Callable[[Gen, dict[str, str]], dict[str, str]] | None = None
    # Related-object paths the query function accepts but ``*`` does not expand to.
    query_only: frozenset[str] = frozenset()
    # Single-letter codes a readByQuery condition may use for a field's values (USERTYPE = 'B').
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    custom_fields: frozenset[str] = frozenset()
    labels: dict[str, str] = field(default_factory=dict)
    field_set: frozenset[str] = field(init=False)
    extra_fields: frozenset[str] = field(init=False)
    star_fields: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        core = tuple(self.fields)
        extra: tuple[str, ...] = ()
        if self.extend is not None:
            sample = self.generate(Gen("X", 1, 1, {}, 1, 1), 1)
            extra = tuple(k for k in self.extend(Gen("X", 1, 1, {}, 1, 1), sample) if k not in sample)
        self.fields = core + extra
        for name, kind in STANDARD_TYPES.items():
            if name in self.fields:
                self.types.setdefault(name, kind)
        self.field_set = frozenset(self.fields)
        self.extra_fields = frozenset(extra)
        self.star_fields = tuple(f for f in self.fields if f not in self.query_only)
        if "STATUS" in self.field_set:
            self.codes.setdefault("STATUS", STATUS_CODES)

    def complete(self, gen: Gen, record: dict[str, str]) -> dict[str, str]:
        """Fill in the fields outside the generated core (kept when the record already has them)."""
        if self.extend is not None:
            for key, value in self.extend(gen, record).items():
                record.setdefault(key, value)
        return record

    def needs_completion(self, names: Iterable[str]) -> bool:
        return not self.extra_fields.isdisjoint(names)

    def type_of(self, name: str) -> str:
        return self.types.get(name, "str")

    def candidate_recordno(self, key: str) -> int | None:
        """The generated record whose ID could be ``key`` (its trailing number); the caller compares IDs."""
        digits = re.search(r"(\d+)$", key)
        if not digits:
            return None
        i = self.id_number(int(digits.group(1)))
        return i if i >= 1 else None


def person(company_seed: int, j: int) -> tuple[str, str]:
    """First and last name of generated person j of a company (shared by employees and users)."""
    r = mix((company_seed ^ 0xABCDEF) + j * GOLDEN & M64)
    return FIRST_NAMES[r % len(FIRST_NAMES)], LAST_NAMES[(r >> 16) % len(LAST_NAMES)]


def _money(cents: int) -> str:
    """An amount as real records carry it: no decimals when whole ("5900"), else two ("412.50")."""
    if cents < 0:
        return "-" + _money(-cents)
    whole, part = divmod(cents, 100)
    return str(whole) if part == 0 else f"{whole}.{part:02d}"


def _employee_ref(g: Gen, r: int) -> tuple[str, str]:
    count = g.sizes.get("EMPLOYEE", 0)
    if not count:
        return "", ""
    j = r % count + 1
    first, last = person(g.company_seed, j)
    return f"E{j:05d}", f"{first} {last}"


def gen_department(g: Gen, i: int) -> dict[str, str]:
    r = g.r(i)
    base = DEPARTMENT_NAMES[(i - 1) % len(DEPARTMENT_NAMES)]
    round_ = (i - 1) // len(DEPARTMENT_NAMES)
    title = base if round_ == 0 else f"{base} {round_ + 1}"
    parent = (r % min(5, i - 1)) + 1 if i > 5 else 0
    sup_id, sup_name = _employee_ref(g, r >> 8)
    wm = g.t(i)
    return {
        "RECORDNO": str(i),
        "DEPARTMENTID": f"D{i:03d}",
        "TITLE": title,
        "PARENTKEY": str(parent) if parent else "",
        "PARENTID": f"D{parent:03d}" if parent else "",
        "SUPERVISORID": sup_id,
        "SUPERVISORNAME": sup_name,
        "STATUS": "inactive" if (r >> 20) % 20 == 0 else "active",
        "CUSTTITLE": title,
        "WHENCREATED": fmt_ts(wm - (r >> 24) % 864000),
        "WHENMODIFIED": fmt_ts(wm),
        "CREATEDBY": "1",
        "MODIFIEDBY": "1",
    }


def gen_location(g: Gen, i: int) -> dict[str, str]:
    r = g.r(i)
    city, state, country = CITIES[(i - 1) % len(CITIES)]
    round_ = (i - 1) // len(CITIES)
    name = city if round_ == 0 else f"{city} {round_ + 1}"
    sup_id, sup_name = _employee_ref(g, r >> 8)
    wm = g.t(i)
    start = wm - 86400 * (400 + r % 2000)
    return {
        "RECORDNO": str(i),
        "LOCATIONID": f"L{i:03d}",
        "NAME": name,
        "PARENTID": "L001" if i > 1 else "",
        "PARENTKEY": "1" if i > 1 else "",
        "SUPERVISORID": sup_id,
        "SUPERVISORNAME": sup_name,
        "CONTACTINFO.CONTACTNAME": f"{name} Office",
        "CONTACTINFO.PRINTAS": f"{name} Office",
        "CONTACTINFO.EMAIL1": f"office{i}@example.com",
        "CONTACTINFO.PHONE1": f"555-01{i % 100:02d}",
        "CONTACTINFO.MAILADDRESS.CITY": city,
        "CONTACTINFO.MAILADDRESS.STATE": state,
        "CONTACTINFO.MAILADDRESS.COUNTRY": country,
        "SHIPTO.CONTACTNAME": f"{name} Receiving",
        "STARTDATE": fmt_date(start),
        "ENDDATE": "",
        "STATUS": "active",
        "CURRENCY": "CAD"
        if country == "Canada"
        else "GBP"
        if country == "United Kingdom"
        else "EUR"
        if country == "Ireland"
        else "AUD"
        if country == "Australia"
        else "USD",
        "WHENCREATED": fmt_ts(start),
        "WHENMODIFIED": fmt_ts(wm),
    }


def gen_employee(g: Gen, i: int) -> dict[str, str]:
    r = g.r(i)
    first, last = person(g.company_seed, i)
    wm = g.t(i)
    start = wm - 86400 * (30 + r % 1500)
    inactive = (r >> 12) % 12 == 0
    dept_count = g.sizes.get("DEPARTMENT", 0)
    loc_count = g.sizes.get("LOCATION", 0)
    sup = (r >> 20) % (i - 1) + 1 if i > 1 else 0
    return {
        "RECORDNO": str(i),
        "EMPLOYEEID": f"E{i:05d}",
        "PERSONALINFO.CONTACTNAME": f"{last}, {first}",
        "PERSONALINFO.FIRSTNAME": first,
        "PERSONALINFO.LASTNAME": last,
        "PERSONALINFO.EMAIL1": f"{first.lower()}.{last.lower().replace(chr(39), '')}{i}@example.com",
        "TITLE": JOB_TITLES[(r >> 28) % len(JOB_TITLES)],
        "DEPARTMENTID": f"D{(r >> 32) % dept_count + 1:03d}" if dept_count else "",
        "LOCATIONID": f"L{(r >> 40) % loc_count + 1:03d}" if loc_count else "",
        "SUPERVISORID": f"E{sup:05d}" if sup else "",
        "STARTDATE": fmt_date(start),
        "ENDDATE": fmt_date(wm - 86400 * 3) if inactive else "",
        "STATUS": "inactive" if inactive else "active",
        "EMPLOYEETYPE": "Contractor" if (r >> 48) % 8 == 0 else "Full Time",
        "TERMINATIONTYPE": "voluntary" if inactive else "",
        "CURRENCY": "USD",
        "WHENCREATED": fmt_ts(start),
        "WHENMODIFIED": fmt_ts(wm),
    }


def gen_userinfo(g: Gen, i: int) -> dict[str, str]:
    r = g.r(i)
    first, last = person(g.company_seed, i)
    wm = g.t(i)
    login = f"{first[0].lower()}{last.lower().replace(chr(39), '')}{i}"
    status = "inactive" if r % 10 == 0 else "active"
    return {
        "RECORDNO": str(i),
        "LOGINID": login,
        "DESCRIPTION": f"{first} {last}",
        "USERTYPE": "employee user" if (r >> 8) % 4 == 0 else "business user",
        "ADMIN": "Full" if i == 1 else "Off",
        "STATUS": status,
        "LOGINDISABLED": "false",
        "SSO_ENABLED": "false",
        "SSO_FEDERATED_ID": "",
        "CONTACTINFO.CONTACTNAME": f"{last}, {first}",
        "CONTACTINFO.FIRSTNAME": first,
        "CONTACTINFO.LASTNAME": last,
        "CONTACTINFO.EMAIL1": f"{login}@example.com",
        "WHENCREATED": fmt_ts(wm - (r >> 16) % 8640000),
        "WHENMODIFIED": fmt_ts(wm),
    }


def gen_cctransaction(g: Gen, i: int) -> dict[str, str]:
    r = g.r(i)
    wm = g.t(i)
    cents = 500 + r % 250000
    paid = (r >> 20) % 3 != 0
    return {
        "RECORDNO": str(i),
        "RECORDID": f"CC-{i:07d}",
        "FINANCIALENTITY": f"CARD-{(r >> 8) % 6 + 1:02d}",
        "DESCRIPTION": BILL_DESCRIPTIONS[(r >> 12) % len(BILL_DESCRIPTIONS)],
        "PAYEE": VENDOR_NAMES[(r >> 24) % len(VENDOR_NAMES)],
        "CURRENCY": "USD",
        "TOTALENTERED": _money(cents),
        "TOTALPAID": _money(cents if paid else 0),
        "TOTALDUE": _money(0 if paid else cents),
        "STATE": "Paid" if paid else "Posted",
        "WHENCREATED": fmt_date(wm - 86400 * ((r >> 32) % 10)),
        "WHENPAID": fmt_date(wm) if paid else "",
        "WHENMODIFIED": fmt_ts(wm),
    }


def gen_glaccount(g: Gen, i: int) -> dict[str, str]:
    r = g.r(i)
    title, acct_type, normal, category = GL_ACCOUNTS[(i - 1) % len(GL_ACCOUNTS)]
    round_ = (i - 1) // len(GL_ACCOUNTS)
    wm = g.t(i)
    return {
        "RECORDNO": str(i),
        "ACCOUNTNO": str(1000 + 10 * i),
        "TITLE": title if round_ == 0 else f"{title} {round_ + 1}",
        "ACCOUNTTYPE": acct_type,
        "NORMALBALANCE": normal,
        "CLOSINGTYPE": "closed to account" if acct_type == "incomestatement" else "non-closing account",
        "CATEGORY": category,
        "STATUS": "inactive" if r % 25 == 0 else "active",
        "REQUIREDEPT": "true" if acct_type == "incomestatement" else "false",
        "REQUIRELOC": "true" if (r >> 8) % 3 == 0 else "false",
        "WHENCREATED": fmt_ts(wm - (r >> 16) % 8640000),
        "WHENMODIFIED": fmt_ts(wm),
    }


def gen_apbill(g: Gen, i: int) -> dict[str, str]:
    r = g.r(i)
    r2 = mix(r)
    wm = g.t(i)
    created = wm - 86400 * (r % 20)
    vendor = (r >> 8) % 200 + 1
    state, raw = BILL_STATES[(r >> 16) % len(BILL_STATES)]
    cents = 1000 + r2 % 5_000_000
    paid = cents if state == "Paid" else cents // 2 if state == "Partially Paid" else 0
    term = TERMS[(r2 >> 24) % len(TERMS)]
    loc_count = g.sizes.get("LOCATION", 0)
    created_date = fmt_date(created)
    return {
        "RECORDNO": str(i),
        "RECORDID": f"BILL-{i:07d}",
        "VENDORID": f"V{vendor:04d}",
        "VENDORNAME": VENDOR_NAMES[vendor % len(VENDOR_NAMES)],
        "DOCNUMBER": f"INV-{r2 % 1_000_000:06d}",
        "DESCRIPTION": BILL_DESCRIPTIONS[(r >> 24) % len(BILL_DESCRIPTIONS)],
        "STATE": state,
        "RAWSTATE": raw,
        "WHENCREATED": created_date,
        "WHENPOSTED": created_date if raw != "D" else "",
        "WHENDUE": fmt_date(created + 86400 * TERM_DAYS[term]),
        "WHENPAID": fmt_date(wm) if paid else "",
        "TERMNAME": term,
        "TOTALENTERED": _money(cents),
        "TOTALPAID": _money(paid),
        "TOTALDUE": _money(cents - paid),
        "CURRENCY": "USD",
        "BASECURR": "USD",
        "PRBATCH": f"Bills: {created_date} Batch",
        "AUWHENCREATED": fmt_ts(created + (r2 >> 40) % 86400),
        "WHENMODIFIED": fmt_ts(wm),
        "CREATEDBY": str((r >> 32) % 10 + 1),
        "MODIFIEDBY": str((r >> 36) % 10 + 1),
        "MEGAENTITYID": f"L{(r >> 44) % loc_count + 1:03d}" if loc_count else "",
    }


def gen_apadjustment(g: Gen, i: int) -> dict[str, str]:
    r = g.r(i)
    wm = g.t(i)
    vendor = (r >> 8) % 200 + 1
    cents = 500 + (r >> 16) % 200_000
    state = "Posted" if r % 5 else "Draft"
    return {
        "RECORDNO": str(i),
        "RECORDID": f"ADJ-{i:06d}",
        "VENDORID": f"V{vendor:04d}",
        "VENDORNAME": VENDOR_NAMES[vendor % len(VENDOR_NAMES)],
        "DOCNUMBER": f"CM-{(r >> 30) % 100000:05d}",
        "DESCRIPTION": "Vendor credit",
        "STATE": state,
        "WHENCREATED": fmt_date(wm - 86400 * (r % 7)),
        "WHENPOSTED": fmt_date(wm) if state == "Posted" else "",
        "TOTALENTERED": _money(-cents),
        "TOTALDUE": _money(-cents if state == "Draft" else 0),
        "CURRENCY": "USD",
        "WHENMODIFIED": fmt_ts(wm),
    }


def gen_eexpenses(g: Gen, i: int) -> dict[str, str]:
    r = g.r(i)
    wm = g.t(i)
    state = EXPENSE_STATES[r % len(EXPENSE_STATES)]
    cents = 1500 + (r >> 8) % 400_000
    emp_id, emp_name = _employee_ref(g, r >> 24)
    batches = max(1, g.sizes.get("EXPENSEREPORTBATCH", 1))
    batch = (i - 1) * batches // max(1, g.size) + 1
    return {
        "RECORDNO": str(i),
        "RECORDID": f"EXP-{i:06d}",
        "EMPLOYEEID": emp_id,
        "EMPLOYEENAME": emp_name,
        "STATE": state,
        "WHENCREATED": fmt_date(wm - 86400 * ((r >> 40) % 14)),
        "WHENPOSTED": fmt_date(wm) if state in ("Approved", "Paid") else "",
        "TOTALENTERED": _money(cents),
        "TOTALDUE": _money(0 if state == "Paid" else cents),
        "DESCRIPTION": f"Expenses {fmt_date(wm)}",
        "CURRENCY": "USD",
        "BASECURR": "USD",
        "MEMO": "Client visit" if (r >> 50) % 2 else "Conference",
        "PRBATCHKEY": str(batch),
        "PRBATCH": f"Expense summary {batch}",
        "WHENMODIFIED": fmt_ts(wm),
    }


def gen_expensereportbatch(g: Gen, i: int) -> dict[str, str]:
    r = g.r(i)
    wm = g.t(i)
    return {
        "RECORDNO": str(i),
        "TITLE": f"Expense summary {i}",
        "BATCHDATE": fmt_date(wm),
        "STATUS": "Closed" if r % 3 else "Open",
        "TOTAL": _money(10_000 + (r >> 8) % 2_000_000),
        "WHENMODIFIED": fmt_ts(wm),
    }


# --- The rest of each object's standard field set (lazy: only when a request names a field) ----
RECORD_URL_BASE = "https://www.intacct.com/ia/acct/ur.phtml?.r="
GENDERS = ("male", "female", "")


def location_name(n: int) -> str:
    """NAME of generated location n (as gen_location builds it)."""
    city = CITIES[(n - 1) % len(CITIES)][0]
    round_ = (n - 1) // len(CITIES)
    return city if round_ == 0 else f"{city} {round_ + 1}"


def _audit(g: Gen, i: int, r: int, record: dict[str, str]) -> dict[str, str]:
    """RECORD_URL and the audit fields every object carries."""
    users = max(1, g.sizes.get("USERINFO", 1))
    return {
        "RECORD_URL": f"{RECORD_URL_BASE}{mix(g.seed ^ (i * 0x9E37)):016x}",
        "CREATEDBY": str(r % users + 1),
        "MODIFIEDBY": str((r >> 5) % users + 1),
        "WHENCREATED": record.get("WHENMODIFIED", ""),
    }


def _entity(g: Gen, r: int, top_level: bool) -> dict[str, str]:
    """MEGAENTITY*: empty for records owned by the top level, else one of the company's locations."""
    count = g.sizes.get("LOCATION", 0)
    if top_level or not count:
        return {"MEGAENTITYKEY": "", "MEGAENTITYID": "", "MEGAENTITYNAME": ""}
    n = r % count + 1
    return {"MEGAENTITYKEY": str(n), "MEGAENTITYID": f"L{n:03d}", "MEGAENTITYNAME": location_name(n)}


def _r(g: Gen, record: dict[str, str]) -> tuple[int, int]:
    i = int(record["RECORDNO"])
    return i, mix(g.r(i) ^ 0x5BD1E995)


def ext_department(g: Gen, record: dict[str, str]) -> dict[str, str]:
    i, r = _r(g, record)
    return {
        **_audit(g, i, r, record),
        **_entity(g, r, True),
        "COST_CENTER_CODE": f"CC-{r % 900 + 100}",
        "BUDGET_OWNER": record.get("SUPERVISORNAME", ""),
    }


def ext_location(g: Gen, record: dict[str, str]) -> dict[str, str]:
    i, r = _r(g, record)
    return {
        **_audit(g, i, r, record),
        **_entity(g, r, True),
        "ENTITY": "",
        "REPORTINGTITLE": record.get("NAME", ""),
        "REGION": ("West", "Central", "East", "International")[r % 4],
        "SITE_CODE": f"S{r % 9000 + 1000}",
    }


EMPLOYEE_CONTACT = (
    "CONTACTNAME PREFIX FIRSTNAME INITIAL LASTNAME COMPANYNAME PRINTAS PHONE1 PHONE2 CELLPHONE PAGER FAX "
    "EMAIL1 EMAIL2 URL1 URL2 MAILADDRESS.ADDRESS1 MAILADDRESS.ADDRESS2 MAILADDRESS.CITY MAILADDRESS.STATE "
    "MAILADDRESS.ZIP MAILADDRESS.COUNTRY MAILADDRESS.COUNTRYCODE"
).split()


def ext_employee(g: Gen, record: dict[str, str]) -> dict[str, str]:
    i, r = _r(g, record)
    city, state, country = CITIES[r % len(CITIES)]
    contact = {
        "CONTACTNAME": record.get("PERSONALINFO.CONTACTNAME", ""),
        "PREFIX": "",
        "FIRSTNAME": record.get("PERSONALINFO.FIRSTNAME", ""),
        "INITIAL": "",
        "LASTNAME": record.get("PERSONALINFO.LASTNAME", ""),
        "COMPANYNAME": "",
        "PRINTAS": f"{record.get('PERSONALINFO.FIRSTNAME', '')} {record.get('PERSONALINFO.LASTNAME', '')}".strip(),
        "PHONE1": f"555-02{r % 100:02d}",
        "PHONE2": "",
        "CELLPHONE": "",
        "PAGER": "",
        "FAX": "",
        "EMAIL1": record.get("PERSONALINFO.EMAIL1", ""),
        "EMAIL2": "",
        "URL1": "",
        "URL2": "",
        "MAILADDRESS.ADDRESS1": f"{r % 9000 + 100} Main Street",
        "MAILADDRESS.ADDRESS2": "",
        "MAILADDRESS.CITY": city,
        "MAILADDRESS.STATE": state,
        "MAILADDRESS.ZIP": f"{r % 90000 + 10000}",
        "MAILADDRESS.COUNTRY": country,
        "MAILADDRESS.COUNTRYCODE": {"United States": "US", "Canada": "CA", "United Kingdom": "GB",
                                    "Ireland": "IE", "Australia": "AU"}[country],
    }
    out = {
        **_audit(g, i, r, record),
        "SSN": "",
        "BIRTHDATE": fmt_date_from_day(3650 + r % 12000),
        "EMPLOYEETYPE1099TYPE": "",
        "GENDER": GENDERS[r % 3],
        "PAYMETHODKEY": "",
        "CONTACTKEY": str(10_000 + i),
        **_entity(g, r >> 8, False),
        "PERSONALINFO.PHONE1": contact["PHONE1"],
        "PERSONALINFO.PRINTAS": contact["PRINTAS"],
        "BADGE_NUMBER": f"B{r % 100000:05d}",
        "COST_CENTER": f"CC-{(r >> 20) % 900 + 100}",
    }
    out.update({f"CONTACT.{k}": v for k, v in contact.items()})
    return out


def ext_userinfo(g: Gen, record: dict[str, str]) -> dict[str, str]:
    i, r = _r(g, record)
    return {**_audit(g, i, r, record), **_entity(g, r, True), "DEPARTMENT_CODE": ""}


def ext_cctransaction(g: Gen, record: dict[str, str]) -> dict[str, str]:
    i, r = _r(g, record)
    return {
        **_audit(g, i, r, record),
        "BASECURR": "USD",
        "TRX_TOTALENTERED": record.get("TOTALENTERED", ""),
        "TRX_TOTALPAID": record.get("TOTALPAID", ""),
        "TOTALSELECTED": "0",
        "TRX_TOTALSELECTED": "0",
        "TRX_TOTALDUE": record.get("TOTALDUE", ""),
        "RAWSTATE": "P" if record.get("STATE") == "Paid" else "A",
        "CLEARED": "F" if r % 3 else "T",
        "AUWHENCREATED": f"{record.get('WHENCREATED', '')} {r % 24:02d}:{(r >> 5) % 60:02d}:{(r >> 11) % 60:02d}"
        if record.get("WHENCREATED")
        else "",
        "INCLUSIVETAX": "false",
        "TAXSOLUTIONID": "",
        "TAXMETHOD": "",
        **_entity(g, r >> 8, False),
        "EXPENSE_CATEGORY": ("Travel", "Meals", "Software", "Supplies")[r % 4],
        "CARDHOLDER_NOTE": "",
    }


def ext_glaccount(g: Gen, record: dict[str, str]) -> dict[str, str]:
    i, r = _r(g, record)
    flags = ("REQUIREPROJECT", "REQUIRECUSTOMER", "REQUIREVENDOR", "REQUIREEMPLOYEE", "REQUIREITEM", "REQUIRECLASS")
    return {
        **_audit(g, i, r, record),
        "ALTERNATIVEACCOUNT": "None",
        **{flag: "false" for flag in flags},
        "TAXABLE": "false",
        "SUBLEDGERCONTROLON": "true" if record.get("TITLE", "").startswith("Accounts ") else "false",
        **_entity(g, r, True),
        "REPORTING_GROUP": record.get("CATEGORY", ""),
        "IFRS_CODE": f"IFRS-{r % 90 + 10}",
    }


def ext_apbill(g: Gen, record: dict[str, str]) -> dict[str, str]:
    i, r = _r(g, record)
    key = record.get("MEGAENTITYID", "")
    n = int(key[1:]) if key[1:].isdigit() else 0
    due = parse_ts(record.get("WHENDUE", ""))
    created = parse_ts(record.get("WHENCREATED", ""))
    return {
        **_audit(g, i, r, record),
        "TOTALSELECTED": "0",
        "TRX_TOTALENTERED": record.get("TOTALENTERED", ""),
        "TRX_TOTALPAID": record.get("TOTALPAID", ""),
        "TRX_TOTALDUE": record.get("TOTALDUE", ""),
        "RECPAYMENTDATE": record.get("WHENDUE", ""),
        "PAYMENTPRIORITY": ("normal", "high", "low", "urgent")[r % 4],
        "ONHOLD": "true" if r % 40 == 0 else "false",
        "DUE_IN_DAYS": str((due - created) // 86400) if due is not None and created is not None else "",
        "MEGAENTITYKEY": str(n) if n else "",
        "MEGAENTITYNAME": location_name(n) if n else "",
        "PO_REFERENCE": f"PO-{r % 100000:05d}" if r % 3 else "",
        "APPROVER": "",
    }


def ext_apadjustment(g: Gen, record: dict[str, str]) -> dict[str, str]:
    i, r = _r(g, record)
    return {**_audit(g, i, r, record), **_entity(g, r, False), "BASECURR": "USD", "REASON_CODE": "RET"}


def ext_eexpenses(g: Gen, record: dict[str, str]) -> dict[str, str]:
    i, r = _r(g, record)
    return {
        **_audit(g, i, r, record),
        "TRX_TOTALENTERED": record.get("TOTALENTERED", ""),
        "TRX_TOTALDUE": record.get("TOTALDUE", ""),
        **_entity(g, r, False),
        "PROJECT_CODE": f"PRJ-{r % 50 + 1:03d}" if r % 2 else "",
        "TRIP_PURPOSE": "",
    }


def ext_expensereportbatch(g: Gen, record: dict[str, str]) -> dict[str, str]:
    i, r = _r(g, record)
    return {**_audit(g, i, r, record), **_entity(g, r, False)}


def _types(ints: str = "", decs: str = "", dates: str = "", stamps: str = "", bools: str = "") -> dict[str, str]:
    result = {"RECORDNO": "int", "WHENMODIFIED": "ts", "WHENCREATED": "ts"}
    for kind, names in (("int", ints), ("dec", decs), ("date", dates), ("ts", stamps), ("bool", bools)):
        result.update({name: kind for name in names.split()})
    return result


OBJECTS: dict[str, ObjectDef] = {
    o.name: o
    for o in [
        ObjectDef(
            name="DEPARTMENT",
            fields=tuple(gen_department(Gen("X", 1, 1, {}, 1, 1), 1)),
            types=_types(ints="PARENTKEY"),
            id_field="DEPARTMENTID",
            application="Company",
            policy="Departments",
            default_size=10,
            ties=1,
            generate=gen_department,
            extend=ext_department,
            custom_fields=frozenset(['COST_CENTER_CODE', 'BUDGET_OWNER']),
        ),
        ObjectDef(
            name="LOCATION",
            fields=tuple(gen_location(Gen("X", 1, 1, {}, 1, 1), 1)),
            types=_types(ints="PARENTKEY", dates="STARTDATE ENDDATE"),
            id_field="LOCATIONID",
            application="Company",
            policy="Locations",
            default_size=5,
            ties=1,
            generate=gen_location,
            extend=ext_location,
            custom_fields=frozenset(['REGION', 'SITE_CODE']),
        ),
        ObjectDef(
            name="EMPLOYEE",
            fields=tuple(gen_employee(Gen("X", 1, 1, {}, 1, 1), 1)),
            types=_types(dates="STARTDATE ENDDATE"),
            id_field="EMPLOYEEID",
            application="Company",
            policy="Employees",
            default_size=50,
            ties=2,
            generate=gen_employee,
            extend=ext_employee,
            custom_fields=frozenset(['BADGE_NUMBER', 'COST_CENTER']),
            query_only=frozenset(f"CONTACT.{k}" for k in EMPLOYEE_CONTACT),
            write_right="Edit",
        ),
        ObjectDef(
            name="USERINFO",
            fields=tuple(gen_userinfo(Gen("X", 1, 1, {}, 1, 1), 1)),
            types=_types(bools="LOGINDISABLED SSO_ENABLED"),
            id_field="LOGINID",
            application="Company",
            policy="Users",
            default_size=10,
            ties=2,
            generate=gen_userinfo,
            extend=ext_userinfo,
            custom_fields=frozenset(['DEPARTMENT_CODE']),
            codes={"USERTYPE": USERTYPE_CODES},
        ),
        ObjectDef(
            name="CCTRANSACTION",
            fields=tuple(gen_cctransaction(Gen("X", 1, 1, {}, 1, 1), 1)),
            types=_types(decs="TOTALENTERED TOTALPAID TOTALDUE", dates="WHENCREATED WHENPAID"),
            id_field="RECORDID",
            application="Cash Management",
            policy="Credit Card Transactions",
            default_size=200,
            ties=3,
            generate=gen_cctransaction,
            extend=ext_cctransaction,
            custom_fields=frozenset(['EXPENSE_CATEGORY', 'CARDHOLDER_NOTE']),
        ),
        ObjectDef(
            name="GLACCOUNT",
            fields=tuple(gen_glaccount(Gen("X", 1, 1, {}, 1, 1), 1)),
            types=_types(bools="REQUIREDEPT REQUIRELOC"),
            id_field="ACCOUNTNO",
            application="General Ledger",
            policy="Accounts",
            default_size=60,
            ties=1,
            generate=gen_glaccount,
            extend=ext_glaccount,
            custom_fields=frozenset(['REPORTING_GROUP', 'IFRS_CODE']),
        ),
        ObjectDef(
            name="APBILL",
            fields=tuple(gen_apbill(Gen("X", 1, 1, {}, 1, 1), 1)),
            types=_types(
                decs="TOTALENTERED TOTALPAID TOTALDUE",
                dates="WHENCREATED WHENPOSTED WHENDUE WHENPAID",
                stamps="AUWHENCREATED",
                ints="CREATEDBY MODIFIEDBY",
            ),
            id_field="RECORDID",
            application="Accounts Payable",
            policy="Bills",
            default_size=500,
            ties=3,
            generate=gen_apbill,
            extend=ext_apbill,
            custom_fields=frozenset(['PO_REFERENCE', 'APPROVER']),
        ),
        ObjectDef(
            name="APADJUSTMENT",
            fields=tuple(gen_apadjustment(Gen("X", 1, 1, {}, 1, 1), 1)),
            types=_types(decs="TOTALENTERED TOTALDUE", dates="WHENCREATED WHENPOSTED"),
            id_field="RECORDID",
            application="Accounts Payable",
            policy="Adjustments",
            default_size=50,
            ties=2,
            generate=gen_apadjustment,
            extend=ext_apadjustment,
            custom_fields=frozenset(['REASON_CODE']),
        ),
        ObjectDef(
            name="EEXPENSES",
            fields=tuple(gen_eexpenses(Gen("X", 1, 1, {}, 1, 1), 1)),
            types=_types(decs="TOTALENTERED TOTALDUE", dates="WHENCREATED WHENPOSTED", ints="PRBATCHKEY"),
            id_field="RECORDID",
            application="Time & Expenses",
            policy="Expense Summaries",
            default_size=100,
            ties=2,
            generate=gen_eexpenses,
            extend=ext_eexpenses,
            custom_fields=frozenset(['PROJECT_CODE', 'TRIP_PURPOSE']),
        ),
        ObjectDef(
            name="EXPENSEREPORTBATCH",
            fields=tuple(gen_expensereportbatch(Gen("X", 1, 1, {}, 1, 1), 1)),
            types=_types(decs="TOTAL", dates="BATCHDATE"),
            id_field="TITLE",
            application="Time & Expenses",
            policy="Expense Summaries",
            default_size=20,
            ties=1,
            generate=gen_expensereportbatch,
            extend=ext_expensereportbatch,
            custom_fields=frozenset([]),
            generic=False,
        ),
        # The entities of a multi-entity company: never generated, only the company's Entity rows (see
        # stored_records). Entities are locations, so the Locations permission governs them.
        ObjectDef(
            name="LOCATIONENTITY",
            fields=("RECORDNO", "LOCATIONID", "NAME", "STATUS"),
            types=_types(),
            id_field="LOCATIONID",
            application="Company",
            policy="Locations",
            default_size=0,
            ties=1,
            generate=lambda g, i: {},
        ),
        # Which roles each user holds: never generated, only the real users' roles (see stored_records).
        ObjectDef(
            name="USERROLES",
            fields=("RECORDNO", "USERID", "ROLENAME", "WHENMODIFIED"),
            types=_types(),
            id_field="USERID",
            application="Company",
            policy="Users",
            default_size=0,
            ties=1,
            generate=lambda g, i: {},
        ),
    ]
}
# GL account numbers are 1000 + 10 x RECORDNO.
OBJECTS["GLACCOUNT"].id_number = lambda n: (n - 1000) // 10 if n > 1000 and n % 10 == 0 else 0  # type: ignore[method-assign]


def object_def(name: str, *, generic_only: bool = True) -> ObjectDef | None:
    """The definition of an object by (case-insensitive) name, or None when the simulator has none."""
    obj = OBJECTS.get(name.strip().upper())
    if obj is None or (generic_only and not obj.generic):
        return None
    return obj


def company_sizes(company: SimCompany) -> dict[str, int]:
    """Size per object: the company's data_sizes over the defaults."""
    sizes = {name: o.default_size for name, o in OBJECTS.items()}
    for name, value in (company.data_sizes or {}).items():
        if name.upper() in sizes:
            sizes[name.upper()] = max(0, int(value))
    return sizes


_GEN_CACHE: dict[tuple, Gen] = {}


def gen_for(company: SimCompany, obj: ObjectDef) -> Gen:
    """The (cached) generator context of one object of one company."""
    sizes = company_sizes(company)
    key = (company.company_id, company.data_seed, tuple(sorted(sizes.items())), obj.name)
    gen = _GEN_CACHE.get(key)
    if gen is None:
        company_seed = text_seed(f"{company.company_id}:{company.data_seed}")
        gen = Gen(obj.name, mix(company_seed ^ text_seed(obj.name)), sizes[obj.name], sizes, company_seed, obj.ties)
        if len(_GEN_CACHE) > 1000:
            _GEN_CACHE.clear()
        _GEN_CACHE[key] = gen
    return gen


def company_tz(company: SimCompany) -> ZoneInfo:
    try:
        return ZoneInfo(company.timezone_name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


# --- Stored changes --------------------------------------------------------------------------
def simuser_record(user: SimUser, tz: ZoneInfo) -> dict[str, str]:
    """A real simulator user as a USERINFO record."""
    return {
        "RECORDNO": str(user.recordno),
        "LOGINID": user.login_id,
        "DESCRIPTION": f"{user.first_name} {user.last_name}".strip(),
        "USERTYPE": user.user_type,
        "ADMIN": user.admin_privileges,
        "STATUS": user.status,
        "LOGINDISABLED": "true" if user.is_web_services_user else "false",
        "SSO_ENABLED": "false",
        "SSO_FEDERATED_ID": "",
        "CONTACTINFO.CONTACTNAME": f"{user.last_name}, {user.first_name}",
        "CONTACTINFO.FIRSTNAME": user.first_name,
        "CONTACTINFO.LASTNAME": user.last_name,
        "CONTACTINFO.EMAIL1": user.email,
        "WHENCREATED": fmt_ts(local_secs(user.created, tz)),
        "WHENMODIFIED": fmt_ts(local_secs(user.updated_at, tz)),
    }


def current_records(company: SimCompany, name: str) -> dict[int, dict[str, str]]:
    """Every current record of an object of a company, by RECORDNO: generated ones not deleted, with what was
    changed or added since (what a complete, exact copy of the company holds)."""
    obj = OBJECTS[name.upper()]
    company.refresh_from_db()
    gen = gen_for(company, obj)
    stored, deleted = stored_records(company, obj)
    records = {i: obj.generate(gen, i) for i in range(1, gen.size + 1) if i not in deleted}
    records.update(stored)
    return records


def stored_records(company: SimCompany, obj: ObjectDef) -> tuple[dict[int, dict[str, str]], set[int]]:
    """Records that differ from generation (recordno -> full record) and deleted recordnos: one query each."""
    gen = gen_for(company, obj)
    tz = company_tz(company)
    records: dict[int, dict[str, str]] = {}
    deleted: set[int] = set()
    rows = RecordOverride.objects.filter(company=company, object=obj.name).values_list(
        "recordno", "fields", "deleted", "created_record", "whenmodified"
    )
    for recordno, fields, is_deleted, created, whenmodified in rows:
        if is_deleted:
            deleted.add(recordno)
            continue
        if created or recordno > gen.size:
            record = dict.fromkeys(obj.fields, "")
        else:
            record = obj.generate(gen, recordno)
        record.update({k: str(v) for k, v in fields.items()})
        record["RECORDNO"] = str(recordno)
        record["WHENMODIFIED"] = fmt_ts(local_secs(whenmodified, tz))
        if created and not fields.get("WHENCREATED"):
            # The object's own kind of value: a bill's WHENCREATED is its date, a department's a timestamp.
            stamp = local_secs(whenmodified, tz)
            record["WHENCREATED"] = fmt_date(stamp) if obj.type_of("WHENCREATED") == "date" else fmt_ts(stamp)
        records[recordno] = record
    if obj.name == "USERINFO":
        for user in SimUser.objects.filter(company=company):
            if user.recordno not in deleted:
                records[user.recordno] = simuser_record(user, tz)
    if obj.name == "LOCATIONENTITY":
        # The entity's own primary key is its RECORDNO: stable when other entities are added or removed.
        for entity in Entity.objects.filter(company=company):
            records[entity.pk] = {
                "RECORDNO": str(entity.pk),
                "LOCATIONID": entity.entity_id,
                "NAME": entity.name,
                "STATUS": "active",
            }
    if obj.name == "USERROLES" and company.permission_model == "role":
        users = SimUser.objects.filter(company=company).prefetch_related("roles").order_by("recordno")
        pairs = [(user, role) for user in users for role in sorted(user.roles.all(), key=lambda r: r.pk)]
        for recordno, (user, role) in enumerate(pairs, start=1):
            records[recordno] = {
                "RECORDNO": str(recordno),
                "USERID": user.login_id,
                "ROLENAME": role.name,
                "WHENMODIFIED": fmt_ts(local_secs(user.updated_at, tz)),
            }
    return records, deleted


def get_record(company: SimCompany, obj_name: str, recordno: int) -> dict[str, str] | None:
    """The current state of one record, or None if it does not exist (or was deleted)."""
    obj = OBJECTS[obj_name.upper()]
    records, deleted = stored_records(company, obj)
    if recordno in deleted:
        return None
    if recordno in records:
        return records[recordno]
    gen = gen_for(company, obj)
    return obj.generate(gen, recordno) if 1 <= recordno <= gen.size else None


def next_recordno(company: SimCompany, obj_name: str) -> int:
    """The RECORDNO a new record of the object gets: after every generated, stored and user record."""
    obj = OBJECTS[obj_name.upper()]
    top = company_sizes(company)[obj.name]
    stored = RecordOverride.objects.filter(company=company, object=obj.name).aggregate(m=Max("recordno"))["m"]
    top = max(top, stored or 0)
    if obj.name == "USERINFO":
        users = SimUser.objects.filter(company=company).aggregate(m=Max("recordno"))["m"]
        top = max(top, users or 0)
    return top + 1


_SIMUSER_FIELDS = {
    "STATUS": "status",
    "ADMIN": "admin_privileges",
    "USERTYPE": "user_type",
    "CONTACTINFO.FIRSTNAME": "first_name",
    "CONTACTINFO.LASTNAME": "last_name",
    "CONTACTINFO.EMAIL1": "email",
}


def modify_record(company: SimCompany, obj_name: str, recordno: int, changes: dict[str, str]) -> dict[str, str]:
    """Change fields of a record; WHENMODIFIED becomes now. Returns the new record. KeyError if missing."""
    obj = OBJECTS[obj_name.upper()]
    with transaction.atomic():
        if obj.name == "USERINFO":
            user = SimUser.objects.filter(company=company, recordno=recordno).first()
            if user is not None:
                for key, value in changes.items():
                    if key in _SIMUSER_FIELDS:
                        setattr(user, _SIMUSER_FIELDS[key], value)
                    elif key == "LOGINDISABLED":
                        user.is_web_services_user = str(value).lower() == "true"
                user.save()
                return simuser_record(user, company_tz(company))
        if get_record(company, obj.name, recordno) is None:
            raise KeyError(f"No {obj.name} record {recordno}")
        override, _ = RecordOverride.objects.get_or_create(
            company=company,
            object=obj.name,
            recordno=recordno,
            defaults={"whenmodified": timezone.now(), "fields": {}},
        )
        override.fields = {**override.fields, **{k: str(v) for k, v in changes.items()}}
        override.whenmodified = timezone.now()
        override.save()
    record = get_record(company, obj.name, recordno)
    assert record is not None
    return record


def delete_record(company: SimCompany, obj_name: str, recordno: int) -> None:
    """Delete a record (generated, created or a user). KeyError if it does not exist."""
    obj = OBJECTS[obj_name.upper()]
    with transaction.atomic():
        if obj.name == "USERINFO" and SimUser.objects.filter(company=company, recordno=recordno).exists():
            SimUser.objects.filter(company=company, recordno=recordno).delete()
        elif get_record(company, obj.name, recordno) is None:
            raise KeyError(f"No {obj.name} record {recordno}")
        RecordOverride.objects.update_or_create(
            company=company,
            object=obj.name,
            recordno=recordno,
            defaults={"deleted": True, "whenmodified": timezone.now()},
        )


def create_record(company: SimCompany, obj_name: str, fields: dict[str, str]) -> int:
    """Create a record of the object with the given fields; returns its RECORDNO."""
    obj = OBJECTS[obj_name.upper()]
    with transaction.atomic():
        recordno = next_recordno(company, obj.name)
        RecordOverride.objects.create(
            company=company,
            object=obj.name,
            recordno=recordno,
            created_record=True,
            fields={k: str(v) for k, v in fields.items()},
            whenmodified=timezone.now(),
        )
    return recordno
