"""Issue 11's scenario: a permission removed after go-live, then "Sync now"."""
from __future__ import annotations

from connector import sync
from connector.models import SyncRun
from simulator import services as sim_services
from simulator.demo import without


def test_sync_after_bills_view_removed_ends_partial(synced):
    role = synced.company.roles.get(name="Intacct Connect")
    current = [(p.application, p.policy, p.rights) for p in role.permissions.all()]
    sim_services.set_permissions(role=role, permissions=without(current, "Bills", "View"))
    queued = SyncRun.objects.create(connection=synced.connection)
    result = sync.run_sync(run_id=queued.pk)
    result.refresh_from_db()
    assert result.status == SyncRun.Status.PARTIAL, (result.status, result.summary)
