"""Intacct Connect settings: every value comes from the environment (django-environ).

With no environment at all the app runs on embedded defaults: SQLite and a filesystem Celery broker
under var/, the built-in Intacct simulator as the endpoint, DEBUG on. APP_ENV=production turns the
defaults off: the settings then refuse to load without the secrets and hosts production needs.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from config.local_secrets import var_secret

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env") if (BASE_DIR / ".env").exists() else None

APP_ENV = env.str("APP_ENV", default="development")
if APP_ENV not in ("development", "production"):
    raise ImproperlyConfigured("APP_ENV must be 'development' or 'production'.")
PRODUCTION = APP_ENV == "production"
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))


def _required(name: str, cast=str, **kwargs):
    """In production a setting without a value stops start-up with a message naming it."""
    if PRODUCTION and name not in env.ENVIRON:
        raise ImproperlyConfigured(f"{name} must be set when APP_ENV=production.")
    return env.get_value(name, cast=cast, **kwargs)


# --- Core -----------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=not PRODUCTION)
SECRET_KEY = (_required("SECRET_KEY") if PRODUCTION
              else env.str("SECRET_KEY", default="") or var_secret(VAR_DIR, "secret_key"))
ALLOWED_HOSTS = (_required("ALLOWED_HOSTS", cast=list) if PRODUCTION
                 else env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]))
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
PRODUCT_NAME = env.str("PRODUCT_NAME", default="Intacct Connect")
# E-mailed links (password reset included) are built from it, never from the request's Host header.
SITE_URL = _required("SITE_URL") if PRODUCTION else env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "connector",
    "wizard",
]

MIDDLEWARE = [
    "config.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.security.SecurityHeadersMiddleware",
    "config.security.QueryControlCharactersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one SQLite file: wait for locks instead of failing, and let
    # readers run beside the single writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests use a file (not :memory:) so a real Celery worker process can see the same data.
    # One file per test process, so two test runs on one machine never share a database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
else:
    # Likewise one test database per test process on a shared server.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))  # made by collectstatic
# Outside production whitenoise looks files up per request: no collected root needed (nor a warning without one).
WHITENOISE_AUTOREFRESH = not PRODUCTION
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": ("whitenoise.storage.CompressedManifestStaticFilesStorage" if PRODUCTION
                    else "django.contrib.staticfiles.storage.StaticFilesStorage"),
    },
}

EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default=("django.core.mail.backends.smtp.EmailBackend" if PRODUCTION
             else "django.core.mail.backends.filebased.EmailBackend"),
)
EMAIL_FILE_PATH = VAR_DIR / "mail"
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="intacct-connect@localhost")

# --- Security (production) ------------------------------------------------------------------
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    if env.bool("BEHIND_TLS_PROXY", default=True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Field encryption (credentials at rest) -------------------------------------------------
# Comma-separated Fernet keys, newest first. Separate from SECRET_KEY on purpose.
FIELD_ENCRYPTION_KEYS = (
    _required("FIELD_ENCRYPTION_KEYS", cast=list) if PRODUCTION
    else env.list("FIELD_ENCRYPTION_KEYS", default=[]) or [var_secret(VAR_DIR, "field_encryption_key",
                                                                      kind="fernet")]
)

# --- Sage Intacct ---------------------------------------------------------------------------
SIMULATOR_ENABLED = env.bool("SIMULATOR_ENABLED", default=not PRODUCTION)
if SIMULATOR_ENABLED:
    # The stand-in for Intacct is an app (tables, screens) only where it is on: production migrates none of it.
    INSTALLED_APPS.append("simulator")
SIMULATOR_GATEWAY_PATH = "/simulator/ia/xml/xmlgw.phtml"
# Simulator only: a latency profile for benchmarks and the soak (off: ""; see simulator/latency.py), and
# how long a request's concurrency slot lives when its process died without giving it back.
SIMULATOR_LATENCY_PROFILE = env.str("SIMULATOR_LATENCY_PROFILE", default="")
SIMULATOR_SLOT_LEASE_SECONDS = env.float("SIMULATOR_SLOT_LEASE_SECONDS", default=300.0)
INTACCT_ENDPOINT_URL = (
    _required("INTACCT_ENDPOINT_URL") if PRODUCTION
    else env.str("INTACCT_ENDPOINT_URL", default=SITE_URL.rstrip("/") + SIMULATOR_GATEWAY_PATH)
)
INTACCT_SENDER_ID = _required("INTACCT_SENDER_ID") if PRODUCTION else env.str(
    "INTACCT_SENDER_ID", default="IntacctConnectDemo")
INTACCT_SENDER_PASSWORD = (
    _required("INTACCT_SENDER_PASSWORD") if PRODUCTION
    else env.str("INTACCT_SENDER_PASSWORD", default="") or var_secret(VAR_DIR, "demo_sender_password")
)
# The REST API: our application in the Sage App Registry. The simulator serves the API under
# SIMULATOR_REST_PATH; the demo and the tests register this same application in it (simulator.oauth).
SIMULATOR_REST_PATH = "/simulator/ia/api/v1"
INTACCT_REST_BASE_URL = env.str(
    "INTACCT_REST_BASE_URL",
    default=SITE_URL.rstrip("/") + SIMULATOR_REST_PATH if SIMULATOR_ENABLED else "https://api.intacct.com/ia/api/v1",
)
INTACCT_REST_CLIENT_ID = _required("INTACCT_REST_CLIENT_ID") if PRODUCTION else env.str(
    "INTACCT_REST_CLIENT_ID", default="intacct-connect-demo.app.sage.com")
INTACCT_REST_CLIENT_SECRET = (
    _required("INTACCT_REST_CLIENT_SECRET") if PRODUCTION
    else env.str("INTACCT_REST_CLIENT_SECRET", default="") or var_secret(VAR_DIR, "demo_rest_client_secret")
)
# Where Intacct sends the admin back after "Connect with Sage Intacct": registered with the app, so derived
# from SITE_URL (wizard/urls.py serves this path).
INTACCT_REST_CALLBACK_PATH = "/connect/sage-intacct/callback/"
INTACCT_REST_REDIRECT_URI = SITE_URL.rstrip("/") + INTACCT_REST_CALLBACK_PATH
# What we know of a refresh token's life (Sage does not publish it): only used to name an expired one.
INTACCT_REST_REFRESH_TOKEN_DAYS = env.int("INTACCT_REST_REFRESH_TOKEN_DAYS", default=180)
INTACCT_TIMEOUT_SECONDS = env.float("INTACCT_TIMEOUT_SECONDS", default=60.0)
INTACCT_MAX_RETRIES = env.int("INTACCT_MAX_RETRIES", default=5)
INTACCT_RETRY_BUDGET_SECONDS = env.float("INTACCT_RETRY_BUDGET_SECONDS", default=120.0)
OUTBOUND_IP_ADDRESSES = env.list("OUTBOUND_IP_ADDRESSES", default=["127.0.0.1"])

if PRODUCTION:
    _endpoint = urlsplit(INTACCT_ENDPOINT_URL)
    if _endpoint.scheme != "https" or not (_endpoint.hostname or "").endswith(".intacct.com"):
        raise ImproperlyConfigured(
            "INTACCT_ENDPOINT_URL must be an https://*.intacct.com address when APP_ENV=production."
        )
    if SIMULATOR_ENABLED:
        raise ImproperlyConfigured("SIMULATOR_ENABLED cannot be on when APP_ENV=production.")
    _rest = urlsplit(INTACCT_REST_BASE_URL)
    if _rest.scheme != "https" or not (_rest.hostname or "").endswith(".intacct.com"):
        raise ImproperlyConfigured(
            "INTACCT_REST_BASE_URL must be an https://*.intacct.com address when APP_ENV=production."
        )

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }  # the folders are made by the Celery app when it is configured (config/celery.py)
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A task a worker took but never acknowledged (the worker was SIGKILLed, or Redis dropped while it held
    # it) goes back to the queue after this long; Redis's default (an hour) left such runs "queued" for an hour.
    # A task still running then is delivered again, which is harmless: a run is claimed once, the copy returns.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("REDIS_VISIBILITY_TIMEOUT_SECONDS", default=600),
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
    }
CELERY_RESULT_BACKEND = env.str(
    "CELERY_RESULT_BACKEND",
    default=(CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else f"file://{VAR_DIR / 'results'}"),
)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=1800)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=1900)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker that lost its broker keeps trying to reconnect (Celery gives up after 100 tries by default and the
# worker would then exit); celery is capped below 5.7 in pyproject.toml for the same reason.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Periodic tasks: each feature adds its entries in its own block at the end of this file.
CELERY_BEAT_SCHEDULE: dict = {}
CELERY_TIMEZONE = "UTC"

# --- Logging --------------------------------------------------------------------------------
# One JSON object per line in production (config.logging), readable lines in development.
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "plain")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured("LOG_FORMAT must be 'json' or 'plain'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "connector.intacct.redaction.RedactingFilter"},
                "request_id": {"()": "config.logging.RequestIdFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
                   "json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["redact", "request_id"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- Connection wizard ----------------------------------------------------------------------
# Self sign-up creates a login and a new organisation; on by default outside production (the demo).
SIGNUP_ENABLED = env.bool("SIGNUP_ENABLED", default=not PRODUCTION)
# The role name the wizard suggests creating in Intacct (step 4, role-based companies).
SUGGESTED_ROLE_NAME = env.str("SUGGESTED_ROLE_NAME", default=f"{PRODUCT_NAME} API")
# How often the Connect page polls a running validation, in milliseconds (progressive enhancement).
VALIDATION_POLL_INTERVAL_MS = env.int("VALIDATION_POLL_INTERVAL_MS", default=700)
if PRODUCTION:
    SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 12)

# --- Validation and monitoring --------------------------------------------------------------
# Connected (and failing) connections are re-validated once per interval (default daily). Beat wakes every
# tick; each connection that is due is enqueued with a stable per-connection delay inside the tick, so
# they never all run at once.
VALIDATION_MONITOR_INTERVAL_SECONDS = env.int("VALIDATION_MONITOR_INTERVAL_SECONDS", default=24 * 3600)
VALIDATION_MONITOR_TICK_SECONDS = env.int("VALIDATION_MONITOR_TICK_SECONDS", default=3600)
# An inconclusive run (Intacct unreachable, rate limited) is retried after these delays, then given up.
VALIDATION_RETRY_DELAYS_SECONDS = env.list("VALIDATION_RETRY_DELAYS_SECONDS", cast=int, default=[60, 300, 1800])
# A queued or running validation with no progress (start, last check) for this long was left by a stopped
# worker: it is closed as inconclusive so monitoring goes on (longer than one check may take with retries).
VALIDATION_STALE_SECONDS = env.int("VALIDATION_STALE_SECONDS",
                                   default=int(INTACCT_RETRY_BUDGET_SECONDS + 2 * INTACCT_TIMEOUT_SECONDS) + 60)
# A session shorter than this is worth a note for support (long syncs log in again more often).
VALIDATION_SHORT_SESSION_SECONDS = env.int("VALIDATION_SHORT_SESSION_SECONDS", default=15 * 60)
CELERY_BEAT_SCHEDULE["revalidate-connections"] = {
    "task": "connector.connections_revalidate",
    "schedule": float(VALIDATION_MONITOR_TICK_SECONDS),
}

# --- Support and operations -----------------------------------------------------------------
# A connection whose last successful sync is older than this counts as "stale" on the dashboard.
STALE_SYNC_HOURS = env.int("STALE_SYNC_HOURS", default=48)
DASHBOARD_PAGE_SIZE = env.int("DASHBOARD_PAGE_SIZE", default=50)
# Run history (validation and sync runs, status changes) and the audit log are pruned after these ages.
RUN_HISTORY_RETENTION_DAYS = env.int("RUN_HISTORY_RETENTION_DAYS", default=400)
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=730)
# Workers and beat write a heartbeat this often; /healthz fails when the newest is older than the limit.
HEARTBEAT_INTERVAL_SECONDS = env.int("HEARTBEAT_INTERVAL_SECONDS", default=30)
HEARTBEAT_STALE_SECONDS = env.int("HEARTBEAT_STALE_SECONDS", default=120)
# When set, /metrics wants "Authorization: Bearer <METRICS_TOKEN>"; production refuses to start without one
# (an empty value too), so its figures are never open to anyone who finds the URL.
METRICS_TOKEN = _required("METRICS_TOKEN") if PRODUCTION else env.str("METRICS_TOKEN", default="")
if PRODUCTION and not METRICS_TOKEN.strip():
    raise ImproperlyConfigured("METRICS_TOKEN must be set when APP_ENV=production (it may not be empty).")
# Load balancers and Prometheus call these over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
# Django's own logging would otherwise be replaced in the worker (config.logging keeps it).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE["heartbeat"] = {"task": "connector.heartbeat",
                                     "schedule": float(HEARTBEAT_INTERVAL_SECONDS)}
CELERY_BEAT_SCHEDULE["dashboard-summaries-refresh"] = {"task": "connector.summaries_refresh",
                                                       "schedule": 600.0}
CELERY_BEAT_SCHEDULE["status-days-refresh"] = {"task": "connector.status_days_refresh", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["history-prune"] = {"task": "connector.history_prune", "schedule": 24 * 3600.0}

# --- Sync -----------------------------------------------------------------------------------
# Incremental syncs per connection this often (beat checks every minute); delete reconciliation reads
# every RECORDNO (one API call per 2,000 records), so it runs rarely.
SYNC_INTERVAL_MINUTES = env.float("SYNC_INTERVAL_MINUTES", default=60)
SYNC_RECONCILE_INTERVAL_HOURS = env.float("SYNC_RECONCILE_INTERVAL_HOURS", default=168)
# Intacct's weekly maintenance (UTC; weekday 0 = Monday): no scheduled syncs start inside it.
SYNC_MAINTENANCE_WINDOW = {
    "weekday": env.int("SYNC_MAINTENANCE_WEEKDAY", default=5),
    "start": env.str("SYNC_MAINTENANCE_START", default="02:30"),
    "end": env.str("SYNC_MAINTENANCE_END", default="05:30"),
}
# Requests in flight per Intacct company across all workers (per connection in SyncSettings).
SYNC_CONCURRENCY_LIMIT = env.int("SYNC_CONCURRENCY_LIMIT", default=2)
# A request slot held by a dead process is free again after this (longer than a request may take).
SYNC_SLOT_LEASE_SECONDS = env.int("SYNC_SLOT_LEASE_SECONDS", default=int(INTACCT_TIMEOUT_SECONDS) + 15)
SYNC_SLOT_WAIT_SECONDS = env.int("SYNC_SLOT_WAIT_SECONDS", default=600)
# A sync's lease on its connection, renewed by a heartbeat (every third of it); a killed worker's sync is ended
# "interrupted" and resumed by the sweep (every SYNC_SWEEP_SECONDS) once its lease lapsed: within two minutes.
SYNC_LEASE_SECONDS = env.int("SYNC_LEASE_SECONDS", default=90)
SYNC_SWEEP_SECONDS = env.int("SYNC_SWEEP_SECONDS", default=15)
# A sync stopped by a transient cause before it could read (e.g. this worker lacks the encryption key) is
# queued again after this delay (at most twice).
SYNC_RETRY_DELAY_SECONDS = env.int("SYNC_RETRY_DELAY_SECONDS", default=60)
# The incremental keyset re-reads this much before its saved WHENMODIFIED (company-local, to the second).
SYNC_OVERLAP_SECONDS = env.int("SYNC_OVERLAP_SECONDS", default=120)
# API calls a month included in the company's tier (Performance Tier 1: 100,000), per connection too.
SYNC_MONTHLY_CALL_ALLOWANCE = env.int("SYNC_MONTHLY_CALL_ALLOWANCE", default=100_000)
SYNC_TASK_SOFT_TIME_LIMIT = env.int("SYNC_TASK_SOFT_TIME_LIMIT", default=3 * 3600)
SYNC_TASK_TIME_LIMIT = env.int("SYNC_TASK_TIME_LIMIT", default=3 * 3600 + 120)
SYNC_POLL_INTERVAL_MS = env.int("SYNC_POLL_INTERVAL_MS", default=1000)
# A queued sync older than this is taken as lost (its task never ran) and a new request queues another.
SYNC_QUEUED_STALE_SECONDS = env.int("SYNC_QUEUED_STALE_SECONDS", default=600)
# A run whose task could not be sent (broker down) is sent again by this sweep once the broker is back
# (connector.requeue); the minimum age leaves a request that is still sending alone.
RESEND_UNSENT_INTERVAL_SECONDS = env.int("RESEND_UNSENT_INTERVAL_SECONDS", default=20)
RESEND_UNSENT_MIN_AGE_SECONDS = env.int("RESEND_UNSENT_MIN_AGE_SECONDS", default=5)
# A run still queued this long after it was made is sent once more (its message may have died with a worker).
RESEND_QUEUED_AFTER_SECONDS = env.int("RESEND_QUEUED_AFTER_SECONDS", default=120)
CELERY_BEAT_SCHEDULE["resend-unsent-runs"] = {"task": "connector.resend_unsent_runs",
                                              "schedule": float(RESEND_UNSENT_INTERVAL_SECONDS)}
CELERY_BEAT_SCHEDULE["sync-incremental"] = {"task": "connector.sync_schedule_incremental", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["sync-reconcile"] = {"task": "connector.sync_schedule_reconcile", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["runs-sweep"] = {"task": "connector.runs_sweep", "schedule": float(SYNC_SWEEP_SECONDS)}

# --- The platform's change feed and webhooks ----------------------------------------------
# A deleted record stays in the feed (as a tombstone) this long; a consumer further behind gets 410.
FEED_RETENTION_DAYS = env.int("FEED_RETENTION_DAYS", default=30)
CELERY_BEAT_SCHEDULE["feed-purge-tombstones"] = {"task": "connector.feed_purge_tombstones",
                                                 "schedule": 24 * 3600.0}
# Webhooks: seconds between attempts after each failure (about 24 h in all, then the endpoint is disabled),
# how long a rotated secret keeps signing beside the new one, and plain http to loopback (development only).
WEBHOOK_RETRY_SCHEDULE_SECONDS = env.list("WEBHOOK_RETRY_SCHEDULE_SECONDS", cast=int,
                                          default=[5, 300, 1800, 7200, 18000, 36000, 22000])
WEBHOOK_SECRET_OVERLAP_HOURS = env.float("WEBHOOK_SECRET_OVERLAP_HOURS", default=24)
WEBHOOK_ALLOW_LOOPBACK_HTTP = not PRODUCTION and env.bool("WEBHOOK_ALLOW_LOOPBACK_HTTP", default=True)
CELERY_BEAT_SCHEDULE["webhooks-due"] = {"task": "connector.webhooks_due", "schedule": 10.0}

# --- Security ---------------------------------------------------------------------
# Django's cache holds the rate-limit counters, shared by every web process: Redis when the broker is
# Redis (its own database number unless CACHE_URL says otherwise), else files under VAR_DIR.
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": env.str("CACHE_URL", default=CELERY_BROKER_URL),
                          "KEY_PREFIX": "intacct-connect"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": env.str("CACHE_DIR", default=str(VAR_DIR / "cache"))}}
# Login: attempts per IP and failed attempts per username. Connect and "Check again": sign-ins Intacct refused,
# per organisation, company and user (Intacct locks a user out after repeated failures; nothing else counts).
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)
LOGIN_RATE_LIMIT_PER_IP = env.int("LOGIN_RATE_LIMIT_PER_IP", default=30)
LOGIN_RATE_LIMIT_PER_ACCOUNT = env.int("LOGIN_RATE_LIMIT_PER_ACCOUNT", default=5)
LOGIN_RATE_LIMIT_WINDOW_SECONDS = env.int("LOGIN_RATE_LIMIT_WINDOW_SECONDS", default=15 * 60)
# Password reset: requests per IP and per e-mail address (each may send a mail).
PASSWORD_RESET_RATE_LIMIT_PER_IP = env.int("PASSWORD_RESET_RATE_LIMIT_PER_IP", default=10)
PASSWORD_RESET_RATE_LIMIT_PER_ACCOUNT = env.int("PASSWORD_RESET_RATE_LIMIT_PER_ACCOUNT", default=3)
PASSWORD_RESET_RATE_LIMIT_WINDOW_SECONDS = env.int("PASSWORD_RESET_RATE_LIMIT_WINDOW_SECONDS", default=60 * 60)
CONNECT_FAILED_SIGN_INS_PER_USER = env.int("CONNECT_FAILED_SIGN_INS_PER_USER", default=3)
CONNECT_RATE_LIMIT_WINDOW_SECONDS = env.int("CONNECT_RATE_LIMIT_WINDOW_SECONDS", default=60 * 60)
CSRF_COOKIE_HTTPONLY = True
# Error pages and reports hide POST data and local variables of password views even with DEBUG on.
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.security.SecretHidingExceptionReporterFilter"
