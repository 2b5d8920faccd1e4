"""The settings: embedded defaults with no environment, switches by URL, and a strict production."""
from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import json, django; from django.conf import settings as s; django.setup();"
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], 'db': str(s.DATABASES['default']['NAME']),"
    "'broker': s.CELERY_BROKER_URL, 'endpoint': s.INTACCT_ENDPOINT_URL, 'debug': s.DEBUG,"
    "'simulator': s.SIMULATOR_ENABLED,"
    "'queue_dir': getattr(s, 'CELERY_BROKER_TRANSPORT_OPTIONS', {}).get('data_folder_in')}))"
)
PRODUCTION_ENV = {
    "APP_ENV": "production",
    # Keys are made for each run; no key, however throwaway, is committed.
    "SECRET_KEY": secrets.token_urlsafe(50),
    "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "connect.example.com",
    "INTACCT_ENDPOINT_URL": "https://api.intacct.com/ia/xml/xmlgw.phtml",
    "INTACCT_SENDER_ID": "ExampleSender",
    "INTACCT_SENDER_PASSWORD": secrets.token_urlsafe(16),
    "INTACCT_REST_CLIENT_ID": "connect.example.app.sage.com",
    "INTACCT_REST_CLIENT_SECRET": secrets.token_urlsafe(16),
    "DATABASE_URL": "sqlite:////tmp/intacct-connect-prod-check.sqlite3",
    "METRICS_TOKEN": secrets.token_urlsafe(24),
    "SITE_URL": "https://connect.example.com",
}


def run_python(code: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings"}
    return subprocess.run([sys.executable, *(["-c", code] if code else []), *args], cwd=ROOT,
                          env={**base, **env}, capture_output=True, text=True, timeout=120)


def test_no_environment_runs_on_embedded_defaults(tmp_path):
    result = run_python(PROBE, {"VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["engine"] == "django.db.backends.sqlite3"
    assert probe["db"] == str(tmp_path / "db.sqlite3")
    assert probe["broker"] == "filesystem://"
    assert probe["queue_dir"] == str(tmp_path / "broker" / "queue")
    assert probe["endpoint"].endswith("/simulator/ia/xml/xmlgw.phtml")
    assert probe["debug"] is True and probe["simulator"] is True
    for name in ("secret_key", "field_encryption_key", "demo_sender_password", "demo_rest_client_secret"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
        # Where a secret was generated is said; the value never is.
        assert (tmp_path / name).read_text().strip() not in result.stderr
    assert "generated field_encryption_key" in result.stderr


def test_settings_make_no_folder_the_celery_app_makes_its_own(tmp_path):
    loaded = run_python(PROBE, {"VAR_DIR": str(tmp_path)})
    assert loaded.returncode == 0, loaded.stderr
    # Loading settings writes only the generated secrets: no broker, results or static folders.
    assert sorted(path.name for path in tmp_path.iterdir() if path.is_dir()) == []
    configured = run_python("import django; django.setup(); from config.celery import app; app.conf.broker_url",
                            {"VAR_DIR": str(tmp_path)})
    assert configured.returncode == 0, configured.stderr
    assert sorted(path.name for path in tmp_path.iterdir() if path.is_dir()) == ["broker", "results"]
    assert sorted(path.name for path in (tmp_path / "broker").iterdir()) == ["control", "processed", "queue"]
    assert not (tmp_path / "staticfiles").exists()


def test_generated_secrets_are_stable_across_starts(tmp_path):
    run_python(PROBE, {"VAR_DIR": str(tmp_path)})
    first = (tmp_path / "field_encryption_key").read_text()
    again = run_python(PROBE, {"VAR_DIR": str(tmp_path)})
    assert again.returncode == 0 and "generated" not in again.stderr
    assert (tmp_path / "field_encryption_key").read_text() == first


def test_urls_switch_database_and_broker(tmp_path):
    env = {"VAR_DIR": str(tmp_path), "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
           "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}
    probe = json.loads(run_python(PROBE, env).stdout)
    assert probe["engine"] == "django.db.backends.postgresql"
    assert probe["broker"] == "redis://127.0.0.1:6379/0"
    assert probe["queue_dir"] is None


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "ALLOWED_HOSTS",
                                     "INTACCT_ENDPOINT_URL", "INTACCT_SENDER_ID", "INTACCT_SENDER_PASSWORD",
                                     "METRICS_TOKEN", "SITE_URL", "INTACCT_REST_CLIENT_ID",
                                     "INTACCT_REST_CLIENT_SECRET"])
def test_production_refuses_to_start_without(missing, tmp_path):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing} | {"VAR_DIR": str(tmp_path)}
    result = run_python(PROBE, env)
    assert result.returncode != 0
    assert f"{missing} must be set when APP_ENV=production" in result.stderr
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("endpoint", ["http://api.intacct.com/ia/xml/xmlgw.phtml",
                                      "https://intacct.example.com/ia/xml/xmlgw.phtml",
                                      "http://127.0.0.1:8000/simulator/ia/xml/xmlgw.phtml"])
def test_production_refuses_an_endpoint_that_is_not_intacct(endpoint, tmp_path):
    result = run_python(PROBE, PRODUCTION_ENV | {"INTACCT_ENDPOINT_URL": endpoint, "VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "INTACCT_ENDPOINT_URL must be an https://*.intacct.com address" in result.stderr


@pytest.mark.parametrize("base", ["http://api.intacct.com/ia/api/v1", "http://127.0.0.1:8000/simulator/ia/api/v1"])
def test_production_refuses_a_rest_base_that_is_not_intacct(base, tmp_path):
    result = run_python(PROBE, PRODUCTION_ENV | {"INTACCT_REST_BASE_URL": base, "VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "INTACCT_REST_BASE_URL must be an https://*.intacct.com address" in result.stderr


def test_production_refuses_an_empty_metrics_token(tmp_path):
    """.env.example lists METRICS_TOKEN= empty: left so, /metrics would be open to anyone."""
    result = run_python(PROBE, PRODUCTION_ENV | {"METRICS_TOKEN": "", "VAR_DIR": str(tmp_path)})
    assert result.returncode != 0 and "METRICS_TOKEN must be set when APP_ENV=production" in result.stderr


def test_production_refuses_the_simulator(tmp_path):
    result = run_python(PROBE, PRODUCTION_ENV | {"SIMULATOR_ENABLED": "true", "VAR_DIR": str(tmp_path)})
    assert result.returncode != 0 and "SIMULATOR_ENABLED cannot be on" in result.stderr


def test_check_deploy_is_clean_in_production(tmp_path):
    result = run_python("", PRODUCTION_ENV | {"VAR_DIR": str(tmp_path)}, "manage.py", "check", "--deploy",
                        "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_does_not_mount_the_simulator(tmp_path):
    code = ("import django; django.setup(); from django.urls import resolve, Resolver404\n"
            "try:\n    resolve('/simulator/ia/xml/xmlgw.phtml'); print('mounted')\n"
            "except Resolver404:\n    print('absent')")
    result = run_python(code, PRODUCTION_ENV | {"VAR_DIR": str(tmp_path)})
    assert result.stdout.strip() == "absent", result.stderr


def test_production_has_no_simulator_app_and_migrates_none_of_its_tables(tmp_path):
    code = ("import django; django.setup(); from django.apps import apps; "
            "print('installed' if apps.is_installed('simulator') else 'absent')")
    production = run_python(code, PRODUCTION_ENV | {"VAR_DIR": str(tmp_path)})
    assert production.returncode == 0, production.stderr
    assert production.stdout.strip() == "absent"
    plan = run_python("", PRODUCTION_ENV | {"VAR_DIR": str(tmp_path),
                                            "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}"},
                      "manage.py", "migrate", "--plan")
    assert plan.returncode == 0, plan.stderr
    assert "connector.0001_initial" in plan.stdout and "simulator." not in plan.stdout
    # Where it is on (development, the tests), the simulator is an app with its tables.
    development = run_python(code, {"VAR_DIR": str(tmp_path / "dev")})
    assert development.stdout.strip() == "installed", development.stderr
