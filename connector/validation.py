"""Validation of a connection: an ordered list of checks, each writing one result row.

The login checks share one getAPISession call and read its outcome in the order the gateway checks a
request (sender, company, subscription, IP address, sender authorisation, user login), so the first
failure is named precisely and everything after it says why it was skipped. Then one one-row read per
object in connector.objects. Issue 5 adds checks by adding entries to CHECKS.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from connector import gateway, objects, services
from connector.intacct import errors
from connector.models import Connection, ValidationCheck, ValidationRun

log = logging.getLogger(__name__)

PASSED = ValidationCheck.Status.PASSED
FAILED = ValidationCheck.Status.FAILED
SKIPPED = ValidationCheck.Status.SKIPPED
WARNING = ValidationCheck.Status.WARNING

TRANSIENT_ERRORS = (errors.RateLimited, errors.GatewayUnavailable, errors.RequestTimeout,
                    errors.ConnectionDropped)


@dataclass
class Outcome:
    status: str
    message: str
    wizard_step: int | None = None
    our_side: bool = False
    error: errors.IntacctError | None = None
    # A transient fault: the run ends inconclusive and the remaining checks are skipped.
    inconclusive: bool = False


@dataclass
class Context:
    """What the checks of one run share: the connection, its client, and the login outcome."""

    connection: Connection
    client: object | None = None
    login_error: Exception | None = None
    logged_in: bool = False
    login_attempted: bool = False
    stop_reason: str = ""
    notes: dict = field(default_factory=dict)

    def login(self) -> Exception | None:
        if not self.login_attempted:
            self.login_attempted = True
            try:
                self.client.get_api_session()
                self.logged_in = True
            except errors.IntacctError as exc:
                self.login_error = exc
        return self.login_error


@dataclass(frozen=True)
class Check:
    key: str
    label: str
    run: Callable[[Context], Outcome]


# --- Login stages ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LoginStage:
    key: str
    label: str
    failures: tuple[type[errors.IntacctError], ...]
    step: int | None
    message: Callable[[Connection, errors.IntacctError], str]


def _sender_message(connection, exc) -> str:
    return ("Intacct did not accept our own Sender ID and password. This is on our side, not yours: "
            "our support team has been told. Nothing for you to change.")


def _company_message(connection, exc) -> str:
    return (f"Intacct has no company with the ID \"{connection.company_id}\". Check the company ID you "
            "type on Intacct's sign-in page (it is not the company name) and enter it again in step 6.")


def _subscription_message(connection, exc) -> str:
    return ("Web Services is not switched on for this company. In Intacct open Company > Admin > "
            "Subscriptions and subscribe to Web Services (step 1).")


def _ip_message(connection, exc) -> str:
    return ("Intacct's IP address filter blocked our server. In Intacct open Company > Setup > Company > "
            "Security > IP address filters and add our addresses from step 2, or remove the filter.")


def _sender_authorisation_message(connection, exc) -> str:
    if "requires a user login" in (exc.description2 or "").lower():
        return ("Our Sender ID is authorised but has \"Needs login for API\" switched on. Open Company > "
                "Setup > Company > Security > Web Services authorizations and switch it off (step 3).")
    return ("Our Sender ID is not authorised for this company. Open Company > Setup > Company > Security > "
            "Web Services authorizations and add it exactly as shown in step 3 (it is case-sensitive).")


def _login_message(connection, exc) -> str:
    if isinstance(exc, errors.UserInactive):
        return (f"The user \"{connection.user_id}\" is inactive. In Intacct open Company > Admin > Web "
                "Services users, edit the user and set Status to Active (step 5).")
    if isinstance(exc, errors.UserLockedOut):
        return (f"The user \"{connection.user_id}\" is locked out. Ask an Intacct administrator to unlock "
                "it in Company > Admin > Web Services users (step 5).")
    if isinstance(exc, errors.InvalidEntity):
        return (f"The entity ID \"{connection.entity_id}\" is not valid for this company or user. Leave it "
                "empty to connect at the top level, or copy the exact entity ID (step 6).")
    return ("Intacct did not accept the user ID and password. Use the Web Services user's ID (not an "
            "e-mail address) and the password Intacct e-mailed when the user was created; if an Intacct "
            "admin reset it since, use the new one (step 6).")


LOGIN_STAGES: tuple[LoginStage, ...] = (
    LoginStage("sender", "Our Sender ID and password accepted", (errors.SenderCredentialsInvalid,),
               None, _sender_message),
    LoginStage("company", "Company ID found", (errors.CompanyNotFound,), objects.STEP_CONNECT,
               _company_message),
    LoginStage("subscription", "Web Services subscribed", (errors.WebServicesNotSubscribed,),
               objects.STEP_SUBSCRIBE, _subscription_message),
    LoginStage("ip_address", "Our IP address allowed", (errors.IPAddressRejected,), objects.STEP_IP_FILTER,
               _ip_message),
    LoginStage("sender_authorised", "Sender ID authorised for this company", (errors.SenderNotAuthorized,),
               objects.STEP_SENDER, _sender_authorisation_message),
    LoginStage("login", "Web Services user signs in",
               (errors.LoginFailed, errors.UserInactive, errors.UserLockedOut, errors.InvalidEntity),
               objects.STEP_CONNECT, _login_message),
)


def _failing_stage(exc: Exception) -> int:
    for index, stage in enumerate(LOGIN_STAGES):
        if isinstance(exc, stage.failures):
            return index
    # An error we cannot place: blame the last stage, with Intacct's own words attached.
    return len(LOGIN_STAGES) - 1


def _login_step_for(exc: Exception) -> int:
    if isinstance(exc, (errors.UserInactive, errors.UserLockedOut)):
        return objects.STEP_USER
    return objects.STEP_CONNECT


def _login_stage_check(position: int) -> Callable[[Context], Outcome]:
    stage = LOGIN_STAGES[position]

    def run(ctx: Context) -> Outcome:
        exc = ctx.login()
        if exc is None:
            return Outcome(PASSED, "Accepted.")
        if isinstance(exc, TRANSIENT_ERRORS):
            return Outcome(SKIPPED, "Intacct could not be reached just now; we will try again.",
                           error=exc, inconclusive=True)
        failing = _failing_stage(exc)
        if position < failing:
            return Outcome(PASSED, "Accepted.")
        if position > failing:
            return Outcome(SKIPPED, f"Skipped because \"{LOGIN_STAGES[failing].label}\" failed.")
        step = _login_step_for(exc) if stage.key == "login" else stage.step
        message = stage.message(ctx.connection, exc)
        if stage.key == "login" and not isinstance(exc, stage.failures):
            message = f"Intacct refused the sign-in: {_raw_words(exc)}"
        return Outcome(FAILED, message, wizard_step=step, our_side=stage.key == "sender", error=exc)

    return run


def _raw_words(exc: errors.IntacctError) -> str:
    parts = [getattr(exc, name, "") or "" for name in ("description", "description2", "correction")]
    return " ".join(part for part in parts if part).strip() or "no explanation given."


# --- Object read probes ---------------------------------------------------------------------

def _read_probe(definition: objects.ObjectDefinition) -> Callable[[Context], Outcome]:
    def run(ctx: Context) -> Outcome:
        if not ctx.logged_in:
            return Outcome(SKIPPED, "Skipped because the sign-in did not succeed.")
        step = definition.permission_step(ctx.connection.effective_permission_model)
        try:
            if definition.legacy_get_list:
                next(iter(ctx.client.get_list(definition.name, fields=[definition.key_field], page_size=1)),
                     None)
            else:
                ctx.client.query_page(definition.name, fields=[definition.key_field], page_size=1)
        except errors.PermissionDenied as exc:
            return Outcome(FAILED, _permission_message(ctx.connection, definition, step), wizard_step=step,
                           error=exc)
        except errors.UnknownObject as exc:
            return Outcome(FAILED, f"This company has no {definition.label.lower()} ({definition.name}): "
                           f"check that {definition.application} is subscribed in Company > Admin > "
                           "Subscriptions.", wizard_step=objects.STEP_SUBSCRIBE, error=exc)
        except TRANSIENT_ERRORS as exc:
            return Outcome(SKIPPED, "Intacct could not be reached just now; we will try again.", error=exc,
                           inconclusive=True)
        except errors.IntacctError as exc:
            return Outcome(FAILED, f"Reading {definition.label.lower()} failed: {_raw_words(exc)}",
                           wizard_step=step, error=exc)
        return Outcome(PASSED, f"Can read {definition.label.lower()}.")

    return run


def _permission_message(connection: Connection, definition: objects.ObjectDefinition, step: int) -> str:
    right = f"{definition.application} > {definition.policy} {definition.read_right}"
    if connection.effective_permission_model == objects.USER_BASED:
        return (f"The user \"{connection.user_id}\" lacks {right}. In Intacct open Company > Admin > Web "
                f"Services users, edit the user's permissions and tick {definition.policy}: "
                f"{definition.read_right} under {definition.application} (step {step}).")
    return (f"The role assigned to user \"{connection.user_id}\" lacks {right}. In Intacct open Company > "
            f"Admin > Roles, edit the role, open {definition.application} and tick {definition.policy}: "
            f"{definition.read_right} (step {step}). Check that this role is the one assigned to the user.")


def _deprovisioning_check(ctx: Context) -> Outcome:
    connection = ctx.connection
    if not connection.wants_deprovisioning:
        return Outcome(SKIPPED, "Not needed: user deprovisioning is off.")
    if not ctx.logged_in:
        return Outcome(SKIPPED, "Skipped because the sign-in did not succeed.")
    employees = objects.OBJECTS_BY_NAME["EMPLOYEE"]
    employees_step = employees.permission_step(connection.effective_permission_model)
    # Never test a write by writing: read the user's rights and its admin privileges instead.
    try:
        permissions = ctx.client.get_user_permissions(connection.user_id)
        users = ctx.client.read_by_name("USERINFO", [connection.user_id], fields=["LOGINID", "ADMIN"])
    except TRANSIENT_ERRORS as exc:
        return Outcome(SKIPPED, "Intacct could not be reached just now; we will try again.", error=exc,
                       inconclusive=True)
    except errors.IntacctError as exc:
        return Outcome(WARNING, f"We could not read the user's permissions to check deprovisioning: "
                       f"{_raw_words(exc)}", wizard_step=objects.STEP_USER, error=exc)
    missing: list[tuple[str, int]] = []
    has_edit = any(p.application == employees.application and p.policy == employees.policy
                   and employees.write_right in p.rights for p in permissions)
    if not has_edit:
        right = f"{employees.application} > {employees.policy} {employees.write_right}"
        missing.append((right, employees_step))
    admin = str((users[0].get("ADMIN") if users else "") or "").strip().lower()
    if admin != "full":
        missing.append(("admin privileges Full", objects.STEP_USER))
    if not missing:
        return Outcome(PASSED, "Can deactivate people who leave.")
    names = " and ".join(name for name, _ in missing)
    return Outcome(FAILED, f"For deprovisioning, the user \"{connection.user_id}\" needs {names}. "
                   f"Set it as shown in step {missing[0][1]}, or switch deprovisioning off in step 5.",
                   wizard_step=missing[0][1])


CHECKS: tuple[Check, ...] = (
    *(Check(stage.key, stage.label, _login_stage_check(position))
      for position, stage in enumerate(LOGIN_STAGES)),
    *(Check(f"read_{definition.name.lower()}", f"Can read {definition.label.lower()}",
            _read_probe(definition))
      for definition in objects.OBJECTS),
    Check("deprovisioning", "Write permission for deprovisioning", _deprovisioning_check),
)

LOGIN_KEYS = {stage.key for stage in LOGIN_STAGES}
CREDENTIAL_KEYS = {"company", "login"}


# --- Running --------------------------------------------------------------------------------

def run_validation(*, run_id: int) -> ValidationRun | None:
    """Run every check for a queued run, writing one row per check as it finishes."""
    claimed = ValidationRun.objects.filter(id=run_id, status=ValidationRun.Status.QUEUED).update(
        status=ValidationRun.Status.RUNNING, started_at=timezone.now())
    if claimed != 1:
        return None
    run = ValidationRun.objects.select_related("connection").get(id=run_id)
    connection = run.connection
    ctx = Context(connection=connection)
    outcomes: list[tuple[Check, Outcome]] = []
    if not connection.has_credentials:
        return _finish(run, [], summary="No credentials to validate: enter them in step 6.",
                       failed_step=objects.STEP_CONNECT)
    try:
        with gateway.client_for(connection) as client:
            ctx.client = client
            for position, check in enumerate(CHECKS, start=1):
                outcome = _run_one(ctx, check, position, run)
                outcomes.append((check, outcome))
    except Exception:
        # Never let an exception text reach a log line: it might quote a request.
        log.error("validation run %s stopped by an unexpected error", run.id)
        done = {check.key for check, _ in outcomes}
        for position, check in enumerate(CHECKS, start=1):
            if check.key not in done:
                _record(run, check, position,
                        Outcome(SKIPPED, "Skipped: the validation stopped unexpectedly."), 0)
        return _finish(run, outcomes, summary="The validation stopped unexpectedly; please try again.",
                       inconclusive=True)
    return _finish(run, outcomes)


def _run_one(ctx: Context, check: Check, position: int, run: ValidationRun) -> Outcome:
    started = time.monotonic()
    if ctx.stop_reason:
        outcome = Outcome(SKIPPED, ctx.stop_reason)
    else:
        outcome = check.run(ctx)
        if outcome.inconclusive:
            ctx.stop_reason = "Skipped because Intacct could not be reached; we will try again."
    _record(run, check, position, outcome, int((time.monotonic() - started) * 1000))
    return outcome


def _record(run: ValidationRun, check: Check, position: int, outcome: Outcome, duration_ms: int) -> None:
    error = outcome.error
    ValidationCheck.objects.create(
        run=run, position=position, key=check.key, label=check.label, status=outcome.status,
        duration_ms=duration_ms, message=outcome.message, wizard_step=outcome.wizard_step,
        our_side=outcome.our_side,
        errorno=str(getattr(error, "errorno", "") or "")[:60],
        description=getattr(error, "description", "") or "",
        description2=getattr(error, "description2", "") or "",
        correction=getattr(error, "correction", "") or "",
    )


def _finish(run: ValidationRun, outcomes: list[tuple[Check, Outcome]], *, summary: str = "",
            failed_step: int | None = None, inconclusive: bool = False) -> ValidationRun:
    failures = [(check, outcome) for check, outcome in outcomes if outcome.status == FAILED]
    inconclusive = inconclusive or any(outcome.inconclusive for _, outcome in outcomes)
    connection = run.connection
    if failures:
        first_check, first = failures[0]
        run.status = ValidationRun.Status.FAILED
        run.failed_step = first.wizard_step
        run.summary = summary or first.message
        new_status = (Connection.Status.BROKEN if first_check.key in CREDENTIAL_KEYS
                      else Connection.Status.NEEDS_ATTENTION)
    elif inconclusive:
        run.status = ValidationRun.Status.INCONCLUSIVE
        run.summary = summary or "Intacct could not be reached just now; the result is not known yet."
        new_status = None
    elif summary:
        run.status = ValidationRun.Status.FAILED
        run.summary = summary
        run.failed_step = failed_step
        new_status = None
    else:
        run.status = ValidationRun.Status.PASSED
        run.summary = "Every check passed."
        new_status = Connection.Status.CONNECTED
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save(update_fields=["status", "summary", "failed_step", "finished_at"])
        services.connection_record_validation(connection=connection, run=run, new_status=new_status)
    return run
