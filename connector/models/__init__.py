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
