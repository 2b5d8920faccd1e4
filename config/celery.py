"""The Celery application, configured from Django settings (the CELERY_ namespace)."""
import os

from celery import Celery

from config.broker import use_for_filesystem_urls
from config.logging import connect_celery_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

use_for_filesystem_urls()
app = Celery("intacct_connect")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Each worker writes its own heartbeat while connected to the broker (not only when beat sends it a task).
app.steps["consumer"].add("connector.heartbeats:WorkerHeartbeat")
connect_celery_signals()
