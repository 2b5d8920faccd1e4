"""Shared fixtures: the people of every access test, a real Celery worker process, the live server as the
Intacct endpoint (and its simulator), a real browser.

Everything here is real: the worker is a `celery worker` subprocess reading the same broker and the
same test database; the browser is Debian's Chromium driven by Playwright.
"""
from __future__ import annotations

import email
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
# Playwright's sync API runs an event loop in the test thread; Django's ORM must still be allowed.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def chromium_path() -> str:
    """The system Chromium (Playwright cannot download its own browsers here)."""
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                      shutil.which("chromium") or ""):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("Chromium not found: run `make browser` or set CHROMIUM_PATH.")


@pytest.fixture(scope="session", autouse=True)
def celery_queue() -> str:
    """A queue of this test process's own, so parallel test processes never take each other's tasks."""
    from config.celery import app

    queue = f"test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{uuid.uuid4().hex[:8]}"
    # Both spellings: with the Django namespace celery 5.6 reads the CELERY_-prefixed key first.
    app.conf.update({"task_default_queue": queue, "CELERY_TASK_DEFAULT_QUEUE": queue})
    assert app.conf.task_default_queue == queue
    return queue


def _database_url(settings_dict: dict) -> str:
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = quote(settings_dict.get("USER") or "")
    password = quote(settings_dict.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture
def intacct_endpoint(live_server, settings) -> str:
    """The live server's simulator gateway, set as the Intacct endpoint for this test."""
    url = live_server.url + settings.SIMULATOR_GATEWAY_PATH
    settings.INTACCT_ENDPOINT_URL = url
    settings.SITE_URL = live_server.url
    # The REST API on the same simulator, and our app's redirect URI on this server (as the settings derive them).
    settings.INTACCT_REST_BASE_URL = live_server.url + settings.SIMULATOR_REST_PATH
    settings.INTACCT_REST_REDIRECT_URI = live_server.url + settings.INTACCT_REST_CALLBACK_PATH
    return url


@pytest.fixture
def our_rest_app(intacct_endpoint, db):
    """Our application registered in the simulated Sage App Registry, with the settings' values."""
    from simulator.oauth import settings_rest_app

    return settings_rest_app()


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen, log_path: Path, queue: str, env: dict):
        self.proc, self.log_path, self.queue, self.env = proc, log_path, queue, env

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_worker(*, queue: str, env_overrides: dict, name: str, concurrency: int = 2) -> WorkerProcess:
    """Start a real `celery worker` subprocess and wait until it answers a ping task."""
    from config.celery import app

    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"worker-{name}-{queue}.log"
    env = {**os.environ, **env_overrides, "CELERY_QUEUE": queue}
    cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-n", f"{name}-{queue}@%h",
           "--concurrency", str(concurrency), "--without-mingle", "--without-gossip", "--loglevel", "INFO"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    worker = WorkerProcess(proc, log_path, queue, env)
    result = app.send_task("connector.ping", queue=queue)
    try:
        result.get(timeout=60)
    except Exception as exc:
        worker.stop()
        raise RuntimeError(f"Celery worker did not start:\n{worker.log()[-3000:]}") from exc
    return worker


@pytest.fixture(scope="session")
def _session_worker(request, django_db_setup, django_db_blocker, celery_queue, live_server):
    from django.db import connection

    with django_db_blocker.unblock():
        db_url = _database_url(connection.settings_dict)
    endpoint = live_server.url + "/simulator/ia/xml/xmlgw.phtml"
    worker = start_worker(
        queue=celery_queue,
        name="session",
        env_overrides={"DATABASE_URL": db_url, "INTACCT_ENDPOINT_URL": endpoint, "SITE_URL": live_server.url},
    )
    yield worker
    worker.stop()


@pytest.fixture
def celery_worker(_session_worker, transactional_db, intacct_endpoint):
    """A real Celery worker process on this test's database, with the live server as Intacct.

    At the end the test waits (up to 45 s) for the runs it left to the worker, e.g. the sync queued when a
    connection becomes connected: emptying the tables while the worker still writes them deadlocks on
    PostgreSQL (TRUNCATE against the sync's row locks)."""
    if _session_worker.proc.poll() is not None:
        pytest.fail(f"The Celery worker exited:\n{_session_worker.log()[-3000:]}")
    yield _session_worker
    from connector.models import SyncRun, ValidationRun

    started = time.monotonic()

    def busy() -> bool:
        running = (SyncRun.objects.filter(status=SyncRun.Status.RUNNING).exists()
                   or ValidationRun.objects.filter(status=ValidationRun.Status.RUNNING).exists())
        # A queued run is picked up within moments; one no worker takes (a test's own queue) holds no lock.
        queued = time.monotonic() - started < 5 and (
            SyncRun.objects.filter(status=SyncRun.Status.QUEUED).exists()
            or ValidationRun.objects.filter(status=ValidationRun.Status.QUEUED).exists())
        return running or queued

    while time.monotonic() - started < 45 and busy():
        time.sleep(0.2)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def _browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(_browser, artifacts_dir):
    """A fresh browser context and page (Debian's Chromium via Playwright)."""
    context = _browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.1, message: str = "condition"):
    """Poll until predicate() is truthy; fail the test with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"Timed out after {timeout}s waiting for {message}")


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Rate-limit counters in a cache of this test process's own (never var/cache nor a shared Redis)."""
    from django.test import override_settings

    location = tmp_path_factory.mktemp("cache")
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                                               "LOCATION": str(location)}}):
        yield location


@pytest.fixture(autouse=True)
def _clear_cache(_private_cache):
    """No test inherits another's rate-limit counters."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def mail_messages(address: str, subject_words: str) -> list[str]:
    """Messages the worker's file backend wrote to `address` whose subject holds `subject_words`."""
    from django.conf import settings

    found = []
    for path in sorted(Path(settings.EMAIL_FILE_PATH).glob("*.log")):
        for text in path.read_text(errors="replace").split("-" * 79):
            message = email.message_from_string(text.strip())
            subject = " ".join(str(message.get("Subject", "")).split())
            if message.get("To") == address and subject_words in subject:
                found.append(message.get_payload())
    return found


def mails_to(address: str, subject_words: str) -> int:
    return len(mail_messages(address, subject_words))


def mail_text(address: str, subject_words: str) -> str:
    return "".join(mail_messages(address, subject_words)[:1])


# --- The people of every access test ------------------------------------------------------------
# alice administers Acme, olga administers Other plc, sam is support staff, root a superuser; anonymous
# is a client with no login.

PASSWORD = "correct horse battery staple"  # noqa: S105 - test logins only


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # MD5 first for speed; PBKDF2 kept because the simulator hashes its users' passwords with it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                                 "django.contrib.auth.hashers.PBKDF2PasswordHasher"]


@pytest.fixture
def organisation(db):
    from connector import services

    admin = services.user_create(username="alice", email="alice@acme.test", password=PASSWORD)
    return services.organisation_create(name="Acme Ltd", slug="acme", admin=admin)


@pytest.fixture
def other_organisation(db):
    from connector import services

    admin = services.user_create(username="olga", email="olga@other.test", password=PASSWORD)
    return services.organisation_create(name="Other plc", slug="other", admin=admin)


def client_for(username: str) -> Client:
    """A test client signed in as `username` (whose password is PASSWORD)."""
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


@pytest.fixture
def admin_client(organisation) -> Client:
    return client_for("alice")


@pytest.fixture
def outsider_client(other_organisation) -> Client:
    return client_for("olga")


@pytest.fixture
def support_client(db) -> Client:
    from connector import services

    user = services.user_create(username="sam", email="sam@operator.test", password=PASSWORD)
    services.support_staff_grant(user=user)
    return client_for("sam")


@pytest.fixture
def superuser_client(db) -> Client:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser(username="root", email="root@operator.test", password=PASSWORD)
    return client_for("root")


@pytest.fixture
def anonymous_client(db) -> Client:
    return Client()


@pytest.fixture
def simulator(intacct_endpoint, settings):
    """The live server's simulator as Intacct, with quick retries so transient faults end fast."""
    from simulator.inflight import inflight_reset

    inflight_reset()
    settings.INTACCT_MAX_RETRIES = 1
    settings.INTACCT_RETRY_BUDGET_SECONDS = 3.0
    return intacct_endpoint
