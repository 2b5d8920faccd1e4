"""Plain function views: access helper first, then a plain form, then one service call."""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connector import diagnosis, objects, requeue, services, validation
from connector.intacct_rest import errors as rest_errors
from connector.masking import mask
from connector.models import Connection, Organisation, ValidationRun
from wizard import forms, oauth_connect, pictures, progress, ratelimit
from wizard import handoff as handoffs
from wizard.access import (
    OrgAccess,
    can_see_all_organisations,
    client_ip,
    handoff_or_login_required,
    organisation_access,
    wizard_access,
)
from wizard.models import HandOff
from wizard.steps import LAST_STEP, STEP_NUMBERS, STEPS, step


def home(request: HttpRequest) -> HttpResponse:
    """Send each person where they work: support to the dashboard, an admin to their connection or wizard."""
    if not request.user.is_authenticated:
        return redirect(settings.LOGIN_URL)
    if can_see_all_organisations(request.user):
        return redirect("dashboard")
    organisations = list(Organisation.objects.filter(memberships__user=request.user)
                         .select_related("connection"))
    if len(organisations) == 1:
        return redirect(_landing_url(organisations[0]))
    if not organisations:
        return render(request, "home.html")
    return render(request, "wizard/organisation_list.html",
                  {"organisations": organisations, "all_organisations": False})


def _landing_url(organisation: Organisation) -> str:
    connection = services.connection_get(organisation=organisation)
    if connection.status in Connection.SETUP_STATUSES:
        return reverse("setup", args=[organisation.slug])
    return reverse("connection", args=[organisation.slug])


@login_required
def organisation_list(request: HttpRequest) -> HttpResponse:
    """Support staff's list of every organisation and its connection status."""
    if not can_see_all_organisations(request.user):
        raise Http404("No such page.")
    organisations = Organisation.objects.select_related("connection", "connection__last_validation")
    return render(request, "wizard/organisation_list.html",
                  {"organisations": organisations, "all_organisations": True})


@sensitive_post_parameters()
@sensitive_variables()
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.SIGNUP_ENABLED:
        raise Http404("Sign-up is switched off.")
    form = forms.SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user, organisation = services.signup(
            username=form.cleaned_data["username"], email=form.cleaned_data["email"],
            password=form.cleaned_data["password"], organisation_name=form.cleaned_data["organisation_name"],
            ip=client_ip(request))
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("setup", organisation.slug)
    return render(request, "registration/signup.html", {"form": form})


# --- The wizard -----------------------------------------------------------------------------

@handoff_or_login_required
def setup(request: HttpRequest, slug: str) -> HttpResponse:
    """Resume the wizard at the first step not yet done."""
    access = wizard_access(request, slug)
    marks = progress.step_marks(access.connection, STEP_NUMBERS)
    first_open = next((number for number in STEP_NUMBERS if not marks[number].counts), LAST_STEP)
    return redirect("setup_step", slug, first_open)


def _step_context(request: HttpRequest, access: OrgAccess, number: int, **extra) -> dict:
    connection = access.connection
    done = connection.steps_done()
    wants = connection.wants_deprovisioning
    marks = progress.step_marks(connection, STEP_NUMBERS)
    last = connection.last_validation
    context = {
        "guest": access.handoff,
        "handoffs": (HandOff.objects.filter(organisation=access.organisation, revoked_at__isnull=True,
                                            expires_at__gt=timezone.now())
                     if access.handoff is None and access.can_write and number == 1 else []),
        "steps_marks": [(s, marks[s.number]) for s in STEPS],
        "answers_version": progress.answers_version(connection),
        # What the latest check found wrong on this step (a revisit page says it, with "Check again").
        "last_run": last,
        "last_failures": ([check for check in last.checks.all()
                           if check.status == check.Status.FAILED and check.wizard_step == number]
                          if last is not None and last.is_finished and number != LAST_STEP else []),
        "organisation": access.organisation,
        "connection": connection,
        "can_write": access.can_write,
        "steps": STEPS,
        "step": step(number),
        "done": done,
        "this_done": done.get(number),
        "previous_step": number - 1 if number > 1 else None,
        "next_step": number + 1 if number < LAST_STEP else None,
        "permission_rows": [(row, row.rights_for(wants_deprovisioning=wants), row.deprovisioning_rights)
                            for row in objects.permission_table()],
        "role_name": settings.SUGGESTED_ROLE_NAME,
        "suggested_user_id": objects.suggested_user_id(access.organisation.slug),
        "picture": pictures.SCREENS_BY_STEP.get(number),
        "picture_src": pictures.picture_path(number),
        # In the demo, the same screen in the simulator (the connection's company, else the blank NEW-CO).
        "simulator_screen": (f"/simulator/companies/{connection.company_id or 'NEW-CO'}/"
                             f"{pictures.SCREENS_BY_STEP[number].path}"
                             if settings.SIMULATOR_ENABLED and number in pictures.SCREENS_BY_STEP else ""),
        "product_name": settings.PRODUCT_NAME,
        "sender_id": settings.INTACCT_SENDER_ID,
        "ip_addresses": settings.OUTBOUND_IP_ADDRESSES,
        **_validation_context(request),
        "picker": forms.entity_picker(connection) if number == LAST_STEP else None,
        "protocol_form": forms.ProtocolForm(initial={"protocol": connection.protocol}),
        "return_to": "setup",
        "sender_step": objects.STEP_SENDER,
        "percent_done": round(100 * len([n for n in STEP_NUMBERS if marks[n].counts]) / len(STEP_NUMBERS)),
    }
    if number == LAST_STEP and connection.is_rest:
        context["code_form"], context["cc_form"] = _rest_forms(connection)
    context.update(extra)
    return context


@handoff_or_login_required
@sensitive_post_parameters()  # step 6 takes the Intacct password (the connect() below)
@sensitive_variables()
@require_http_methods(["GET", "POST"])
def setup_step(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """Steps 1-5: instructions, and "I've done this"; step 4 records the branch, step 5 deprovisioning."""
    if number not in STEP_NUMBERS:
        raise Http404("No such step.")
    if number == LAST_STEP:
        return connect(request, slug)
    access = wizard_access(request, slug)
    connection = access.connection
    if access.handoff is not None:
        handoffs.handoff_used(request=request, handoff=access.handoff, step=number,
                              what=f"{request.method} step {number} {request.POST.get('action', '')}".strip())
    by, ip = request.user, client_ip(request)
    model_form = forms.PermissionModelForm(initial={"permission_model": connection.permission_model or None})
    if request.method == "POST":
        if changed_elsewhere(request, connection):
            return redirect("setup_step", slug, number)
        action = request.POST.get("action")
        if action == "done":
            if number == objects.STEP_PERMISSIONS and request.POST.get("permission_model"):
                # "I've done this" keeps the choice made beside it, saved or not.
                model_form = forms.PermissionModelForm(request.POST)
                if model_form.is_valid():
                    services.connection_set_permission_model(
                        connection=connection, permission_model=model_form.cleaned_data["permission_model"],
                        by=by, ip=ip)
            if number == objects.STEP_PERMISSIONS and not connection.permission_model:
                messages.error(request, "Choose role-based or user-based first.")
                return redirect("setup_step", slug, number)
            services.connection_mark_step(connection=connection, step=number, by=by, ip=ip)
            return redirect("setup_step", slug, number + 1)
        if action == "undo":
            services.connection_unmark_step(connection=connection, step=number, by=by, ip=ip)
            return redirect("setup_step", slug, number)
        if action == "permission_model" and number == objects.STEP_PERMISSIONS:
            model_form = forms.PermissionModelForm(request.POST)
            if model_form.is_valid():
                services.connection_set_permission_model(
                    connection=connection, permission_model=model_form.cleaned_data["permission_model"],
                    by=by, ip=ip)
                return redirect(reverse("setup_step", args=[slug, number]) + "#branch")
        elif action == "deprovisioning" and number == objects.STEP_USER:
            form = forms.DeprovisioningForm(request.POST)
            wants = form.is_valid() and form.cleaned_data["wants_deprovisioning"]
            services.connection_set_deprovisioning(connection=connection, wants_deprovisioning=wants,
                                                   by=by, ip=ip)
            return redirect(reverse("setup_step", args=[slug, number]) + "#deprovisioning")
        else:
            return HttpResponse("Unknown action.", status=400)
    return render(request, f"wizard/step_{number}.html", _step_context(
        request, access, number, model_form=model_form,
        deprovisioning_form=forms.DeprovisioningForm(
            initial={"wants_deprovisioning": connection.wants_deprovisioning})))


def changed_elsewhere(request: HttpRequest, connection: Connection) -> bool:
    """A form posted from a page older than the answers (another tab, another admin): say so, save nothing."""
    seen = request.POST.get("seen")
    if seen is None or seen == progress.answers_version(connection):
        return False
    messages.error(request, "These answers were changed in another window (or by someone else) after this page "
                            "was opened, so nothing was saved. The page now shows the latest answers: check them "
                            "and try again.")
    return True


def _limited(request: HttpRequest, access: OrgAccess, limit: ratelimit.SignInLimit, **extra) -> HttpResponse:
    """Step 6 answered 429 with words saying why nothing was sent and what to do (the typed values kept)."""
    run = _latest_run(access.connection)
    return ratelimit.too_many(render(request, "wizard/step_6.html", _step_context(
        request, access, LAST_STEP, run=run, checks=_checks(run), limit_message=limit.message(), **extra)),
        limit.seconds)


def connect(request: HttpRequest, slug: str) -> HttpResponse:
    """Step 6: the credentials form; saving enqueues a validation and the page follows it live."""
    access = wizard_access(request, slug)
    if access.handoff is not None:
        handoffs.handoff_used(request=request, handoff=access.handoff, step=LAST_STEP,
                              what=f"{request.method} step {LAST_STEP}")
    connection = access.connection
    form = _connect_form(connection, request.POST or None)
    if request.method == "POST":
        if changed_elsewhere(request, connection):
            return redirect("setup_step", slug, LAST_STEP)
        if form.is_valid():
            data = form.cleaned_data
            limit = ratelimit.failed_sign_ins(access.organisation, data["company_id"], data["user_id"])
            if limit is not None:
                return _limited(request, access, limit, form=form)
            run = services.connection_set_credentials(
                connection=connection, company_id=data["company_id"], user_id=data["user_id"],
                password=data["password"], entity_id=_entity_to_save(connection, data), by=request.user,
                ip=client_ip(request))
            if form.company_id_trimmed:
                messages.info(request, f"We removed spaces around the company ID: it is now "
                                       f"\"{data['company_id']}\".")
            if requeue.is_unsent(run):
                messages.warning(request, requeue.CREDENTIALS_SAVED_QUEUE_DOWN)
            else:
                messages.success(request, "Credentials saved (the password is stored encrypted). "
                                          "Checking them now.")
            return redirect(reverse("setup_step", args=[slug, LAST_STEP]) + "#validation")
    run = _latest_run(connection)
    return render(request, "wizard/step_6.html", _step_context(
        request, access, LAST_STEP, form=form, run=run, checks=_checks(run)))


def _connect_form(connection: Connection, data=None) -> forms.ConnectForm:
    """Step 6's credentials form; without the entity box once Intacct listed the entities (the picker chooses)."""
    initial = {"company_id": connection.company_id,
               "user_id": connection.user_id or objects.suggested_user_id(connection.organisation.slug),
               "entity_id": connection.entity_id}
    return forms.ConnectForm(data, initial=initial, entity_box=not connection.intacct_entities)


def _entity_to_save(connection: Connection, data: dict) -> str:
    if "entity_id" in data:
        return data["entity_id"]
    # Picked, not typed: kept for the same company; another company starts at its top level.
    return connection.entity_id if data["company_id"] == connection.company_id else ""


@handoff_or_login_required
@require_POST
def choose_entity(request: HttpRequest, slug: str) -> HttpResponse:
    """Step 6's entity picker: save the top level or one listed entity, and check it at once."""
    access = wizard_access(request, slug)
    if access.handoff is not None:
        handoffs.handoff_used(request=request, handoff=access.handoff, step=LAST_STEP, what="choose entity")
    connection = access.connection
    picker = forms.entity_picker(connection, request.POST)
    if picker is None or not connection.has_credentials:
        messages.error(request, "Intacct has not listed this company's entities yet, so there is nothing to "
                                "choose from: enter the entity ID with the credentials below.")
        return redirect("setup_step", slug, LAST_STEP)
    if not picker.is_valid():
        run = _latest_run(connection)
        return render(request, "wizard/step_6.html", _step_context(
            request, access, LAST_STEP, form=_connect_form(connection), picker=picker, run=run,
            checks=_checks(run)), status=400)
    limit = ratelimit.failed_sign_ins(access.organisation, connection.company_id, connection.user_id)
    if limit is not None:
        return _limited(request, access, limit, form=_connect_form(connection), picker=picker)
    entity_id = picker.cleaned_data["entity_id"]
    run = services.connection_set_entity(connection=connection, entity_id=entity_id, by=request.user,
                                         ip=client_ip(request))
    if requeue.is_unsent(run):
        messages.warning(request, requeue.CHECK_SAVED_QUEUE_DOWN)
    else:
        where = f"entity {entity_id}" if entity_id else "the top level"
        messages.success(request, f"Saved: the connection signs in to {where}. Checking it now.")
    return redirect(reverse("setup_step", args=[slug, LAST_STEP]) + "#validation")


def _validation_context(request: HttpRequest) -> dict:
    return {"show_raw": can_see_all_organisations(request.user),
            "poll_interval": settings.VALIDATION_POLL_INTERVAL_MS}


def _latest_run(connection: Connection) -> ValidationRun | None:
    return (ValidationRun.objects.filter(connection=connection)
            .prefetch_related(Prefetch("checks")).order_by("-created_at", "-id").first())


@dataclass(frozen=True)
class PendingCheck:
    """A check of a running validation that has not finished yet (shown greyed out in the checklist)."""

    key: str
    label: str
    status: str = "pending"
    message: str = ""
    wizard_step: None = None
    errorno: str = ""

    def get_status_display(self) -> str:
        return "Waiting"


def _checks(run: ValidationRun | None) -> list:
    """The run's finished checks, then (while it runs) the ones still to come, so the list fills in live."""
    if run is None:
        return []
    done = list(run.checks.all())
    if run.is_finished:
        return done
    seen = {check.key for check in done}
    return done + [PendingCheck(key=check.key, label=check.label) for check in validation.checks_for(run.connection)
                   if check.key not in seen]


@handoff_or_login_required
@require_POST
def check_again(request: HttpRequest, slug: str) -> HttpResponse:
    """Validate again with the stored credentials (after a fix in Intacct): nothing to re-type."""
    access = wizard_access(request, slug)
    if access.handoff is not None:
        handoffs.handoff_used(request=request, handoff=access.handoff, what="check again")
    connection = access.connection
    if not connection.has_credentials:
        messages.error(request, "There are no credentials to check: enter them in step 6.")
        return redirect("setup_step", slug, LAST_STEP)
    limit = ratelimit.failed_sign_ins(access.organisation, connection.company_id, connection.user_id)
    if limit is not None:
        return _limited(request, access, limit, form=_connect_form(connection))
    run = services.validation_request(connection=connection, by=request.user, ip=client_ip(request))
    if requeue.is_unsent(run):
        messages.warning(request, requeue.CHECK_SAVED_QUEUE_DOWN)
    else:
        messages.success(request, "Checking again with the credentials we have. Nothing to re-type.")
    return redirect(reverse("setup_step", args=[slug, LAST_STEP]) + "#validation")


@handoff_or_login_required
def validation_status(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    """The live checklist of one run, as an HTML fragment (polled by static/js/wizard.js)."""
    access = wizard_access(request, slug, write=False)
    run = get_object_or_404(ValidationRun, id=run_id, connection=access.connection)
    return render(request, "wizard/_validation.html",
                  {"organisation": access.organisation, "run": run, "checks": _checks(run),
                   "on_connection_page": request.GET.get("on") == "connection", "guest": access.handoff,
                   **_validation_context(request)})


# --- The connection page --------------------------------------------------------------------

@login_required
def connection(request: HttpRequest, slug: str) -> HttpResponse:
    access = organisation_access(request, slug, write=False)
    conn = access.connection
    run = _latest_run(conn)
    # In setup, the check that does not pass yet; when failing, the check that broke it.
    check_key = conn.status_check
    if not check_key and conn.status == conn.Status.IN_SETUP and conn.last_validation is not None:
        check_key = conn.last_validation.failed_check
    return render(request, "wizard/connection.html", {
        "organisation": access.organisation, "connection": conn, "can_write": access.can_write,
        "run": run, "checks": _checks(run), **_validation_context(request),
        "on_connection_page": True,
        # The organisation's own admins see their IDs in full; support staff see them masked.
        "masked_company_id": conn.company_id if access.can_write else mask(conn.company_id),
        "masked_user_id": conn.user_id if access.can_write else mask(conn.user_id),
        "status_check_label": validation.CHECK_LABELS.get(check_key, check_key),
        "status_changes": conn.status_changes.all()[:10],
        "token_causes": sorted(diagnosis.TOKEN_CAUSES),
        "audit_events": conn.audit_events.select_related("actor")[:20],
    })


@login_required
@require_POST
def connection_revalidate(request: HttpRequest, slug: str) -> HttpResponse:
    access = organisation_access(request, slug)
    if not access.connection.has_credentials:
        messages.error(request, f"There are no credentials to check: enter them in step {objects.STEP_CONNECT}.")
        return redirect("setup_step", slug, LAST_STEP)
    limit = ratelimit.failed_sign_ins(access.organisation, access.connection.company_id, access.connection.user_id)
    if limit is not None:
        messages.error(request, limit.message())
        return redirect(reverse("connection", args=[slug]) + "#validation")
    run = services.validation_request(connection=access.connection, by=request.user, ip=client_ip(request))
    if requeue.is_unsent(run):
        messages.warning(request, requeue.CHECK_SAVED_QUEUE_DOWN)
    else:
        messages.success(request, "Checking the connection now.")
    return redirect(reverse("connection", args=[slug]) + "#validation")


@login_required
@sensitive_post_parameters()
@sensitive_variables()
@require_http_methods(["GET", "POST"])
def connection_password(request: HttpRequest, slug: str) -> HttpResponse:
    access = organisation_access(request, slug)
    if access.connection.protocol == Connection.Protocol.REST:
        # No password over REST: one typed here would be stored and never used.
        messages.info(request, "This connection uses the REST API, which signs in without the Web Services user's "
                               "password. If Intacct refuses it, use \"Reconnect with Sage Intacct\".")
        return redirect("connection", slug)
    form = forms.PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not access.connection.company_id:
            messages.error(request, f"Enter all the credentials in step {objects.STEP_CONNECT} first.")
            return redirect("setup_step", slug, LAST_STEP)
        services.connection_set_password(connection=access.connection, password=form.cleaned_data["password"],
                                         by=request.user, ip=client_ip(request))
        messages.success(request, "New password saved (encrypted). Checking the connection now.")
        return redirect(reverse("connection", args=[slug]) + "#validation")
    return render(request, "wizard/connection_password.html",
                  {"organisation": access.organisation, "connection": access.connection, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def connection_entity(request: HttpRequest, slug: str) -> HttpResponse:
    access = organisation_access(request, slug)
    form = (forms.entity_picker(access.connection, request.POST or None)
            or forms.EntityForm(request.POST or None, initial={"entity_id": access.connection.entity_id}))
    if request.method == "POST" and form.is_valid():
        services.connection_set_entity(connection=access.connection, entity_id=form.cleaned_data["entity_id"],
                                       by=request.user, ip=client_ip(request))
        messages.success(request, "Entity saved. Checking the connection now.")
        return redirect(reverse("connection", args=[slug]) + "#validation")
    return render(request, "wizard/connection_entity.html",
                  {"organisation": access.organisation, "connection": access.connection, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def connection_disconnect(request: HttpRequest, slug: str) -> HttpResponse:
    access = organisation_access(request, slug)
    if request.method == "POST":
        services.connection_disconnect(connection=access.connection, by=request.user, ip=client_ip(request))
        messages.success(request, "Disconnected. The password is deleted; the history stays.")
        return redirect("connection", slug)
    return render(request, "wizard/connection_disconnect.html",
                  {"organisation": access.organisation, "connection": access.connection})


# --- Hand-off to the Intacct admin ----------------------------------------------------------

def handoff_open(request: HttpRequest, token: str) -> HttpResponse:
    """A hand-off link: this browser may walk this organisation's wizard (steps 1-6) until it expires."""
    handoff = handoffs.handoff_open(request=request, token=token)
    if handoff is None:
        return render(request, "wizard/handoff_invalid.html", status=404)
    return redirect("setup_step", handoff.organisation.slug, 1)  # the token leaves the address bar


@login_required
@require_POST
def handoff_create(request: HttpRequest, slug: str) -> HttpResponse:
    access = organisation_access(request, slug)
    form = forms.HandOffForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Hand-off not created: {error}")
        return redirect(reverse("setup_step", args=[slug, 1]) + "#handoff")
    handoff, link = handoffs.handoff_create(organisation=access.organisation, name=form.cleaned_data["name"],
                                            email=form.cleaned_data["email"], by=request.user,
                                            ip=client_ip(request))
    sent = f" and e-mailed it to {handoff.email}" if handoff.email else ""
    messages.success(request, f"Link created for {handoff.name}{sent}. It works for {handoffs.HANDOFF_DAYS} days, "
                              f"for {access.organisation.name} only.")
    # Rendered, not redirected: the link is shown this once and kept nowhere (only its hash is stored).
    return render(request, "wizard/step_1.html", _step_context(
        request, access, 1, new_handoff=handoff, new_handoff_link=link))


@login_required
@require_POST
def handoff_revoke(request: HttpRequest, slug: str, handoff_id: int) -> HttpResponse:
    access = organisation_access(request, slug)
    handoff = get_object_or_404(HandOff, id=handoff_id, organisation=access.organisation)
    handoffs.handoff_revoke(handoff=handoff, by=request.user, ip=client_ip(request))
    messages.success(request, f"{handoff.name}'s link no longer works.")
    return redirect(reverse("setup_step", args=[slug, 1]) + "#handoff")


@login_required
def handoff_status(request: HttpRequest, slug: str) -> HttpResponse:
    """The hand-offs and the wizard's marks, as a fragment the org admin's page refreshes (their progress live)."""
    access = organisation_access(request, slug, write=False)
    marks = progress.step_marks(access.connection, STEP_NUMBERS)
    return render(request, "wizard/_handoffs.html", {
        "organisation": access.organisation, "can_write": access.can_write,
        "handoffs": HandOff.objects.filter(organisation=access.organisation, revoked_at__isnull=True,
                                           expires_at__gt=timezone.now()),
        "steps_marks": [(s, marks[s.number]) for s in STEPS]})


# --- REST: "Connect with Sage Intacct", or a Web Services user over REST ------------

# What Intacct's authorize page may send back instead of a code (RFC 6749 4.1.2.1), in plain words.
AUTHORIZE_ERRORS = {
    "access_denied": "You chose not to allow Intacct Connect in Sage Intacct (or signed in and then declined), so "
                     "nothing was connected and nothing was changed. Press \"Connect with Sage Intacct\" again and "
                     "choose Allow when you are ready.",
    "unauthorized_client": "Sage Intacct does not let our application ask for access this way. This is on our "
                           "side: our support team has been told. Nothing was changed.",
    "invalid_scope": "Sage Intacct refused the access we asked for. This is on our side: our support team has "
                     "been told. Nothing was changed.",
    "server_error": "Sage Intacct had a problem while you were signing in. Nothing was changed: try again in a "
                    "few minutes.",
    "temporarily_unavailable": "Sage Intacct is busy or down for maintenance. Nothing was changed: try again in "
                               "a few minutes.",
}


def _rest_back(slug: str, return_to: str, *, validation: bool = True) -> str:
    anchor = "#validation" if validation else "#connect-rest"
    if return_to == "connection":
        return reverse("connection", args=[slug]) + (anchor if validation else "")
    return reverse("setup_step", args=[slug, LAST_STEP]) + anchor


def _rest_forms(connection: Connection, data=None, *, which: str = "") -> tuple[forms.RestCodeForm,
                                                                                forms.RestClientCredentialsForm]:
    # What the admin typed before going to Intacct is kept across a decline or a failed sign-in there.
    last = oauth_connect.last_attempt(organisation=connection.organisation)
    initial = {"company_id": connection.company_id or (last.company_id if last else ""),
               "company_timezone": connection.company_timezone or (last.company_timezone if last else ""),
               "user_id": connection.user_id or objects.suggested_user_id(connection.organisation.slug),
               "entity_id": connection.entity_id}
    code = forms.RestCodeForm(data if which == "code" else None, initial=initial, prefix="code")
    cc = forms.RestClientCredentialsForm(data if which == "cc" else None, initial=initial, prefix="cc")
    return code, cc


def _render_rest(request: HttpRequest, access: OrgAccess, return_to: str, *, code_form=None, cc_form=None,
                 status: int = 200, limit_message: str = "") -> HttpResponse:
    default_code, default_cc = _rest_forms(access.connection)
    extra = {"code_form": code_form or default_code, "cc_form": cc_form or default_cc, "return_to": return_to,
             "limit_message": limit_message}
    if return_to == "connection":
        return render(request, "wizard/connection_switch.html",
                      {"organisation": access.organisation, "connection": access.connection, **extra}, status=status)
    run = _latest_run(access.connection)
    return render(request, "wizard/step_6.html", _step_context(
        request, access, LAST_STEP, form=_connect_form(access.connection), run=run, checks=_checks(run), **extra),
        status=status)


def _return_to(request: HttpRequest) -> str:
    return_to = request.POST.get("return_to", "setup")
    return return_to if return_to in oauth_connect.RETURN_TO else "setup"


@handoff_or_login_required
@require_POST
def choose_protocol(request: HttpRequest, slug: str) -> HttpResponse:
    """The wizard's first choice: connect with Sage Intacct (REST, recommended) or as before (XML)."""
    access = wizard_access(request, slug)
    form = forms.ProtocolForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose how to connect.")
    else:
        services.connection_choose_protocol(connection=access.connection, protocol=form.cleaned_data["protocol"],
                                            by=request.user, ip=client_ip(request))
    return redirect(reverse("setup_step", args=[slug, 1]) + "#protocol")


@handoff_or_login_required
@require_POST
def rest_connect(request: HttpRequest, slug: str) -> HttpResponse:
    """"Connect with Sage Intacct": keep the state and PKCE verifier here and send the browser to Intacct."""
    access = wizard_access(request, slug)
    return_to = _return_to(request)
    code_form, _ = _rest_forms(access.connection, request.POST, which="code")
    if not code_form.is_valid():
        return _render_rest(request, access, return_to, code_form=code_form, status=400)
    url = oauth_connect.attempt_start(
        organisation=access.organisation, company_id=code_form.cleaned_data["company_id"],
        company_timezone=code_form.cleaned_data["company_timezone"], return_to=return_to, by=request.user,
        handoff=access.handoff, ip=client_ip(request))
    return redirect(url)


@handoff_or_login_required
@require_POST
def rest_web_services_user(request: HttpRequest, slug: str) -> HttpResponse:
    """REST with a Web Services user (client credentials): no password, our application's credentials."""
    access = wizard_access(request, slug)
    return_to = _return_to(request)
    _, cc_form = _rest_forms(access.connection, request.POST, which="cc")
    if not cc_form.is_valid():
        return _render_rest(request, access, return_to, cc_form=cc_form, status=400)
    data = cc_form.cleaned_data
    # The same limit as the XML form: repeated refused sign-ins of one Web Services user wait (the typed values
    # kept), whichever protocol they were tried over.
    limit = ratelimit.failed_sign_ins(access.organisation, data["company_id"], data["user_id"])
    if limit is not None:
        return ratelimit.too_many(_render_rest(request, access, return_to, cc_form=cc_form,
                                               limit_message=limit.message()), limit.seconds)
    run = services.connection_connect_rest_client_credentials(
        connection=access.connection, company_id=data["company_id"], user_id=data["user_id"],
        entity_id=data["entity_id"], company_timezone=data["company_timezone"], by=request.user,
        ip=client_ip(request))
    if requeue.is_unsent(run):
        messages.warning(request, requeue.CHECK_SAVED_QUEUE_DOWN)
    else:
        messages.success(request, "Saved: we connect over the REST API as this Web Services user. Checking it now.")
    return redirect(_rest_back(slug, return_to))


@require_GET
def rest_callback(request: HttpRequest) -> HttpResponse:
    """Where Intacct sends the browser back: the state names our attempt (once); a code connects, an error is
    said in plain words and changes nothing."""
    attempt = oauth_connect.attempt_find(state=request.GET.get("state", ""))
    if attempt is None:
        messages.error(request, "This sign-in to Sage Intacct expired or was already used, so nothing was "
                                "connected. Start again with \"Connect with Sage Intacct\".")
        return redirect("home")
    access = wizard_access(request, attempt.organisation.slug, write=True)
    if not oauth_connect.started_by_this_browser(attempt, user=request.user, handoff=access.handoff):
        raise Http404("No such sign-in.")
    slug = access.organisation.slug
    taken = oauth_connect.attempt_take(attempt=attempt)
    if taken is None:
        messages.error(request, "This sign-in to Sage Intacct was already used. Nothing else was changed.")
        return redirect(_rest_back(slug, attempt.return_to, validation=False))
    error = request.GET.get("error", "")
    code = request.GET.get("code", "")
    if error or not code:
        messages.error(request, AUTHORIZE_ERRORS.get(error, "Sage Intacct did not connect us (it answered "
                                                            f"\"{error[:60] or 'no code'}\"). Nothing was changed: "
                                                            "try again."))
        return redirect(_rest_back(slug, attempt.return_to, validation=False))
    try:
        run = services.connection_connect_rest_code(
            connection=access.connection, code=code, code_verifier=taken.verifier, company_id=attempt.company_id,
            company_timezone=attempt.company_timezone, by=request.user, ip=client_ip(request))
    except rest_errors.IntacctError as exc:
        messages.error(request, f"Sage Intacct did not complete the connection ({type(exc).__name__}); nothing was "
                                "changed. Press \"Connect with Sage Intacct\" again.")
        return redirect(_rest_back(slug, attempt.return_to, validation=False))
    except ValueError:
        messages.error(request, "Sage Intacct connected us without lasting access (no refresh token), so the "
                                "connection would stop within hours. Nothing was changed: try again.")
        return redirect(_rest_back(slug, attempt.return_to, validation=False))
    if requeue.is_unsent(run):
        messages.warning(request, requeue.CHECK_SAVED_QUEUE_DOWN)
    else:
        messages.success(request, "Connected with Sage Intacct (the tokens are stored encrypted). Checking the "
                                  "connection now.")
    return redirect(_rest_back(slug, attempt.return_to))


@login_required
@require_GET
def connection_switch(request: HttpRequest, slug: str) -> HttpResponse:
    """The connection page's "Switch to REST": the two REST ways, posting back to the connection page."""
    access = organisation_access(request, slug, write=True)
    return _render_rest(request, access, "connection")
