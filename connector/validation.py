"""Validation of a connection: an ordered list of checks, each writing one result row as it finishes.

Two requests do the work: one getAPISession, then one request holding every read as a function of its
own (the user's record, its roles, its permissions, a one-row read per object in connector.objects), each
function judged on its own. The login checks read the sign-in's outcome in the order the gateway checks a
request (sender, company, subscription, IP address, sender authorisation, user login, entity), so the first
failure is named precisely and everything after it says why it was skipped. Then: the user is a Web
Services user, one read per object, the deprovisioning rights (read, never written), the company's
permission type, and notes for support on the session lifetime and rate limits.

What each error means is decided in connector.policy (transient: the run ends inconclusive and a retry is
scheduled by connector.monitoring) and worded in connector.diagnosis.
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

from connector import clients, diagnosis, metrics, monitoring, objects, policy, services, steps
from connector.diagnosis import Finding
from connector.intacct import errors, filters
from connector.intacct_rest import errors as rest_errors
from connector.intacct_rest import rest_name
from connector.models import Connection, SyncSettings, ValidationCheck, ValidationRun

log = logging.getLogger(__name__)

PASSED = ValidationCheck.Status.PASSED
FAILED = ValidationCheck.Status.FAILED
SKIPPED = ValidationCheck.Status.SKIPPED
WARNING = ValidationCheck.Status.WARNING

UNREACHABLE = "Intacct could not be reached just now; we will try again."
USER_FIELDS = ("LOGINID", "USERTYPE", "ADMIN", "STATUS", "LOGINDISABLED")
ENTITIES_KEY = "entities"
# One page of entities is plenty: the picker is for choosing among a company's entities, not browsing them.
ENTITIES_PAGE = 500


@dataclass
class Outcome:
    status: str
    message: str
    wizard_step: int | None = None
    our_side: bool = False
    error: BaseException | None = None
    # A transient fault: the run ends inconclusive and the remaining checks are skipped.
    inconclusive: bool = False
    finding: Finding | None = None

    @classmethod
    def failed(cls, finding: Finding, error: BaseException | None = None) -> Outcome:
        return cls(FAILED, finding.message, wizard_step=finding.step, our_side=finding.our_side, error=error,
                   finding=finding)

    @classmethod
    def unreachable(cls, error: BaseException | None) -> Outcome:
        return cls(SKIPPED, diagnosis.unreachable(error) if error is not None else UNREACHABLE, error=error,
                   inconclusive=True)


class Transient(Exception):
    """A lookup shared by several checks hit a transient error (the check ends inconclusive)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(type(error).__name__)
        self.error = error


def _probe_key(definition: objects.ObjectDefinition) -> str:
    return f"read:{definition.name}"


@dataclass
class Context:
    """What the checks of one run share: the connection, its client, the login and the batched reads."""

    connection: Connection
    client: Any = None
    login_error: Exception | None = None
    logged_in: bool = False
    login_attempted: bool = False
    session: Any = None
    stop_reason: str = ""
    history: diagnosis.SignInHistory = field(default_factory=diagnosis.SignInHistory)
    lookups: dict = field(default_factory=dict)
    known_facts: diagnosis.PermissionFacts | None = None

    def login(self) -> Exception | None:
        if not self.login_attempted:
            self.login_attempted = True
            try:
                self.session = self.client.get_api_session()
                self.logged_in = True
            except errors.IntacctError as exc:
                self.login_error = exc
        return self.login_error

    def _fetch_all(self) -> None:
        """Every read of the run as one request of several functions (each answered on its own)."""
        connection, client = self.connection, self.client
        calls = [
            client.read_by_name_call("userinfo", "USERINFO", [connection.user_id], fields=USER_FIELDS),
            client.query_call("roles", "USERROLES", ["USERID", "ROLENAME"],
                              filter=filters.EqualTo("USERID", connection.user_id), page_size=100),
            client.get_user_permissions_call("permissions", connection.user_id),
        ]
        for definition in objects.OBJECTS:
            if definition.legacy_get_list:
                calls.append(client.get_list_call(_probe_key(definition), definition.name,
                                                  fields=[definition.key_field], page_size=1))
            else:
                calls.append(client.query_call(_probe_key(definition), definition.name, [definition.key_field]))
        if not connection.entity_id:
            # Signed in at the top level: list the company's entities in the same request, for the picker.
            calls.append(client.query_call(ENTITIES_KEY, "LOCATIONENTITY", ["RECORDNO", "LOCATIONID", "NAME"],
                                           page_size=ENTITIES_PAGE))
        try:
            outcomes = client.batch(calls)
        except errors.IntacctError as exc:
            for call in calls:
                self.lookups[call.key] = (None, exc)
            return
        for key, outcome in outcomes.items():
            if outcome.error is not None:
                self.lookups[key] = (None, outcome.error)
            elif key == "permissions":
                self.lookups[key] = (outcome.permissions, None)
            else:
                self.lookups[key] = (outcome.records, None)

    def lookup(self, key: str) -> tuple[Any, BaseException | None]:
        """(value, None) or (None, error) of a batched read; raises Transient if its error is transient."""
        if key not in self.lookups:
            self._fetch_all()
        value, error = self.lookups.get(key, (None, errors.InvalidResponse(f"no answer for {key}",
                                                                           permanent=False)))
        if policy.is_transient(error):
            raise Transient(error)
        return value, error

    def entities(self) -> list[dict[str, str]] | None:
        """The entities listed at a top-level sign-in ([] for a company without any), None when not read."""
        if not self.logged_in or ENTITIES_KEY not in self.lookups:
            return None
        records, error = self.lookups[ENTITIES_KEY]
        if error is not None:
            return None
        return [{"id": str(r.get("LOCATIONID") or ""), "name": str(r.get("NAME") or "")} for r in records]

    def userinfo(self) -> tuple[dict | None, BaseException | None]:
        """The web services user's own USERINFO record."""
        users, error = self.lookup("userinfo")
        return (dict(users[0]) if users else None), error

    def roles(self) -> list[str] | None:
        """Names of the roles assigned to the web services user, or None where the API does not show them."""
        records, error = self.lookup("roles")
        if error is not None:
            return None
        return sorted({str(r.get("ROLENAME") or "").strip() for r in records} - {""})

    def permissions(self) -> tuple[list | None, BaseException | None]:
        """The web services user's permissions from getUserPermissions."""
        return self.lookup("permissions")

    def facts(self) -> diagnosis.PermissionFacts:
        """The company's permission type and the user's roles, as Intacct shows them."""
        if self.known_facts is None:
            permissions, error = self.permissions()
            self.known_facts = diagnosis.permission_facts(self.connection, roles=self.roles(),
                                                          permissions=None if error else permissions)
        return self.known_facts


@dataclass(frozen=True)
class Check:
    key: str
    label: str
    run: Callable[[Any], Outcome]  # given a Context (XML) or a RestContext (REST)


def _guarded(run: Callable[[Any], Outcome]) -> Callable[[Any], Outcome]:
    """Turn a transient error in a shared lookup into an inconclusive outcome."""
    def guarded(ctx: Any) -> Outcome:
        try:
            return run(ctx)
        except Transient as exc:
            return Outcome.unreachable(exc.error)
    return guarded


# --- Login stages ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LoginStage:
    key: str
    label: str
    causes: frozenset[str]


Cause = ValidationRun.Cause
LOGIN_STAGES: tuple[LoginStage, ...] = (
    LoginStage("sender", "Our Sender ID and password accepted", frozenset({Cause.OUR_SENDER_REFUSED})),
    LoginStage("company", "Company ID found", frozenset({Cause.COMPANY_NOT_FOUND, Cause.COMPANY_EXPIRED})),
    LoginStage("subscription", "Web Services subscribed", frozenset({Cause.SUBSCRIPTION_OFF})),
    LoginStage("ip_address", "Our IP address allowed", frozenset({Cause.IP_BLOCKED})),
    LoginStage("sender_authorised", "Sender ID authorised for this company", frozenset({Cause.SENDER_NOT_AUTHORISED})),
    LoginStage("login", "Web Services user signs in",
               frozenset({Cause.PASSWORD_RESET, Cause.PASSWORD_ENTERED_REFUSED, Cause.PASSWORD_REFUSED,
                          Cause.USER_DEACTIVATED, Cause.USER_LOCKED_OUT, Cause.SIGN_IN_REFUSED})),
    LoginStage("entity", "Entity ID valid", frozenset({Cause.ENTITY_REFUSED})),
)
# The stage a cause we cannot place is blamed on, with Intacct's own words attached.
_UNPLACED_STAGE = next(i for i, stage in enumerate(LOGIN_STAGES) if stage.key == "login")


def _failing_stage(cause: str) -> int:
    for index, stage in enumerate(LOGIN_STAGES):
        if cause in stage.causes:
            return index
    return _UNPLACED_STAGE


def login_check_key(cause: str) -> str:
    """The sign-in check a refused sign-in is reported under (a sync names the same check)."""
    return LOGIN_STAGES[_failing_stage(cause)].key


def _login_stage_check(position: int) -> Callable[[Context], Outcome]:
    def run(ctx: Context) -> Outcome:
        exc = ctx.login()
        if exc is None:
            return Outcome(PASSED, "Accepted.")
        if policy.is_transient(exc):
            return Outcome.unreachable(exc)
        finding = diagnosis.sign_in_refused(ctx.connection, exc, ctx.history)
        failing = _failing_stage(finding.cause)
        if position < failing:
            return Outcome(PASSED, "Accepted.")
        if position > failing:
            return Outcome(SKIPPED, f"Skipped because \"{LOGIN_STAGES[failing].label}\" failed.")
        return Outcome.failed(finding, exc)

    return run


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
        return Outcome.failed(diagnosis.not_web_services_user(ctx.connection))
    return Outcome(PASSED, f"\"{user_id}\" is a Web Services user (its password never expires).")


# --- Object read probes ---------------------------------------------------------------------

def _read_probe(definition: objects.ObjectDefinition) -> Callable[[Context], Outcome]:
    def run(ctx: Context) -> Outcome:
        if not ctx.logged_in:
            return Outcome(SKIPPED, _NOT_SIGNED_IN)
        _, error = ctx.lookup(_probe_key(definition))
        if error is None:
            return Outcome(PASSED, f"Can read {definition.label.lower()}.")
        return Outcome.failed(diagnosis.read_refused(ctx.connection, definition, error, ctx.facts), error)

    return _guarded(run)


# --- Deprovisioning (write rights, read only) -----------------------------------------------

def _deprovisioning_check(ctx: Context) -> Outcome:
    connection = ctx.connection
    if not connection.wants_deprovisioning:
        return Outcome(SKIPPED, "Not needed: user deprovisioning is off.")
    if not ctx.logged_in:
        return Outcome(SKIPPED, _NOT_SIGNED_IN)
    employees = objects.OBJECTS_BY_NAME["EMPLOYEE"]
    # Never test a write by writing: read the user's rights and its admin privileges instead.
    permissions, error = ctx.permissions()
    record, user_error = ctx.userinfo()
    error = error or user_error
    if error is not None:
        return Outcome(WARNING, "We could not read the user's permissions to check deprovisioning; Intacct said: "
                       f"{diagnosis.intacct_said(error)}", wizard_step=objects.STEP_USER, error=error)
    has_edit = any(p.application == employees.application and p.policy == employees.policy
                   and employees.write_right in p.rights for p in permissions or [])
    is_admin = str(((record or {}).get("ADMIN")) or "").strip().lower() == "full"
    if has_edit and is_admin:
        return Outcome(PASSED, "Can deactivate people who leave.")
    return Outcome.failed(diagnosis.deprovisioning_unavailable(connection, ctx.facts(), needs_edit=not has_edit,
                                                               needs_admin=not is_admin))


# --- Permission type, session and rate limits (notes, never failures) ------------------------

def _permission_model_check(ctx: Context) -> Outcome:
    if not ctx.logged_in:
        return Outcome(SKIPPED, _NOT_SIGNED_IN)
    facts = ctx.facts()
    if not facts.reported:
        return Outcome(SKIPPED, "Skipped because Intacct's answers do not show whether this company's "
                       "permissions are role-based or user-based.")
    found = diagnosis.MODEL_WORDS[facts.model]
    held = f" (user \"{ctx.connection.user_id}\" holds the role {diagnosis.quoted(facts.roles)})" if facts.roles else ""
    changed = (f" They were {diagnosis.MODEL_WORDS[facts.changed_from]} when this company was last checked."
               if facts.changed_from else "")
    chosen = ctx.connection.permission_model
    missing_role = _suggested_role_missing(ctx.connection, facts)
    if missing_role:
        return Outcome(WARNING, missing_role, wizard_step=objects.STEP_USER)
    if not chosen or chosen == facts.model:
        as_chosen = f", as in step {objects.STEP_PERMISSIONS}." if chosen else "."
        text = f"This company's permissions are {found}{held}" + as_chosen
        return Outcome(WARNING if changed else PASSED, text + changed,
                       wizard_step=objects.STEP_PERMISSIONS if changed else None)
    if facts.model == objects.ROLE_BASED:
        advice = (f"Follow step {objects.STEP_PERMISSIONS}'s role-based instructions instead: permissions go on a "
                  f"role ({diagnosis.MENU_ROLES}) that is assigned to the Web Services user, not on the user.")
    else:
        advice = (f"Follow step {objects.STEP_PERMISSIONS}'s user-based instructions instead: permissions go on the "
                  f"Web Services user itself ({steps.USER.menu} > permissions).")
    return Outcome(WARNING, f"In step {objects.STEP_PERMISSIONS} you chose {diagnosis.MODEL_WORDS[chosen]} "
                   "permissions, but this company's "
                   f"are {found}{held}.{changed} {advice}", wizard_step=objects.STEP_PERMISSIONS)


def _suggested_role_missing(connection: Connection, facts: diagnosis.PermissionFacts) -> str:
    """Words when a user created with the wizard's suggested names does not hold the role it suggested ("" if it does).

    Only for the suggested user ID: an admin who chose their own names may have chosen their own role too.
    """
    role = settings.SUGGESTED_ROLE_NAME
    if (facts.model != objects.ROLE_BASED or facts.roles is None
            or connection.user_id.lower() != objects.suggested_user_id(connection.organisation.slug).lower()
            or any(name.lower() == role.lower() for name in facts.roles)):
        return ""
    holds = f"holds the role {diagnosis.quoted(facts.roles)}" if facts.roles else "holds no role"
    return (f"User \"{connection.user_id}\" {holds}, not the role \"{role}\" suggested in step "
            f"{steps.PERMISSIONS.number}. In Intacct open {steps.USER.menu}, edit \"{connection.user_id}\" and "
            f"assign \"{role}\" (step {steps.USER.number}).")


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
    stats = ctx.client.stats.snapshot()
    retries = stats.get("retries", 0)
    if retries:
        warn = True
        notes.append(f"Intacct asked us to slow down or failed for a moment {retries} time(s) during this "
                     "check: the company may be near its limit of requests at once (2 for most companies); "
                     "other integrations may be using it.")
    else:
        notes.append("No rate limiting seen (most companies allow 2 requests at once).")
    if stats.get("requests"):
        notes.append(f"This check made {stats['requests']} request(s) to Intacct.")
    return Outcome(WARNING if warn else PASSED, " ".join(notes))


CHECKS: tuple[Check, ...] = (
    *(Check(stage.key, stage.label, _login_stage_check(position))
      for position, stage in enumerate(LOGIN_STAGES)),
    Check("web_services_user", "The user is a Web Services user", _guarded(_web_services_user_check)),
    *(Check(diagnosis.read_check_key(definition), f"Can read {definition.label.lower()}",
            _read_probe(definition))
      for definition in objects.OBJECTS),
    Check("deprovisioning", "Write permission for deprovisioning", _guarded(_deprovisioning_check)),
    Check("permission_model", f"Permission type matches step {objects.STEP_PERMISSIONS}",
          _guarded(_permission_model_check)),
    Check("limits", "Session lifetime and rate limits", _guarded(_limits_check)),
)

LOGIN_KEYS = {stage.key for stage in LOGIN_STAGES}
CHECK_LABELS = {check.key: check.label for check in CHECKS}


# --- REST connections ------------------------------------------------------------------------
# The same checks over the REST API, under the same keys and wizard steps where they apply: our application's
# credentials ("sender"), the token ("login": the refresh token of "Connect with Sage Intacct", or the Web
# Services user's client-credentials token), the company-wide settings (subscription, IP filter, sender
# authorisation: REST answers each with an undocumented 403, so they are inferred from every read being refused),
# one read per object, deprovisioning, the permission type. One token request, then one query per object.

@dataclass
class RestContext:
    """What the checks of one REST run share: the connection, its REST client, the token and the reads."""

    connection: Connection
    client: Any = None
    token_error: Exception | None = None
    token_attempted: bool = False
    stop_reason: str = ""
    reads: dict[str, BaseException | None] = field(default_factory=dict)
    known_facts: diagnosis.PermissionFacts | None = None
    user_record: dict[str, Any] | None = None
    user_error: BaseException | None = None
    user_read: bool = False

    @property
    def logged_in(self) -> bool:
        return self.token() is None

    def token(self) -> Exception | None:
        """Get an access token now (a code grant's refresh token is spent and rotated: proof it still works)."""
        if not self.token_attempted:
            self.token_attempted = True
            try:
                self.client.renew_access_token()
            except rest_errors.IntacctError as exc:
                self.token_error = exc
        return self.token_error

    def read(self, definition: objects.ObjectDefinition) -> BaseException | None:
        """None when one record of the object could be read, else the error (raises Transient when transient)."""
        if definition.name not in self.reads:
            name = rest_name(definition.name)
            if name is None:
                error: BaseException | None = rest_errors.UnknownObject(f"{definition.name} has no REST name")
            else:
                try:
                    self.client.query_page(name.path, [name.key_field], size=1)
                    error = None
                except rest_errors.IntacctError as exc:
                    error = exc
            self.reads[definition.name] = error
        error = self.reads[definition.name]
        if error is not None and policy.is_transient(error):
            raise Transient(error)
        return error

    def company_refusal(self) -> BaseException | None:
        """The error when every object's read was refused with 403 (the company, not one permission), else None."""
        found = [self.read(definition) for definition in objects.OBJECTS]
        if found and all(isinstance(e, rest_errors.PermissionDenied) for e in found):
            return found[0]
        return None

    def user(self) -> tuple[dict[str, Any] | None, BaseException | None]:
        """The client-credentials user's own record (company-config/user), as REST names its fields."""
        if not self.user_read:
            self.user_read = True
            name = rest_name("USERINFO")
            assert name is not None
            try:
                page = self.client.query_page(name.path, name.rest_fields(["LOGINID", "ADMIN", "LOGINDISABLED"]),
                                              filters=[{"$eq": {"id": self.connection.user_id}}], size=1)
                self.user_record = page.records[0] if page.records else None
            except rest_errors.IntacctError as exc:
                if policy.is_transient(exc):
                    raise Transient(exc) from None
                self.user_error = exc
        return self.user_record, self.user_error

    def facts(self) -> diagnosis.PermissionFacts:
        """REST shows neither the user's roles nor its rights: the type last seen, else the admin's choice."""
        if self.known_facts is None:
            self.known_facts = diagnosis.permission_facts(self.connection, roles=None, permissions=None)
        return self.known_facts

    def entities(self) -> list[dict[str, str]] | None:
        return None


def _rest_token_stage(key: str) -> Callable[[RestContext], Outcome]:
    def run(ctx: RestContext) -> Outcome:
        exc = ctx.token()
        if exc is None:
            return Outcome(PASSED, "Accepted.")
        if policy.is_transient(exc):
            return Outcome.unreachable(exc)
        finding = diagnosis.rest_sign_in_refused(ctx.connection, exc)
        failing = "sender" if finding.cause == Cause.OUR_SENDER_REFUSED else "login"
        if key == failing:
            return Outcome.failed(finding, exc)
        if key == "sender":
            return Outcome(PASSED, "Accepted.")
        return Outcome(SKIPPED, "Skipped because Intacct did not accept our application's client ID and secret.")

    return run


_NOT_AUTHORISED = "Skipped because no access token was obtained."


def _rest_company_stage(key: str) -> Callable[[RestContext], Outcome]:
    def run(ctx: RestContext) -> Outcome:
        if not ctx.logged_in:
            return Outcome(SKIPPED, _NOT_AUTHORISED)
        refusal = ctx.company_refusal()
        if refusal is None:
            return Outcome(PASSED, "Accepted (Intacct answered our reads).")
        if key == "subscription":
            return Outcome.failed(diagnosis.company_refuses_api(ctx.connection, refusal), refusal)
        return Outcome(SKIPPED, "Skipped: Intacct refused every read (see the check above).")

    return _guarded(run)


def _rest_read_probe(definition: objects.ObjectDefinition) -> Callable[[RestContext], Outcome]:
    def run(ctx: RestContext) -> Outcome:
        if not ctx.logged_in:
            return Outcome(SKIPPED, _NOT_AUTHORISED)
        if ctx.company_refusal() is not None:
            return Outcome(SKIPPED, "Skipped: Intacct refused every read (see above).")
        error = ctx.read(definition)
        if error is None:
            return Outcome(PASSED, f"Can read {definition.label.lower()}.")
        return Outcome.failed(diagnosis.read_refused(ctx.connection, definition, error, ctx.facts), error)

    return _guarded(run)


def _approved(ctx: RestContext) -> bool:
    return ctx.connection.rest_grant == Connection.RestGrant.AUTHORIZATION_CODE


def _rest_web_services_user_check(ctx: RestContext) -> Outcome:
    if not ctx.logged_in:
        return Outcome(SKIPPED, _NOT_AUTHORISED)
    if _approved(ctx):
        return Outcome(PASSED, "Connected with Sage Intacct: no password is stored, so none can expire.")
    record, error = ctx.user()
    if error is not None or record is None:
        return Outcome(SKIPPED, "Skipped because Intacct did not show the user's record.", error=error)
    if record.get("isLoginDisabled") in (False, "false"):
        return Outcome.failed(diagnosis.not_web_services_user(ctx.connection))
    return Outcome(PASSED, f"\"{ctx.connection.user_id}\" is a Web Services user (its password never expires).")


def _rest_deprovisioning_check(ctx: RestContext) -> Outcome:
    connection = ctx.connection
    if not connection.wants_deprovisioning:
        return Outcome(SKIPPED, "Not needed: user deprovisioning is off.")
    if not ctx.logged_in:
        return Outcome(SKIPPED, _NOT_AUTHORISED)
    unread = ("Intacct's REST API does not show a user's rights, so whether it may edit employees is only known at "
              "the first deactivation.")
    if _approved(ctx):
        return Outcome(WARNING, "Deactivations are made as the Intacct user who approved the connection. " + unread,
                       wizard_step=objects.STEP_USER)
    record, error = ctx.user()
    if error is not None or record is None:
        return Outcome(WARNING, "We could not read the user's record to check deprovisioning; Intacct said: "
                       f"{diagnosis.intacct_said(error)}", wizard_step=objects.STEP_USER, error=error)
    if str(record.get("adminPrivileges") or "").strip().lower() != "full":
        return Outcome.failed(diagnosis.deprovisioning_unavailable(connection, ctx.facts(), needs_edit=False,
                                                                   needs_admin=True))
    return Outcome(WARNING, "The user has admin privileges Full. " + unread, wizard_step=objects.STEP_USER)


def _rest_permission_model_check(ctx: RestContext) -> Outcome:
    if not ctx.logged_in:
        return Outcome(SKIPPED, _NOT_AUTHORISED)
    return Outcome(SKIPPED, "Skipped because Intacct's REST answers do not show whether this company's permissions "
                   "are role-based or user-based.")


def _rest_limits_check(ctx: RestContext) -> Outcome:
    if not ctx.logged_in:
        return Outcome(SKIPPED, _NOT_AUTHORISED)
    notes: list[str] = []
    tokens = ctx.client.tokens
    if tokens is not None:
        minutes = max(0, round((tokens.expires_at - time.time()) / 60))
        notes.append(f"Access tokens last about {minutes} minutes; we renew them before they expire.")
    stats = ctx.client.stats.snapshot()
    retries = stats.get("retries", 0)
    if retries:
        notes.append(f"Intacct asked us to slow down or failed for a moment {retries} time(s) during this check: "
                     "the company may be near its limit of requests at once; other integrations may be using it.")
    else:
        notes.append("No rate limiting seen (most companies allow 2 requests at once).")
    notes.append(f"This check made {stats.get('requests', 0)} request(s) to Intacct.")
    return Outcome(WARNING if retries else PASSED, " ".join(notes))


_REST_LABELS = {
    "sender": "Our application's client ID and secret accepted",
    "login": "Access token obtained",
    "subscription": "Web Services subscribed",
    "ip_address": "Our IP address allowed",
    "sender_authorised": "Sender ID authorised for this company",
}
REST_CHECKS: tuple[Check, ...] = (
    Check("sender", _REST_LABELS["sender"], _rest_token_stage("sender")),
    Check("login", _REST_LABELS["login"], _rest_token_stage("login")),
    *(Check(key, _REST_LABELS[key], _rest_company_stage(key)) for key in ("subscription", "ip_address",
                                                                          "sender_authorised")),
    Check("web_services_user", "The user is a Web Services user",
          _guarded(_rest_web_services_user_check)),
    *(Check(diagnosis.read_check_key(definition), f"Can read {definition.label.lower()}",
            _rest_read_probe(definition))
      for definition in objects.OBJECTS),
    Check("deprovisioning", "Write permission for deprovisioning",
          _guarded(_rest_deprovisioning_check)),
    Check("permission_model", f"Permission type matches step {objects.STEP_PERMISSIONS}",
          _rest_permission_model_check),
    Check("limits", "Token lifetime and rate limits", _rest_limits_check),
)
CHECK_LABELS.update({key: label for key, label in _REST_LABELS.items() if key not in CHECK_LABELS})


def checks_for(connection: Connection) -> tuple[Check, ...]:
    """The checks a connection's validation runs (XML or REST)."""
    return REST_CHECKS if connection.is_rest else CHECKS


# --- Running --------------------------------------------------------------------------------

def concurrency_limit(connection: Connection) -> int:
    """The company's request limit, shared with its syncs (a check during a sync must not make one request too many)."""
    limit = SyncSettings.objects.filter(connection=connection).values_list("concurrency_limit", flat=True).first()
    return max(1, limit or settings.SYNC_CONCURRENCY_LIMIT)


def run_validation(*, run_id: int) -> ValidationRun | None:
    """Run every check for a queued run, writing one row per check as it finishes. The run always ends."""
    claimed = ValidationRun.objects.filter(id=run_id, status=ValidationRun.Status.QUEUED).update(
        status=ValidationRun.Status.RUNNING, started_at=timezone.now())
    if claimed != 1:
        return None
    run = ValidationRun.objects.select_related("connection", "connection__organisation").get(id=run_id)
    connection = run.connection
    outcomes: list[tuple[Check, Outcome]] = []
    if not connection.has_credentials:
        return _finish(run, [], summary=f"No credentials to validate: enter them in step {objects.STEP_CONNECT}.",
                       failed_step=objects.STEP_CONNECT)
    checks = checks_for(connection)
    ctx: Any
    if connection.is_rest:
        ctx = RestContext(connection=connection)
        make_client: Callable[..., Any] = clients.rest_client_for
    else:
        ctx = Context(connection=connection, history=diagnosis.sign_in_history(connection))
        make_client = clients.client_for
    try:
        with make_client(connection, limit=concurrency_limit(connection)) as client:
            ctx.client = client
            for position, check in enumerate(checks, start=1):
                outcomes.append((check, _run_one(ctx, check, position, run)))
    except Exception as exc:
        action = policy.action_for(exc)
        done = {check.key for check, _ in outcomes}
        if action == policy.Action.RETRY:
            # Before any check ran (no slot came free, no key to decrypt the password): try again later.
            reason = diagnosis.unreachable(exc)
            for position, check in enumerate(checks, start=1):
                if check.key not in done:
                    _record(run, check, position, Outcome(SKIPPED, reason, error=exc, inconclusive=True), 0)
            return _finish(run, outcomes, summary=reason, inconclusive=True)
        # A bug of ours: the run ends failed naming it; the connection's status is left as it was.
        log.exception("validation run %s stopped by an internal error", run.id)
        metrics.internal_error_count(source="validation")
        words = diagnosis.internal_error(exc)
        for position, check in enumerate(checks, start=1):
            if check.key not in done:
                _record(run, check, position, Outcome(SKIPPED, f"Not checked: {words}"), 0)
        return _finish(run, outcomes, summary=words, internal=True)
    return _finish(run, outcomes, ctx=ctx)


def _run_one(ctx: Context | RestContext, check: Check, position: int, run: ValidationRun) -> Outcome:
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
            failed_step: int | None = None, inconclusive: bool = False, internal: bool = False,
            ctx: Context | RestContext | None = None) -> ValidationRun:
    failures = [(check, outcome) for check, outcome in outcomes if outcome.status == FAILED]
    inconclusive = inconclusive or any(outcome.inconclusive for _, outcome in outcomes)
    connection = run.connection
    retry_delay: int | None = None
    new_status: str | None = None
    message = ""
    # A connection that never worked stays "in setup" whatever fails: it is not broken, it is not done yet.
    ever_connected = connection.status in Connection.LIVE_STATUSES
    if failures:
        first_check, first = failures[0]
        finding = first.finding
        run.status = ValidationRun.Status.FAILED
        run.failed_step = first.wizard_step
        run.failed_check = first_check.key
        run.summary = (summary or first.message)[:500]
        run.cause = finding.cause if finding else ValidationRun.Cause.NONE
        message = first.message
        if ever_connected:
            # Any sign-in refusal stops everything (broken); otherwise the worst finding decides.
            broken = any(o.finding and o.finding.status == Connection.Status.BROKEN for _, o in failures)
            new_status = Connection.Status.BROKEN if broken else Connection.Status.NEEDS_ATTENTION
        else:
            new_status = Connection.Status.IN_SETUP
    elif internal:
        run.status = ValidationRun.Status.FAILED
        run.summary = summary[:500]
    elif inconclusive:
        run.status = ValidationRun.Status.INCONCLUSIVE
        retry_delay = monitoring.retry_delay(attempt=run.attempt)
        if retry_delay is None:
            run.summary = (summary or "Intacct could not be reached; we tried several times and will try "
                           "again at the next scheduled check.")[:500]
        else:
            run.retry_at = timezone.now() + timedelta(seconds=retry_delay)
            run.summary = (summary or "Intacct could not be reached just now, so the result is not known yet. "
                           "We will try again automatically.")[:500]
    elif summary:
        run.status = ValidationRun.Status.FAILED
        run.summary = summary
        run.failed_step = failed_step
    else:
        warnings = sum(1 for _, outcome in outcomes if outcome.status == WARNING)
        run.status = ValidationRun.Status.PASSED
        run.summary = (f"Every check passed, with {warnings} note(s) below." if warnings
                       else "Every check passed.")
        new_status = Connection.Status.CONNECTED
    run.finished_at = timezone.now()
    if ctx is not None and ctx.client is not None:
        run.requests = ctx.client.stats.snapshot()["requests"]
    facts = ctx.known_facts if ctx is not None else None
    with transaction.atomic():
        run.save(update_fields=["status", "summary", "failed_step", "failed_check", "cause", "retry_at",
                                "finished_at", "requests"])
        previous = services.connection_record_validation(
            connection=connection, run=run, new_status=new_status, cause=run.cause, message=message,
            permission_model=facts.model if facts is not None and facts.reported else "")
        entities = ctx.entities() if ctx is not None else None
        if entities is not None:
            services.connection_record_entities(connection=connection, entities=entities)
    if retry_delay is not None:
        monitoring.retry_schedule(run=run, delay=retry_delay)
    monitoring.validation_notify(run=run, previous_status=previous)
    if new_status == Connection.Status.CONNECTED and previous != Connection.Status.CONNECTED:
        # Working (first time, or after a fix): sync now, not at the next hourly schedule.
        services.sync_request(connection=Connection.objects.get(pk=connection.pk), reason="connected")
    return run


def connection_validate_later(*, connection_id: int, trigger: str, attempt: int = 1,
                              after_run_id: int | None = None) -> ValidationRun | None:
    """Create and run a scheduled or retry validation now, unless it has become pointless."""
    connection = Connection.objects.filter(id=connection_id).first()
    if connection is None or not connection.has_credentials:
        return None
    if connection.status in (Connection.Status.NOT_STARTED, Connection.Status.DISCONNECTED):
        return None
    runs = ValidationRun.objects.filter(connection=connection)
    # Else a worker killed mid-run would stop monitoring for good.
    monitoring.abandoned_runs_close(connection_id=connection.id)
    if runs.filter(status__in=monitoring.ACTIVE_RUN_STATUSES).exists():
        return None  # someone is validating it right now
    due = monitoring.connections_due().filter(id=connection_id)
    if trigger == ValidationRun.Trigger.SCHEDULED and not due.exists():
        return None  # validated since the schedule picked it
    if after_run_id is not None and runs.filter(id__gt=after_run_id).exists():
        return None  # a newer run replaced the inconclusive one
    run = services.validation_run_create(connection=connection, trigger=trigger, attempt=attempt)
    return run_validation(run_id=run.id)
