"""The REST client's memory is bounded by one record and one page, whatever the answer holds."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(case: str, megabytes: int) -> dict:
    done = subprocess.run([sys.executable, "-m", "tests.rest.hostile", case, "--mb", str(megabytes)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", ["long-string", "whitespace"])
def test_one_huge_value_is_refused_while_it_arrives(case):
    outcome = run(case, 60)
    assert outcome["result"] == "refused" and outcome["error"] == "ResponseTooLarge", outcome
    assert outcome["peak_rss_growth_mb"] < 15, outcome  # 60 MB sent; the 1 MB record cap is what is held


def test_more_records_than_the_page_asked_for_are_refused_early():
    outcome = run("many-records", 20)  # 400,000 records to a page of 4,000
    assert outcome["result"] == "refused" and outcome["error"] == "ResponseTooLarge", outcome
    assert outcome["peak_rss_growth_mb"] < 30, outcome
