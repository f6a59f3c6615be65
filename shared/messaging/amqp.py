"""RabbitMQ connections and a confirmed publisher.

A message counts as sent only once RabbitMQ has confirmed it: the publisher
uses publisher confirms and `mandatory`, so a message that no queue took
raises instead of vanishing. A batch is sent at once and its confirms are
waited for once (Publisher.publish_all). A lost connection is rebuilt (with the
topology) on the next publish.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import AMQPChannelError, AMQPError, NackError, UnroutableError

from shared.messaging import topology
from shared.observability.logging import get_logger

log = get_logger(__name__)

HEARTBEAT_SECONDS = 30
BLOCKED_CONNECTION_TIMEOUT = 30


class BrokerUnavailable(Exception):
    """RabbitMQ could not be reached or did not confirm a message."""


def connection_parameters(url: str, *, connect_timeout: float = 5.0) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = HEARTBEAT_SECONDS
    params.blocked_connection_timeout = BLOCKED_CONNECTION_TIMEOUT
    params.socket_timeout = connect_timeout
    params.connection_attempts = 1
    params.client_properties = {"connection_name": "rewix-sync"}
    return params


def connect(url: str, *, connect_timeout: float = 5.0) -> BlockingConnection:
    try:
        return BlockingConnection(connection_parameters(url, connect_timeout=connect_timeout))
    except AMQPError as exc:
        raise BrokerUnavailable(f"cannot connect to RabbitMQ: {exc!r}") from exc


def backoff_delays(first: float = 0.5, cap: float = 30.0) -> Iterable[float]:
    """Exponential backoff with full jitter, forever."""
    delay = first
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(cap, delay * 2)


def wait_for(what: str, attempt: Callable[[], Any], stop: threading.Event | None = None) -> Any:
    """Call `attempt` until it succeeds, logging while the dependency is not up.

    Used at start-up: a service whose broker or database is not up yet waits
    instead of crash-looping.
    """
    for delay in backoff_delays():
        try:
            return attempt()
        except Exception as exc:  # any failure to reach the dependency
            log.warning("waiting for dependency", dependency=what, error=str(exc)[:200], retry_in=round(delay, 2))
            if stop is None:
                time.sleep(delay)
            elif stop.wait(delay):
                # Asked to stop while still waiting: a clean exit, not a crash.
                raise SystemExit(0) from None
    raise AssertionError("unreachable")


def message_properties(message_id: str, headers: Mapping[str, Any] | None = None) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=message_id,
        headers=dict(headers or {}),
    )


@dataclass(frozen=True)
class Outgoing:
    """One message to publish: its body, routing key and id (and headers)."""

    body: bytes
    routing_key: str
    message_id: str
    headers: Mapping[str, Any] | None = None


class Confirms:
    """RabbitMQ's publisher confirms of one channel, by delivery tag.

    pika's BlockingChannel, in confirm mode, waits for each message's confirm
    before it sends the next one: an order of three lines paid three broker
    round trips one after another. Here confirms are tracked per delivery tag
    on the channel underneath (pika's `_impl`, the one private part of pika
    used), so a batch is sent at once and waited for once.
    """

    def __init__(self, channel: BlockingChannel, on_settled: Callable[[set[int], bool], None] | None = None) -> None:
        self._channel = channel
        self._on_settled = on_settled  # (delivery tags, nacked): for a publisher that keeps sending
        self._sent = 0  # delivery tags count the channel's publishes from 1
        self._pending: set[int] = set()
        self._nacked: set[int] = set()
        self.returned: set[str] = set()  # message ids
        # Why the broker closed the channel (a publish to a missing exchange, say): no
        # confirm comes on a closed channel, so a publisher that waits must look here.
        self.closed_by: BaseException | None = None
        selected: list[bool] = []
        impl = channel._impl  # noqa: SLF001 (see the class docstring)
        impl.confirm_delivery(ack_nack_callback=self._on_confirm, callback=lambda _frame: selected.append(True))
        impl.add_on_return_callback(self._on_return)
        impl.add_on_close_callback(self._on_close)
        channel._flush_output(lambda: bool(selected))  # noqa: SLF001

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        if method.multiple:
            tags = {tag for tag in self._pending if tag <= method.delivery_tag}
        else:
            tags = {method.delivery_tag} & self._pending
        self._pending -= tags
        nacked = isinstance(method, pika.spec.Basic.Nack)
        if nacked:
            self._nacked |= tags
        if self._on_settled is not None:
            self._on_settled(tags, nacked)

    def _on_close(self, _channel: Any, reason: BaseException) -> None:
        self.closed_by = reason

    def raise_if_closed(self) -> None:
        """Raise the broker's reason if it closed the channel (its unconfirmed messages never will be)."""
        if self.closed_by is not None:
            raise self.closed_by if isinstance(self.closed_by, AMQPError) else AMQPError(repr(self.closed_by))

    def _on_return(self, _channel: Any, _method: Any, properties: Any, _body: bytes) -> None:
        # A mandatory message no queue took; RabbitMQ returns it before confirming it.
        self.returned.add(properties.message_id)

    def send(self, messages: Iterable[Outgoing], exchange: str) -> range:
        """Hand the messages to pika without waiting (the next flush writes them); their delivery tags."""
        impl = self._channel._impl  # noqa: SLF001
        first = self._sent + 1
        for message in messages:
            # Pending before it is sent: its confirm may be read while pika flushes the send.
            self._sent += 1
            self._pending.add(self._sent)
            impl.basic_publish(
                exchange,
                message.routing_key,
                message.body,
                properties=message_properties(message.message_id, message.headers),
                mandatory=True,
            )
        return range(first, self._sent + 1)

    def publish_all(self, messages: Sequence[Outgoing], exchange: str) -> None:
        self._nacked, self.returned = set(), set()
        self.send(messages, exchange)
        self._channel._flush_output(lambda: not self._pending)  # noqa: SLF001
        if self.returned:
            raise UnroutableError([])
        if self._nacked:
            raise NackError([])


class Publishes(Protocol):
    """What publishes an order's messages with confirms: a `Publisher`, or ingest's grouped one
    (services/ingest/grouped_publisher.py), which shares one connection among its server threads."""

    def publish_all(self, messages: Sequence[Outgoing], *, exchange: str = topology.EXCHANGE) -> None: ...


class Publisher:
    """Publishes with confirms; one instance per thread (pika is not thread-safe)."""

    def __init__(self, url: str, *, connect_timeout: float = 3.0) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._confirms: Confirms | None = None

    def _ensure_channel(self) -> Confirms:
        if self._channel is not None and self._channel.is_open and self._confirms is not None:
            return self._confirms
        self.close()
        self._connection = connect(self._url, connect_timeout=self._connect_timeout)
        channel = self._connection.channel()
        topology.declare(channel)
        self._confirms = Confirms(channel)
        self._channel = channel
        return self._confirms

    def publish(
        self,
        body: bytes,
        *,
        routing_key: str,
        message_id: str,
        exchange: str = topology.EXCHANGE,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        """Publish one persistent message and wait for RabbitMQ's confirm."""
        self.publish_all([Outgoing(body, routing_key, message_id, headers)], exchange=exchange)

    def publish_all(self, messages: Sequence[Outgoing], *, exchange: str = topology.EXCHANGE) -> None:
        """Publish persistent messages, then wait once until RabbitMQ has confirmed every one.

        One reconnect is tried on a broken connection, sending the whole batch
        again: a confirm lost with the connection means a message may have
        gone through twice, which is harmless because every consumer is
        idempotent.
        """
        if not messages:
            return
        for attempt in (1, 2):
            try:
                self._ensure_channel().publish_all(messages, exchange)
                return
            except UnroutableError as exc:
                keys = sorted({m.routing_key for m in messages})
                raise BrokerUnavailable(f"no queue took a message (routing keys {keys!r})") from exc
            except NackError as exc:
                raise BrokerUnavailable("RabbitMQ refused a message") from exc
            except (AMQPError, OSError) as exc:
                self.close()
                if attempt == 2:
                    raise BrokerUnavailable(f"RabbitMQ unavailable: {exc!r}") from exc

    def ping(self) -> None:
        """Raise BrokerUnavailable unless a channel to RabbitMQ is open."""
        try:
            self._ensure_channel()
        except (AMQPError, OSError) as exc:
            self.close()
            raise BrokerUnavailable(repr(exc)) from exc
        if self._connection is not None:
            try:
                self._connection.process_data_events(time_limit=0)
            except (AMQPError, OSError) as exc:
                self.close()
                raise BrokerUnavailable(repr(exc)) from exc

    def close(self) -> None:
        connection, self._connection, self._channel, self._confirms = self._connection, None, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # closing a broken connection: nothing more to do
                pass


def consumer_count(url: str, queue: str, *, connect_timeout: float = 3.0) -> int:
    """How many consumers RabbitMQ has on `queue` now (0 for a queue not declared yet); raises
    BrokerUnavailable when RabbitMQ cannot be asked. A worker paused on a refused supplier
    account has closed its connection, so it counts as none."""
    try:
        connection = connect(url, connect_timeout=connect_timeout)
    except OSError as exc:
        raise BrokerUnavailable(f"cannot connect to RabbitMQ: {exc!r}") from exc
    try:
        try:
            return int(connection.channel().queue_declare(queue, passive=True).method.consumer_count)
        except AMQPChannelError:  # 404: no such queue, so nothing consumes it
            return 0
    finally:
        try:
            connection.close()
        except Exception:  # closing a broken connection: nothing more to do
            pass
