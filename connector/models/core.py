"""Organisations, their Intacct connection, validation results and the audit log."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from connector.objects import ROLE_BASED, USER_BASED

SUPPORT_GROUP = "Support staff"


class Organisation(models.Model):
    """A customer of the operator: one Intacct company to connect."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    ORG_ADMIN = "org_admin"
    ROLE_CHOICES = [(ORG_ADMIN, "Organisation admin")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=ROLE_CHOICES, default=ORG_ADMIN)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organisation"], name="unique_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organisation} ({self.role})"


class ConnectionQuerySet(models.QuerySet["Connection"]):
    """The status groups as queries (the groups themselves are on Connection)."""

    def in_setup(self) -> ConnectionQuerySet:
        return self.filter(status__in=Connection.SETUP_STATUSES)

    def live(self) -> ConnectionQuerySet:
        return self.filter(status__in=Connection.LIVE_STATUSES)

    def failing(self) -> ConnectionQuerySet:
        return self.filter(status__in=Connection.FAILING_STATUSES)

    def with_credentials(self) -> ConnectionQuerySet:
        """Connections holding what signing in needs (as Connection.has_credentials)."""
        q, c = models.Q, Connection
        xml = q(protocol=c.Protocol.XML) & ~q(password_token="") & ~q(user_id="")
        code = q(protocol=c.Protocol.REST, rest_grant=c.RestGrant.AUTHORIZATION_CODE) & ~q(rest_refresh_token="")
        client = q(protocol=c.Protocol.REST, rest_grant=c.RestGrant.CLIENT_CREDENTIALS) & ~q(user_id="")
        return self.filter(~q(company_id="") & (xml | code | client))

    def syncable(self) -> ConnectionQuerySet:
        """Connections a sync may run for (as Connection.can_sync)."""
        return self.filter(status__in=Connection.SYNCABLE_STATUSES).with_credentials()


class Connection(models.Model):
    """An organisation's connection to its Intacct company. The password is stored only encrypted."""

    class Status(models.TextChoices):
        NOT_STARTED = "not_started", "Not started"
        IN_SETUP = "in_setup", "In setup"
        CONNECTED = "connected", "Connected"
        NEEDS_ATTENTION = "needs_attention", "Needs attention"
        BROKEN = "broken", "Broken"
        DISCONNECTED = "disconnected", "Disconnected"

    # The status groups, defined here only; sync, monitoring, the dashboard and the pages all read them.
    # The admin is still setting it up: the wizard, not the connection page.
    SETUP_STATUSES = (Status.NOT_STARTED, Status.IN_SETUP)
    # A check failed: it needs the admin's help (a failing check and its cause are recorded with it).
    FAILING_STATUSES = (Status.NEEDS_ATTENTION, Status.BROKEN)
    # It has worked and was not disconnected since: monitored, expected to sync (so it can be "stale").
    LIVE_STATUSES = (Status.CONNECTED, *FAILING_STATUSES)
    # A sync may run: a broken connection cannot sign in, one needing attention still reads what it may.
    SYNCABLE_STATUSES = (Status.CONNECTED, Status.NEEDS_ATTENTION)

    objects = ConnectionQuerySet.as_manager()

    class PermissionModel(models.TextChoices):
        ROLE = ROLE_BASED, "Role-based"
        USER = USER_BASED, "User-based"

    class Protocol(models.TextChoices):
        XML = "xml", "XML gateway (Sender ID and Web Services user)"
        REST = "rest", "REST API (OAuth 2.0)"

    class RestGrant(models.TextChoices):
        NONE = "", "None"
        AUTHORIZATION_CODE = "authorization_code", "Connected with Sage Intacct"
        CLIENT_CREDENTIALS = "client_credentials", "Web Services user (client credentials)"

    organisation = models.OneToOneField(Organisation, on_delete=models.CASCADE, related_name="connection")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NOT_STARTED)
    status_changed_at = models.DateTimeField(default=timezone.now)
    permission_model = models.CharField(max_length=10, choices=PermissionModel.choices, blank=True)
    wants_deprovisioning = models.BooleanField(default=False)
    company_id = models.CharField(max_length=100, blank=True)
    user_id = models.CharField(max_length=100, blank=True)
    entity_id = models.CharField(max_length=100, blank=True)
    # The entities Intacct listed at the last top-level sign-in, [{"id": ..., "name": ...}] (empty: none known),
    # so the admin picks one instead of typing its ID.
    intacct_entities = models.JSONField(default=list, blank=True)
    # A Fernet token (connector.crypto), never the plaintext.
    password_token = models.TextField(blank=True)
    password_set_at = models.DateTimeField(null=True, blank=True)
    # XML (Sender ID + Web Services user password) or REST (OAuth 2.0, one of two grants).
    protocol = models.CharField(max_length=10, choices=Protocol.choices, default=Protocol.XML)
    rest_grant = models.CharField(max_length=20, choices=RestGrant.choices, blank=True)
    # Fernet tokens (connector.crypto) of the OAuth tokens, never the plaintext, and when each expires. The
    # refresh token rotates on every use: it is replaced under a row lock (connector.clients.rest_client_for).
    rest_refresh_token = models.TextField(blank=True)
    rest_refresh_expires_at = models.DateTimeField(null=True, blank=True)
    rest_access_token = models.TextField(blank=True)
    rest_access_expires_at = models.DateTimeField(null=True, blank=True)
    rest_connected_at = models.DateTimeField(null=True, blank=True)
    # The company's IANA time zone ("Europe/London"): XML timestamps are company-local, REST's UTC
    # (connector.intacct_rest.convert). Blank: not known.
    company_timezone = models.CharField(max_length=64, blank=True)
    last_validation = models.ForeignKey("ValidationRun", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    # The check that put the connection in needs_attention or broken (blank otherwise).
    status_check = models.CharField(max_length=60, blank=True)
    # Why it is failing (a ValidationRun.Cause) and the words the admin is shown, from a validation or a sync.
    status_cause = models.CharField(max_length=40, blank=True)
    status_message = models.TextField(blank=True)
    # Set when the admins were told the connection stopped working; cleared when they are told it works again.
    failure_notified_at = models.DateTimeField(null=True, blank=True)
    # The cause the admins were last told about: a new cause is one more e-mail, the same cause none.
    notified_cause = models.CharField(max_length=40, blank=True)
    # The permission type Intacct last reported for the company (role / user), to notice a switch.
    intacct_permission_model = models.CharField(max_length=10, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Connection of {self.organisation}"

    @property
    def is_rest(self) -> bool:
        return self.protocol == self.Protocol.REST

    @property
    def has_credentials(self) -> bool:
        """What signing in needs is stored: the password (XML), the refresh token (REST, connected with Sage
        Intacct) or the Web Services user (REST client credentials: the secret is our application's)."""
        if not self.company_id:
            return False
        if self.protocol == self.Protocol.REST:
            if self.rest_grant == self.RestGrant.AUTHORIZATION_CODE:
                return bool(self.rest_refresh_token)
            return self.rest_grant == self.RestGrant.CLIENT_CREDENTIALS and bool(self.user_id)
        return bool(self.user_id and self.password_token)

    @property
    def can_sync(self) -> bool:
        return self.has_credentials and self.status in self.SYNCABLE_STATUSES

    @property
    def effective_permission_model(self) -> str:
        return self.permission_model or ROLE_BASED

    def steps_done(self) -> dict[int, StepCompletion]:
        return {step.step: step for step in self.step_completions.select_related("done_by")}


class StepCompletion(models.Model):
    """An admin said "I've done this" for one wizard step."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="step_completions")
    step = models.PositiveSmallIntegerField()
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                related_name="+")
    done_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "step"], name="unique_step_completion")]
        ordering = ["step"]


class ValidationRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        INCONCLUSIVE = "inconclusive", "Inconclusive"

    FINISHED = (Status.PASSED, Status.FAILED, Status.INCONCLUSIVE)

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Requested"
        SCHEDULED = "scheduled", "Scheduled re-validation"
        RETRY = "retry", "Retry after an inconclusive run"

    class Cause(models.TextChoices):
        NONE = "", "None"
        PASSWORD_RESET = "password_reset", "Password reset in Intacct"
        USER_DEACTIVATED = "user_deactivated", "User deactivated in Intacct"
        USER_LOCKED_OUT = "user_locked_out", "User locked out in Intacct"
        PERMISSION_REMOVED = "permission_removed", "Permission missing in Intacct"
        PASSWORD_ENTERED_REFUSED = "password_entered_refused", "Password entered here refused"
        PASSWORD_REFUSED = "password_refused", "Password refused"
        ROLE_NOT_ASSIGNED = "role_not_assigned", "No role assigned to the user"
        DEPROVISIONING_UNAVAILABLE = "deprovisioning_unavailable", "Deprovisioning rights missing"
        SENDER_NOT_AUTHORISED = "sender_not_authorised", "Sender ID not authorised"
        SUBSCRIPTION_OFF = "subscription_off", "Web Services not subscribed"
        IP_BLOCKED = "ip_blocked", "Blocked by the IP address filter"
        COMPANY_NOT_FOUND = "company_not_found", "Company ID not found"
        ENTITY_REFUSED = "entity_refused", "Entity refused"
        COMPANY_EXPIRED = "company_expired", "Company expired"
        OUR_SENDER_REFUSED = "our_sender_refused", "Our Sender ID refused"
        NOT_WEB_SERVICES_USER = "not_web_services_user", "Not a Web Services user"
        OBJECT_UNAVAILABLE = "object_unavailable", "Object not available"
        SIGN_IN_REFUSED = "sign_in_refused", "Sign-in refused"
        READ_FAILED = "read_failed", "A read failed"
        # REST connections (OAuth 2.0): each is fixed by reconnecting with Sage Intacct.
        TOKEN_REVOKED = "token_revoked", "Authorisation revoked in Intacct"
        REFRESH_TOKEN_EXPIRED = "refresh_token_expired", "Authorisation expired"
        CONSENT_WITHDRAWN = "consent_withdrawn", "Application disconnected in Intacct"
        # Every REST read refused: the company (subscription, IP filter or sender authorisation), not one permission.
        COMPANY_REFUSES_API = "company_refuses_api", "Company refuses our application"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="validation_runs")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    summary = models.CharField(max_length=500, blank=True)
    # Set while the run is queued but its task could not be sent (broker down); connector.requeue sends it again.
    unsent_since = models.DateTimeField(null=True, blank=True)
    # The wizard step the admin should revisit (first failing check), if any.
    failed_step = models.PositiveSmallIntegerField(null=True, blank=True)
    # The key of the first failing check, if any.
    failed_check = models.CharField(max_length=60, blank=True)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.MANUAL)
    # 1 for a fresh run; retries after an inconclusive run count up (bounded by settings).
    attempt = models.PositiveSmallIntegerField(default=1)
    # When an inconclusive run's retry is due (null: no retry scheduled).
    retry_at = models.DateTimeField(null=True, blank=True)
    # What broke a connection that used to work, where Intacct's answers tell it apart.
    cause = models.CharField(max_length=40, choices=Cause.choices, blank=True, default=Cause.NONE)
    # Requests the run sent to Intacct (retries included): a full validation takes two.
    requests = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class ValidationCheck(models.Model):
    """One result row of a validation run."""

    class Status(models.TextChoices):
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        WARNING = "warning", "Warning"

    run = models.ForeignKey(ValidationRun, on_delete=models.CASCADE, related_name="checks")
    position = models.PositiveSmallIntegerField()
    key = models.CharField(max_length=60)
    label = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices)
    duration_ms = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    wizard_step = models.PositiveSmallIntegerField(null=True, blank=True)
    our_side = models.BooleanField(default=False)
    errorno = models.CharField(max_length=60, blank=True)
    description = models.TextField(blank=True)
    description2 = models.TextField(blank=True)
    correction = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="unique_check_per_run")]


class ConnectionStatusChange(models.Model):
    """One move of a connection's status, kept so its history can be shown and charted."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=20, choices=Connection.Status.choices)
    to_status = models.CharField(max_length=20, choices=Connection.Status.choices)
    # The failing check behind a needs_attention/broken status, and the run that found it.
    check_key = models.CharField(max_length=60, blank=True)
    validation_run = models.ForeignKey(ValidationRun, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    # Or the sync that found it (an object refused during a sync).
    sync_run = models.ForeignKey("SyncRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cause = models.CharField(max_length=40, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    changed_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["connection", "changed_at"], name="status_change_conn_time")]

    def __str__(self) -> str:
        return f"{self.changed_at:%Y-%m-%d %H:%M} {self.from_status} -> {self.to_status}"


class AuditEvent(models.Model):
    """Who did what to an organisation's connection, when and from where. Never holds a secret."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="audit_events")
    connection = models.ForeignKey(Connection, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="audit_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    action = models.CharField(max_length=60)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action}"
