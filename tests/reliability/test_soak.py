"""A short soak in CI: bench/soak.py itself, 5 companies for about 75 s, with the same invariants as the long one."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ARTIFACTS, ROOT

pytestmark = [pytest.mark.worker, pytest.mark.timeout(900)]


def test_short_soak_loses_nothing_and_keeps_every_limit(tmp_path):
    out = tmp_path / "soak.json"
    cmd = [sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "1.25", "--companies", "5",
           "--kill-every", "15", "35", "--fault-rate", "0.03", "--seed", "11", "--json", str(out)]
    # On PostgreSQL and Redis the soak makes a database of its own on the server and a queue of its own.
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        cmd += ["--database-url", os.environ["DATABASE_URL"]]
    if os.environ.get("CELERY_BROKER_URL", "").startswith("redis"):
        cmd += ["--broker-url", os.environ["CELERY_BROKER_URL"]]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=840)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "soak-short.log").write_text(result.stdout + result.stderr)
    assert out.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["mismatches"] == 0, figures["mismatch_examples"]
    assert figures["stuck_runs"] == [], figures["stuck_runs"]
    assert figures["max_in_flight_over_limit"] == [] and figures["refused_for_concurrency"] == 0, figures
    assert figures["final_failures"] == [], figures["final_failures"]
    assert result.returncode == 0, result.stdout[-3000:]
    # It did soak: faults of every kind were injected, workers were killed, syncs and validations ran.
    injected = figures["faults_injected"]
    assert all(injected[kind] > 0 for kind in ("http5xx", "http524", "http429", "drop", "malformed",
                                               "expire_session")), injected
    assert figures["kills"] >= 2
    assert figures["retries"] > 0
    assert sum(sum(by_status.values()) for by_status in figures["sync_runs"].values()) >= 20, figures["sync_runs"]
    assert sum(figures["validation_runs"].values()) >= 10, figures["validation_runs"]
    assert sum(figures["mutations"].values()) > 0
