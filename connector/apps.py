from django.apps import AppConfig


class ConnectorConfig(AppConfig):
    name = "connector"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Dashboard summaries and /metrics counters are written where runs finish (connector.operations).
        from connector import operations, requeue  # noqa: F401 - requeue registers its beat task

        operations.connect_signals()

        from connector import webhooks  # events for the platform's webhooks (issue 16)

        webhooks.connect_signals()
