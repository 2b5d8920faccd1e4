"""The embedded (filesystem) Celery broker never hands a worker half a message.

Met in a test run: a worker polling the queue folder took a message file between its creation and its
write, read it empty and stopped with ``JSONDecodeError`` (every later task on that worker then failed).
Here a producer writes large messages while a consumer polls the same folder as fast as it can, through
the broker configuration the app uses.
"""
from __future__ import annotations

import threading

import pytest
from kombu import Connection

from config.broker import EMBEDDED_TRANSPORT

pytestmark = pytest.mark.timeout(120)


def _filesystem_connection(folder) -> Connection:
    options = {"data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
               "processed_folder": str(folder / "processed"), "control_folder": str(folder / "control"),
               "store_processed": False}
    for name in ("queue", "processed", "control"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    return Connection("filesystem://", transport=EMBEDDED_TRANSPORT, transport_options=options)


def test_a_consumer_polling_while_messages_are_written_only_ever_sees_whole_messages(tmp_path):
    messages, body = 300, "x" * 400_000  # large enough that a write takes a while
    received: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def consume() -> None:
        with _filesystem_connection(tmp_path) as conn:
            queue = conn.SimpleQueue("race")
            try:
                while len(received) < messages and not done.is_set():
                    try:
                        message = queue.get(block=False)
                    except queue.Empty:
                        continue
                    received.append(message.payload["n"])
                    assert message.payload["body"] == body
                    message.ack()
            except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
                errors.append(exc)
            finally:
                queue.close()

    # The queue is declared before the race: two connections of one process share kombu's in-memory binding
    # state, so a producer whose binding the consumer thread had only half written would route to nothing.
    with _filesystem_connection(tmp_path) as conn:
        conn.SimpleQueue("race").close()
    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    with _filesystem_connection(tmp_path) as conn:
        queue = conn.SimpleQueue("race")
        for n in range(messages):
            queue.put({"n": n, "body": body})
        queue.close()
    consumer.join(timeout=90)
    done.set()
    assert not errors, f"the consumer read a partial message: {errors[0]!r}"
    assert sorted(received) == list(range(messages))
