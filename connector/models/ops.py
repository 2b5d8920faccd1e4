"""What running the service needs: dashboard summaries, cross-process counters, heartbeats, status by day.

Every table here is written by connector.summaries, .metrics and .health and read by the support dashboard, /healthz and
/metrics. They hold figures and timestamps only, never a secret, and each process (web, worker, beat,
however many of each) writes the same rows, so nothing assumes a single process.
"""
from __future__ import annotations

from django.db import models
from django.utils import timezone

from connector.models.core import Connection


class ConnectionSummary(models.Model):
    """The dashboard's figures for one connection, kept up to date so the list never aggregates history."""

    connection = models.OneToOneField(Connection, primary_key=True, on_delete=models.CASCADE,
                                      related_name="summary")
    last_successful_sync_at = models.DateTimeField(null=True, blank=True)
    last_sync_status = models.CharField(max_length=20, blank=True)
    records_held = models.BigIntegerField(default=0)
    errors_24h = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["last_successful_sync_at"], name="summary_last_sync"),
            models.Index(fields=["records_held"], name="summary_records"),
            models.Index(fields=["errors_24h"], name="summary_errors"),
        ]


class IntacctErrorTally(models.Model):
    """How many times Intacct answered a connection with one error code, per hour."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    source = models.CharField(max_length=20)  # "validation" or "sync"
    code = models.CharField(max_length=60)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "hour", "source", "code"],
                                               name="unique_error_tally")]
        indexes = [models.Index(fields=["hour"], name="error_tally_hour")]


class MetricCounter(models.Model):
    """One Prometheus counter series (name and rendered labels), shared by every process."""

    name = models.CharField(max_length=100)
    labels = models.CharField(max_length=300, blank=True)
    value = models.FloatField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "labels"], name="unique_metric_series")]
        ordering = ["name", "labels"]


class Heartbeat(models.Model):
    """The last sign of life of a worker (one row per worker) or of beat (the row named "beat")."""

    name = models.CharField(max_length=200, primary_key=True)
    seen_at = models.DateTimeField(default=timezone.now)

    BEAT = "beat"
    WORKER_PREFIX = "worker:"


class StatusDay(models.Model):
    """How many connections were in each status at the end of a day (rebuilt from the status history)."""

    day = models.DateField()
    status = models.CharField(max_length=20, choices=Connection.Status.choices)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "status"], name="unique_status_day")]
        ordering = ["day", "status"]
