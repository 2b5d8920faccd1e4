"""The import contracts in pyproject.toml (run by `make lint`) fail when a forbidden import is added.

Each case copies the packages into a temporary folder, adds one import the architecture forbids, and runs
lint-imports there: the run must fail and name the contract that was broken. The untouched copy passes.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "connector", "wizard", "simulator")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "templates", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint_imports(folder: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(folder)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def _add_import(folder: Path, module: str, line: str) -> None:
    path = folder / module
    path.write_text(path.read_text() + f"\n{line}  # added by the test: forbidden\n")


def test_the_code_as_it_is_keeps_every_contract(tmp_path):
    result = _lint_imports(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("connector/services.py", "from wizard import steps", "Data flows one way"),
    ("simulator/xmlio.py", "from connector import objects", "The simulator never imports connector or wizard"),
    ("simulator/views.py", "import wizard.forms", "The simulator never imports connector or wizard"),
    ("connector/intacct/envelope.py", "from django.conf import settings",
     "connector.intacct and connector.intacct_rest are pure Python"),
    ("connector/intacct/client.py", "from connector import crypto", "connector's modules in layers"),
    ("connector/services.py", "from connector import tasks", "connector's modules in layers"),
    ("connector/monitoring.py", "from connector import validation", "connector's modules in layers"),
    ("connector/sync/engine.py", "from connector.sync import runs", "connector.sync's modules in layers"),
], ids=["connector-imports-wizard", "simulator-imports-connector", "simulator-imports-wizard",
        "client-imports-django", "client-imports-connector", "services-imports-tasks", "monitoring-validation-cycle",
        "sync-engine-imports-runs"])
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, line, contract):
    folder = _copy(tmp_path)
    _add_import(folder, module, line)
    result = _lint_imports(folder)
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout
