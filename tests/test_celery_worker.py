"""The Celery set-up works with a real worker process on whichever broker is configured."""
from config.celery import app


def test_a_real_worker_process_runs_a_task(celery_worker):
    answer = app.send_task("connector.ping", queue=celery_worker.queue).get(timeout=30)
    assert answer["pong"] is True
    # It ran in the worker's process tree, not in the test process.
    assert answer["pid"] != __import__("os").getpid()


def test_tasks_are_json_only_and_acknowledged_late():
    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late is True and app.conf.worker_prefetch_multiplier == 1
