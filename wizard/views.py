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
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from connector import objects, requeue, services, validation
from connector.masking import mask
from connector.models import Connection, Organisation, ValidationRun
from wizard import forms, ratelimit
from wizard.access import OrgAccess, can_see_all_organisations, client_ip, organisation_access
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

@login_required
def setup(request: HttpRequest, slug: str) -> HttpResponse:
    """Resume the wizard at the first step not yet done."""
    access = organisation_access(request, slug)
    done = access.connection.steps_done()
    first_open = next((number for number in STEP_NUMBERS if number not in done), LAST_STEP)
    return redirect("setup_step", slug, first_open)


def _step_context(request: HttpRequest, access: OrgAccess, number: int, **extra) -> dict:
    connection = access.connection
    done = connection.steps_done()
    wants = connection.wants_deprovisioning
    context = {
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
        "product_name": settings.PRODUCT_NAME,
        "sender_id": settings.INTACCT_SENDER_ID,
        "ip_addresses": settings.OUTBOUND_IP_ADDRESSES,
        **_validation_context(request),
        "percent_done": round(100 * len([n for n in STEP_NUMBERS if n in done]) / len(STEP_NUMBERS)),
    }
    context.update(extra)
    return context


@login_required
@sensitive_post_parameters()  # step 6 takes the Intacct password (the connect() below)
@sensitive_variables()
@require_http_methods(["GET", "POST"])
def setup_step(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """Steps 1-5: instructions, and "I've done this"; step 4 records the branch, step 5 deprovisioning."""
    if number not in STEP_NUMBERS:
        raise Http404("No such step.")
    if number == LAST_STEP:
        return connect(request, slug)
    access = organisation_access(request, slug)
    connection = access.connection
    by, ip = request.user, client_ip(request)
    model_form = forms.PermissionModelForm(initial={"permission_model": connection.permission_model or None})
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "done":
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


def connect(request: HttpRequest, slug: str) -> HttpResponse:
    """Step 6: the credentials form; saving enqueues a validation and the page follows it live."""
    access = organisation_access(request, slug)
    connection = access.connection
    initial = {"company_id": connection.company_id, "user_id": connection.user_id,
               "entity_id": connection.entity_id}
    form = forms.ConnectForm(request.POST or None, initial=initial)
    if request.method == "POST":
        limits = ratelimit.connect_checks(request, access.organisation.slug)
        wait = ratelimit.retry_after(limits)
        if wait is not None:
            form.is_valid()  # field errors shown as usual; the typed values stay in the form
            form.add_error(None, ratelimit.message(wait))
            run = _latest_run(connection)
            return ratelimit.too_many(render(request, "wizard/step_6.html", _step_context(
                request, access, LAST_STEP, form=form, run=run, checks=_checks(run))), wait)
        if form.is_valid():
            ratelimit.count(limits)
            data = form.cleaned_data
            run = services.connection_set_credentials(
                connection=connection, company_id=data["company_id"], user_id=data["user_id"],
                password=data["password"], entity_id=data["entity_id"], by=request.user,
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
    return done + [PendingCheck(key=check.key, label=check.label) for check in validation.CHECKS
                   if check.key not in seen]


@login_required
def validation_status(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    """The live checklist of one run, as an HTML fragment (polled by static/js/wizard.js)."""
    access = organisation_access(request, slug, write=False)
    run = get_object_or_404(ValidationRun, id=run_id, connection=access.connection)
    return render(request, "wizard/_validation.html",
                  {"organisation": access.organisation, "run": run, "checks": _checks(run),
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
        "masked_company_id": mask(conn.company_id), "masked_user_id": mask(conn.user_id),
        "status_check_label": validation.CHECK_LABELS.get(check_key, check_key),
        "status_changes": conn.status_changes.all()[:10],
        "audit_events": conn.audit_events.select_related("actor")[:20],
    })


@login_required
@require_POST
def connection_revalidate(request: HttpRequest, slug: str) -> HttpResponse:
    access = organisation_access(request, slug)
    if not access.connection.has_credentials:
        messages.error(request, f"There are no credentials to check: enter them in step {objects.STEP_CONNECT}.")
        return redirect("setup_step", slug, LAST_STEP)
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
    form = forms.EntityForm(request.POST or None, initial={"entity_id": access.connection.entity_id})
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
