"""One confirmed publisher shared by every thread of a process: RabbitMQ's confirms, pipelined.

With a connection per server thread, each webhook paid a write and a wait
for its own confirms, and the process spent most of its time turning pika's
I/O loop over for one order's three messages. Here every thread hands its
batch to one sending thread that owns one connection and never waits for
one batch before sending the next: it writes whatever is waiting, reads the
confirms as they come (often one `multiple` ack for many batches) and wakes
each caller once all of its own messages are confirmed. A caller still
returns only then, so "200 only after RabbitMQ confirmed" holds.

Failures stay per batch: a nack or a return fails the batch of that message
only. A connection that breaks, or a channel RabbitMQ closes (no confirm
ever comes on it), sends its unconfirmed batches once more on a new
connection (consumers are idempotent, so a message that got through twice is
harmless); a batch that fails twice, or finds no broker, raises
BrokerUnavailable in its caller, exactly as the per-thread Publisher did.
Every batch taken from the waiting list ends confirmed, failed or back on
the list: no caller is ever left waiting.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from pika.adapters.blocking_connection import BlockingConnection
from pika.exceptions import AMQPError

from shared.messaging import topology
from shared.messaging.amqp import BrokerUnavailable, Confirms, Outgoing, connect
from shared.observability.logging import get_logger

log = get_logger(__name__)

SEND_ATTEMPTS = 2  # the first, and one more on a new connection
# The longest a caller waits for its confirms. RabbitMQ that hangs without closing is
# noticed by the heartbeats only after a minute or two; a webhook is answered 503 long
# before that (WooCommerce gives up after 60 s) and comes back through the catch-up.
ANSWER_WITHIN_SECONDS = 20.0
IDLE_POLL_SECONDS = 1.0  # heartbeats are answered at least this often while idle


@dataclass(eq=False)
class _Batch:
    messages: Sequence[Outgoing]
    exchange: str
    ping: bool = False
    attempts: int = 0
    unconfirmed: set[int] = field(default_factory=set)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def finish(self, error: BaseException | None = None) -> None:
        self.error = error
        self.done.set()


class GroupedPublisher:
    """Thread-safe `publish_all` and `ping` over one connection owned by a background thread."""

    def __init__(self, url: str, *, connect_timeout: float = 3.0, answer_within: float = ANSWER_WITHIN_SECONDS) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._answer_within = answer_within
        self._lock = threading.Condition()
        self._waiting: list[_Batch] = []
        self._connection: BlockingConnection | None = None  # read by callers only to wake the sender
        self._thread: threading.Thread | None = None
        self._closed = False
        # True while the sending thread waits for I/O with nothing to send: only then
        # does a new batch have to wake it (written under the lock, read under it).
        self._sleeping = False
        # Owned by the sending thread:
        self._confirms: Confirms | None = None
        self._in_flight: dict[int, _Batch] = {}  # delivery tag -> its batch

    # -- callers -------------------------------------------------------------------------------

    def publish_all(self, messages: Sequence[Outgoing], *, exchange: str = topology.EXCHANGE) -> None:
        """Return once RabbitMQ has confirmed every message; raise BrokerUnavailable otherwise."""
        if messages:
            self._submit(_Batch(messages, exchange))

    def ping(self) -> None:
        """Raise BrokerUnavailable unless the connection is open, or a new one could be opened."""
        self._submit(_Batch((), topology.EXCHANGE, ping=True))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
            thread = self._thread
        self._wake()
        if thread is not None:
            thread.join(timeout=10)

    def _submit(self, batch: _Batch) -> None:
        with self._lock:
            if self._closed:
                raise BrokerUnavailable("the publisher is closed")
            self._waiting.append(batch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._send_loop, name="grouped-publisher", daemon=True)
                self._thread.start()
            self._lock.notify()
            wake = self._sleeping
        if wake:
            self._wake()
        if not batch.done.wait(self._answer_within):
            # Still waiting or in flight: if it gets through later, that is one message
            # more than the caller was told of, which every consumer takes as a repeat.
            raise BrokerUnavailable(f"RabbitMQ did not confirm within {self._answer_within:g} s")
        if batch.error is not None:
            raise batch.error

    def _wake(self) -> None:
        """Make the sending thread's wait for I/O return now (pika's one thread-safe call)."""
        connection = self._connection
        if connection is not None:
            try:
                connection.add_callback_threadsafe(lambda: None)
            except Exception:  # closed meanwhile: the sender looks at the waiting list before it waits again
                pass

    # -- the sending thread ---------------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            with self._lock:
                if self._connection is None:
                    while not self._waiting and not self._closed:
                        self._lock.wait()
                if self._closed and not self._waiting and not self._in_flight:
                    break
            if self._connection is None:
                try:
                    self._open()
                except Exception as exc:  # no broker to send them to (or a bug): their callers answer 503
                    self._fail_waiting(exc)
                    continue
            try:
                pings = self._send_waiting()
                with self._lock:
                    # More came meanwhile, or a ping waits: one turn of the I/O loop, no wait.
                    self._sleeping = not (self._waiting or pings or self._closed)
                    limit = IDLE_POLL_SECONDS if self._sleeping else 0
                try:
                    self._connection.process_data_events(time_limit=limit)  # type: ignore[union-attr]
                finally:
                    self._sleeping = False
                self._confirms.raise_if_closed()  # type: ignore[union-attr]
                for ping in pings:
                    ping.finish()  # the connection is open and its I/O loop turned without an error
            except (AMQPError, OSError) as exc:
                self._connection_lost(exc)
            except BaseException as exc:  # a bug must not leave a caller waiting forever
                log.error("grouped publisher failed", error_type=type(exc).__name__)
                self._connection_lost(exc, resend=False)
        self._drop_connection()

    def _open(self) -> None:
        connection = connect(self._url, connect_timeout=self._connect_timeout)
        try:
            channel = connection.channel()
            topology.declare(channel)
            self._confirms = Confirms(channel, on_settled=self._settled)
        except BaseException:
            connection.close()
            raise
        self._in_flight = {}
        with self._lock:
            self._connection = connection

    def _send_waiting(self) -> list[_Batch]:
        """Send every waiting batch; the pings among them, to answer once the I/O loop has turned."""
        with self._lock:
            batches, self._waiting = self._waiting, []
        pings = []
        for index, batch in enumerate(batches):
            if batch.ping:
                pings.append(batch)
                continue
            batch.attempts += 1
            try:
                tags = self._confirms.send(batch.messages, batch.exchange)  # type: ignore[union-attr]
            except BaseException:
                self._hand_back(batch, batches[index + 1:] + pings)
                raise
            batch.unconfirmed = set(tags)
            for tag in tags:
                self._in_flight[tag] = batch
        return pings

    def _hand_back(self, failed: _Batch, unsent: list[_Batch]) -> None:
        """pika refused `failed` (a closed channel, a header it cannot encode): it is sent once
        more, like an unconfirmed batch, and the batches after it wait for the next connection."""
        again = [failed] if failed.attempts < SEND_ATTEMPTS else []
        if not again:
            failed.finish(BrokerUnavailable("RabbitMQ refused the batch twice"))
        with self._lock:
            self._waiting = again + unsent + self._waiting

    def _settled(self, tags: set[int], nacked: bool) -> None:
        returned = self._confirms.returned if self._confirms is not None else set()
        for tag in tags:
            batch = self._in_flight.pop(tag, None)
            if batch is None:
                continue
            batch.unconfirmed.discard(tag)
            if nacked and batch.error is None:
                batch.error = BrokerUnavailable("RabbitMQ refused a message")
            if batch.unconfirmed:
                continue
            if batch.error is None and returned and any(m.message_id in returned for m in batch.messages):
                keys = sorted({m.routing_key for m in batch.messages})
                batch.error = BrokerUnavailable(f"no queue took a message (routing keys {keys!r})")
            if returned:
                returned.difference_update(m.message_id for m in batch.messages)
            batch.finish(batch.error)

    def _connection_lost(self, exc: BaseException, *, resend: bool = True) -> None:
        """Unconfirmed batches go once more on a new connection; the waiting ones were never sent."""
        unconfirmed = list({id(b): b for b in self._in_flight.values()}.values())
        self._drop_connection()
        failure = BrokerUnavailable(f"RabbitMQ unavailable: {type(exc).__name__}: {exc}"[:300])
        again: list[_Batch] = []
        for batch in unconfirmed:
            if resend and batch.attempts < SEND_ATTEMPTS:
                batch.unconfirmed, batch.error = set(), None
                again.append(batch)
            else:
                batch.finish(failure)
        with self._lock:
            self._waiting = again + self._waiting
        if again:
            log.warning("rabbitmq connection lost; sending unconfirmed messages again", batches=len(again))

    def _fail_waiting(self, exc: BaseException) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
        failure = exc if isinstance(exc, BrokerUnavailable) else BrokerUnavailable(f"cannot connect to RabbitMQ: {exc!r}")
        for batch in waiting:
            batch.finish(failure)

    def _drop_connection(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
        self._confirms, self._in_flight = None, {}
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # closing a broken connection: nothing more to do
                pass
