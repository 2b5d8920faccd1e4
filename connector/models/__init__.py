"""The connector's models, one module per area; import them from here (`from connector.models import X`)."""
from connector.models.core import (
    SUPPORT_GROUP,
    AuditEvent,
    Connection,
    ConnectionStatusChange,
    Membership,
    Organisation,
    StepCompletion,
    ValidationCheck,
    ValidationRun,
)
from connector.models.ops import ConnectionSummary, Heartbeat, IntacctErrorTally, MetricCounter, StatusDay

__all__ = ["SUPPORT_GROUP", "AuditEvent", "Connection", "ConnectionStatusChange", "Membership", "Organisation",
           "StepCompletion", "ValidationCheck", "ValidationRun"]
__all__ += ["ConnectionSummary", "Heartbeat", "IntacctErrorTally", "MetricCounter", "StatusDay"]
from connector.models.sync import (  # noqa: E402 - one import block per area
    ApiToken,
    CompanySlot,
    Record,
    SyncCursor,
    SyncObjectRun,
    SyncRun,
    SyncSettings,
)

__all__ += ["ApiToken", "CompanySlot", "Record", "SyncCursor", "SyncObjectRun", "SyncRun", "SyncSettings"]
from connector.models.feed import FeedCounter  # noqa: E402

__all__ += ["FeedCounter"]
from connector.models.webhooks import WebhookEndpoint, WebhookMessage, WebhookNotice  # noqa: E402

__all__ += ["WebhookEndpoint", "WebhookMessage", "WebhookNotice"]
