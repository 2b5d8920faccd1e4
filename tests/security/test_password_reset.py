"""Password reset: limited per IP and per account like login, and its e-mailed link always built from SITE_URL."""
from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

RESET = "/accounts/password_reset/"


@pytest.fixture
def limits(settings):
    settings.RATE_LIMIT_ENABLED = True
    settings.PASSWORD_RESET_RATE_LIMIT_PER_IP, settings.PASSWORD_RESET_RATE_LIMIT_PER_ACCOUNT = 5, 3
    settings.PASSWORD_RESET_RATE_LIMIT_WINDOW_SECONDS = 3600
    return settings


def reset(email: str, ip: str = "203.0.113.7", **extra):
    return Client().post(RESET, {"email": email}, REMOTE_ADDR=ip, **extra)


def test_reset_mails_per_account_are_limited_whatever_the_ip_or_spelling(organisation, limits):
    for n, spelling in enumerate(["alice@acme.test", "ALICE@acme.test", " alice@ACME.test "]):
        assert reset(spelling, ip=f"198.51.100.{n + 1}").status_code == 302
    assert len(mail.outbox) == 3
    blocked = reset("ａｌｉｃｅ@acme.test", ip="192.0.2.50")
    assert blocked.status_code == 429 and int(blocked["Retry-After"]) > 0
    html = blocked.content.decode()
    assert "Too many attempts" in html and "<form" in html
    assert len(mail.outbox) == 3  # nothing sent


def test_reset_requests_per_ip_are_limited_across_addresses(organisation, limits):
    for n in range(5):
        assert reset(f"nobody{n}@acme.test").status_code == 302
    assert reset("alice@acme.test").status_code == 429 and mail.outbox == []
    assert reset("alice@acme.test", ip="198.51.100.9").status_code == 302 and len(mail.outbox) == 1


def test_the_link_is_built_from_site_url_never_from_a_forged_host_header(organisation, settings):
    settings.ALLOWED_HOSTS = ["*"]  # even where the host check lets any Host through
    settings.SITE_URL = "https://connect.example.test"
    response = reset("alice@acme.test", HTTP_HOST="evil.test", HTTP_X_FORWARDED_HOST="evil2.test")
    assert response.status_code == 302
    body = mail.outbox[0].body
    assert "evil" not in body
    link = re.search(r"https://connect\.example\.test(/accounts/reset/\S+/\S+/)", body)
    assert link, body
    # The link works (Django swaps the token for a session and asks for the new password).
    client = Client()
    assert client.get(link.group(1)).status_code == 302

