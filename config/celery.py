"""The Celery application, configured from Django settings (the CELERY_ namespace)."""
import os
from pathlib import Path
from typing import Any

from celery import Celery

from config.broker import use_for_filesystem_urls
from config.logging import connect_celery_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

use_for_filesystem_urls()
app = Celery("intacct_connect")

BROKER_FOLDERS = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")


@app.on_after_configure.connect
def make_local_folders(sender: Celery, **_kwargs: Any) -> None:
    """The embedded default's folders (filesystem broker, file result backend), made when the app reads its
    configuration: before a process sends or receives its first message, never when settings load."""
    conf = sender.conf
    folders = []
    if str(conf.broker_url or "").startswith("filesystem://"):
        options = conf.broker_transport_options or {}
        folders += [options[key] for key in BROKER_FOLDERS if options.get(key)]
    backend = str(conf.result_backend or "")
    if backend.startswith("file://"):
        folders.append(backend.removeprefix("file://localhost").removeprefix("file://"))
    for folder in folders:
        Path(folder).mkdir(parents=True, exist_ok=True)

app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Each worker writes its own heartbeat while connected to the broker (not only when beat sends it a task).
app.steps["consumer"].add("connector.heartbeats:WorkerHeartbeat")
connect_celery_signals()
