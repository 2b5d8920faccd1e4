"""Hand-off links: an org admin lets a named outside person (the Intacct admin) walk steps 1-6."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from connector.models import Organisation


class HandOff(models.Model):
    """A link to one organisation's wizard for a named person: no account, expires, revocable, audited.

    Only the SHA-256 of the link's token is stored: the link itself is shown once and e-mailed, never kept.
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="handoffs")
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # The wizard step the person last opened (what the org admin sees live).
    last_step = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Hand-off of {self.organisation} to {self.name}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class OAuthAttempt(models.Model):
    """One "Connect with Sage Intacct" under way: the admin's browser is at Intacct's sign-in page.

    Kept here, never in a cookie or a URL: the ``state`` sent to Intacct is stored only as its SHA-256, the PKCE
    verifier only encrypted (connector.crypto). Single use; it expires after ATTEMPT_MINUTES.
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="oauth_attempts")
    state_hash = models.CharField(max_length=64, unique=True)
    verifier_token = models.TextField()
    company_id = models.CharField(max_length=100)
    company_timezone = models.CharField(max_length=64, blank=True)
    # Where the admin comes back to: the wizard's step 6 or the connection page.
    return_to = models.CharField(max_length=20, default="setup")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    handoff = models.ForeignKey(HandOff, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
