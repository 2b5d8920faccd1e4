"""Webhook endpoints of an organisation and the messages sent to them."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from connector.models.core import Connection, Organisation

EVENT_TYPES = ("connection.status_changed", "sync.finished", "validation.finished", "records.changed")


class WebhookEndpoint(models.Model):
    """An HTTPS URL of the platform's that receives the events it picked, signed per Standard Webhooks."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list)  # a subset of EVENT_TYPES
    # The signing secret ("whsec_" + base64), Fernet-encrypted (connector.crypto); shown once when made.
    secret_token = models.TextField()
    # After a rotation the previous secret signs too, until this moment: receivers switch without a gap.
    previous_secret_token = models.TextField(blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Webhook endpoint {self.pk} of {self.organisation_id}"


class WebhookMessage(models.Model):
    """One event for one endpoint; its msg_id (the webhook-id header) stays the same on every attempt."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="messages")
    msg_id = models.CharField(max_length=40, unique=True)
    event_type = models.CharField(max_length=40)
    payload = models.TextField()  # the exact JSON body that is signed and sent
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_response = models.TextField(blank=True)  # at most 1 KB of what the receiver answered
    last_error = models.CharField(max_length=300, blank=True)  # our words: refused address, timeout...

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due")]


class WebhookNotice(models.Model):
    """Per connection: up to which change number records.changed was announced."""

    connection = models.OneToOneField(Connection, on_delete=models.CASCADE, primary_key=True,
                                      related_name="webhook_notice")
    announced_through = models.BigIntegerField(default=0)
