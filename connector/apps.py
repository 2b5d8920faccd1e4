from django.apps import AppConfig


class ConnectorConfig(AppConfig):
    name = "connector"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Dashboard summaries and /metrics counters are written where runs finish (connector.operations);
        # importing tasks and requeue registers their Celery tasks, which the service sends by name.
        from connector import operations, requeue, tasks  # noqa: F401

        operations.connect_signals()
