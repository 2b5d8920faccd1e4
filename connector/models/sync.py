"""Synced Intacct data and the record of every sync: runs, per-object outcomes, cursors, slots, tokens."""
from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from connector.models.core import Connection, Organisation


class SyncSettings(models.Model):
    """Per connection: its sync lease (one sync at a time), concurrency limit and call allowance."""

    connection = models.OneToOneField(Connection, on_delete=models.CASCADE, related_name="sync_settings")
    # Requests in flight at once for this Intacct company (Intacct's default is 2; more gives 429).
    concurrency_limit = models.PositiveSmallIntegerField(default=2)
    # API calls a month included in the company's tier; None = settings.SYNC_MONTHLY_CALL_ALLOWANCE.
    monthly_call_allowance = models.PositiveIntegerField(null=True, blank=True)
    # The run holding the connection's one sync lease, and until when (a dead worker's lease lapses).
    active_run = models.ForeignKey("SyncRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    lease_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Sync settings of {self.connection}"


class SyncRun(models.Model):
    class Kind(models.TextChoices):
        FULL = "full", "Full"
        INCREMENTAL = "incremental", "Incremental"
        RECONCILE = "reconcile", "Reconcile deletes"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partial"
        FAILED = "failed", "Failed"
        # The worker running it stopped (killed, out of memory, host lost); a resume was queued.
        INTERRUPTED = "interrupted", "Interrupted"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="sync_runs")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INCREMENTAL)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    records_read = models.PositiveBigIntegerField(default=0)
    records_created = models.PositiveBigIntegerField(default=0)
    records_updated = models.PositiveBigIntegerField(default=0)
    records_deleted = models.PositiveBigIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    bytes_received = models.PositiveBigIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)
    summary = models.CharField(max_length=1000, blank=True)
    # 1 for a fresh run; a run queued again after a transient stop (e.g. no encryption key) counts up.
    attempt = models.PositiveSmallIntegerField(default=1)
    # Set while the run is queued but its task could not be sent (broker down); connector.requeue sends it again.
    unsent_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["connection", "created_at"], name="syncrun_conn_created")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} sync #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status not in self.ACTIVE


class SyncObjectRun(models.Model):
    """The outcome of one object within one run."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="object_runs")
    position = models.PositiveSmallIntegerField(default=0)
    object_name = models.CharField(max_length=60)
    mode = models.CharField(max_length=12, blank=True)  # full, incremental, reconcile
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    records_read = models.PositiveBigIntegerField(default=0)
    records_created = models.PositiveBigIntegerField(default=0)
    records_updated = models.PositiveBigIntegerField(default=0)
    records_deleted = models.PositiveBigIntegerField(default=0)
    # Intacct's totalcount for the read, when it told us: the progress bar's 100 %.
    expected_total = models.PositiveBigIntegerField(null=True, blank=True)
    requests = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)      # plain words for the admin
    errorno = models.CharField(max_length=60, blank=True)
    error_raw = models.TextField(blank=True)    # Intacct's own (redacted) words

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "object_name"], name="unique_object_per_sync_run")]

    @property
    def percent(self) -> int:
        if self.status == self.Status.SUCCEEDED:
            return 100
        if not self.expected_total:
            return 0
        return min(99, int(100 * self.records_read / self.expected_total))


class SyncCursor(models.Model):
    """Where the sync of one object of one connection stands; committed with each page."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="sync_cursors")
    object_name = models.CharField(max_length=60)
    # Keyset position of the incremental read: WHENMODIFIED (company-local, "YYYY-MM-DD HH:MM:SS") and RECORDNO.
    modified_after = models.CharField(max_length=19, blank=True)
    recordno_after = models.BigIntegerField(default=0)
    full_done = models.BooleanField(default=False)
    # A full read in progress: its RECORDNO ranges and how far each got (resumed after a crash).
    full_progress = models.JSONField(default=dict, blank=True)
    last_full_at = models.DateTimeField(null=True, blank=True)
    last_incremental_at = models.DateTimeField(null=True, blank=True)
    last_reconcile_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "object_name"], name="unique_sync_cursor")]


class Record(models.Model):
    """One Intacct record of any synced object, as JSON."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="records")
    object_name = models.CharField(max_length=60)
    recordno = models.BigIntegerField()
    key_value = models.CharField(max_length=200, blank=True)  # the object's key field, for search
    whenmodified = models.CharField(max_length=19, blank=True)  # company-local, "YYYY-MM-DD HH:MM:SS"
    data = models.JSONField(default=dict)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The connection's change sequence number of this record's latest insert, update, delete or undelete
    # (connector.feed): the change feed is this column in order, so a record changed twice appears once.
    change_seq = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # Also the index for keyset browsing and CSV by RECORDNO.
            models.UniqueConstraint(fields=["connection", "object_name", "recordno"], name="unique_record"),
        ]
        indexes = [
            models.Index(fields=["connection", "object_name", "whenmodified", "recordno"], name="record_modified"),
            models.Index(fields=["connection", "object_name", "key_value"], name="record_key"),
            # The change feed's order. One index only: a second one on (connection, object, seq) cost the sync
            # about a fifth of its write throughput (bench/bench_feed.py); a feed filtered by object walks this
            # one and skips the other objects' rows.
            models.Index(fields=["connection", "change_seq"], name="record_feed"),
        ]


class CompanySlot(models.Model):
    """One of an Intacct company's concurrent-request slots, held by at most one request at a time."""

    company_key = models.CharField(max_length=120)
    slot = models.PositiveSmallIntegerField()
    holder = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["company_key", "slot"], name="unique_company_slot")]


class ApiToken(models.Model):
    """A bearer token for an organisation's JSON API; only its SHA-256 is stored."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    @staticmethod
    def hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, *, organisation: Organisation, name: str, by=None) -> tuple[ApiToken, str]:
        """Create a token; the plaintext is returned once and never stored."""
        key = "ic_" + secrets.token_urlsafe(32)
        token = cls.objects.create(organisation=organisation, name=name, prefix=key[:10], key_hash=cls.hash(key),
                                   created_by=by)
        return token, key
