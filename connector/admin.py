"""Django admin for the operator's superusers. Secrets are never shown or editable here."""
from django.contrib import admin

from connector.models import AuditEvent, Connection, Membership, Organisation, ValidationCheck, ValidationRun


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = ["organisation", "status", "status_changed_at", "permission_model", "company_id"]
    list_filter = ["status", "permission_model"]
    # The secrets are excluded: not even their ciphertext is worth showing.
    exclude = ["password_token", "rest_refresh_token", "rest_access_token"]
    readonly_fields = ["status", "status_changed_at", "last_validation", "password_set_at", "created_at",
                       "protocol", "rest_grant", "rest_refresh_expires_at", "rest_access_expires_at",
                       "rest_connected_at"]


class ValidationCheckInline(admin.TabularInline):
    model = ValidationCheck
    extra = 0
    can_delete = False
    readonly_fields = ["position", "key", "status", "duration_ms", "message", "wizard_step", "errorno",
                       "description", "description2", "correction"]
    fields = tuple(readonly_fields)


@admin.register(ValidationRun)
class ValidationRunAdmin(admin.ModelAdmin):
    list_display = ["connection", "status", "created_at", "finished_at", "failed_step"]
    list_filter = ["status"]
    inlines = [ValidationCheckInline]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organisation", "actor", "action", "ip_address"]
    list_filter = ["action"]
    readonly_fields = ["organisation", "connection", "actor", "action", "ip_address", "details", "created_at"]

    # The audit log is written by the services only: read-only here (adding one by hand failed with a 500).
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
