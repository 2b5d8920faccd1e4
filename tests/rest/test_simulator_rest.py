"""The simulator's REST API: OAuth endpoints, the query service and object endpoints over the XML side's data."""
from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import etree

from simulator import faults, inflight, oauth
from simulator.metering import month_usage
from simulator.models import OAuthGrant, SenderAuthorization, SimUser
from simulator.services import authorize_sender, create_user, set_permissions
from tests.rest.conftest import API, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI
from tests.simulator.conftest import envelope, post

PASSWORD = "Demo-Connect-2024!"  # noqa: S105 - the demo companies' fake password


def token(client: Any, **form: str) -> Any:
    data = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **form}
    return client.post(f"{API}/oauth2/token", data=data)


def cc_token(client: Any, username: str = "ws_connect@TEST-CO") -> str:
    answer = token(client, grant_type="client_credentials", username=username)
    assert answer.status_code == 200, answer.content
    return answer.json()["access_token"]


def q(client: Any, access: str, body: dict[str, Any]) -> Any:
    return client.post(f"{API}/services/core/query", data=json.dumps(body), content_type="application/json",
                        HTTP_AUTHORIZATION=f"Bearer {access}")


def authorize_code(client: Any, *, user: str = "ws_connect", password: str = PASSWORD, scope: str = "offline_access",
                   challenge: str = "", company: str = "TEST-CO") -> str:
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "state": "st-1",
              "scope": scope, "code_challenge": challenge, "code_challenge_method": "S256" if challenge else ""}
    page = client.get(f"{API}/oauth2/authorize", params)
    assert page.status_code == 200 and b"Sign in to Sage Intacct" in page.content
    consent = client.post(f"{API}/oauth2/authorize", {**params, "step": "signin", "company_id": company,
                                                       "user_id": user, "password": password})
    assert b"Allow connect-test.app.sage.com" in consent.content, consent.content[:500]
    identity = etree.HTML(consent.content).xpath("//input[@name='identity']/@value")[0]
    back = client.post(f"{API}/oauth2/authorize", {**params, "step": "consent", "identity": identity,
                                                    "decision": "accept"})
    assert back.status_code == 302
    query = parse_qs(urlsplit(back["Location"]).query)
    assert back["Location"].startswith(REDIRECT_URI) and query["state"] == ["st-1"]
    return query["code"][0]


# --- OAuth ---------------------------------------------------------------------------------------------
def test_access_token_is_a_jwt_naming_user_company_and_lifetime(client, company, rest_app):
    answer = token(client, grant_type="client_credentials", username="ws_connect@TEST-CO|E100")
    body = answer.json()
    assert answer.status_code == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 43200
    assert "refresh_token" not in body  # client credentials: no refresh token
    claims = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[1] + "=="))
    assert claims["sub"] == "ws_connect@TEST-CO|E100" and claims["exp"] - claims["iat"] == 43200


def test_admin_approval_authorises_the_sender_for_the_xml_side_too(client, company, rest_app):
    SenderAuthorization.objects.filter(company=company).delete()
    # Before: the XML gateway refuses our sender for this company.
    before = post(client, envelope("<function controlid='f'><getAPISession/></function>"))
    assert b"Invalid Web Services Authorization" in before.content
    code = authorize_code(client)
    answer = token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI)
    assert answer.status_code == 200 and answer.json()["refresh_token"]
    after = post(client, envelope("<function controlid='f'><getAPISession/></function>"))
    assert b"<sessionid>" in after.content
    assert SenderAuthorization.objects.filter(company=company, active=True).count() == 1


def test_non_admin_approval_leaves_the_sender_unauthorised_and_the_api_says_so(client, company, rest_app):
    SenderAuthorization.objects.filter(company=company).delete()
    SimUser.objects.filter(company=company, login_id="ws_connect").update(admin_privileges="Off")
    code = authorize_code(client)
    access = token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI).json()
    answer = q(client, access["access_token"], {"object": "accounts-payable/bill", "fields": ["key"]})
    assert answer.status_code == 403
    assert answer.json()["ia::result"]["ia::error"]["code"] == "senderNotAuthorized"
    assert not SenderAuthorization.objects.filter(company=company).exists()


def test_pkce_verifier_must_match_the_challenge(client, company, rest_app):
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    code = authorize_code(client, challenge=challenge)
    wrong = token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI,
                  code_verifier="w" * 50)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    code = authorize_code(client, challenge=challenge)
    right = token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI,
                  code_verifier=verifier)
    assert right.status_code == 200


def test_a_code_works_once_and_without_offline_access_there_is_no_refresh_token(client, company, rest_app):
    code = authorize_code(client, scope="")
    first = token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI)
    assert first.status_code == 200 and "refresh_token" not in first.json()
    again = token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_refresh_rotates_and_the_old_refresh_token_stops_working(client, company, rest_app):
    code = authorize_code(client)
    first = token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI).json()
    second = token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    replay = token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    third = token(client, grant_type="refresh_token", refresh_token=second.json()["refresh_token"])
    assert third.status_code == 200


def test_revocation_ends_refresh_and_access_tokens(client, company, rest_app):
    code = authorize_code(client)
    tokens = token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI).json()
    ok = q(client, tokens["access_token"], {"object": "general-ledger/account", "fields": ["id"]})
    assert ok.status_code == 200
    revoke = client.post(f"{API}/oauth2/revoke", {"token": tokens["refresh_token"], "client_id": CLIENT_ID,
                                                   "client_secret": CLIENT_SECRET})
    assert revoke.status_code == 200
    refused = q(client, tokens["access_token"], {"object": "general-ledger/account", "fields": ["id"]})
    assert refused.status_code == 401
    assert refused.json()["ia::result"]["ia::error"]["code"] == "tokenInvalid"
    again = token(client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert again.json()["error"] == "invalid_grant"


def test_withdrawn_consent_is_answered_unauthorized_client(client, company, rest_app):
    code = authorize_code(client)
    tokens = token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI).json()
    assert oauth.withdraw_consent(company, CLIENT_ID) == 1
    answer = token(client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert answer.status_code == 400 and answer.json()["error"] == "unauthorized_client"


def test_a_newer_authorisation_supersedes_the_older_one(client, company, rest_app):
    first = token(client, grant_type="authorization_code", code=authorize_code(client),
                  redirect_uri=REDIRECT_URI).json()
    token(client, grant_type="authorization_code", code=authorize_code(client), redirect_uri=REDIRECT_URI)
    refused = token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert refused.json()["error"] == "invalid_grant"
    assert OAuthGrant.objects.filter(revoked_reason="superseded").count() == 1


def test_wrong_client_secret_is_invalid_client(client, company, rest_app):
    answer = client.post(f"{API}/oauth2/token", {"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                                  "client_secret": "nope", "username": "ws_connect@TEST-CO"})
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


def test_unregistered_redirect_uri_is_shown_not_followed(client, company, rest_app):
    page = client.get(f"{API}/oauth2/authorize", {"response_type": "code", "client_id": CLIENT_ID,
                                                  "redirect_uri": "https://evil.example/cb", "state": "s"})
    assert page.status_code == 400 and b"not registered" in page.content


# --- query service: the same data as the XML side -----------------------------------------------------
def test_query_pages_carry_meta_and_match_the_xml_query(client, company, rest_app):
    access = cc_token(client)
    body = {"object": "accounts-payable/bill", "fields": ["key", "id", "vendor.id", "totalTxnAmount",
                                                             "audit.modifiedDateTime"],
            "orderBy": [{"key": "asc"}], "start": 101, "size": 50}
    answer = q(client, access, body)
    assert answer.status_code == 200
    data = answer.json()
    assert data["ia::meta"] == {"totalCount": 2500, "start": 101, "pageSize": 50, "next": 151, "previous": 51}
    rows = data["ia::result"]
    assert [r["key"] for r in rows] == [str(n) for n in range(101, 151)]
    xml = post(client, envelope(
        "<function controlid='f'><query><object>APBILL</object><select><field>RECORDNO</field>"
        "<field>RECORDID</field><field>VENDORID</field><field>TOTALENTERED</field></select>"
        "<orderby><order><field>RECORDNO</field><ascending/></order></orderby>"
        "<offset>100</offset><pagesize>50</pagesize></query></function>"))
    tree = etree.fromstring(xml.content)
    xml_rows = [(b.findtext("RECORDNO"), b.findtext("RECORDID"), b.findtext("VENDORID"), b.findtext("TOTALENTERED"))
                for b in tree.iter("APBILL")]
    assert [(r["key"], r["id"], r["vendor.id"], r["totalTxnAmount"]) for r in rows] == xml_rows
    assert rows[0]["audit.modifiedDateTime"].endswith("Z")


def test_last_page_has_no_next(client, company, rest_app):
    data = q(client, cc_token(client), {"object": "company-config/location", "fields": ["id"], "size": 10}).json()
    assert data["ia::meta"]["next"] is None and data["ia::meta"]["previous"] is None
    assert [r["id"] for r in data["ia::result"]] == ["L001", "L002", "L003", "L004", "L005"]


def test_keyset_filter_on_modified_time_and_key(client, company, rest_app):
    access = cc_token(client)
    order = [{"audit.modifiedDateTime": "asc"}, {"key": "asc"}]
    first = q(client, access, {"object": "accounts-payable/bill", "fields": ["key", "audit.modifiedDateTime"],
                               "orderBy": order, "size": 100}).json()["ia::result"]
    last = first[-1]
    stamp = last["audit.modifiedDateTime"]
    nxt = q(client, access, {
        "object": "accounts-payable/bill", "fields": ["key", "audit.modifiedDateTime"], "orderBy": order,
        "filters": [{"$gt": {"audit.modifiedDateTime": stamp}}, {"$eq": {"audit.modifiedDateTime": stamp}},
                    {"$gt": {"key": last["key"]}}],
        "filterExpression": "1 or (2 and 3)", "size": 100}).json()["ia::result"]
    both = q(client, access, {"object": "accounts-payable/bill", "fields": ["key"], "orderBy": order,
                              "size": 200}).json()["ia::result"]
    assert [r["key"] for r in first + nxt] == [r["key"] for r in both]


def test_object_endpoints_list_and_get(client, company, rest_app):
    access = cc_token(client)
    listed = client.get(f"{API}/objects/general-ledger/account", HTTP_AUTHORIZATION=f"Bearer {access}").json()
    assert listed["ia::meta"]["totalCount"] == 20
    assert listed["ia::result"][0] == {"key": "1", "id": "1010", "href": "/objects/general-ledger/account/1"}
    one = client.get(f"{API}/objects/company-config/employee/3", HTTP_AUTHORIZATION=f"Bearer {access}").json()
    assert one["ia::result"]["key"] == "3" and one["ia::result"]["id"] == "E00003"
    assert set(one["ia::result"]["primaryContact"]) == {"firstName", "lastName", "email1"}
    missing = client.get(f"{API}/objects/company-config/employee/999999", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert missing.status_code == 404


# --- errors ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("header", ["", "Bearer not-a-token", "Basic abc"])
def test_missing_or_bad_token_is_401_token_invalid(client, company, rest_app, header):
    answer = client.post(f"{API}/services/core/query", data="{}", content_type="application/json",
                         HTTP_AUTHORIZATION=header)
    error = answer.json()["ia::result"]["ia::error"]
    assert answer.status_code == 401 and error["code"] == "tokenInvalid" and error["errorId"] == "REST-2102"


def test_missing_permission_is_403_and_unknown_object_404(client, company, rest_app):
    user, _ = create_user(company, "reader", password=PASSWORD)
    set_permissions(user=user, permissions=[])
    access = cc_token(client, "reader@TEST-CO")
    # Role-based company: the new user holds no role, so no permission.
    denied = q(client, access, {"object": "accounts-payable/bill", "fields": ["key"]})
    assert denied.status_code == 403 and denied.json()["ia::result"]["ia::error"]["code"] == "permissionDenied"
    users = q(client, access, {"object": "company-config/user", "fields": ["id"]})
    assert users.status_code == 200  # any active user may read users, as over XML
    unknown = q(client, access, {"object": "accounts-payable/nothing", "fields": ["key"]})
    assert unknown.status_code == 404


def test_bad_query_is_400_invalid_request(client, company, rest_app):
    access = cc_token(client)
    answer = q(client, access, {"object": "accounts-payable/bill", "fields": ["nope"]})
    assert answer.status_code == 400
    assert answer.json()["ia::result"]["ia::error"]["code"] == "invalidRequest"
    assert q(client, access, {"object": "accounts-payable/bill", "fields": ["key"], "size": 4001}).status_code == 400


def test_concurrency_limit_is_shared_with_the_xml_side(client, company, rest_app):
    access = cc_token(client)
    with inflight.holding(company.company_id, company.concurrency_limit):
        answer = q(client, access, {"object": "accounts-payable/bill", "fields": ["key"]})
        xml = post(client, envelope("<function controlid='f'><getAPISession/></function>"))
    assert answer.status_code == 429 and answer["Retry-After"] == "1"
    assert b"GW-0010" in xml.content


def test_faults_armed_for_the_company_hit_rest_calls(client, company, rest_app):
    access = cc_token(client)
    faults.set_fault(company, "http5xx", count=1, status=502)
    assert q(client, access, {"object": "accounts-payable/bill", "fields": ["key"]}).status_code == 502
    faults.set_fault(company, "expire_session", count=1)
    assert q(client, access, {"object": "accounts-payable/bill", "fields": ["key"]}).status_code == 401
    assert q(client, access, {"object": "accounts-payable/bill", "fields": ["key"]}).status_code == 200


def test_each_successful_call_counts_one_api_transaction(client, company, rest_app):
    access = cc_token(client)
    before = month_usage(company)
    q(client, access, {"object": "accounts-payable/bill", "fields": ["key"]})
    q(client, access, {"object": "accounts-payable/bill", "fields": ["nope"]})  # refused: not billed
    assert month_usage(company) == before + 1


def test_sender_authorisation_withdrawn_in_the_company_refuses_rest_calls(client, company, rest_app):
    access = cc_token(client)
    authorize_sender(company, rest_app.sender_id, active=False)
    answer = q(client, access, {"object": "accounts-payable/bill", "fields": ["key"]})
    assert answer.status_code == 403


def test_latency_profile_holds_rest_answers_like_xml_ones(client, company, rest_app, settings):
    import time

    from simulator.models import CompanyLoad

    access = cc_token(client)
    settings.SIMULATOR_LATENCY_PROFILE = "page_seconds=0.5,page_rows=10,jitter=0.1,seed=3"
    started = time.monotonic()
    answer = q(client, access, {"object": "general-ledger/account", "fields": ["id"], "size": 10})
    took = time.monotonic() - started
    assert answer.status_code == 200 and len(answer.json()["ia::result"]) == 10
    added = CompanyLoad.objects.get(company_id="TEST-CO").latency_seconds
    assert 0.45 <= added <= 0.55 and took >= added
    # A refused call is not held.
    started = time.monotonic()
    assert q(client, access, {"object": "general-ledger/account", "fields": ["nope"]}).status_code == 400
    assert time.monotonic() - started < 0.4
