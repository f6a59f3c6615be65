"""RabbitMQ connections and a confirmed publisher.

A message counts as sent only once RabbitMQ has confirmed it: the publisher
uses publisher confirms and `mandatory`, so a message that no queue took
raises instead of vanishing. A lost connection is rebuilt (with the
topology) on the next publish.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import AMQPError, UnroutableError, NackError

from shared import topology
from shared.logging import get_logger

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


class Publisher:
    """Publishes with confirms; one instance per thread (pika is not thread-safe)."""

    def __init__(self, url: str, retry_delays: list[int], *, connect_timeout: float = 3.0) -> None:
        self._url = url
        self._retry_delays = retry_delays
        self._connect_timeout = connect_timeout
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def _ensure_channel(self) -> BlockingChannel:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self.close()
        self._connection = connect(self._url, connect_timeout=self._connect_timeout)
        channel = self._connection.channel()
        topology.declare(channel, self._retry_delays)
        channel.confirm_delivery()
        self._channel = channel
        return channel

    def publish(
        self,
        body: bytes,
        *,
        routing_key: str,
        message_id: str,
        exchange: str = topology.EXCHANGE,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        """Publish one persistent message and wait for RabbitMQ's confirm.

        One reconnect is tried on a broken connection: a confirm lost with the
        connection means the message may have gone through, which is harmless
        because every consumer is idempotent.
        """
        for attempt in (1, 2):
            try:
                channel = self._ensure_channel()
                channel.basic_publish(
                    exchange,
                    routing_key,
                    body,
                    properties=message_properties(message_id, headers),
                    mandatory=True,
                )
                return
            except UnroutableError as exc:
                raise BrokerUnavailable(f"no queue took the message (routing key {routing_key!r})") from exc
            except NackError as exc:
                raise BrokerUnavailable("RabbitMQ refused the message") from exc
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
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # closing a broken connection: nothing more to do
                pass
