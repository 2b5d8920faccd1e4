from django.apps import AppConfig


class ConnectorConfig(AppConfig):
    name = "connector"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Dashboard summaries and /metrics counters are written where runs finish (connector.summaries),
        # beat's tick where it publishes the heartbeat (connector.health). Importing tasks registers the
        # Celery tasks, which the service sends by name.
        # The platform's webhooks are sent from the same signals (connector.webhooks).
        from connector import health, summaries, tasks, webhooks  # noqa: F401

        summaries.connect_signals()
        health.connect_signals()
        webhooks.connect_signals()
