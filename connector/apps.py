from django.apps import AppConfig


class ConnectorConfig(AppConfig):
    name = "connector"
    default_auto_field = "django.db.models.BigAutoField"
