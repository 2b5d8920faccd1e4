"""The gateway endpoint and the simulator's admin screens (Sage Intacct stand-in, no login in the demo)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods

from simulator import gateway as gateway_module
from simulator import oauth
from simulator.company_rules import applications
from simulator.faults import FAULT_KINDS, clear_faults, set_fault
from simulator.forms import (
    CompanyCreateForm,
    CompanyInfoForm,
    EntityForm,
    FaultForm,
    IPFilterForm,
    LoginSettingsForm,
    RoleForm,
    SenderAuthorizationForm,
    SenderForm,
    SubscriptionForm,
    UserEditForm,
    UserForm,
)
from simulator.inflight import inflight_reset, inflight_stats
from simulator.metering import month_usage
from simulator.models import Entity, Mail, OAuthGrant, Role, Sender, SenderAuthorization, SimCompany, SimUser
from simulator.services import (
    PERMISSION_CATALOG,
    PermSpec,
    add_entity,
    authorize_sender,
    create_company,
    create_role,
    create_user,
    delete_user,
    ensure_sender,
    remove_entity,
    reset_password,
    set_permissions,
    set_user_entities,
    unlock_user,
)


@csrf_exempt
@sensitive_post_parameters()  # the XML body carries the sender's and the user's passwords
@sensitive_variables()
def gateway(request: HttpRequest) -> HttpResponse:
    """POST-only XML gateway at /simulator/ia/xml/xmlgw.phtml."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return gateway_module.handle(request)


def _id(value: str | None) -> int:
    """A posted primary key; anything that is not one matches nothing (404), never a 500."""
    return int(value) if value and value.isascii() and value.isdigit() and len(value) <= 18 else 0


def _ids(values: list[str]) -> list[int]:
    return [_id(value) for value in values if _id(value)]


def _company(company_id: str) -> SimCompany:
    return get_object_or_404(SimCompany, company_id=company_id)


def _page(
    request: HttpRequest, template: str, company: SimCompany | None, crumbs: list[str], **context: object
) -> HttpResponse:
    return render(request, f"simulator/{template}", {"company": company, "crumbs": crumbs, **context})


def _permission_rows(held: dict[tuple[str, str], set[str]]) -> list[dict]:
    """The permission grid: one row per catalogue policy, a checkbox per right."""
    rows = []
    for index, (app, policy, rights) in enumerate(PERMISSION_CATALOG):
        rows.append(
            {
                "index": index,
                "application": app,
                "policy": policy,
                "rights": [
                    {"name": r, "checked": r in held.get((app, policy), set()), "field": f"perm-{index}-{r}"}
                    for r in rights
                ],
            }
        )
    return rows


def _permissions_from_post(request: HttpRequest) -> list[PermSpec]:
    specs = []
    for index, (app, policy, rights) in enumerate(PERMISSION_CATALOG):
        chosen = [r for r in rights if request.POST.get(f"perm-{index}-{r}")]
        if chosen:
            specs.append((app, policy, "|".join(chosen)))
    return specs


def _held(permissions) -> dict[tuple[str, str], set[str]]:
    return {(p.application, p.policy): p.rights_set for p in permissions}


@require_http_methods(["GET", "POST"])
def home(request: HttpRequest) -> HttpResponse:
    form = CompanyCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        company = create_company(
            form.cleaned_data["company_id"],
            name=form.cleaned_data["name"] or form.cleaned_data["company_id"],
            web_services_subscribed=False,
        )
        messages.success(request, f"Company {company.company_id} created.")
        return redirect("simulator:company", company_id=company.company_id)
    return _page(request, "home.html", None, [], form=form, companies=SimCompany.objects.all())


def mailbox(request: HttpRequest) -> HttpResponse:
    mails = Mail.objects.select_related("company")
    to = request.GET.get("to", "").strip()
    if to:
        mails = mails.filter(to__iexact=to)
    return _page(request, "mailbox.html", None, ["Mailbox"], mails=mails[:200], to=to)


def company_home(request: HttpRequest, company_id: str) -> HttpResponse:
    company = _company(company_id)
    return _page(
        request,
        "company.html",
        company,
        ["Company"],
        stats=inflight_stats(company.company_id),
        usage=month_usage(company),
        entities=company.entities.all(),
    )


@require_http_methods(["GET", "POST"])
def subscriptions(request: HttpRequest, company_id: str) -> HttpResponse:
    company = _company(company_id)
    apps = applications()
    unsubscribed = set(company.unsubscribed_applications or [])
    form = SubscriptionForm(
        request.POST if request.method == "POST" else None,
        applications=apps,
        initial={
            "web_services_subscribed": company.web_services_subscribed,
            **{f"app_{i}": app not in unsubscribed for i, app in enumerate(apps)},
        },
    )
    if request.method == "POST" and form.is_valid():
        company.web_services_subscribed = form.cleaned_data["web_services_subscribed"]
        company.unsubscribed_applications = form.unsubscribed()
        company.save(update_fields=["web_services_subscribed", "unsubscribed_applications"])
        messages.success(request, "Subscriptions saved.")
        return redirect("simulator:subscriptions", company_id=company.company_id)
    return _page(request, "subscriptions.html", company, ["Company", "Admin", "Subscriptions"], form=form)


@require_http_methods(["GET", "POST"])
def security(request: HttpRequest, company_id: str) -> HttpResponse:
    company = _company(company_id)
    action = request.POST.get("action", "")
    ip_form = IPFilterForm(
        request.POST if action == "ip" else None,
        initial={
            "ip_filter_enabled": company.ip_filter_enabled,
            "allowed_ips": "\n".join(company.allowed_ips or []),
        },
    )
    sender_form = SenderAuthorizationForm(request.POST if action == "add_sender" else None)
    login_form = LoginSettingsForm(
        request.POST if action == "login_settings" else None,
        initial={"lockout_threshold": company.lockout_threshold},
    )
    if action == "login_settings" and login_form.is_valid():
        company.lockout_threshold = login_form.cleaned_data["lockout_threshold"]
        company.save(update_fields=["lockout_threshold"])
        messages.success(request, "Login settings saved.")
        return redirect("simulator:security", company_id=company.company_id)
    if action == "ip" and ip_form.is_valid():
        company.ip_filter_enabled = ip_form.cleaned_data["ip_filter_enabled"]
        company.allowed_ips = ip_form.cleaned_data["allowed_ips"]
        company.save(update_fields=["ip_filter_enabled", "allowed_ips"])
        messages.success(request, "IP address filters saved.")
        return redirect("simulator:security", company_id=company.company_id)
    if action == "add_sender" and sender_form.is_valid():
        authorize_sender(
            company,
            sender_form.cleaned_data["sender_id"],
            needs_login_for_api=sender_form.cleaned_data["needs_login_for_api"],
        )
        messages.success(request, "Web Services authorization saved.")
        return redirect("simulator:security", company_id=company.company_id)
    if action in ("remove_sender", "toggle_login") and request.method == "POST":
        auth = get_object_or_404(SenderAuthorization, company=company, pk=_id(request.POST.get("authorization")))
        if action == "remove_sender":
            auth.delete()
            messages.success(request, f"Sender ID {auth.sender_id} removed.")
        else:
            auth.needs_login_for_api = not auth.needs_login_for_api
            auth.save(update_fields=["needs_login_for_api"])
            messages.success(request, f"Needs login for API is now {'on' if auth.needs_login_for_api else 'off'}.")
        return redirect("simulator:security", company_id=company.company_id)
    return _page(
        request,
        "security.html",
        company,
        ["Company", "Setup", "Company", "Security"],
        ip_form=ip_form,
        sender_form=sender_form,
        login_form=login_form,
        authorizations=company.sender_authorizations.all(),
        client_ip=request.META.get("REMOTE_ADDR", ""),
    )


@require_http_methods(["GET", "POST"])
def company_info(request: HttpRequest, company_id: str) -> HttpResponse:
    company = _company(company_id)
    fields = [
        "permission_model",
        "session_lifetime_seconds",
        "concurrency_limit",
        "concurrency_queue_seconds",
        "monthly_api_quota",
        "login_failure_style",
        "timezone_name",
    ]
    form = CompanyInfoForm(
        request.POST if request.method == "POST" else None, initial={f: getattr(company, f) for f in fields}
    )
    if request.method == "POST" and form.is_valid():
        for f in fields:
            setattr(company, f, form.cleaned_data[f])
        company.save(update_fields=fields)
        messages.success(request, "Company information saved.")
        return redirect("simulator:company_info", company_id=company.company_id)
    return _page(request, "company_info.html", company, ["Company", "Setup", "Company Info"], form=form)


@require_http_methods(["GET", "POST"])
def roles(request: HttpRequest, company_id: str) -> HttpResponse:
    company = _company(company_id)
    form = RoleForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        if company.roles.filter(name=form.cleaned_data["name"]).exists():
            form.add_error("name", "A role with this name exists.")
        else:
            role = create_role(
                company,
                form.cleaned_data["name"],
                _permissions_from_post(request),
                form.cleaned_data["description"],
            )
            messages.success(request, f"Role {role.name} created.")
            return redirect("simulator:roles", company_id=company.company_id)
    return _page(
        request,
        "roles.html",
        company,
        ["Company", "Admin", "Roles"],
        form=form,
        roles=company.roles.prefetch_related("permissions", "users"),
        rows=_permission_rows({}),
    )


@require_http_methods(["GET", "POST"])
def role_edit(request: HttpRequest, company_id: str, role_id: int) -> HttpResponse:
    company = _company(company_id)
    role = get_object_or_404(Role, company=company, pk=role_id)
    form = RoleForm(
        request.POST if request.method == "POST" else None,
        initial={"name": role.name, "description": role.description},
    )
    if request.method == "POST" and form.is_valid() and company.roles.filter(
            name=form.cleaned_data["name"]).exclude(pk=role.pk).exists():
        form.add_error("name", "A role with this name exists.")
    if request.method == "POST" and form.is_valid():
        role.name, role.description = form.cleaned_data["name"], form.cleaned_data["description"]
        role.save()
        set_permissions(role=role, permissions=_permissions_from_post(request))
        messages.success(request, f"Role {role.name} saved.")
        return redirect("simulator:role_edit", company_id=company.company_id, role_id=role.pk)
    return _page(
        request,
        "role_edit.html",
        company,
        ["Company", "Admin", "Roles", role.name],
        form=form,
        role=role,
        rows=_permission_rows(_held(role.permissions.all())),
    )


@require_http_methods(["GET", "POST"])
def users(request: HttpRequest, company_id: str) -> HttpResponse:
    company = _company(company_id)
    form = UserForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if company.users.filter(login_id__iexact=data["login_id"]).exists():
            form.add_error("login_id", "A user with this ID exists.")
        else:
            chosen_roles = company.roles.filter(pk__in=_ids(request.POST.getlist("roles")))
            user, _ = create_user(
                company,
                data["login_id"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                email=data["email"],
                user_type=data["user_type"],
                admin_privileges=data["admin_privileges"],
                status=data["status"],
                is_web_services_user=data["is_web_services_user"],
                roles=chosen_roles,
                permissions=_permissions_from_post(request),
            )
            messages.success(
                request,
                f"User {user.login_id} created. The password was sent to {user.email} (see the Mailbox).",
            )
            return redirect("simulator:users", company_id=company.company_id)
    return _page(
        request,
        "users.html",
        company,
        ["Company", "Admin", "Web Services users"],
        form=form,
        users=company.users.prefetch_related("roles"),
        roles=company.roles.all(),
        rows=_permission_rows({}),
    )


@require_http_methods(["GET", "POST"])
def user_edit(request: HttpRequest, company_id: str, user_id: int) -> HttpResponse:
    company = _company(company_id)
    user = get_object_or_404(SimUser, company=company, pk=user_id)
    if request.method == "POST" and request.POST.get("action") == "reset_password":
        reset_password(user)
        messages.success(request, f"A new password for {user.login_id} was sent to {user.email} (see the Mailbox).")
        return redirect("simulator:user_edit", company_id=company.company_id, user_id=user.pk)
    if request.method == "POST" and request.POST.get("action") == "delete":
        delete_user(user)
        messages.success(request, f"User {user.login_id} deleted.")
        return redirect("simulator:users", company_id=company.company_id)
    if request.method == "POST" and request.POST.get("action") == "unlock":
        unlock_user(user)
        messages.success(request, f"User {user.login_id} unlocked.")
        return redirect("simulator:user_edit", company_id=company.company_id, user_id=user.pk)
    fields = ["user_type", "admin_privileges", "status", "is_web_services_user"]
    form = UserEditForm(
        request.POST if request.method == "POST" else None, initial={f: getattr(user, f) for f in fields}
    )
    if request.method == "POST" and form.is_valid():
        for f in fields:
            setattr(user, f, form.cleaned_data[f])
        if user.status == "active":
            user.failed_logins = 0  # an admin making a locked-out user active unlocks it
        user.save()
        user.roles.set(company.roles.filter(pk__in=_ids(request.POST.getlist("roles"))))
        set_user_entities(user, company.entities.filter(pk__in=_ids(request.POST.getlist("entities"))))
        set_permissions(user=user, permissions=_permissions_from_post(request))
        messages.success(request, f"User {user.login_id} saved.")
        return redirect("simulator:user_edit", company_id=company.company_id, user_id=user.pk)
    user_roles = set(user.roles.values_list("pk", flat=True))
    user_entities = set(user.entities.values_list("pk", flat=True))
    return _page(
        request,
        "user_edit.html",
        company,
        ["Company", "Admin", "Web Services users", user.login_id],
        form=form,
        sim_user=user,
        roles=[(r, r.pk in user_roles) for r in company.roles.all()],
        entities=[(e, e.pk in user_entities) for e in company.entities.all()],
        rows=_permission_rows(_held(user.permissions.all())),
    )


@require_http_methods(["GET", "POST"])
def faults(request: HttpRequest, company_id: str) -> HttpResponse:
    company = _company(company_id)
    form = FaultForm(request.POST if request.POST.get("action") == "arm" else None)
    if request.method == "POST" and request.POST.get("action") == "clear":
        clear_faults(company)
        messages.success(request, "All faults cleared.")
        return redirect("simulator:faults", company_id=company.company_id)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        set_fault(
            company,
            data["kind"],
            count=data["count"] if data["mode"] == "count" else None,
            rate=data["rate"] if data["mode"] == "rate" else None,
            delay_ms=data["delay_ms"],
            status=data["status"],
            seed=data["seed"],
        )
        messages.success(request, f"Fault {data['kind']} armed.")
        return redirect("simulator:faults", company_id=company.company_id)
    company.refresh_from_db()
    return _page(
        request,
        "faults.html",
        company,
        ["Company", "Faults"],
        form=form,
        armed=company.faults,
        kinds=FAULT_KINDS,
    )


@require_http_methods(["GET", "POST"])
def stats(request: HttpRequest, company_id: str) -> JsonResponse:
    """In-flight counters of this process as JSON; POST resets them (CSRF applies)."""
    company = _company(company_id)
    if request.method == "POST":
        inflight_reset(company.company_id)
    return JsonResponse(
        {
            "company_id": company.company_id,
            "concurrency_limit": company.concurrency_limit,
            **inflight_stats(company.company_id),
        }
    )


@require_http_methods(["GET", "POST"])
def entities(request: HttpRequest, company_id: str) -> HttpResponse:
    """Company > Setup > Entities: the entities of a multi-entity company."""
    company = _company(company_id)
    action = request.POST.get("action", "")
    form = EntityForm(request.POST if action == "add" else None)
    if action == "add" and form.is_valid():
        if company.entities.filter(entity_id=form.cleaned_data["entity_id"]).exists():
            form.add_error("entity_id", "An entity with this ID exists.")
        else:
            entity = add_entity(company, form.cleaned_data["entity_id"], form.cleaned_data["name"])
            messages.success(request, f"Entity {entity.entity_id} added.")
            return redirect("simulator:entities", company_id=company.company_id)
    if action == "remove" and request.method == "POST":
        entity = get_object_or_404(Entity, company=company, pk=_id(request.POST.get("entity")))
        remove_entity(entity)
        messages.success(request, f"Entity {entity.entity_id} removed.")
        return redirect("simulator:entities", company_id=company.company_id)
    return _page(
        request,
        "entities.html",
        company,
        ["Company", "Setup", "Entities"],
        form=form,
        entities=company.entities.prefetch_related("users"),
    )


@require_http_methods(["GET", "POST"])
def senders(request: HttpRequest) -> HttpResponse:
    """The gateway's Web Services senders (Sage issues these to partners; a company then authorizes them)."""
    form = SenderForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        sender = ensure_sender(form.cleaned_data["sender_id"], form.cleaned_data["password"])
        messages.success(request, f"Sender ID {sender.sender_id} registered.")
        return redirect("simulator:senders")
    return _page(request, "senders.html", None, ["Web Services senders"], form=form, senders=Sender.objects.all())


@require_http_methods(["GET", "POST"])
def applications_page(request: HttpRequest, company_id: str) -> HttpResponse:
    """Company > Admin > Connected applications: REST API authorisations (OAuth grants) and their withdrawal."""
    company = _company(company_id)
    action = request.POST.get("action", "")
    if action == "revoke" and request.method == "POST":
        grant = get_object_or_404(OAuthGrant, company=company, pk=_id(request.POST.get("grant")))
        OAuthGrant.objects.filter(pk=grant.pk, revoked_reason="").update(revoked_reason="revoked")
        messages.success(request, f"Authorization of {grant.app.client_id} by {grant.user.login_id} revoked.")
        return redirect("simulator:applications", company_id=company.company_id)
    if action == "disconnect" and request.method == "POST":
        client_id = request.POST.get("client_id", "")
        ended = oauth.withdraw_consent(company, client_id)
        messages.success(request, f"{client_id} disconnected: {ended} authorization(s) ended.")
        return redirect("simulator:applications", company_id=company.company_id)
    grants = OAuthGrant.objects.filter(company=company).select_related("app", "user", "entity").order_by("-created")
    return _page(request, "applications.html", company, ["Company", "Admin", "Connected applications"],
                 grants=grants, apps=sorted({g.app.client_id for g in grants if not g.revoked_reason}))
