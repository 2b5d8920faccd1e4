"""A queued run whose message died with a worker (the embedded broker gives a taken message to that worker only)
is sent once more, once; runs not lost are left alone."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from connector import requeue
from connector.models import SyncRun, ValidationRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    runs: list[tuple[str, int]] = []
    monkeypatch.setattr(requeue, "run_send", lambda run, countdown=0: runs.append((type(run).__name__, run.pk)) or True)
    return runs


def _aged(run, seconds: float):
    type(run).objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))
    return run


def test_a_run_queued_past_the_threshold_is_sent_once_more_and_only_once(organisation, settings, sent):
    settings.RESEND_QUEUED_AFTER_SECONDS, settings.RESEND_UNSENT_INTERVAL_SECONDS = 120, 20
    connection = organisation.connection
    lost_sync = _aged(SyncRun.objects.create(connection=connection), 125)
    lost_check = _aged(ValidationRun.objects.create(connection=connection), 130)
    _aged(SyncRun.objects.create(connection=connection), 30)  # recent: a worker may still take it
    _aged(SyncRun.objects.create(connection=connection, status=SyncRun.Status.RUNNING), 125)  # it did start
    _aged(ValidationRun.objects.create(connection=connection, retry_at=timezone.now() + timedelta(minutes=1)), 125)
    _aged(SyncRun.objects.create(connection=connection, unsent_since=timezone.now()), 125)  # the other sweep's
    assert requeue.resend_lost_runs() == 2
    assert sorted(sent) == sorted([("SyncRun", lost_sync.pk), ("ValidationRun", lost_check.pk)])
    # The next sweep, one interval later, leaves them: a run is sent again once, not every 20 s.
    assert requeue.resend_lost_runs(now=timezone.now() + timedelta(seconds=20)) == 0
