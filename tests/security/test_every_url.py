"""Tenant isolation: every URL pattern of the project, requested by every kind of person, against a rule table.

The patterns are read from the resolver (wizard, records, dashboard, ops, auth, the simulator, Django's
admin), each is filled with organisation A's real objects (its slug, connection, validation run, user
record...), and requested with GET and POST by: an anonymous visitor, the admin of another organisation,
support staff, organisation A's admin and the operator's superuser. A pattern without a rule fails the test:
whoever adds a URL must say who may see it.
"""
from __future__ import annotations

from dataclasses import dataclass
from unittest import mock

import pytest
from django.contrib.admin.sites import site as admin_site
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from connector import crypto, services, webhooks
from connector.models import (
    ApiToken,
    Connection,
    Record,
    SyncRun,
    ValidationCheck,
    ValidationRun,
    WebhookMessage,
)
from simulator import services as sim
from tests.conftest import PASSWORD
from wizard import handoff as handoffs

ROLES = ("anonymous", "other_admin", "support", "org_admin", "superuser")
LOGIN = "login"  # a redirect to the site's login page
ADMIN_LOGIN = "admin-login"  # a redirect to the admin's login page
REDIRECT = "redirect"  # a redirect somewhere else (a landing page, the next wizard step...)
PUBLIC_HEALTH = "health"  # 200 or 503 (health depends on workers, not on who asks)


@dataclass(frozen=True)
class Rule:
    """Expected GET and POST answer per role: (anonymous, other_admin, support, org_admin, superuser)."""

    get: tuple
    post: tuple


def same(value) -> tuple:
    return (value,) * len(ROLES)


# A page of organisation A: outsiders 404, support read-only (403 on writes), A's admin and superusers all.
ORG_READ = (LOGIN, 404, 200, 200, 200)
ORG_WRITE = (LOGIN, 404, 403, REDIRECT, REDIRECT)
POST_ONLY_GET = (LOGIN, 405, 405, 405, 405)
GET_ONLY_POST = (LOGIN, 405, 405, 405, 405)
# The support dashboard: support staff and superusers only; org admins and outsiders 404.
SUPPORT_READ = (LOGIN, 404, 200, 404, 200)
SUPPORT_ACTION = (LOGIN, 404, REDIRECT, 404, REDIRECT)
# The token API: no session and no token is 401 (JSON); a session goes through the access helper.
API_READ = (401, 404, 200, 200, 200)
# Django's admin: staff only (our support staff are not staff); everyone else is sent to its login.
ADMIN_ONLY = (ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200)

RULES: dict[str, Rule] = {
    # --- wizard and connection page
    "home": Rule(get=(LOGIN, REDIRECT, REDIRECT, REDIRECT, REDIRECT),
                 post=(LOGIN, REDIRECT, REDIRECT, REDIRECT, REDIRECT)),
    "signup": Rule(get=same(200), post=same(200)),  # empty form back with its errors
    "organisation_list": Rule(get=(LOGIN, 404, 200, 404, 200), post=(LOGIN, 404, 200, 404, 200)),
    "setup": Rule(get=(LOGIN, 404, REDIRECT, REDIRECT, REDIRECT), post=ORG_WRITE),
    # step 6 is Connect; an empty POST is answered with the form's errors
    "setup_step": Rule(get=ORG_READ, post=(LOGIN, 404, 403, 200, 200)),
    "connection": Rule(get=ORG_READ, post=ORG_READ),  # read-only page, POST changes nothing
    "connection_revalidate": Rule(get=POST_ONLY_GET, post=ORG_WRITE),
    "connection_password": Rule(get=ORG_READ, post=(LOGIN, 404, 403, 200, 200)),
    # a POST with no field at all shows the form again (a real one sends entity_id, even empty)
    "connection_entity": Rule(get=ORG_READ, post=(LOGIN, 404, 403, 200, 200)),
    "connection_disconnect": Rule(get=ORG_READ, post=ORG_WRITE),
    "validation_status": Rule(get=ORG_READ, post=ORG_READ),
    "setup_check_again": Rule(get=POST_ONLY_GET, post=ORG_WRITE),
    # step 6's entity picker: without listed entities (A's connection) it sends the admin back to step 6
    "setup_entity": Rule(get=POST_ONLY_GET, post=ORG_WRITE),
    # hand-off links (issue 15): made and revoked by A's admin; a link that does not exist is 404 for all
    "handoff_create": Rule(get=POST_ONLY_GET, post=ORG_WRITE),
    "handoff_revoke": Rule(get=POST_ONLY_GET, post=ORG_WRITE),
    "handoff_status": Rule(get=ORG_READ, post=ORG_READ),
    "handoff_open": Rule(get=same(404), post=same(404)),
    # REST (issue 17): the protocol choice; "Connect with Sage Intacct" and the Web Services user over REST (an
    # empty form is answered 400 with its errors, nothing sent); Intacct's redirect back without a known state
    # goes home with plain words, whoever asks; the connection page's switch is for those who may change it
    "setup_protocol": Rule(get=POST_ONLY_GET, post=ORG_WRITE),
    "rest_connect": Rule(get=POST_ONLY_GET, post=(LOGIN, 404, 403, 400, 400)),
    "rest_web_services_user": Rule(get=POST_ONLY_GET, post=(LOGIN, 404, 403, 400, 400)),
    "rest_callback": Rule(get=same(REDIRECT), post=same(405)),
    "connection_switch": Rule(get=(LOGIN, 404, 403, 200, 200), post=GET_ONLY_POST),
    # --- synced data and the JSON APIs
    "sync_now": Rule(get=POST_ONLY_GET, post=ORG_WRITE),
    "sync_status": Rule(get=ORG_READ, post=GET_ONLY_POST),
    "record_list": Rule(get=ORG_READ, post=GET_ONLY_POST),
    "record_csv": Rule(get=ORG_READ, post=GET_ONLY_POST),
    # POST is refused on the page (this organisation did not choose deprovisioning): 200 with the reason
    "user_deprovision": Rule(get=ORG_READ, post=(LOGIN, 404, 403, 200, 200)),
    "api_tokens": Rule(get=ORG_READ, post=(LOGIN, 404, 403, 200, 200)),
    "api_objects": Rule(get=API_READ, post=same(405)),
    "api_records": Rule(get=API_READ, post=same(405)),
    "api_connection_status": Rule(get=API_READ, post=same(405)),
    "api_changes": Rule(get=API_READ, post=same(405)),
    "openapi": Rule(get=same(200), post=same(405)),  # the API's description: public, no data
    # webhooks through the API: reads as every API; writes need the organisation's token (a session gets 401)
    "api_webhooks": Rule(get=API_READ, post=same(401)),
    "api_webhook": Rule(get=API_READ, post=same(405)),
    "api_webhook_rotate": Rule(get=same(405), post=same(401)),
    # webhook pages: an empty POST shows the form's error / "unknown action"; support may resend, not configure
    "webhook_list": Rule(get=ORG_READ, post=(LOGIN, 404, 403, 200, 200)),
    "webhook_detail": Rule(get=ORG_READ, post=(LOGIN, 404, 403, 200, 200)),
    "webhook_resend": Rule(get=POST_ONLY_GET, post=(LOGIN, 404, REDIRECT, REDIRECT, REDIRECT)),
    # --- support dashboard and operations
    "dashboard": Rule(get=SUPPORT_READ, post=GET_ONLY_POST),
    "dashboard_export": Rule(get=SUPPORT_READ, post=GET_ONLY_POST),
    "dashboard_connection": Rule(get=SUPPORT_READ, post=GET_ONLY_POST),
    "dashboard_revalidate": Rule(get=POST_ONLY_GET, post=SUPPORT_ACTION),
    "dashboard_sync": Rule(get=POST_ONLY_GET, post=SUPPORT_ACTION),
    "dashboard_step_link": Rule(get=POST_ONLY_GET, post=SUPPORT_ACTION),
    "healthz": Rule(get=same(PUBLIC_HEALTH), post=same(405)),
    "metrics": Rule(get=same(200), post=same(405)),  # METRICS_TOKEN unset here; see test_metrics_token
    # --- Django's auth views (login is ours: rate limited)
    "login": Rule(get=same(200), post=same(200)),
    "logout": Rule(get=same(405), post=same(200)),
    "password_change": Rule(get=(LOGIN, 200, 200, 200, 200), post=(LOGIN, 200, 200, 200, 200)),
    "password_change_done": Rule(get=(LOGIN, 200, 200, 200, 200), post=(LOGIN, 405, 405, 405, 405)),
    "password_reset": Rule(get=same(200), post=same(200)),
    "password_reset_done": Rule(get=same(200), post=same(405)),
    "password_reset_confirm": Rule(get=same(200), post=same(200)),  # an invalid link, said on the page
    "password_reset_complete": Rule(get=same(200), post=same(405)),
    # --- the simulator (the demo's stand-in for Intacct, its own "site": no login; off in production)
    "simulator:gateway": Rule(get=same(405), post=same(200)),  # an XML error answer, as Intacct's
    "simulator:home": Rule(get=same(200), post=same(200)),
    "simulator:mailbox": Rule(get=same(200), post=same(200)),
    "simulator:company": Rule(get=same(200), post=same(200)),
    "simulator:subscriptions": Rule(get=same(200), post=same(REDIRECT)),
    "simulator:security": Rule(get=same(200), post=same(200)),
    "simulator:company_info": Rule(get=same(200), post=same(200)),
    "simulator:roles": Rule(get=same(200), post=same(200)),
    "simulator:role_edit": Rule(get=same(200), post=same(200)),
    "simulator:users": Rule(get=same(200), post=same(200)),
    "simulator:user_edit": Rule(get=same(200), post=same(200)),
    "simulator:faults": Rule(get=same(200), post=same(200)),
    "simulator:stats": Rule(get=same(200), post=same(200)),
    "simulator:senders": Rule(get=same(200), post=same(200)),
    "simulator:entities": Rule(get=same(200), post=same(200)),
    "simulator:applications": Rule(get=same(200), post=same(200)),  # a POST without an action shows the page
    # the simulated REST API (issue 17): an unknown client is shown an error page, never redirected to
    "simulator:rest_authorize": Rule(get=same(400), post=same(400)),
    "simulator:rest_token": Rule(get=same(405), post=same(401)),  # no client credentials: invalid_client
    "simulator:rest_revoke": Rule(get=same(405), post=same(401)),
    "simulator:rest_query": Rule(get=same(405), post=same(401)),  # no bearer token: 401 tokenInvalid
    "simulator:rest_objects": Rule(get=same(401), post=same(405)),
    # --- Django's admin (staff only): its own URLs; every model page is listed by ADMIN_MODEL_VIEWS below
    "admin:index": Rule(get=ADMIN_ONLY, post=ADMIN_ONLY),
    "admin:login": Rule(get=(200, 200, 200, 200, REDIRECT), post=same(200)),
    # logging out of the admin: non-staff are sent to its index (and from there to its login)
    "admin:logout": Rule(get=(REDIRECT,) * 4 + (405,), post=(REDIRECT,) * 4 + (200,)),
    "admin:password_change": Rule(get=ADMIN_ONLY, post=ADMIN_ONLY),
    "admin:password_change_done": Rule(get=ADMIN_ONLY, post=(ADMIN_LOGIN,) * 4 + (405,)),
    "admin:autocomplete": Rule(get=(ADMIN_LOGIN,) * 4 + (403,), post=(ADMIN_LOGIN,) * 4 + (405,)),
    "admin:jsi18n": Rule(get=ADMIN_ONLY, post=(ADMIN_LOGIN,) * 4 + (405,)),
    "admin:view_on_site": Rule(get=(ADMIN_LOGIN,) * 4 + (404,), post=(ADMIN_LOGIN,) * 4 + (404,)),
    "admin:app_list": Rule(get=ADMIN_ONLY, post=ADMIN_ONLY),
    # the admin's catch-all (unnamed): unknown admin URLs
    "admin/(?P<url>.*)$": Rule(get=(ADMIN_LOGIN,) * 4 + (404,), post=(ADMIN_LOGIN,) * 4 + (404,)),
}
# Every page of every model registered in the admin: staff only. The list of views is fixed by Django's
# ModelAdmin; the models come from the admin site, so a newly registered model is covered (and checked).
ADMIN_MODEL_VIEWS = {
    "changelist": Rule(get=ADMIN_ONLY, post=ADMIN_ONLY),
    "add": Rule(get=ADMIN_ONLY, post=ADMIN_ONLY),
    "history": Rule(get=ADMIN_ONLY, post=ADMIN_ONLY),
    "delete": Rule(get=ADMIN_ONLY, post=ADMIN_ONLY),  # an empty POST only shows the confirmation
    "change": Rule(get=ADMIN_ONLY, post=ADMIN_ONLY),
}
# Whatever the admin registers beyond ModelAdmin's five views (e.g. the user's password form).
ADMIN_EXTRA_VIEWS = {
    "admin:auth_user_password_change": Rule(get=ADMIN_ONLY, post=ADMIN_ONLY),
    # The audit log is read-only, even for superusers (the services write it; retention prunes it).
    "admin:connector_auditevent_add": Rule(get=(ADMIN_LOGIN,) * 4 + (403,), post=(ADMIN_LOGIN,) * 4 + (403,)),
    "admin:connector_auditevent_delete": Rule(get=(ADMIN_LOGIN,) * 4 + (403,),
                                              post=(ADMIN_LOGIN,) * 4 + (403,)),
    "admin:connector_auditevent_change": Rule(get=ADMIN_ONLY, post=(ADMIN_LOGIN,) * 4 + (403,)),
}


# Django's old-style admin object URL, unnamed: staff only, it redirects to the object's change page.
ADMIN_OBJECT_REDIRECT = Rule(get=(ADMIN_LOGIN,) * 4 + (REDIRECT,), post=(ADMIN_LOGIN,) * 4 + (REDIRECT,))


def _registered_model_keys() -> dict[str, type]:
    return {f"{m._meta.app_label}_{m._meta.model_name}": m for m in admin_site._registry}


def rule_for(name: str) -> Rule | None:
    if name.startswith("admin/") and name.endswith("/<path:object_id>/"):
        app_label, model_name = name.split("/")[1:3]
        return ADMIN_OBJECT_REDIRECT if f"{app_label}_{model_name}" in _registered_model_keys() else None
    if name in RULES:
        return RULES[name]
    if name in ADMIN_EXTRA_VIEWS:
        return ADMIN_EXTRA_VIEWS[name]
    if name.startswith("admin:"):
        model, _, view = name.removeprefix("admin:").rpartition("_")
        if model in _registered_model_keys():
            return ADMIN_MODEL_VIEWS.get(view)
    return None


# --- walking the resolver ---------------------------------------------------------------------

@dataclass(frozen=True)
class Pattern:
    key: str  # namespaced URL name, or the full route for an unnamed pattern
    name: str | None
    route: str
    converters: tuple[str, ...]


def walk(patterns, prefix: str = "", namespace: str = "") -> list[Pattern]:
    found = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace or ""
            inner = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
            found += walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            route = prefix + str(entry.pattern)
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            converters = tuple(entry.pattern.regex.groupindex)
            found.append(Pattern(key=name or route, name=name, route=route, converters=converters))
    return found


def all_patterns() -> list[Pattern]:
    return walk(get_resolver().url_patterns)


# --- the world: organisation A with every kind of object, and organisation B ------------------

@dataclass
class World:
    users: dict
    values: dict  # converter name -> organisation A's value
    org_b_slug: str
    token_b: str


@pytest.fixture
def world(organisation, other_organisation, settings) -> World:
    settings.SIMULATOR_ENABLED = True
    User = get_user_model()
    connection = organisation.connection
    Connection.objects.filter(pk=connection.pk).update(
        company_id="ACME", user_id="ws_connect", password_token=crypto.encrypt("Acme-Secret-1"),
        status=Connection.Status.CONNECTED, permission_model="role", wants_deprovisioning=False)
    connection.refresh_from_db()
    run = ValidationRun.objects.create(connection=connection, status=ValidationRun.Status.PASSED,
                                       finished_at=timezone.now())
    ValidationCheck.objects.create(run=run, position=0, key="session", label="Log in", status="passed")
    connection.last_validation = run
    connection.save(update_fields=["last_validation"])
    SyncRun.objects.create(connection=connection, status=SyncRun.Status.SUCCEEDED, finished_at=timezone.now())
    user_record = Record.objects.create(connection=connection, object_name="USERINFO", recordno=7,
                                        key_value="jdoe", data={"LOGINID": "jdoe", "STATUS": "active"})
    support = services.user_create(username="sam", email="sam@operator.test", password=PASSWORD)
    services.support_staff_grant(user=support)
    root = User.objects.create_superuser(username="root", email="root@operator.test", password=PASSWORD)
    _, token_b = ApiToken.issue(organisation=other_organisation, name="B's token")
    endpoint, _ = webhooks.endpoint_create(organisation=organisation, url="https://hooks.example.com/a",
                                           events=["sync.finished"])
    message = WebhookMessage.objects.create(endpoint=endpoint, msg_id="msg_world", event_type="sync.finished",
                                            payload="{}", status=WebhookMessage.Status.FAILED)
    company = sim.create_company("ACME-SIM")
    role = sim.create_role(company, "Connect API", [])
    sim_user, _ = sim.create_user(company, "ws_connect", first_name="WS", last_name="User", roles=[role])
    alice = User.objects.get(username="alice")
    handoff, _ = handoffs.handoff_create(organisation=organisation, name="Ivan", email="", by=alice, ip=None)
    values = {
        "handoff_id": handoff.id,
        "slug": organisation.slug, "number": 6, "run_id": run.id, "connection_id": connection.id,
        "object_name": "USERINFO", "recordno": user_record.recordno, "action": "deactivate",
        "company_id": company.company_id, "role_id": role.id, "user_id": sim_user.id,
        "uidb64": urlsafe_base64_encode(force_bytes(alice.pk)), "token": "not-a-valid-token",
        "app_label": "connector", "content_type_id": ContentType.objects.get_for_model(Connection).id,
        "url": "no-such-admin-page/", "id": alice.pk, "object_path": "accounts-payable/bill",
        "endpoint_id": endpoint.pk, "message_id": message.pk,
    }
    users = {"anonymous": None, "other_admin": User.objects.get(username="olga"), "support": support,
             "org_admin": alice, "superuser": root}
    return World(users=users, values=values, org_b_slug=other_organisation.slug, token_b=token_b)


def concrete_url(pattern: Pattern, world: World) -> str:
    kwargs = {name: world.values[name] for name in pattern.converters if name != "object_id"}
    if "object_id" in pattern.converters:
        kwargs["object_id"] = _admin_object_id(pattern, world)
    if pattern.name:
        return reverse(pattern.name, kwargs=kwargs)
    if "object_id" in kwargs:  # the unnamed admin/<app>/<model>/<path:object_id>/ redirect
        return "/" + pattern.route.replace("<path:object_id>", kwargs["object_id"])
    return "/admin/" + world.values["url"]  # the admin's unnamed catch-all


def _admin_object_id(pattern: Pattern, world: World) -> str:
    if pattern.name == "admin:view_on_site":
        return str(world.values["connection_id"])
    if pattern.name:
        model_key = pattern.name.removeprefix("admin:").rpartition("_")[0]
    else:
        model_key = "_".join(pattern.route.split("/")[1:3])
    model = _registered_model_keys().get(model_key)
    assert model is not None, f"no admin model for {pattern.key}"
    obj = model._default_manager.order_by("pk").first()
    assert obj is not None, f"no {model_key} object to fill {pattern.route}"
    return str(obj.pk)


def client_for(world: World, role: str) -> Client:
    client = Client()
    if world.users[role] is not None:
        client.force_login(world.users[role])
    return client


def matches(expected, response) -> bool:
    status, location = response.status_code, response.get("Location", "")
    if expected == LOGIN:
        return status == 302 and location.startswith(reverse("login"))
    if expected == ADMIN_LOGIN:
        return status == 302 and location.startswith(reverse("admin:login"))
    if expected == REDIRECT:
        return status == 302 and not location.startswith((reverse("login"), reverse("admin:login")))
    if expected == PUBLIC_HEALTH:
        return status in (200, 503)
    return status == expected


@pytest.fixture
def nothing_leaves():
    """No task is published and nothing is sent to Intacct while the table is walked."""
    with mock.patch("connector.tasks.connection_validate.delay"), mock.patch("connector.tasks.sync_run.delay"), \
            mock.patch("connector.intacct.client.IntacctClient._roundtrip",
                       side_effect=AssertionError("no request to Intacct from the URL walk")):
        yield


def test_every_url_pattern_has_a_rule():
    missing = sorted({p.key for p in all_patterns() if rule_for(p.key) is None})
    assert not missing, f"new URL without a rule in tests/security/test_every_url.py: {missing}"


def test_the_walk_finds_every_part_of_the_project():
    keys = {p.key for p in all_patterns()}
    for expected in ("setup_step", "record_list", "api_records", "dashboard_connection", "healthz", "login",
                     "simulator:gateway", "admin:connector_connection_change", "admin:index"):
        assert expected in keys, expected
    assert len(keys) >= 60


def test_every_url_answers_each_role_as_its_rule_says(world, nothing_leaves):
    failures, requests = [], 0
    for pattern in all_patterns():
        rule = rule_for(pattern.key)
        assert rule is not None, pattern.key
        url = concrete_url(pattern, world)
        for method, expected_row in (("GET", rule.get), ("POST", rule.post)):
            for role, expected in zip(ROLES, expected_row, strict=True):
                client = client_for(world, role)
                # Each request runs in a savepoint rolled back after it: a POST's effect never
                # changes what the next role or URL sees.
                with transaction.atomic():
                    response = client.get(url) if method == "GET" else client.post(url, {})
                    transaction.set_rollback(True)
                requests += 1
                assert response.status_code < 500 or expected == PUBLIC_HEALTH, (pattern.key, method, role, url)
                if not matches(expected, response):
                    failures.append(f"{pattern.key} {method} {url} as {role}: expected {expected}, got "
                                    f"{response.status_code} {response.get('Location', '')}")
    assert not failures, "\n".join(failures)
    assert requests >= 60 * 2 * len(ROLES)


# --- organisation B's admin with A's ids under B's own slug (IDOR) ----------------------------

def test_other_admin_cannot_reach_a_objects_through_their_own_slug(world, nothing_leaves):
    """A's run, user record, etc. under B's slug: B's admin has B's pages, never A's objects."""
    client = client_for(world, "other_admin")
    values = {**world.values, "slug": world.org_b_slug}
    checked = 0
    for pattern in all_patterns():
        ids = set(pattern.converters) & {"run_id", "recordno", "endpoint_id"}
        if "slug" not in pattern.converters or not ids:
            continue
        if pattern.key == "api_webhook_rotate":
            continue  # a POST-only API write that takes no session at all (401 whoever asks; see the rules)
        url = reverse(pattern.name, kwargs={name: values[name] for name in pattern.converters})
        # (resend is POST-only: a GET is 405 before any lookup; its POST is the 404 that matters)
        assert client.get(url).status_code == (405 if pattern.key == "webhook_resend" else 404), url
        with transaction.atomic():
            # (the webhook API's single endpoint takes GET and DELETE only: a POST is 405 before any lookup)
            expected = 405 if pattern.key == "api_webhook" else 404
            assert client.post(url, {"with_employee": "1"}).status_code == expected, url
            transaction.set_rollback(True)
        checked += 1
    assert checked >= 2


def test_other_organisations_api_token_opens_nothing_of_a(world):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {world.token_b}"}
    slug = world.values["slug"]
    for url in (reverse("api_objects", args=[slug]), reverse("api_records", args=[slug, "USERINFO"]),
                reverse("api_connection_status", args=[slug]), reverse("api_changes", args=[slug]),
                reverse("api_webhooks", args=[slug]), reverse("api_webhook", args=[slug, world.values["endpoint_id"]])):
        response = Client().get(url, **headers)
        assert response.status_code == 401, url
        assert b"jdoe" not in response.content and b"ACME" not in response.content
    # ...while it does open B's own.
    assert Client().get(reverse("api_objects", args=[world.org_b_slug]), **headers).status_code == 200


def test_metrics_token(world, settings):
    settings.METRICS_TOKEN = "metrics-token-123"
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-123").status_code == 200


# --- CSRF: every POST of a logged-in person needs the token ------------------------------------

# The XML gateway and the REST API are called by servers, like Intacct's (authenticated by credentials and
# tokens in the request, never by a cookie); the OAuth sign-in page is a page and keeps its CSRF check.
CSRF_EXEMPT = {"simulator:gateway", "simulator:rest_token", "simulator:rest_revoke", "simulator:rest_query",
               "simulator:rest_objects"}
# The webhook API's writes take only the organisation's bearer token: a session's POST is refused (401) anyway.
CSRF_EXEMPT |= {"api_webhooks", "api_webhook", "api_webhook_rotate"}


def test_every_post_without_a_csrf_token_is_refused(world, nothing_leaves):
    refused = 0
    for pattern in all_patterns():
        if pattern.key in CSRF_EXEMPT:
            continue
        url = concrete_url(pattern, world)
        for role in ("org_admin", "superuser"):
            client = Client(enforce_csrf_checks=True)
            client.force_login(world.users[role])
            with transaction.atomic():
                response = client.post(url, {})
                transaction.set_rollback(True)
            assert response.status_code == 403 and b"CSRF" in response.content, (pattern.key, role,
                                                                                  response.status_code)
            refused += 1
    assert refused >= 100


def test_anonymous_visitor_sees_no_page_of_an_organisation(world):
    """Not even the name: the login redirect carries nothing but the path."""
    for pattern in all_patterns():
        if "slug" not in pattern.converters:
            continue
        response = Client().get(concrete_url(pattern, world))
        assert b"Acme" not in response.content, pattern.key
