"""The embedded Celery broker: kombu's filesystem transport, with messages that appear whole.

kombu's filesystem transport creates a message file in the queue folder and then writes it; a worker
polling the folder can take the file in between, read it empty and stop with ``JSONDecodeError`` (met in
our test runs: every later task on that worker then failed). Here a message is written under a name no
consumer takes and renamed into place when complete. A rename within one folder is atomic, so a consumer
sees a whole message or none.

The exchange's table of bound queues (``control/<exchange>.exchange``) has the same race: kombu creates the
file, then locks and writes it, so a producer publishing while a worker declares its queue can read it empty
(met in CI). A table read empty is read again a moment later.
"""
from __future__ import annotations

import os
import time
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

EMBEDDED_TRANSPORT = "config.broker:Transport"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # A leading dot and a suffix: consumers match "<anything>.<queue>.msg" after the first dot only.
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            try:
                os.unlink(partial)
            except OSError:
                pass
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


    def get_table(self, exchange):
        for _ in range(100):
            try:
                return super().get_table(exchange)
            except ValueError:  # JSONDecodeError: the table file exists but is not written yet
                time.sleep(0.01)
        return super().get_table(exchange)


class Transport(filesystem.Transport):
    Channel = Channel


def use_for_filesystem_urls() -> None:
    """Make ``filesystem://`` broker URLs use this transport in this process (config/celery.py calls it), so
    the transport follows the URL wherever it is set."""
    TRANSPORT_ALIASES["filesystem"] = EMBEDDED_TRANSPORT
