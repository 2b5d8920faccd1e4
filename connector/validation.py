"""Validation of a connection: an ordered list of checks, each writing one result row as it finishes.

The login checks share one getAPISession call and read its outcome in the order the gateway checks a
request (sender, company, subscription, IP address, sender authorisation, user login, entity), so the
first failure is named precisely and everything after it says why it was skipped. Then: the user is a
Web Services user, one one-row read per object in connector.objects, the deprovisioning rights (read,
never written), the company's permission model against the branch chosen in step 4, and notes for
support on the session lifetime and rate limits. A transient error ends the run inconclusive and a retry
is scheduled (connector.monitoring).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from connector import gateway, monitoring, objects, services
from connector.intacct import F, errors
from connector.models import Connection, ValidationCheck, ValidationRun

log = logging.getLogger(__name__)

PASSED = ValidationCheck.Status.PASSED
FAILED = ValidationCheck.Status.FAILED
SKIPPED = ValidationCheck.Status.SKIPPED
WARNING = ValidationCheck.Status.WARNING


def is_transient(exc: BaseException | None) -> bool:
    """The client marks every error permanent or not; anything not permanent (rate limits, outages,
    an expired session after the one re-login, an unreadable answer to a read) ends a run inconclusive."""
    return isinstance(exc, errors.IntacctError) and not exc.permanent


UNREACHABLE = "Intacct could not be reached just now; we will try again."


@dataclass
class Outcome:
    status: str
    message: str
    wizard_step: int | None = None
    our_side: bool = False
    error: errors.IntacctError | None = None
    # A transient fault: the run ends inconclusive and the remaining checks are skipped.
    inconclusive: bool = False


class Transient(Exception):
    """A lookup shared by several checks hit a transient error (the check ends inconclusive)."""

    def __init__(self, error: errors.IntacctError) -> None:
        super().__init__(type(error).__name__)
        self.error = error


@dataclass
class Context:
    """What the checks of one run share: the connection, its client, the login and cached lookups."""

    connection: Connection
    client: Any = None
    login_error: Exception | None = None
    logged_in: bool = False
    login_attempted: bool = False
    session: Any = None
    stop_reason: str = ""
    lookups: dict = field(default_factory=dict)

    def login(self) -> Exception | None:
        if not self.login_attempted:
            self.login_attempted = True
            try:
                self.session = self.client.get_api_session()
                self.logged_in = True
            except errors.IntacctError as exc:
                self.login_error = exc
        return self.login_error

    def lookup(self, key: str, fetch: Callable[[], Any]) -> tuple[Any, errors.IntacctError | None]:
        """(value, None) or (None, error) of a read shared by several checks; raises Transient if transient."""
        if key not in self.lookups:
            try:
                self.lookups[key] = (fetch(), None)
            except errors.IntacctError as exc:
                self.lookups[key] = (None, exc)
        value, error = self.lookups[key]
        if is_transient(error):
            raise Transient(error)
        return value, error

    def userinfo(self) -> tuple[dict | None, errors.IntacctError | None]:
        """The web services user's own USERINFO record."""
        def fetch() -> dict | None:
            users = self.client.read_by_name("USERINFO", [self.connection.user_id],
                                             fields=["LOGINID", "USERTYPE", "ADMIN", "STATUS", "LOGINDISABLED"])
            return dict(users[0]) if users else None
        return self.lookup("userinfo", fetch)

    def roles(self) -> list[str] | None:
        """Names of the roles assigned to the web services user, or None where the API does not show them."""
        def fetch() -> list[str]:
            page = self.client.query_page("USERROLES", fields=["USERID", "ROLENAME"],
                                          filter=F.EqualTo("USERID", self.connection.user_id), page_size=100)
            return sorted({str(r.get("ROLENAME") or "").strip() for r in page.records} - {""})
        value, error = self.lookup("roles", fetch)
        return None if error is not None else value

    def permissions(self) -> tuple[list | None, errors.IntacctError | None]:
        """The web services user's permissions from getUserPermissions."""
        return self.lookup("permissions", lambda: self.client.get_user_permissions(self.connection.user_id))


@dataclass(frozen=True)
class Check:
    key: str
    label: str
    run: Callable[[Context], Outcome]


def _guarded(run: Callable[[Context], Outcome]) -> Callable[[Context], Outcome]:
    """Turn a transient error in a shared lookup into an inconclusive outcome."""
    def guarded(ctx: Context) -> Outcome:
        try:
            return run(ctx)
        except Transient as exc:
            return Outcome(SKIPPED, UNREACHABLE, error=exc.error, inconclusive=True)
        except errors.IntacctError as exc:
            if not is_transient(exc):
                raise
            return Outcome(SKIPPED, UNREACHABLE, error=exc, inconclusive=True)
    return guarded


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
    if getattr(exc, "needs_login_for_api", False) or "requires a user login" in (exc.description2 or "").lower():
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
    return ("Intacct did not accept the user ID and password. Use the Web Services user's ID (not an "
            "e-mail address) and the password Intacct e-mailed when the user was created; if an Intacct "
            "admin reset it since, use the new one (step 6).")


def _entity_message(connection, exc) -> str:
    return (f"The entity ID \"{connection.entity_id}\" is not valid for this company or user. Leave it "
            "empty to connect at the top level, or copy the exact entity ID (step 6).")


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
               (errors.LoginFailed, errors.UserInactive, errors.UserLockedOut), objects.STEP_CONNECT,
               _login_message),
    LoginStage("entity", "Entity ID valid", (errors.InvalidEntity,), objects.STEP_CONNECT, _entity_message),
)
# The stage an error we cannot place is blamed on, with Intacct's own words attached.
_UNPLACED_STAGE = next(i for i, stage in enumerate(LOGIN_STAGES) if stage.key == "login")


def _failing_stage(exc: Exception) -> int:
    for index, stage in enumerate(LOGIN_STAGES):
        if isinstance(exc, stage.failures):
            return index
    return _UNPLACED_STAGE


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
        if is_transient(exc):
            return Outcome(SKIPPED, UNREACHABLE, error=exc, inconclusive=True)
        failing = _failing_stage(exc)
        if position < failing:
            return Outcome(PASSED, "Accepted.")
        if position > failing:
            return Outcome(SKIPPED, f"Skipped because \"{LOGIN_STAGES[failing].label}\" failed.")
        step = _login_step_for(exc) if stage.key == "login" else stage.step
        message = stage.message(ctx.connection, exc)
        if not isinstance(exc, stage.failures):
            message = f"Intacct refused the sign-in: {_raw_words(exc)}"
        return Outcome(FAILED, message, wizard_step=step, our_side=stage.key == "sender", error=exc)

    return run


def _raw_words(exc: errors.IntacctError) -> str:
    parts = [getattr(exc, name, "") or "" for name in ("description", "description2", "correction")]
    return " ".join(part for part in parts if part).strip() or "no explanation given."


_NOT_SIGNED_IN = "Skipped because the sign-in did not succeed."


# --- The user itself --------------------------------------------------------------------------

def _web_services_user_check(ctx: Context) -> Outcome:
    if not ctx.logged_in:
        return Outcome(SKIPPED, _NOT_SIGNED_IN)
    user_id = ctx.connection.user_id
    record, error = ctx.userinfo()
    if error is not None or record is None:
        return Outcome(SKIPPED, "Skipped because Intacct did not show the user's record.", error=error)
    # LOGINDISABLED is true for a Web Services user: it cannot sign in to the web interface.
    if str(record.get("LOGINDISABLED") or "").strip().lower() in ("false", "f"):
        return Outcome(FAILED, f"\"{user_id}\" is an ordinary Intacct user, not a Web Services user: its "
                       "password expires every 90 days and the connection would then stop. In Intacct open "
                       "Company > Admin > Web Services users, create a Web Services user and give it the "
                       "permissions (step 5).", wizard_step=objects.STEP_USER)
    return Outcome(PASSED, f"\"{user_id}\" is a Web Services user (its password never expires).")


# --- Object read probes ---------------------------------------------------------------------

def _read_probe(definition: objects.ObjectDefinition) -> Callable[[Context], Outcome]:
    def run(ctx: Context) -> Outcome:
        if not ctx.logged_in:
            return Outcome(SKIPPED, _NOT_SIGNED_IN)
        step = definition.permission_step(ctx.connection.effective_permission_model)
        try:
            if definition.legacy_get_list:
                next(iter(ctx.client.get_list(definition.name, fields=[definition.key_field], page_size=1)),
                     None)
            else:
                ctx.client.query_page(definition.name, fields=[definition.key_field], page_size=1)
        except errors.PermissionDenied as exc:
            message, step = _permission_message(ctx, definition, step)
            return Outcome(FAILED, message, wizard_step=step, error=exc)
        except errors.UnknownObject as exc:
            return Outcome(FAILED, f"This company has no {definition.label.lower()} ({definition.name}): "
                           f"check that {definition.application} is subscribed in Company > Admin > "
                           "Subscriptions.", wizard_step=objects.STEP_SUBSCRIBE, error=exc)
        except errors.IntacctError as exc:
            if is_transient(exc):
                raise
            return Outcome(FAILED, f"Reading {definition.label.lower()} failed: {_raw_words(exc)}",
                           wizard_step=step, error=exc)
        return Outcome(PASSED, f"Can read {definition.label.lower()}.")

    return _guarded(run)


def _quoted(names: list[str]) -> str:
    return ", ".join(f"\"{name}\"" for name in names)


def _permission_message(ctx: Context, definition: objects.ObjectDefinition, step: int) -> tuple[str, int]:
    """The one-line fix for a denied read, naming the right, the role (if Intacct shows it) and the menu."""
    connection = ctx.connection
    right = f"{definition.application} > {definition.policy} {definition.read_right}"
    tick = f"tick {definition.policy}: {definition.read_right} under {definition.application}"
    if connection.effective_permission_model == objects.USER_BASED:
        return (f"The user \"{connection.user_id}\" lacks {right}. In Intacct open Company > Admin > Web "
                f"Services users, edit the user's permissions and {tick} (step {step})."), step
    roles = ctx.roles()
    if roles == []:
        return (f"The user \"{connection.user_id}\" has no role assigned, so it lacks {right}. In Intacct open "
                f"Company > Admin > Web Services users, edit \"{connection.user_id}\" and assign the role "
                f"that holds the permissions of step 4 (step {objects.STEP_USER})."), objects.STEP_USER
    if roles:
        which = (f"The role {_quoted(roles)} assigned to user" if len(roles) == 1
                 else f"None of the roles {_quoted(roles)} assigned to user")
        verb = "lacks" if len(roles) == 1 else "has"
        return (f"{which} \"{connection.user_id}\" {verb} {right}. In Intacct open Company > Admin > Roles > "
                f"{_quoted(roles[:1])}, open {definition.application} and tick {definition.policy}: "
                f"{definition.read_right} (step {step})."), step
    return (f"The role assigned to user \"{connection.user_id}\" lacks {right}. In Intacct open Company > "
            f"Admin > Roles, edit the role, open {definition.application} and tick {definition.policy}: "
            f"{definition.read_right} (step {step}). Check that this role is the one assigned to the user."), step


# --- Deprovisioning (write rights, read only) -----------------------------------------------

def _deprovisioning_check(ctx: Context) -> Outcome:
    connection = ctx.connection
    if not connection.wants_deprovisioning:
        return Outcome(SKIPPED, "Not needed: user deprovisioning is off.")
    if not ctx.logged_in:
        return Outcome(SKIPPED, _NOT_SIGNED_IN)
    employees = objects.OBJECTS_BY_NAME["EMPLOYEE"]
    employees_step = employees.permission_step(connection.effective_permission_model)
    # Never test a write by writing: read the user's rights and its admin privileges instead.
    permissions, error = ctx.permissions()
    record, user_error = ctx.userinfo()
    error = error or user_error
    if error is not None:
        return Outcome(WARNING, f"We could not read the user's permissions to check deprovisioning: "
                       f"{_raw_words(error)}", wizard_step=objects.STEP_USER, error=error)
    missing: list[tuple[str, int]] = []
    has_edit = any(p.application == employees.application and p.policy == employees.policy
                   and employees.write_right in p.rights for p in permissions or [])
    if not has_edit:
        right = f"{employees.application} > {employees.policy} {employees.write_right}"
        missing.append((right, employees_step))
    admin = str(((record or {}).get("ADMIN")) or "").strip().lower()
    if admin != "full":
        missing.append(("admin privileges Full", objects.STEP_USER))
    if not missing:
        return Outcome(PASSED, "Can deactivate people who leave.")
    names = " and ".join(name for name, _ in missing)
    return Outcome(FAILED, f"For deprovisioning, the user \"{connection.user_id}\" needs {names}. "
                   f"Set it as shown in step {missing[0][1]}, or switch deprovisioning off in step 5.",
                   wizard_step=missing[0][1])


# --- Permission model, session and rate limits (notes, never failures) ------------------------

_MODEL_WORDS = {objects.ROLE_BASED: "role-based", objects.USER_BASED: "user-based"}


def _detected_permission_model(ctx: Context) -> tuple[str | None, list[str]]:
    """(model, roles): role-based when the user holds roles, user-based when it holds rights without any."""
    roles = ctx.roles()
    if roles:
        return objects.ROLE_BASED, roles
    if roles == []:
        permissions, error = ctx.permissions()
        if error is None and permissions:
            return objects.USER_BASED, []
    return None, []


def _permission_model_check(ctx: Context) -> Outcome:
    if not ctx.logged_in:
        return Outcome(SKIPPED, _NOT_SIGNED_IN)
    detected, roles = _detected_permission_model(ctx)
    if detected is None:
        return Outcome(SKIPPED, "Skipped because Intacct's answers do not show whether this company's "
                       "permissions are role-based or user-based.")
    found = _MODEL_WORDS[detected]
    held = f" (user \"{ctx.connection.user_id}\" holds the role {_quoted(roles)})" if roles else ""
    chosen = ctx.connection.permission_model
    if not chosen or chosen == detected:
        return Outcome(PASSED, f"This company's permissions are {found}{held}, as in step 4."
                       if chosen else f"This company's permissions are {found}{held}.")
    if detected == objects.ROLE_BASED:
        advice = ("Follow step 4's role-based instructions instead: permissions go on a role (Company > Admin "
                  "> Roles) that is assigned to the Web Services user, not on the user.")
    else:
        advice = ("Follow step 4's user-based instructions instead: permissions go on the Web Services user "
                  "itself (Company > Admin > Web Services users > permissions).")
    return Outcome(WARNING, f"In step 4 you chose {_MODEL_WORDS[chosen]} permissions, but this company's are "
                   f"{found}{held}. {advice}", wizard_step=objects.STEP_PERMISSIONS)


def _limits_check(ctx: Context) -> Outcome:
    if not ctx.logged_in:
        return Outcome(SKIPPED, _NOT_SIGNED_IN)
    notes: list[str] = []
    warn = False
    expires_at = getattr(ctx.session, "expires_at", None)
    if expires_at is not None:
        lifetime = max(0, int((expires_at - timezone.now()).total_seconds()))
        notes.append(f"Sessions last about {round(lifetime / 60)} minutes after the last request.")
        if lifetime < settings.VALIDATION_SHORT_SESSION_SECONDS:
            warn = True
            notes.append("That is short: long syncs will sign in again more often.")
    else:
        notes.append("Intacct did not say how long sessions last.")
    retries = ctx.client.stats.snapshot().get("retries", 0) if hasattr(ctx.client, "stats") else 0
    if retries:
        warn = True
        notes.append(f"Intacct asked us to slow down or failed for a moment {retries} time(s) during this "
                     "check: the company may be near its limit of requests at once (2 for most companies); "
                     "other integrations may be using it.")
    else:
        notes.append("No rate limiting seen (most companies allow 2 requests at once).")
    return Outcome(WARNING if warn else PASSED, " ".join(notes))


CHECKS: tuple[Check, ...] = (
    *(Check(stage.key, stage.label, _login_stage_check(position))
      for position, stage in enumerate(LOGIN_STAGES)),
    Check("web_services_user", "The user is a Web Services user", _guarded(_web_services_user_check)),
    *(Check(f"read_{definition.name.lower()}", f"Can read {definition.label.lower()}",
            _read_probe(definition))
      for definition in objects.OBJECTS),
    Check("deprovisioning", "Write permission for deprovisioning", _guarded(_deprovisioning_check)),
    Check("permission_model", "Permission type matches step 4", _guarded(_permission_model_check)),
    Check("limits", "Session lifetime and rate limits", _guarded(_limits_check)),
)

LOGIN_KEYS = {stage.key for stage in LOGIN_STAGES}
# A failure of these means Intacct rejected the credentials themselves: the connection is broken.
CREDENTIAL_KEYS = {"company", "login", "entity"}
CHECK_LABELS = {check.key: check.label for check in CHECKS}


# --- Running --------------------------------------------------------------------------------

def _concurrency_limit(connection: Connection) -> int:
    """The company's request limit, shared with its syncs (a check during a sync must not make one request too many)."""
    from connector.models import SyncSettings

    limit = SyncSettings.objects.filter(connection=connection).values_list("concurrency_limit", flat=True).first()
    return max(1, limit or settings.SYNC_CONCURRENCY_LIMIT)


def run_validation(*, run_id: int) -> ValidationRun | None:
    """Run every check for a queued run, writing one row per check as it finishes."""
    claimed = ValidationRun.objects.filter(id=run_id, status=ValidationRun.Status.QUEUED).update(
        status=ValidationRun.Status.RUNNING, started_at=timezone.now())
    if claimed != 1:
        return None
    run = ValidationRun.objects.select_related("connection", "connection__organisation").get(id=run_id)
    connection = run.connection
    ctx = Context(connection=connection)
    outcomes: list[tuple[Check, Outcome]] = []
    if not connection.has_credentials:
        return _finish(run, [], summary="No credentials to validate: enter them in step 6.",
                       failed_step=objects.STEP_CONNECT)
    try:
        with gateway.client_for(connection, limit=_concurrency_limit(connection)) as client:
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
    errorno = str(getattr(error, "errorno", "") or "")
    description = getattr(error, "description", "") or ""
    if error is not None and not errorno:
        # HTTP and transport failures carry no Intacct error: give support the status and the (redacted) text.
        status = getattr(error, "http_status", None)
        errorno = f"HTTP {status}" if status else type(error).__name__
        description = description or str(error)
    ValidationCheck.objects.create(
        run=run, position=position, key=check.key, label=check.label, status=outcome.status,
        duration_ms=duration_ms, message=outcome.message, wizard_step=outcome.wizard_step,
        our_side=outcome.our_side,
        errorno=errorno[:60],
        description=description,
        description2=getattr(error, "description2", "") or "",
        correction=getattr(error, "correction", "") or "",
    )


def _finish(run: ValidationRun, outcomes: list[tuple[Check, Outcome]], *, summary: str = "",
            failed_step: int | None = None, inconclusive: bool = False) -> ValidationRun:
    failures = [(check, outcome) for check, outcome in outcomes if outcome.status == FAILED]
    inconclusive = inconclusive or any(outcome.inconclusive for _, outcome in outcomes)
    connection = run.connection
    retry_delay: int | None = None
    if failures:
        first_check, first = failures[0]
        run.status = ValidationRun.Status.FAILED
        run.failed_step = first.wizard_step
        run.failed_check = first_check.key
        run.summary = (summary or first.message)[:500]
        run.cause = monitoring.cause_of(connection=connection, failures=failures)
        new_status = (Connection.Status.BROKEN if first_check.key in CREDENTIAL_KEYS
                      else Connection.Status.NEEDS_ATTENTION)
    elif inconclusive:
        run.status = ValidationRun.Status.INCONCLUSIVE
        retry_delay = monitoring.retry_delay(attempt=run.attempt)
        if retry_delay is None:
            run.summary = (summary or "Intacct could not be reached; we tried several times and will try "
                           "again at the next scheduled check.")
        else:
            run.retry_at = timezone.now() + timedelta(seconds=retry_delay)
            run.summary = (summary or "Intacct could not be reached just now, so the result is not known yet. "
                           "We will try again automatically.")
        new_status = None
    elif summary:
        run.status = ValidationRun.Status.FAILED
        run.summary = summary
        run.failed_step = failed_step
        new_status = None
    else:
        warnings = sum(1 for _, outcome in outcomes if outcome.status == WARNING)
        run.status = ValidationRun.Status.PASSED
        run.summary = (f"Every check passed, with {warnings} note(s) below." if warnings
                       else "Every check passed.")
        new_status = Connection.Status.CONNECTED
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save(update_fields=["status", "summary", "failed_step", "failed_check", "cause", "retry_at",
                                "finished_at"])
        previous = services.connection_record_validation(connection=connection, run=run, new_status=new_status)
    if retry_delay is not None:
        monitoring.retry_schedule(run=run, delay=retry_delay)
    monitoring.validation_notify(run=run, previous_status=previous)
    return run
