"""Celery tasks. They stay thin: load by id, call one service, record the outcome."""
from __future__ import annotations

import os
import socket

from celery import shared_task

from connector import validation


@shared_task(name="connector.ping", ignore_result=False)
def ping() -> dict:
    """Prove a worker is alive and reading this broker: answer with the worker's identity."""
    return {"pong": True, "host": socket.gethostname(), "pid": os.getpid()}


@shared_task(name="connector.connection_validate", ignore_result=True)
def connection_validate(run_id: int) -> None:
    """Run the checks of one queued validation run (arguments are ids only, never secrets)."""
    validation.run_validation(run_id=run_id)
