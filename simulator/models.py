"""The simulator's own state: companies, senders, users, permissions, sessions and record overrides.

Generated records are not stored: they are computed on demand (see ``records.py``). Only changes to
them, records created through the simulator, and the bookkeeping a gateway needs live in tables.
"""

from __future__ import annotations

from django.db import models

PERMISSION_MODELS = [("role", "Role-based"), ("user", "User-based")]
LOGIN_FAILURE_STYLES = [
    ("xml", "Authentication failure in XML (HTTP 200)"),
    ("http401", "HTTP 401 XMLGW_JPP0002"),
]
ADMIN_PRIVILEGES = [("Off", "Off"), ("Limited", "Limited"), ("Full", "Full")]
USER_STATUSES = [("active", "Active"), ("inactive", "Inactive"), ("locked out", "Locked out")]
USER_TYPES = [
    ("business user", "Business user"),
    ("employee user", "Employee user"),
    ("view only user", "View only user"),
    ("project manager user", "Project manager user"),
    ("payment approver", "Payment approver"),
    ("dashboard user", "Dashboard user"),
]


class SimCompany(models.Model):
    """A simulated Intacct company with the settings an administrator can change."""

    company_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    web_services_subscribed = models.BooleanField(default=True)
    ip_filter_enabled = models.BooleanField(default=False)
    allowed_ips = models.JSONField(default=list, blank=True)
    permission_model = models.CharField(max_length=8, choices=PERMISSION_MODELS, default="role")
    session_lifetime_seconds = models.PositiveIntegerField(default=3600)
    concurrency_limit = models.PositiveIntegerField(default=2)
    concurrency_queue_seconds = models.FloatField(
        default=0, help_text="Seconds a request may wait for a slot before 429 (0: no queue)."
    )
    lockout_threshold = models.PositiveIntegerField(
        default=0, help_text="Failed sign-ins in a row that lock a user out (0: never)."
    )
    monthly_api_quota = models.PositiveIntegerField(
        default=0, help_text="API transactions included a month (0: none set)."
    )
    unsubscribed_applications = models.JSONField(
        default=list, blank=True, help_text="Applications not subscribed to."
    )
    login_failure_style = models.CharField(max_length=8, choices=LOGIN_FAILURE_STYLES, default="xml")
    timezone_name = models.CharField(max_length=64, default="America/Los_Angeles")
    data_seed = models.IntegerField(default=1)
    data_sizes = models.JSONField(default=dict, blank=True)
    faults = models.JSONField(default=list, blank=True)
    # getAPISession answers an endpoint on this host (e.g. "127.0.0.2" or "localhost:8001") instead of
    # the host that was called, as the real gateway answers a pod's host (na12.intacct.com).
    session_endpoint_host = models.CharField(max_length=255, blank=True)
    # A demo/sandbox company past its end date: every request fails at control level with PL04000055.
    demo_expired = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["company_id"]

    def __str__(self) -> str:
        return self.company_id


class Sender(models.Model):
    """A Web Services sender (partner) ID known to the simulated gateway; the ID is case-sensitive."""

    sender_id = models.CharField(max_length=128, unique=True)
    password_hash = models.CharField(max_length=256)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.sender_id


class SenderAuthorization(models.Model):
    """Company > Setup > Company > Security > Web Services authorizations: one row per sender ID."""

    company = models.ForeignKey(SimCompany, on_delete=models.CASCADE, related_name="sender_authorizations")
    sender_id = models.CharField(max_length=128)
    needs_login_for_api = models.BooleanField(default=False)
    active = models.BooleanField(default=True)

    class Meta:
        unique_together = [("company", "sender_id")]
        ordering = ["sender_id"]


class Entity(models.Model):
    """An entity (location) of a multi-entity company, usable as ``locationid`` at login."""

    company = models.ForeignKey(SimCompany, on_delete=models.CASCADE, related_name="entities")
    entity_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True)

    class Meta:
        unique_together = [("company", "entity_id")]
        ordering = ["entity_id"]

    def __str__(self) -> str:
        return self.entity_id


class Role(models.Model):
    """A role of a role-based company; its permissions are ``Permission`` rows."""

    company = models.ForeignKey(SimCompany, on_delete=models.CASCADE, related_name="roles")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        unique_together = [("company", "name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SimUser(models.Model):
    """A company user. Also appears as a USERINFO record (RECORDNO ``recordno``)."""

    company = models.ForeignKey(SimCompany, on_delete=models.CASCADE, related_name="users")
    login_id = models.CharField(max_length=64)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.CharField(max_length=200, blank=True)
    user_type = models.CharField(max_length=32, choices=USER_TYPES, default="business user")
    is_web_services_user = models.BooleanField(default=True)
    admin_privileges = models.CharField(max_length=8, choices=ADMIN_PRIVILEGES, default="Off")
    status = models.CharField(max_length=12, choices=USER_STATUSES, default="active")
    password_hash = models.CharField(max_length=256)
    roles = models.ManyToManyField(Role, blank=True, related_name="users")
    entities = models.ManyToManyField(
        Entity, blank=True, related_name="users", help_text="Entities the user may log in to; none = all."
    )
    recordno = models.PositiveIntegerField()
    failed_logins = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        unique_together = [("company", "login_id")]
        ordering = ["login_id"]

    def __str__(self) -> str:
        return self.login_id


class Permission(models.Model):
    """One policy's rights, held by a role (role-based companies) or a user (user-based companies)."""

    role = models.ForeignKey(Role, null=True, blank=True, on_delete=models.CASCADE, related_name="permissions")
    user = models.ForeignKey(SimUser, null=True, blank=True, on_delete=models.CASCADE, related_name="permissions")
    application = models.CharField(max_length=100)
    policy = models.CharField(max_length=100)
    rights = models.CharField(max_length=200, help_text="Pipe-delimited, e.g. List|View")

    class Meta:
        ordering = ["application", "policy"]

    @property
    def rights_set(self) -> set[str]:
        return {r for r in self.rights.split("|") if r}


class SimSession(models.Model):
    """An API session from getAPISession; ``expires_at`` slides forward on every use."""

    session_id = models.CharField(max_length=64, unique=True)
    company = models.ForeignKey(SimCompany, on_delete=models.CASCADE, related_name="sessions")
    user = models.ForeignKey(SimUser, on_delete=models.CASCADE, related_name="sessions")
    entity = models.ForeignKey(Entity, null=True, blank=True, on_delete=models.CASCADE)
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()


class RecordOverride(models.Model):
    """A change to a generated record (``fields`` holds the changed fields), a delete, or a created record."""

    company = models.ForeignKey(SimCompany, on_delete=models.CASCADE, related_name="overrides")
    object = models.CharField(max_length=40)
    recordno = models.PositiveIntegerField()
    fields = models.JSONField(default=dict)
    deleted = models.BooleanField(default=False)
    created_record = models.BooleanField(default=False)
    whenmodified = models.DateTimeField()

    class Meta:
        unique_together = [("company", "object", "recordno")]


class ResultCursor(models.Model):
    """The state behind a readByQuery ``resultId``: what was asked and where the next page starts."""

    result_id = models.CharField(max_length=64, unique=True)
    company = models.ForeignKey(SimCompany, on_delete=models.CASCADE, related_name="cursors")
    object = models.CharField(max_length=40)
    fields = models.JSONField(default=list)
    filter = models.JSONField(null=True)
    pagesize = models.PositiveIntegerField()
    last_recordno = models.PositiveIntegerField(default=0)
    max_recordno = models.PositiveIntegerField()
    total = models.PositiveIntegerField()
    delivered = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField()


class Mail(models.Model):
    """The simulator's mailbox: what Intacct would have e-mailed (e.g. a new user's password)."""

    company = models.ForeignKey(SimCompany, null=True, blank=True, on_delete=models.CASCADE, related_name="mails")
    to = models.CharField(max_length=200)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]


class ExecutedControlId(models.Model):
    """A function controlid that completed, for ``uniqueid=true`` duplicate detection."""

    company = models.ForeignKey(SimCompany, on_delete=models.CASCADE, related_name="executed_controlids")
    controlid = models.CharField(max_length=256)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        unique_together = [("company", "controlid")]


class CompanyLoad(models.Model):
    """A company's requests in flight, shared by every server process and host (see ``concurrency.py``).

    ``holders`` maps each request's ticket to the moment its lease ends; ``max_in_flight`` is the highest
    number of tickets ever held at once. One row per company ID, locked while it changes.
    """

    company_id = models.CharField(max_length=64, unique=True)
    holders = models.JSONField(default=dict)
    max_in_flight = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    queued = models.PositiveIntegerField(default=0)
    expired = models.PositiveIntegerField(default=0)
    latency_seconds = models.FloatField(default=0, help_text="Seconds the latency profile added.")


class ApiUsage(models.Model):
    """API transactions a company used in one calendar month (one per function run)."""

    company = models.ForeignKey(SimCompany, on_delete=models.CASCADE, related_name="api_usage")
    month = models.CharField(max_length=7, help_text="YYYY-MM")
    transactions = models.PositiveIntegerField(default=0)

    class Meta:
        unique_together = [("company", "month")]
        ordering = ["-month"]


# --- REST API and OAuth 2.0 (see docs/protocol-choices.md, "REST API") ------------------------------------
class RestApp(models.Model):
    """An application registered in the (simulated) Sage App Registry: client ID, secret, its Web Services sender.

    Approving an authorisation request as a company admin authorises ``sender_id`` for that company, the same
    ``SenderAuthorization`` row the XML gateway checks, so one company answers both protocols alike.
    """

    client_id = models.CharField(max_length=200, unique=True)
    client_secret_hash = models.CharField(max_length=256)
    sender_id = models.CharField(max_length=128)
    redirect_uris = models.JSONField(default=list, blank=True)
    access_token_seconds = models.PositiveIntegerField(default=43200)
    refresh_token_seconds = models.PositiveIntegerField(default=180 * 86400)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.client_id


GRANT_KINDS = [("authorization_code", "Authorization code"), ("client_credentials", "Client credentials")]


class OAuthGrant(models.Model):
    """One authorisation of an app for a user of a company; its access tokens name it, so revoking it ends them.

    ``refresh_hash`` is the hash of the one current refresh token: every refresh replaces it (rotation).
    """

    app = models.ForeignKey(RestApp, on_delete=models.CASCADE, related_name="grants")
    company = models.ForeignKey(SimCompany, on_delete=models.CASCADE, related_name="oauth_grants")
    user = models.ForeignKey(SimUser, on_delete=models.CASCADE, related_name="oauth_grants")
    entity = models.ForeignKey(Entity, null=True, blank=True, on_delete=models.CASCADE)
    kind = models.CharField(max_length=20, choices=GRANT_KINDS, default="authorization_code")
    refresh_hash = models.CharField(max_length=64, blank=True, db_index=True)
    refresh_expires_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=20, blank=True, help_text="revoked, superseded or consent")
    refreshes = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)


class AuthorizationCode(models.Model):
    """A one-time code from the authorize page, redeemed at the token endpoint (PKCE when a challenge was sent)."""

    code_hash = models.CharField(max_length=64, unique=True)
    app = models.ForeignKey(RestApp, on_delete=models.CASCADE)
    company = models.ForeignKey(SimCompany, on_delete=models.CASCADE)
    user = models.ForeignKey(SimUser, on_delete=models.CASCADE)
    entity = models.ForeignKey(Entity, null=True, blank=True, on_delete=models.CASCADE)
    redirect_uri = models.CharField(max_length=500)
    scope = models.CharField(max_length=200, blank=True)
    code_challenge = models.CharField(max_length=128, blank=True)
    code_challenge_method = models.CharField(max_length=10, blank=True)
    expires_at = models.DateTimeField()
    used = models.BooleanField(default=False)
