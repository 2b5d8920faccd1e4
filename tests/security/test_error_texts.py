"""Intacct's error texts are stored and shown bounded (a few KB each), visibly marked as cut.

A gateway answered a sign-in with a 7.6 MB description: it was stored whole and made a 155 MB support
page. The bound is applied where Intacct's answer becomes our error (connector.intacct.errors), so every
place that stores or shows it (validation checks, sync object runs, audit details, pages) gets it.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import pytest
from django.db import models
from django.urls import reverse

from connector.intacct import errors
from connector.models import ValidationCheck
from tests.validation.conftest import make_connection, validate

HUGE = 7_600_000
LIMIT = 2000  # "a few KB" per text
CUT = "… [cut]"


def failure_xml(description: str, description2: str = "", correction: str = "", repeat: int = 1) -> bytes:
    one = (f"<error><errorno>XL03000006</errorno><description>{escape(description)}</description>"
           f"<description2>{escape(description2)}</description2><correction>{escape(correction)}</correction>"
           "</error>")
    return ('<?xml version="1.0" encoding="UTF-8"?><response><control><status>failure</status></control>'
            f"<errormessage>{one * repeat}</errormessage></response>").encode()


@pytest.fixture
def hostile_gateway(settings):
    """A gateway on loopback answering every request with a control failure carrying a 7.6 MB description."""
    body = failure_xml("Sign-in refused: " + "A" * HUGE, description2="B" * 50_000, correction="C" * 3000)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.INTACCT_ENDPOINT_URL = f"http://127.0.0.1:{server.server_address[1]}/ia/xml/xmlgw.phtml"
    settings.INTACCT_MAX_RETRIES = 0
    yield
    server.shutdown()
    server.server_close()


def longest_text(model) -> int:
    fields = [f.name for f in model._meta.get_fields() if isinstance(f, (models.TextField, models.CharField))]
    return max((len(str(v or "")) for row in model.objects.values_list(*fields) for v in row), default=0)


def test_a_huge_intacct_description_is_stored_and_shown_bounded(hostile_gateway, transactional_db, support_client):
    connection = make_connection("ACME")
    run = validate(connection)
    check = run.checks.exclude(description="").get()
    assert len(check.description) <= LIMIT and check.description.endswith(CUT)
    assert check.description.startswith("Sign-in refused: AAAA")
    assert len(check.description2) <= LIMIT and check.description2.endswith(CUT)
    assert len(check.correction) <= LIMIT and check.correction.endswith(CUT)
    # Every stored text (messages built from Intacct's words included) stays within a few KB.
    assert longest_text(ValidationCheck) <= 4 * LIMIT
    assert len(run.summary) <= 500
    page = support_client.get(reverse("dashboard_connection", args=[connection.id]))
    assert page.status_code == 200 and "[cut]" in page.content.decode()
    assert len(page.content) < 200_000


def test_every_part_of_an_intacct_error_is_bounded_and_marked():
    detail = errors.ErrorDetail("XL" + "9" * 5000, "d" * 10_000, "e" * 10_000, "f" * 10_000)
    exc = errors.IntacctError(errors=[detail] * 5000)
    for text in (exc.errorno, exc.description, exc.description2, exc.correction, *exc.errors[0].__dict__.values()):
        assert len(text) <= errors.MAX_ERROR_TEXT and text.endswith(CUT)
    assert len(exc.errors) <= errors.MAX_ERRORS_KEPT
    assert len(str(exc)) <= errors.MAX_ERROR_TEXT and str(exc).endswith(CUT)
    assert len(str(errors.IntacctError("x" * 100_000))) <= errors.MAX_ERROR_TEXT
    # Short texts are untouched.
    small = errors.IntacctError(errors=[errors.ErrorDetail("BL01", "Short.", "Also short.", "")])
    assert (small.description, small.description2, str(small)) == ("Short.", "Also short.", "BL01 Short. Also short.")


def test_a_secret_is_redacted_before_the_cut():
    from connector.intacct.redaction import register_secret, unregister_secret

    secret = "Cut-Straddling-Secret-9931"
    register_secret(secret)
    try:
        for offset in range(errors.MAX_ERROR_TEXT - 30, errors.MAX_ERROR_TEXT + 5):
            text = "x" * offset + secret + "y" * 5000
            exc = errors.IntacctError(errors=[errors.ErrorDetail("E1", text)])
            assert "Cut-Straddling" not in exc.description and "Secret-9931" not in exc.description
            assert not any(secret[:n] in exc.description for n in range(8, len(secret)))
    finally:
        unregister_secret(secret)


def test_sync_runs_and_audit_details_keep_the_bound(db):
    """Sync object runs and deprovisioning's audit details store Intacct's words from the same error."""
    from connector import diagnosis

    exc = errors.IntacctError(errors=[errors.ErrorDetail("BL01", "d" * 100_000, "e" * 100_000, "f" * 100_000)])
    words = diagnosis.raw_words(exc)  # what sync and deprovisioning store
    assert len(words) <= 3 * errors.MAX_ERROR_TEXT + 2 and words.count(CUT) == 3
