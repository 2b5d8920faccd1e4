"""Structured logs and the request id that follows one piece of work from the web request into the worker.

- `RequestIdMiddleware` gives every request an id (a sane incoming X-Request-ID is kept), puts it in a
  contextvar and answers with it in X-Request-ID.
- Celery: publishing a task copies the current id into the message headers; the worker puts it back in
  the contextvar before the task runs (a task published with no id, e.g. by beat, uses its task id).
- `RequestIdFilter` stamps request_id / task_id on every log record; `JsonFormatter` writes one JSON
  object per line. Secrets are scrubbed earlier, by connector.intacct.redaction.RedactingFilter.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
task_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("task_id", default="")

REQUEST_ID_HEADER = "request_id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# LogRecord attributes that are not "extra" fields.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str:
    """The id of the request or task this code runs for ("" outside of both)."""
    return request_id_var.get()


class RequestIdMiddleware:
    """Give each request an id, visible in every log line it causes and in the X-Request-ID header."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else new_request_id()
        # Not reset afterwards: Django logs a failed response (django.request) after the middleware
        # returns, and that line should carry the id too. The next request sets its own.
        request_id_var.set(request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Stamp the current request and task id on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.task_id = task_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ids, extra fields and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or request_id_var.get(),
            "task_id": getattr(record, "task_id", "") or task_id_var.get(),
            "process": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


# --- Celery: carry the id across the broker -------------------------------------------------

def _before_publish(headers=None, **_kwargs) -> None:
    if headers is not None and REQUEST_ID_HEADER not in headers:
        request_id = request_id_var.get()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id


_task_tokens: dict[str, tuple[contextvars.Token, contextvars.Token]] = {}


def _task_prerun(task_id=None, task=None, **_kwargs) -> None:
    request = getattr(task, "request", None)
    # Celery puts custom message headers on the request itself (protocol 2) or under .headers.
    request_id = getattr(request, REQUEST_ID_HEADER, None) or (getattr(request, "headers", None) or {}).get(
        REQUEST_ID_HEADER)
    if not (isinstance(request_id, str) and _SAFE_ID.match(request_id)):
        request_id = task_id
    _task_tokens[task_id] = (request_id_var.set(request_id or ""), task_id_var.set(task_id or ""))


def _task_postrun(task_id=None, **_kwargs) -> None:
    tokens = _task_tokens.pop(task_id, None)
    if tokens:
        request_id_var.reset(tokens[0])
        task_id_var.reset(tokens[1])


def _keep_django_logging(**_kwargs) -> None:
    """Celery would replace the root handlers with its own; Django's LOGGING (JSON, redaction) stays."""


def connect_celery_signals() -> None:
    """Hook the request id and Django's logging into Celery (called by config.celery)."""
    from celery import signals

    signals.before_task_publish.connect(_before_publish, weak=False)
    signals.task_prerun.connect(_task_prerun, weak=False)
    signals.task_postrun.connect(_task_postrun, weak=False)
    signals.setup_logging.connect(_keep_django_logging, weak=False)
