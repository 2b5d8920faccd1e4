"""Plain words for every way a connection fails: one public function per cause.

Validation, sync, deprovisioning, the e-mails, the status API and the dashboard all take their words from
here, so an admin reads the same sentence wherever a cause shows up. Each function returns a
:class:`Finding`: the cause (stored on runs and on the connection), the words, the wizard step to revisit,
the connection status it puts the connection in, and whether the fix is on our side.

The permission words follow the permission type Intacct reports for the company (roles held by the user:
role-based; rights without roles: user-based), not the branch the admin chose in step 4; when Intacct's
answers cannot tell, the type last seen, then the admin's choice, decide.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from connector import crypto, limits, objects, policy, steps
from connector.intacct import errors
from connector.intacct_rest import errors as rest_errors
from connector.models import Connection, ValidationRun

Cause = ValidationRun.Cause
BROKEN = Connection.Status.BROKEN
NEEDS_ATTENTION = Connection.Status.NEEDS_ATTENTION

# Intacct's menus, as the admin clicks through them: each step's from the step table (steps.X.menu), and this.
MENU_ROLES = "Company > Admin > Roles"

MODEL_WORDS = {objects.ROLE_BASED: "role-based", objects.USER_BASED: "user-based"}

# The short name of each cause, for e-mail subjects and lists ("… stopped working: password refused").
CAUSE_SUBJECTS: dict[str, str] = {
    Cause.PASSWORD_RESET: "password refused (reset in Intacct?)",
    Cause.PASSWORD_ENTERED_REFUSED: "the new password was refused",
    Cause.PASSWORD_REFUSED: "password refused",
    Cause.USER_DEACTIVATED: "user deactivated",
    Cause.USER_LOCKED_OUT: "user locked out",
    Cause.PERMISSION_REMOVED: "permission missing",
    Cause.ROLE_NOT_ASSIGNED: "no role assigned",
    Cause.DEPROVISIONING_UNAVAILABLE: "deprovisioning unavailable",
    Cause.SENDER_NOT_AUTHORISED: "Sender ID not authorised",
    Cause.SUBSCRIPTION_OFF: "Web Services subscription off",
    Cause.IP_BLOCKED: "IP address filter",
    Cause.COMPANY_NOT_FOUND: "company ID not found",
    Cause.ENTITY_REFUSED: "entity refused",
    Cause.COMPANY_EXPIRED: "company expired",
    Cause.OUR_SENDER_REFUSED: "our Sender ID refused",
    Cause.NOT_WEB_SERVICES_USER: "not a Web Services user",
    Cause.OBJECT_UNAVAILABLE: "object not available",
    Cause.SIGN_IN_REFUSED: "sign-in refused",
    Cause.READ_FAILED: "a read failed",
    Cause.TOKEN_REVOKED: "authorisation revoked in Intacct",
    Cause.REFRESH_TOKEN_EXPIRED: "authorisation expired",
    Cause.CONSENT_WITHDRAWN: "our application was disconnected in Intacct",
    Cause.COMPANY_REFUSES_API: "the company refuses our application",
}

# The one fix of every token problem of a REST connection, as the connection page's button says it.
RECONNECT = "Reconnect with Sage Intacct"
TOKEN_CAUSES = frozenset({Cause.TOKEN_REVOKED, Cause.REFRESH_TOKEN_EXPIRED, Cause.CONSENT_WITHDRAWN})


@dataclass(frozen=True)
class Finding:
    """What is wrong, in plain words, and where to fix it."""

    cause: str
    message: str
    step: int | None
    status: str = NEEDS_ATTENTION
    our_side: bool = False


@dataclass(frozen=True)
class PermissionFacts:
    """What Intacct showed of the user's permissions: the company's permission type and the user's roles."""

    model: str                        # role-based or user-based: as Intacct reports it, else as last known
    roles: list[str] | None           # the roles the user holds; None when Intacct did not show them
    reported: bool = False            # True when ``model`` comes from Intacct's answers of this run
    changed_from: str = ""            # the type seen before, when Intacct now reports another


def raw_words(exc: BaseException | None) -> str:
    """Intacct's own words for an error (description, description2, correction), or the error's text."""
    if exc is None:
        return ""
    parts = [getattr(exc, name, "") or "" for name in ("description", "description2", "correction")]
    text = " ".join(part for part in parts if part).strip()
    return text or str(exc) or type(exc).__name__


def intacct_said(exc: BaseException | None) -> str:
    """"XL03000006 — Sign-in information is incorrect" (number and words, without empty separators)."""
    if exc is None:
        return ""
    number = str(getattr(exc, "errorno", "") or "")
    words = raw_words(exc)
    return " — ".join(part for part in (number, words) if part)


def permission_facts(connection: Connection, *, roles: list[str] | None,
                     permissions: Sequence | None) -> PermissionFacts:
    """The company's permission type from the user's roles and rights (see the module's docstring)."""
    detected: str | None = None
    if roles:
        detected = objects.ROLE_BASED
    elif roles == [] and permissions:
        detected = objects.USER_BASED
    known = connection.intacct_permission_model
    if detected is None:
        return PermissionFacts(model=known or connection.effective_permission_model, roles=roles)
    changed = known if known and known != detected else ""
    return PermissionFacts(model=detected, roles=roles, reported=True, changed_from=changed)


def quoted(names: Sequence[str]) -> str:
    return ", ".join(f"\"{name}\"" for name in names)


def _model_change_note(facts: PermissionFacts) -> str:
    if not facts.changed_from:
        return ""
    return (f" This company's permission type changed from {MODEL_WORDS[facts.changed_from]} to "
            f"{MODEL_WORDS[facts.model]} since it was connected ({steps.PERMISSIONS.menu}).")


def _right(definition: objects.ObjectDefinition, right: str | None) -> str:
    return f"{definition.application} > {definition.policy} {right}"


def permission_missing(connection: Connection, definition: objects.ObjectDefinition, facts: PermissionFacts,
                       *, right: str | None = None) -> Finding:
    """A read (or, with ``right``, a write) permission the user lacks, worded for the company's permission type."""
    right = right or definition.read_right
    needed = _right(definition, right)
    user = connection.user_id
    note = _model_change_note(facts)
    if facts.model == objects.USER_BASED:
        return Finding(Cause.PERMISSION_REMOVED,
                       f"The user \"{user}\" lacks {needed}. This company's permissions are user-based: in Intacct "
                       f"open {steps.USER.menu}, edit \"{user}\", open its permissions and tick {definition.policy}: "
                       f"{right} under {definition.application} (step {objects.STEP_USER}).{note}",
                       objects.STEP_USER)
    roles = facts.roles
    if roles == []:
        # No role and (as far as Intacct shows) no rights of its own: the role was taken off the user or deleted,
        # or the company was switched to user-based permissions, which leaves a user without rights. Intacct's
        # answers look the same for both, so both fixes are named.
        return Finding(Cause.ROLE_NOT_ASSIGNED,
                       f"The user \"{user}\" holds no role and no rights of its own, so it lacks {needed}. Either its "
                       f"role was taken off it or deleted: in Intacct open {steps.USER.menu}, edit \"{user}\" and "
                       f"assign the role that holds the permissions of step {objects.STEP_PERMISSIONS} (create it "
                       f"again in {MENU_ROLES} if it was deleted); or this company's permission type was switched to "
                       f"user-based ({steps.PERMISSIONS.menu}): then tick the permissions on \"{user}\" itself (step "
                       f"{objects.STEP_USER}).{note}", objects.STEP_USER)
    tick = f"open {definition.application} and tick {definition.policy}: {right}"
    if roles:
        which = (f"The role {quoted(roles)} assigned to user" if len(roles) == 1
                 else f"None of the roles {quoted(roles)} assigned to user")
        verb = "lacks" if len(roles) == 1 else "has"
        return Finding(Cause.PERMISSION_REMOVED,
                       f"{which} \"{user}\" {verb} {needed}. In Intacct open {MENU_ROLES} > {quoted(roles[:1])}, "
                       f"{tick} (step {objects.STEP_PERMISSIONS}).{note}", objects.STEP_PERMISSIONS)
    return Finding(Cause.PERMISSION_REMOVED,
                   f"The role assigned to user \"{user}\" lacks {needed}. In Intacct open {MENU_ROLES}, edit the role, "
                   f"{tick} (step {objects.STEP_PERMISSIONS}). Check that this role is the one assigned to the "
                   f"user.{note}", objects.STEP_PERMISSIONS)


def object_unavailable(definition: objects.ObjectDefinition) -> Finding:
    """Intacct does not know the object in this company (its application is not subscribed)."""
    return Finding(Cause.OBJECT_UNAVAILABLE,
                   f"This company has no {definition.label.lower()} ({definition.name}): check that "
                   f"{definition.application} is subscribed in {steps.SUBSCRIBE.menu} (step {objects.STEP_SUBSCRIBE}).",
                   objects.STEP_SUBSCRIBE)


def read_failed(connection: Connection, definition: objects.ObjectDefinition, exc: BaseException) -> Finding:
    """A read refused for a reason Intacct names but we have no special words for."""
    step = definition.permission_step(connection.intacct_permission_model or connection.effective_permission_model)
    return Finding(Cause.READ_FAILED,
                   f"Reading {definition.label.lower()} failed; Intacct said: {intacct_said(exc)}", step)


def read_refused(connection: Connection, definition: objects.ObjectDefinition, exc: BaseException,
                 facts: Callable[[], PermissionFacts]) -> Finding:
    """The words for one object's refused read, validation and sync alike (``facts`` is asked only when needed)."""
    if isinstance(exc, errors.PermissionDenied) and definition.policy is None and \
            connection.protocol == Connection.Protocol.REST:
        # Over REST a company-wide refusal is a 403 like a missing permission; an object any user may read
        # (USERINFO) refused tells them apart.
        return company_refuses_api(connection, exc)
    if isinstance(exc, errors.PermissionDenied):
        return permission_missing(connection, definition, facts())
    if isinstance(exc, errors.UnknownObject):
        return object_unavailable(definition)
    return read_failed(connection, definition, exc)


def read_check_key(definition: objects.ObjectDefinition) -> str:
    """The validation check that reads an object; a sync that fails the object names the same check."""
    return f"read_{definition.name.lower()}"


def not_web_services_user(connection: Connection) -> Finding:
    return Finding(Cause.NOT_WEB_SERVICES_USER,
                   f"\"{connection.user_id}\" is an ordinary Intacct user, not a Web Services user: its password "
                   f"expires every 90 days and the connection would then stop. In Intacct open {steps.USER.menu}, "
                   f"create a Web Services user and give it the permissions (step {objects.STEP_USER}).",
                   objects.STEP_USER)


def deprovisioning_unavailable(connection: Connection, facts: PermissionFacts, *, needs_edit: bool,
                               needs_admin: bool) -> Finding:
    """The user may read but no longer deactivate people: syncing goes on, deprovisioning does not."""
    employees = objects.OBJECTS_BY_NAME["EMPLOYEE"]
    missing: list[str] = []
    step = objects.STEP_USER
    if needs_edit:
        missing.append(_right(employees, employees.write_right))
        step = employees.permission_step(facts.model)
    if needs_admin:
        missing.append("admin privileges Full")
    where = (f"in {steps.USER.menu} (user \"{connection.user_id}\")" if step == objects.STEP_USER
             else f"on its role in {MENU_ROLES}")
    return Finding(Cause.DEPROVISIONING_UNAVAILABLE,
                   f"Deprovisioning is unavailable; syncing continues. For deprovisioning, the user "
                   f"\"{connection.user_id}\" needs {' and '.join(missing)}: set it {where} (step {step}), or switch "
                   f"deprovisioning off in step {objects.STEP_USER}.", step)


def _password_cause(connection: Connection, history: SignInHistory) -> tuple[str, str]:
    if history.password_changed_at is not None and history.password_changed_by_us:
        when = f"{history.password_changed_at:%d %b %Y %H:%M} UTC"
        return Cause.PASSWORD_ENTERED_REFUSED, (
            f"Intacct refused the password entered here on {when}. Check it against the password Intacct e-mailed "
            f"for \"{connection.user_id}\" and enter it again (Change password on the connection page, step "
            f"{objects.STEP_CONNECT}).")
    if history.worked_before:
        return Cause.PASSWORD_RESET, (
            f"The password of \"{connection.user_id}\" no longer works. It worked before and Web Services users' "
            "passwords never expire, so an Intacct administrator most likely reset it: enter the new password "
            f"(Intacct e-mails it to the user's address) with Change password on the connection page (step "
            f"{objects.STEP_CONNECT}).")
    return Cause.PASSWORD_REFUSED, (
        "Intacct did not accept the user ID and password. Use the Web Services user's ID (not an e-mail address) and "
        "the password Intacct e-mailed when the user was created; if an Intacct admin reset it since, use the new "
        f"one (step {objects.STEP_CONNECT}).")


@dataclass(frozen=True)
class SignInHistory:
    """What our own records say about the credentials: did they work, did someone here change them since."""

    worked_before: bool = False
    password_changed_at: object = None   # datetime of the last password change made through our pages
    password_changed_by_us: bool = False  # True when that change came after the last time the sign-in worked


def sign_in_history(connection: Connection) -> SignInHistory:
    """Did these credentials work before, and was the password changed through our pages since?"""
    last_pass = (ValidationRun.objects.filter(connection=connection, status=ValidationRun.Status.PASSED)
                 .order_by("-finished_at").values_list("finished_at", flat=True).first())
    changed_at = connection.password_set_at
    return SignInHistory(
        worked_before=last_pass is not None, password_changed_at=changed_at,
        password_changed_by_us=bool(last_pass and changed_at and changed_at > last_pass))


def sign_in_refused(connection: Connection, exc: BaseException, history: SignInHistory | None = None) -> Finding:
    """Why Intacct refused the sign-in, for each way it says so."""
    if connection.protocol == Connection.Protocol.REST:
        return rest_sign_in_refused(connection, exc)  # no password, no sender password: its own words
    history = history or SignInHistory()
    company, user, entity = connection.company_id, connection.user_id, connection.entity_id
    if isinstance(exc, errors.TransportPolicyInvalid):
        return Finding(Cause.OUR_SENDER_REFUSED,
                       "Intacct refused how our request asked to be delivered (its transport policy). This is on our "
                       "side, not a setting in your Intacct company: our support team has been told.",
                       None, BROKEN, our_side=True)
    if isinstance(exc, errors.SenderCredentialsInvalid):
        return Finding(Cause.OUR_SENDER_REFUSED,
                       "Intacct did not accept our own Sender ID and password (or our request's settings). This is on "
                       "our side, not yours: our support team has been told. Nothing for you to change.",
                       None, BROKEN, our_side=True)
    if isinstance(exc, errors.DemoCompanyExpired):
        return Finding(Cause.COMPANY_EXPIRED,
                       f"Intacct says the company \"{company}\" has expired (a demo or sandbox company past its end "
                       "date). Connect a live company, or ask Sage to extend it, then enter its ID in step "
                       f"{objects.STEP_CONNECT}.", objects.STEP_CONNECT, BROKEN)
    if isinstance(exc, errors.CompanyNotFound):
        return Finding(Cause.COMPANY_NOT_FOUND,
                       f"Intacct has no company with the ID \"{company}\". Check the company ID you type on Intacct's "
                       f"sign-in page (it is not the company name) and enter it again in step {objects.STEP_CONNECT}.",
                       objects.STEP_CONNECT, BROKEN)
    if isinstance(exc, errors.WebServicesNotSubscribed):
        return Finding(Cause.SUBSCRIPTION_OFF,
                       f"Web Services is not switched on for this company: nothing can be read. In Intacct open "
                       f"{steps.SUBSCRIBE.menu} and subscribe to Web Services (step {objects.STEP_SUBSCRIBE}).",
                       objects.STEP_SUBSCRIBE, BROKEN)
    if isinstance(exc, errors.IPAddressRejected):
        return Finding(Cause.IP_BLOCKED,
                       f"Intacct's IP address filter blocked our server: nothing can be read. In Intacct open "
                       f"{steps.IP_FILTER.menu} and add our addresses from step {objects.STEP_IP_FILTER}, or remove "
                       "the filter.", objects.STEP_IP_FILTER, BROKEN)
    if isinstance(exc, errors.SenderNotAuthorized):
        if getattr(exc, "needs_login_for_api", False) or "requires a user login" in raw_words(exc).lower():
            words = ("Our Sender ID is authorised but has \"Needs login for API\" switched on. Open "
                     f"{steps.SENDER.menu} and switch it off (step {objects.STEP_SENDER}).")
        else:
            words = ("Our Sender ID is not authorised for this company, so nothing can be read. Open "
                     f"{steps.SENDER.menu} and add it exactly as shown in step {objects.STEP_SENDER} (it is "
                     "case-sensitive).")
        return Finding(Cause.SENDER_NOT_AUTHORISED, words, objects.STEP_SENDER, BROKEN)
    if isinstance(exc, errors.UserInactive):
        return Finding(Cause.USER_DEACTIVATED,
                       f"The user \"{user}\" is inactive in Intacct. In Intacct open {steps.USER.menu}, edit the user "
                       f"and set Status to Active (step {objects.STEP_USER}).", objects.STEP_USER, BROKEN)
    if isinstance(exc, errors.UserLockedOut):
        return Finding(Cause.USER_LOCKED_OUT,
                       f"The user \"{user}\" is locked out of Intacct. Ask an Intacct administrator to unlock it in "
                       f"{steps.USER.menu} (step {objects.STEP_USER}).", objects.STEP_USER, BROKEN)
    if isinstance(exc, errors.InvalidEntity):
        if entity:
            words = (f"Intacct refused the entity \"{entity}\" for this user: it does not exist, or the user is "
                     f"restricted to other entities. Pick an entity the user may use (step {objects.STEP_CONNECT}), or "
                     f"change the user's entity access in {steps.USER.menu} (step {objects.STEP_USER}).")
            return Finding(Cause.ENTITY_REFUSED, words, objects.STEP_CONNECT, BROKEN)
        words = (f"Intacct refused a top-level sign-in for \"{user}\": the user is restricted to some entities. Either "
                 f"give the user access to the top level in {steps.USER.menu} (step {objects.STEP_USER}), or enter the "
                 f"entity ID to connect to (step {objects.STEP_CONNECT}).")
        return Finding(Cause.ENTITY_REFUSED, words, objects.STEP_USER, BROKEN)
    if isinstance(exc, errors.LoginFailed):
        cause, words = _password_cause(connection, history)
        return Finding(cause, words, objects.STEP_CONNECT, BROKEN)
    return Finding(Cause.SIGN_IN_REFUSED, f"Intacct refused the sign-in; Intacct said: {intacct_said(exc)}",
                   objects.STEP_CONNECT, BROKEN)


# --- REST connections (OAuth 2.0) --------------------------------------------------------------

def token_problem(connection: Connection, exc: BaseException) -> Finding:
    """The connection's OAuth authorisation no longer works: each way has its own words, one fix (reconnect)."""
    fix = (f"Use \"{RECONNECT}\" on the connection page (step {objects.STEP_CONNECT}) and approve again as an "
           "Intacct admin; the synced data and the change feed are kept.")
    if isinstance(exc, rest_errors.ConsentWithdrawn):
        return Finding(Cause.CONSENT_WITHDRAWN,
                       "Your Intacct company disconnected our application, so it no longer lets us in. " + fix,
                       objects.STEP_CONNECT, BROKEN)
    if isinstance(exc, rest_errors.RefreshTokenExpired):
        return Finding(Cause.REFRESH_TOKEN_EXPIRED,
                       "The approval given in Intacct has expired (Intacct ends it after a long time). " + fix,
                       objects.STEP_CONNECT, BROKEN)
    return Finding(Cause.TOKEN_REVOKED,
                   "Intacct no longer accepts the approval given for this connection: it was revoked in Intacct, or "
                   "someone connected again with the same Intacct user, which ends the earlier approval. " + fix,
                   objects.STEP_CONNECT, BROKEN)


def rest_sign_in_refused(connection: Connection, exc: BaseException) -> Finding:
    """A REST connection could not get an access token (not a token problem of its own: see token_problem)."""
    if isinstance(exc, rest_errors.TokenProblem):
        return token_problem(connection, exc)
    if isinstance(exc, rest_errors.ClientCredentialsRejected):
        return Finding(Cause.OUR_SENDER_REFUSED,
                       "Intacct did not accept our application's client ID and secret. This is on our side, not "
                       "yours: our support team has been told. Nothing for you to change.", None, BROKEN,
                       our_side=True)
    if isinstance(exc, errors.LoginFailed):
        who = f"{connection.user_id}@{connection.company_id}" + (f"|{connection.entity_id}" if connection.entity_id
                                                               else "")
        return Finding(Cause.SIGN_IN_REFUSED,
                       f"Intacct refused a token for \"{who}\": check the company ID, the Web Services user's ID "
                       f"and the entity (step {objects.STEP_CONNECT}); the user must be an active Web Services user "
                       f"({steps.USER.menu}, step {objects.STEP_USER}).", objects.STEP_CONNECT, BROKEN)
    return Finding(Cause.SIGN_IN_REFUSED, f"Intacct refused the sign-in; Intacct said: {intacct_said(exc)}",
                   objects.STEP_CONNECT, BROKEN)


def company_refuses_api(connection: Connection, exc: BaseException | None) -> Finding:
    """Every REST read was refused (HTTP 403): the company, not one permission. Intacct's REST answers do not
    say which of its company-wide settings it is (docs/protocol-choices.md), so all three are named."""
    approved = connection.rest_grant == Connection.RestGrant.AUTHORIZATION_CODE
    sender = (f"the approval in Intacct was given by a user without admin privileges Full, so our Sender ID is not "
              f"authorised: reconnect with Sage Intacct as an admin, or add it in {steps.SENDER.menu}"
              if approved else f"our Sender ID is not authorised: add it in {steps.SENDER.menu}")
    return Finding(Cause.COMPANY_REFUSES_API,
                   "Intacct refused every read, so the company as a whole does not let our application in. Check, in "
                   f"this order: Web Services is subscribed ({steps.SUBSCRIBE.menu}, step {objects.STEP_SUBSCRIBE}); "
                   f"the IP address filter allows our addresses ({steps.IP_FILTER.menu}, step "
                   f"{objects.STEP_IP_FILTER}); {sender} (step {objects.STEP_SENDER}). Intacct said: "
                   f"{intacct_said(exc)}", objects.STEP_SUBSCRIBE, BROKEN)


def unreachable(exc: BaseException | None) -> str:
    """Why Intacct could not be used just now (a transient cause), in plain words."""
    if isinstance(exc, limits.SlotTimeout):
        return ("Every request slot of this company was busy for minutes (Intacct allows only a few requests at once, "
                "shared with other integrations); we will try again.")
    if isinstance(exc, (policy.KeyUnavailable, crypto.InvalidToken)):
        return ("This worker does not have the encryption key that the password was stored with (a key rotation is "
                "half deployed); we will try again.")
    if isinstance(exc, errors.RateLimited):
        return ("Intacct asked us to slow down (HTTP 429: too many requests at once for this company, perhaps with "
                "other integrations); we will try again.")
    status = getattr(exc, "http_status", None)
    if isinstance(exc, errors.GatewayUnavailable) and status == 524:
        return ("Intacct's gateway timed out before answering (HTTP 524); we will try again.")
    if isinstance(exc, errors.GatewayUnavailable) and status and status >= 500:
        return f"Intacct's gateway answered with an error (HTTP {status}); we will try again."
    if isinstance(exc, errors.GatewayUnavailable):
        return "Intacct said its service is temporarily off-line; we will try again."
    if isinstance(exc, errors.RequestTimeout):
        return "Intacct did not answer in time; we will try again."
    if isinstance(exc, errors.ConnectionDropped):
        return "The connection to Intacct dropped before the answer was complete; we will try again."
    if isinstance(exc, errors.SessionExpired):
        return "Intacct ended the session and signing in again did not go through just now; we will try again."
    if isinstance(exc, errors.InvalidResponse) and "html" in str(exc).lower():
        return (f"Intacct answered with an HTML error page instead of XML (HTTP {status or 200}: its network edge "
                "was having trouble); we will try again.")
    if isinstance(exc, errors.InvalidResponse):
        return "Intacct's answer could not be read (cut off or not XML); we will try again."
    return "Intacct could not be reached just now; we will try again."


def internal_error(exc: BaseException) -> str:
    """Words for a bug of ours (never the exception's text: it might quote data)."""
    return (f"Stopped by an internal error ({type(exc).__name__}) in Intacct Connect. Our team has the details; "
            "nothing was changed in Intacct.")


def cause_subject(cause: str) -> str:
    """The short name of a cause for an e-mail subject."""
    return CAUSE_SUBJECTS.get(cause, "")
