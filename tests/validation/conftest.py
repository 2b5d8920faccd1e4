"""Validation against the simulator: one simulated company per misconfiguration, reached over real HTTP."""
from __future__ import annotations

import uuid

from connector import crypto, services, validation
from connector.models import Connection, ValidationRun
from simulator.demo import DEMO_PASSWORD, SIZES
from tests.conftest import PASSWORD

SMALL = SIZES["minimal"]


def make_connection(company_id: str, *, password: str = DEMO_PASSWORD, permission_model: str = "role",
                    wants_deprovisioning: bool = False, entity_id: str = "",
                    status: str = Connection.Status.IN_SETUP) -> Connection:
    """An organisation (with an admin who has a unique e-mail address) connected to a simulated company."""
    tag = uuid.uuid4().hex[:8]
    admin = services.user_create(username=f"admin-{tag}", email=f"admin-{tag}@acme.test", password=PASSWORD)
    organisation = services.organisation_create(name=f"Acme {tag}", admin=admin)
    connection = organisation.connection
    connection.company_id, connection.user_id, connection.entity_id = company_id, "ws_connect", entity_id
    connection.password_token = crypto.encrypt(password)
    connection.permission_model, connection.wants_deprovisioning = permission_model, wants_deprovisioning
    connection.status = status
    connection.save()
    return connection


def validate(connection: Connection, **run_fields) -> ValidationRun:
    """Run a validation in this process (the client talks HTTP to the live server's simulator)."""
    run = ValidationRun.objects.create(connection=connection, **run_fields)
    validation.run_validation(run_id=run.id)
    run.refresh_from_db()
    return run


def statuses(run: ValidationRun) -> dict[str, str]:
    return dict(run.checks.values_list("key", "status"))
