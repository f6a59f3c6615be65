"""gunicorn's threaded worker with a deadline for reading each request.

gthread reads a request's headers and body in a pool thread, with blocking
reads and no limit on the whole: a client that sends a byte every few
seconds holds a thread for as long as it likes, and a handful of them stop
every delivery. Here each request must arrive whole (headers and body)
within READ_DEADLINE_SECONDS of its first byte, and a connection that sends
nothing waits for its first byte in the worker's poller, not in a thread.
A client past its deadline reads as one that hung up: the connection is
closed, once, with a warning in the log.

Ingest is meant to sit behind a TLS reverse proxy that buffers requests
(docs/reverse-proxy.md); this deadline is what protects it without one.
"""
from __future__ import annotations

import select
import socket
import time
from typing import Any

from gunicorn.workers import gthread

from shared.observability.logging import get_logger

log = get_logger("ingest")

# A whole webhook, headers and body (at most 1 MiB), from its first byte.
READ_DEADLINE_SECONDS = 2.0
# A new connection without a byte yet gives its thread back after this and waits in the poller.
FIRST_BYTE_SECONDS = 0.5


class DeadlineSocket:
    """A client socket whose reads end (as if the client hung up) at the current request's deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._deadline: float | None = None
        self.expired = False

    def start_request(self) -> None:
        self._deadline = time.monotonic() + READ_DEADLINE_SECONDS

    def recv(self, size: int, *flags: int) -> bytes:
        if self.expired:
            return b""
        if self._deadline is not None and not self._wait_readable(self._deadline - time.monotonic()):
            self.expired = True
            log.warning("slow client cut off", deadline_seconds=READ_DEADLINE_SECONDS)
            return b""
        return self._sock.recv(size, *flags)

    def _wait_readable(self, seconds: float) -> bool:
        if seconds <= 0:
            return False
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR)
        return bool(poller.poll(seconds * 1000))

    def __getattr__(self, name: str) -> Any:
        # Everything else (send, setblocking, fileno, close, ...) is the socket's own.
        return getattr(self._sock, name)


class DeadlineThreadWorker(gthread.ThreadWorker):
    def handle(self, conn: Any) -> Any:
        if not conn.initialized and not conn.data_ready and not conn.wait_for_data(FIRST_BYTE_SECONDS):
            return gthread._DEFER  # back to the poller until it sends something (gthread's own path)
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock)  # before conn.init(): the parser reads through it
        conn.sock.start_request()
        return super().handle(conn)
