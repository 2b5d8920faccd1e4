"""One overall deadline per request: a gateway trickling bytes is cut off at it, over a real socket."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from connector.intacct import ClientConfig, Credentials, IntacctClient, RetryPolicy, errors

from .fakes import SleepRecorder, make_client, session_body

DEADLINE = 1.0
TRICKLE_EVERY = 0.25  # seconds between bytes: each read completes long before any per-read timeout


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += conn.recv(65536)


def _trickle(conn: socket.socket, data: bytes, stop: threading.Event) -> None:
    for index in range(len(data)):
        if stop.is_set():
            return
        conn.sendall(data[index:index + 1])
        time.sleep(TRICKLE_EVERY)


class TrickleServer:
    """A real TCP server on 127.0.0.1 that answers each request the way ``answer`` says."""

    def __init__(self, answer: Callable[[socket.socket, threading.Event], None]) -> None:
        self.answer = answer
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.connections = 0
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/ia/xml/xmlgw.phtml"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                _read_request(conn)
                self.answer(conn, self.stop)
            except OSError:
                pass  # the client hung up at its deadline

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket, threading.Event], None]], TrickleServer]]:
    servers: list[TrickleServer] = []

    def start(answer: Callable[[socket.socket, threading.Event], None]) -> TrickleServer:
        servers.append(TrickleServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _client(url: str, attempts: int = 1) -> IntacctClient:
    config = ClientConfig(endpoint_url=url, allowed_endpoints=(url,), sender_id="S", sender_password="sp",
                          timeout=DEADLINE, retry=RetryPolicy(max_attempts=attempts, base_delay=0.0, jitter=False))
    return IntacctClient(config, Credentials("ACME", "ws_user", "pw"))


def _timed_login(url: str, attempts: int = 1) -> tuple[errors.IntacctError, float]:
    started = time.monotonic()
    with _client(url, attempts) as client, pytest.raises(errors.IntacctError) as info:
        client.get_api_session()
    return info.value, time.monotonic() - started


def test_a_body_trickled_one_byte_at_a_time_is_cut_off_at_the_deadline(serve) -> None:
    body = session_body()

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(body))
        _trickle(conn, body, stop)

    server = serve(answer)
    exc, elapsed = _timed_login(server.url)
    assert type(exc) is errors.RequestTimeout and exc.permanent is False
    # The whole answer would take len(body) * 0.25 s (minutes); the deadline is 1 s.
    assert len(body) * TRICKLE_EVERY > 60
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + 1.0


def test_trickled_headers_are_cut_off_at_the_deadline_too(serve) -> None:
    def answer(conn: socket.socket, stop: threading.Event) -> None:
        _trickle(conn, b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nX-Padding: " + b"x" * 400, stop)

    server = serve(answer)
    exc, elapsed = _timed_login(server.url)
    assert type(exc) is errors.RequestTimeout and exc.permanent is False
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + 1.0


def test_a_silent_gateway_is_cut_off_at_the_deadline(serve) -> None:
    def answer(conn: socket.socket, stop: threading.Event) -> None:
        stop.wait(30)

    server = serve(answer)
    exc, elapsed = _timed_login(server.url)
    assert type(exc) is errors.RequestTimeout
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + 1.0


def test_each_retry_gets_its_own_deadline_and_the_error_stays_transient(serve) -> None:
    body = session_body()

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(body))
        _trickle(conn, body, stop)

    server = serve(answer)
    exc, elapsed = _timed_login(server.url, attempts=2)
    assert type(exc) is errors.RequestTimeout and exc.permanent is False
    assert server.connections == 2
    assert 2 * DEADLINE * 0.9 <= elapsed < 2 * DEADLINE + 1.5


def test_a_normal_answer_over_our_transport_is_unaffected(serve) -> None:
    body = session_body()

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    server = serve(answer)
    with _client(server.url) as client:
        assert client.get_api_session().session_id


def test_a_handed_in_transport_is_bounded_by_the_body_loop(sleeps: SleepRecorder) -> None:
    body = session_body()

    def slow_body() -> Iterator[bytes]:
        for index in range(0, len(body), 16):
            time.sleep(0.05)
            yield body[index:index + 16]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=slow_body(), headers={"content-type": "text/xml"})

    started = time.monotonic()
    with make_client(httpx.MockTransport(handler), sleep=sleeps, timeout=0.3,
                     retry=RetryPolicy(max_attempts=1)) as client, pytest.raises(errors.RequestTimeout):
        client.get_api_session()
    assert time.monotonic() - started < 1.0
