"""Deployment security with this issue's changes: check --deploy clean, HSTS and secure cookies in
production, CSP on every response, and the rate limiter's cache shared between processes."""
from __future__ import annotations

import json

from django.test import Client

from tests.test_settings import PRODUCTION_ENV, run_python

PROBE = ("import json, django; django.setup(); from django.conf import settings as s;"
         "print(json.dumps({'hsts': s.SECURE_HSTS_SECONDS, 'sub': s.SECURE_HSTS_INCLUDE_SUBDOMAINS,"
         "'ssl': s.SECURE_SSL_REDIRECT, 'session': s.SESSION_COOKIE_SECURE, 'csrf': s.CSRF_COOKIE_SECURE,"
         "'csrf_http_only': s.CSRF_COOKIE_HTTPONLY, 'session_http_only': s.SESSION_COOKIE_HTTPONLY,"
         "'cache': s.CACHES['default']['BACKEND'], 'cache_at': str(s.CACHES['default']['LOCATION']),"
         "'limits': s.RATE_LIMIT_ENABLED}))")


def test_check_deploy_is_clean_with_the_security_settings(tmp_path):
    result = run_python("", PRODUCTION_ENV | {"VAR_DIR": str(tmp_path)}, "manage.py", "check", "--deploy",
                        "--fail-level", "WARNING")
    assert result.returncode == 0 and "no issues" in result.stdout, result.stdout + result.stderr


def test_production_has_hsts_secure_cookies_and_rate_limits_on(tmp_path):
    result = run_python(PROBE, PRODUCTION_ENV | {"VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["hsts"] >= 31536000 and probe["sub"] and probe["ssl"]
    assert probe["session"] and probe["csrf"] and probe["csrf_http_only"] and probe["session_http_only"]
    assert probe["limits"]
    assert probe["cache"].endswith("FileBasedCache") and probe["cache_at"] == str(tmp_path / "cache")


def test_a_redis_broker_puts_the_rate_limit_counters_in_redis(tmp_path):
    env = {"VAR_DIR": str(tmp_path), "CELERY_BROKER_URL": "redis://127.0.0.1:6379/3"}
    probe = json.loads(run_python(PROBE, env).stdout)
    assert probe["cache"].endswith("RedisCache") and probe["cache_at"] == "redis://127.0.0.1:6379/3"
    env["CACHE_URL"] = "redis://127.0.0.1:6379/5"
    assert json.loads(run_python(PROBE, env).stdout)["cache_at"] == "redis://127.0.0.1:6379/5"


def test_https_responses_carry_hsts_and_every_response_the_csp(settings, db):
    settings.SECURE_HSTS_SECONDS = 31536000
    for url in ("/accounts/login/", "/healthz", "/simulator/"):
        response = Client().get(url, secure=True)
        assert response["Strict-Transport-Security"].startswith("max-age=31536000"), url
        assert "script-src 'self'" in response["Content-Security-Policy"], url
        assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"


def test_the_429_page_keeps_the_security_headers(db, settings):
    settings.LOGIN_RATE_LIMIT_PER_IP = 1
    client = Client()
    client.post("/accounts/login/", {"username": "x", "password": "y"})
    response = client.post("/accounts/login/", {"username": "x", "password": "y"})
    assert response.status_code == 429
    assert "Content-Security-Policy" in response and response["X-Frame-Options"] == "DENY"
