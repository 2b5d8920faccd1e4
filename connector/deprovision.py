"""Deactivate (and reactivate) an Intacct user, and optionally its employee, from the synced user list.

Only for organisations that chose deprovisioning, and only when the last validation showed the Web
Services user may write (Employees Edit, admin privileges Full). Each write is idempotent: a stable
control ID per (connection, record, action, occurrence) with uniqueid=true, so a double submit or a
retry is answered "already applied" by Intacct instead of writing twice. Every attempt is audited with
what was sent and what Intacct answered, and the result is verified by reading the record back.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import date

from django.db import transaction
from django.utils import timezone

from connector import diagnosis, feed, metrics, objects, policy, services, sync
from connector.intacct import errors, timestamps
from connector.models import AuditEvent, Connection, Record, ValidationCheck

log = logging.getLogger(__name__)

DEACTIVATE = "deactivate"
REACTIVATE = "reactivate"
ACTIONS = (DEACTIVATE, REACTIVATE)
# The audit entry each action ends with: made and verified, or not.
AUDIT_DONE = {DEACTIVATE: "user.deactivated", REACTIVATE: "user.reactivated"}
AUDIT_FAILED = {DEACTIVATE: "user.deactivation_failed", REACTIVATE: "user.reactivation_failed"}


class DeprovisionRefused(Exception):
    """The change may not be made; the message says why in plain words."""


@dataclass(frozen=True)
class Change:
    """One field change in Intacct, shown on the confirmation page and sent as is."""

    object_name: str
    label: str
    recordno: int
    field: str
    before: str
    after: str


def refusal(connection: Connection) -> str | None:
    """Why deprovisioning is not allowed for this connection, or None when it is."""
    if not connection.wants_deprovisioning:
        return (f"This organisation did not choose user deprovisioning in the setup (step {objects.STEP_USER}), so "
                "the connector changes nothing in Intacct.")
    run = connection.last_validation
    check = run.checks.filter(key="deprovisioning").first() if run else None
    if check is None or check.status != ValidationCheck.Status.PASSED:
        detail = f" ({check.message})" if check is not None and check.message else ""
        return ("The last validation did not show that the Intacct user may deactivate people: it needs "
                f"Company > Employees Edit and admin privileges Full{detail}. Fix that and re-validate first.")
    return None


def user_record(connection: Connection, recordno: int) -> Record | None:
    return Record.objects.filter(connection=connection, object_name="USERINFO", recordno=recordno,
                                 deleted_at__isnull=True).first()


def linked_employee(connection: Connection, user: Record) -> Record | None:
    """The employee with the user's e-mail address (Intacct links them through the contact)."""
    email = str(user.data.get("CONTACTINFO.EMAIL1") or "").strip()
    if not email:
        return None
    return Record.objects.filter(connection=connection, object_name="EMPLOYEE", deleted_at__isnull=True,
                                 **{"data__PERSONALINFO.EMAIL1__iexact": email}).order_by("recordno").first()


def plan(*, connection: Connection, user: Record, action: str, with_employee: bool,
         end_date: date | None = None) -> list[Change]:
    """Exactly what will change in Intacct."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    status = "inactive" if action == DEACTIVATE else "active"
    login = str(user.data.get("LOGINID") or user.key_value)
    changes = [Change("USERINFO", f"User {login}", user.recordno, "STATUS",
                      str(user.data.get("STATUS") or ""), status)]
    employee = linked_employee(connection, user) if with_employee else None
    if employee is not None:
        name = f"Employee {employee.data.get('EMPLOYEEID') or employee.recordno}"
        changes.append(Change("EMPLOYEE", name, employee.recordno, "STATUS", str(employee.data.get("STATUS") or ""),
                              status))
        new_end = timestamps.intacct_date(end_date or timezone.localdate()) if action == DEACTIVATE else ""
        changes.append(Change("EMPLOYEE", name, employee.recordno, "ENDDATE", str(employee.data.get("ENDDATE") or ""),
                              new_end))
    return changes


def _occurrence(connection: Connection, recordno: int, action: str) -> int:
    """How many times this action on this user was completed before: makes the next control ID distinct."""
    return AuditEvent.objects.filter(connection=connection, action=AUDIT_DONE[action],
                                     details__user_recordno=recordno).count()


def _refused_words(connection: Connection, object_name: str, exc: BaseException) -> str:
    """Plain words for a write Intacct refused (the same words validation and sync use)."""
    action = policy.action_for(exc)
    if action == policy.Action.STOP:
        return diagnosis.sign_in_refused(connection, exc, diagnosis.sign_in_history(connection)).message
    if action == policy.Action.RETRY:
        return diagnosis.unreachable(exc)
    if isinstance(exc, errors.PermissionDenied):
        facts = diagnosis.permission_facts(connection, roles=None, permissions=None)
        return diagnosis.deprovisioning_unavailable(connection, facts, needs_edit=object_name == "EMPLOYEE",
                                                    needs_admin=object_name == "USERINFO").message
    return f"Intacct refused the change; Intacct said: {diagnosis.intacct_said(exc)}"


def apply(*, connection: Connection, user: Record, action: str, with_employee: bool, by,
          ip: str | None = None, end_date: date | None = None, client=None) -> dict:
    """Make the change in Intacct, verify it by reading back, audit it; returns the audit details.

    Every attempt ends with an audit entry and words saying what happened, whatever is raised on the way."""
    reason = refusal(connection)
    if reason:
        raise DeprovisionRefused(reason)
    changes = plan(connection=connection, user=user, action=action, with_employee=with_employee, end_date=end_date)
    occurrence = _occurrence(connection, user.recordno, action)
    by_object: dict[tuple[str, int], dict[str, str]] = {}
    for change in changes:
        by_object.setdefault((change.object_name, change.recordno), {})[change.field] = change.after
    sent, answers, verified = [], [], True
    own_client = client is None
    try:
        if own_client:
            client = sync.client_for_sync(connection, sync.sync_settings_for(connection).concurrency_limit)
        for (object_name, recordno), values in by_object.items():
            control_id = f"ic-{action}-{connection.pk}-{object_name.lower()}-{recordno}-{occurrence}"
            payload = {"RECORDNO": str(recordno), **values}
            sent.append({"object": object_name, "values": payload, "control_id": control_id})
            try:
                # A lost answer (5xx, dropped connection, timeout) is settled by the client reading the
                # record back: "applied (confirmed by read-back)".
                outcome = client.update_confirmed(object_name, payload, control_id)
                answers.append({"object": object_name, "answer": outcome.answer})
            except errors.DuplicateRequest:
                answers.append({"object": object_name, "answer": "already applied (same control ID)"})
            except errors.IntacctError as exc:
                answers.append({"object": object_name, "answer": "refused", "errorno": exc.errorno,
                                "error": diagnosis.raw_words(exc),
                                "words": _refused_words(connection, object_name, exc)})
                verified = False
                break
            fields = ["RECORDNO", *values]
            back = client.read(object_name, [recordno], fields=fields)
            record = back[0] if back else {}
            ok = all(str(record.get(name) or "") == value for name, value in values.items())
            answers[-1]["read_back"] = {name: str(record.get(name) or "") for name in values}
            verified = verified and ok
            if ok:
                _refresh_local(connection, object_name, recordno, values)
    except Exception as exc:  # noqa: BLE001 - whatever stopped it, the attempt is audited with words
        verified = False
        if policy.action_for(exc) == policy.Action.INTERNAL:
            log.exception("deprovisioning of user %s stopped by an internal error", user.recordno)
            metrics.internal_error_count(source="deprovisioning")
            words = diagnosis.internal_error(exc)
        else:
            words = _refused_words(connection, "", exc)
        answers.append({"object": "", "answer": "stopped", "errorno": str(getattr(exc, "errorno", "") or
                                                                          type(exc).__name__), "words": words})
    finally:
        if own_client and client is not None:
            client.close()
    details = {"user_recordno": user.recordno, "login": str(user.data.get("LOGINID") or ""),
               "changes": [asdict(c) for c in changes], "sent": sent, "answers": answers, "verified": verified}
    services.audit_record(organisation=connection.organisation, connection=connection,
                          action=AUDIT_DONE[action] if verified else AUDIT_FAILED[action], user=by, ip=ip,
                          details=details)
    return details


def _refresh_local(connection: Connection, object_name: str, recordno: int, values: dict[str, str]) -> None:
    """Our copy shows the change at once; the next sync brings Intacct's own WHENMODIFIED."""
    with transaction.atomic():
        feed.reserve(connection.pk, 0)  # the feed's lock before the record's: the order every writer takes
        record = Record.objects.select_for_update().filter(connection=connection, object_name=object_name,
                                                          recordno=recordno).first()
        if record is not None:
            record.data = {**record.data, **values}
            record.save(update_fields=["data"])
            feed.touch(connection.pk, [record.pk])  # the platform's feed shows the change too
