"""Validation over REST: every cause on its own simulated company, run by a real Celery worker over real HTTP.

Same check keys and wizard steps as over XML where they apply; the token problems (revoked, refresh token
expired, consent withdrawn) are causes of their own whose fix is "Reconnect with Sage Intacct".
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from connector import clients, services, validation
from connector.intacct_rest import Pkce, authorization_url
from connector.models import Connection, ValidationRun
from simulator import oauth
from simulator.demo import build_company, without
from simulator.models import OAuthGrant, SimCompany, SimUser
from simulator.services import CONNECT_PERMISSIONS
from tests.conftest import PASSWORD, wait_for
from tests.rest.oauth_walk import approve
from tests.validation.conftest import SMALL, statuses

REST_KEYS = [check.key for check in validation.REST_CHECKS]
RECONNECT = "Reconnect with Sage Intacct"


def new_connection(*, wants_deprovisioning: bool = False) -> Connection:
    tag = uuid.uuid4().hex[:8]
    admin = services.user_create(username=f"admin-{tag}", email=f"admin-{tag}@acme.test", password=PASSWORD)
    connection = services.organisation_create(name=f"Acme {tag}", admin=admin).connection
    if wants_deprovisioning:
        services.connection_set_deprovisioning(connection=connection, wants_deprovisioning=True, by=None)
    return connection


def finished(run: ValidationRun) -> ValidationRun:
    return wait_for(lambda: ValidationRun.objects.filter(pk=run.pk, status__in=ValidationRun.FINISHED).first(),
                    timeout=60, message=f"validation run {run.pk} to finish in the worker")


def connect_cc(company_id: str, *, user_id: str = "ws_connect", entity_id: str = "", **options: Any) -> ValidationRun:
    connection = new_connection(**options)
    run = services.connection_connect_rest_client_credentials(connection=connection, company_id=company_id,
                                                              user_id=user_id, entity_id=entity_id, by=None)
    return finished(run)


def connect_code(company_id: str, **options: Any) -> ValidationRun:
    connection = new_connection(**options)
    pkce = Pkce.new()
    url = authorization_url(clients.rest_config(), redirect_uri=settings.INTACCT_REST_REDIRECT_URI,
                            state="st", pkce=pkce)
    answer = approve(url, company_id=company_id)
    run = services.connection_connect_rest_code(connection=connection, code=answer["code"],
                                                code_verifier=pkce.verifier, company_id=company_id, by=None)
    return finished(run)


def revalidate(run: ValidationRun) -> ValidationRun:
    return finished(services.validation_request(connection=run.connection, by=None))


@pytest.fixture
def rest(celery_worker, our_rest_app, simulator) -> Any:
    return our_rest_app


@dataclass
class Case:
    name: str
    company: dict = field(default_factory=dict)
    connect: dict = field(default_factory=dict)
    failing: str = ""
    step: int | None = None
    cause: str = ""
    words: tuple[str, ...] = ()


CASES = [
    Case("wrong-user", connect={"user_id": "nobody"}, failing="login", step=6, cause="sign_in_refused",
         words=('refused a token for "nobody@', "Web Services user")),
    Case("not-web-services-user", company={"web_services_user": False}, failing="login", step=6,
         cause="sign_in_refused", words=("active Web Services user",)),
    Case("entity", connect={"entity_id": "E999"}, failing="login", step=6, cause="sign_in_refused",
         words=("|E999",)),
    Case("subscription", company={"subscribed": False}, failing="subscription", step=1, cause="company_refuses_api",
         words=("refused every read", "Company > Admin > Subscriptions", "IP address filter")),
    Case("ip", company={"ip_filter": ["203.0.113.0/24"]}, failing="subscription", step=1,
         cause="company_refuses_api", words=("IP address filters",)),
    Case("sender-not-authorised", company={"authorize_sender_id": False}, failing="subscription", step=1,
         cause="company_refuses_api", words=("Sender ID is not authorised", "step 3")),
    Case("no-bills", company={"permissions": without(CONNECT_PERMISSIONS, "Bills")}, failing="read_apbill", step=4,
         cause="permission_removed", words=("Accounts Payable > Bills View",)),
    Case("admin-limited", company={"admin_privileges": "Limited"}, connect={"wants_deprovisioning": True},
         failing="deprovisioning", step=5, cause="deprovisioning_unavailable", words=("admin privileges Full",)),
]


@pytest.mark.worker
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_client_credentials_each_misconfiguration_names_its_check_step_and_fix(case, rest):
    company_id = f"RC-{case.name.upper()}"[:20]
    build_company(company_id, sizes=SMALL, **case.company)
    run = connect_cc(company_id, **case.connect)
    assert run.status == ValidationRun.Status.FAILED, run.summary
    assert (run.failed_check, run.failed_step, run.cause) == (case.failing, case.step, case.cause), run.summary
    for words in case.words:
        assert words in run.summary, (words, run.summary)
    assert list(run.checks.values_list("key", flat=True)) == REST_KEYS
    # Never connected before: it stays in setup whatever fails.
    assert Connection.objects.get(pk=run.connection_id).status == Connection.Status.IN_SETUP


@pytest.mark.worker
def test_a_healthy_company_passes_over_both_grants(rest):
    build_company("RC-OK", sizes=SMALL)
    for run in (connect_cc("RC-OK"), connect_code("RC-OK")):
        assert run.status == ValidationRun.Status.PASSED, (run.summary, statuses(run))
        assert list(run.checks.values_list("key", flat=True)) == REST_KEYS
        assert statuses(run)["permission_model"] == "skipped"
        assert Connection.objects.get(pk=run.connection_id).status == Connection.Status.CONNECTED


def break_token(kind: str, company_id: str) -> None:
    company = SimCompany.objects.get(company_id=company_id)
    if kind == "revoked":
        oauth.revoke_grants_of(SimUser.objects.get(company=company, login_id="ws_connect"))
    elif kind == "consent":
        oauth.withdraw_consent(company, settings.INTACCT_REST_CLIENT_ID)
    else:  # the refresh token's life has passed, at Intacct and in what we recorded of it
        past = timezone.now() - timedelta(seconds=1)
        OAuthGrant.objects.filter(company=company).update(refresh_expires_at=past)
        Connection.objects.filter(company_id=company_id).update(rest_refresh_expires_at=past)


@pytest.mark.worker
@pytest.mark.parametrize("kind,cause,words", [
    ("revoked", "token_revoked", "revoked in Intacct"),
    ("expired", "refresh_token_expired", "has expired"),
    ("consent", "consent_withdrawn", "disconnected our application"),
])
def test_token_problems_are_their_own_causes_and_say_reconnect(rest, kind, cause, words, mailoutbox):
    company_id = f"RT-{kind.upper()}"
    build_company(company_id, sizes=SMALL)
    first = connect_code(company_id)
    assert first.status == ValidationRun.Status.PASSED, first.summary
    break_token(kind, company_id)
    run = revalidate(first)
    assert run.status == ValidationRun.Status.FAILED, run.summary
    assert (run.failed_check, run.failed_step, run.cause) == ("login", 6, cause), run.summary
    assert words in run.summary and RECONNECT in run.summary, run.summary
    connection = Connection.objects.get(pk=run.connection_id)
    # It had worked: a token problem stops everything until the admin reconnects.
    assert connection.status == Connection.Status.BROKEN and connection.status_cause == cause
    assert statuses(run)["sender"] == "passed"
    assert all(status == "skipped" for key, status in statuses(run).items() if key not in ("sender", "login"))
