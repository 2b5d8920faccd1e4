from django.apps import AppConfig


class ConnectorConfig(AppConfig):
    name = "connector"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Dashboard summaries and /metrics counters are written where runs finish (connector.operations).
        from connector import operations

        operations.connect_signals()
