"""Audit actions are named noun.verb: rename the entries stored under the old names.

Deprovisioning numbers its control IDs by counting its own earlier "user.deactivated" / "user.reactivated"
entries, so the old entries must carry the new names for the next control ID to stay distinct.
"""
from django.db import migrations

RENAMED = {
    "sync_requested": "sync.requested",
    "support.alert": "support.alerted",
    "api_token_created": "api_token.created",
    "user_deactivated": "user.deactivated",
    "user_reactivated": "user.reactivated",
    "user_deactivate_failed": "user.deactivation_failed",
    "user_reactivate_failed": "user.reactivation_failed",
}


def forwards(apps, schema_editor):
    AuditEvent = apps.get_model("connector", "AuditEvent")
    for old, new in RENAMED.items():
        AuditEvent.objects.filter(action=old).update(action=new)


def backwards(apps, schema_editor):
    AuditEvent = apps.get_model("connector", "AuditEvent")
    for old, new in RENAMED.items():
        AuditEvent.objects.filter(action=new).update(action=old)


class Migration(migrations.Migration):
    dependencies = [("connector", "0009_webhooks")]
    operations = [migrations.RunPython(forwards, backwards)]
