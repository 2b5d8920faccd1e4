"""The Celery application, configured from Django settings (the CELERY_ namespace)."""
import os

from celery import Celery

from config.logging import connect_celery_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("intacct_connect")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
connect_celery_signals()
