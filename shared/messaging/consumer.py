"""A batching consumer with connection recovery, manual acks and the retry policy.

Messages are collected into batches (whatever arrived within a short window,
up to `max_batch`) so a handler can coalesce many of them into one supplier
call. The handler runs in a worker thread while this thread keeps the
connection alive (heartbeats) and watches for SIGTERM. Each message is acked
only after its outcome is done: the effect recorded, or the message safely
republished to a wait queue or the dead letters.

The queue's RetryPolicy (shared/failures/retry.py) routes every failure; a handler
with a `dead_lettering(final)` method is told which messages are about to go
to the dead letters, with their reasons, before they go.

A `retry.Paused` outcome (the supplier refuses the account, or the shop the
REST keys) blames no message: those messages go back to the queue
unacked-as-if-never-taken (basic_nack with requeue), the connection is
closed so everything else prefetched goes back too, and the consumer takes
nothing until the handler's `wait_until_workable(paused, stop)` returns
(shared/failures/account_pause.py).

RabbitMQ may stop serving a consumer and keep its connection open: it
cancels the consumer when its queue is deleted, and closes a channel on a
protocol error. The loop looks after every turn and reconnects, which
declares the queue again.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pika.exceptions import AMQPChannelError, AMQPError

from shared.failures import retry
from shared.messaging import topology
from shared.messaging.amqp import BrokerUnavailable, backoff_delays, connect, message_properties
from shared.observability import metrics
from shared.observability.health import HEALTH
from shared.observability.logging import get_logger

log = get_logger(__name__)


@dataclass
class Delivery:
    body: bytes
    message_id: str
    headers: dict[str, Any]
    delivery_tag: int
    redelivered: bool
    received_at: float = field(default_factory=time.monotonic)

    @property
    def attempts(self) -> int:
        return retry.attempts_of(self.headers)


BatchHandler = Callable[[Sequence[Delivery]], Sequence[retry.Outcome]]


class BatchConsumer:
    def __init__(
        self,
        url: str,
        queue: topology.WorkQueue,
        handler: BatchHandler,
        *,
        retry_delays: list[int],
        stop: threading.Event,
        max_batch: int = 100,
        batch_window: float = 0.02,
        min_interval: float = 0.0,
        name: str = "consumer",
    ) -> None:
        self.url = url
        self.queue = queue
        self.handler = handler
        self.policy = retry.RetryPolicy(queue, tuple(retry_delays))
        self.stop = stop
        self.max_batch = max_batch
        self.batch_window = batch_window
        # The least time from one batch's start to the next: a handler whose every batch costs a
        # request of a throttled budget gathers more per batch instead of spending more requests.
        self.min_interval = min_interval
        self._last_batch = float("-inf")
        self.name = name
        self._pending: list[Delivery] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-handler")
        # Its names in /healthz (a loop that beats) and /readyz (the broker connection it needs).
        self._loop = f"consumer {name}"
        self._broker = f"broker ({name})"

    def run(self) -> None:
        """Consume until `stop` is set, reconnecting after any broker failure."""
        # Beats at least every reconnect delay (30 s at most) and every 0.2 s while consuming.
        HEALTH.register_loop(self._loop, max_silence=120.0)
        HEALTH.set_problem(self._broker, "not connected to RabbitMQ yet")
        metrics.start_consuming(self.queue.name)
        delays = backoff_delays()
        while not self.stop.is_set():
            HEALTH.beat(self._loop)
            try:
                self._consume()
                delays = backoff_delays()
            except (AMQPError, OSError, BrokerUnavailable) as exc:
                delay = next(delays)
                HEALTH.set_problem(self._broker, f"RabbitMQ unreachable: {exc!r}"[:300])
                log.warning("broker connection lost, reconnecting", consumer=self.name, error=repr(exc)[:200], retry_in=round(delay, 2))
                self.stop.wait(delay)
            except Exception as exc:
                # Never let the consumer die while its process looks alive: the
                # unacked messages go back with the connection and are retried.
                delay = next(delays)
                HEALTH.set_problem(self._broker, f"consumer failed, restarting: {exc!r}"[:300])
                log.exception("consumer failed, restarting it", consumer=self.name, retry_in=round(delay, 2))
                self.stop.wait(delay)
        self._executor.shutdown(wait=True)
        HEALTH.retire_loop(self._loop)
        HEALTH.set_problem(self._broker, "stopped")
        log.info("consumer stopped", consumer=self.name)

    def _consume(self) -> None:
        connection = connect(self.url)
        try:
            channel = connection.channel()
            topology.declare(channel)
            topology.declare_wait_queues(channel, self.queue, list(self.policy.delays))
            # Enough in flight to fill two batches: one being handled, one gathering.
            channel.basic_qos(prefetch_count=self.max_batch * 2)
            publish_channel = connection.channel()
            publish_channel.confirm_delivery()
            self._pending = []

            def on_message(_ch: Any, method: Any, properties: Any, body: bytes) -> None:
                self._pending.append(
                    Delivery(
                        body=body,
                        message_id=properties.message_id or "",
                        headers=dict(properties.headers or {}),
                        delivery_tag=method.delivery_tag,
                        redelivered=method.redelivered,
                    )
                )

            channel.basic_consume(self.queue.name, on_message)
            HEALTH.clear_problem(self._broker)
            log.info("consuming", consumer=self.name, queue=self.queue.name)
            while not self.stop.is_set():
                HEALTH.beat(self._loop)
                connection.process_data_events(time_limit=0.2)
                _raise_if_not_served(channel, publish_channel)
                if not self._pending:
                    continue
                self._gather(connection)
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                outcomes = self._handle(connection, batch)
                self._settle(channel, publish_channel, batch, outcomes)
                paused = next((o for o in outcomes if isinstance(o, retry.Paused)), None)
                if paused is not None:
                    # Closing the connection returns every prefetched message to the queue.
                    self._close(connection)
                    self._wait_until_workable(paused)
                    return
        finally:
            # Messages received but not handled go back to the queue with the channel.
            self._close(connection)

    @staticmethod
    def _close(connection: Any) -> None:
        if connection.is_open:
            try:
                connection.close()
            except Exception:
                pass

    def _wait_until_workable(self, paused: retry.Paused) -> None:
        log.error("not taking messages: no message is at fault", consumer=self.name, reason=paused.reason[:300])
        wait = getattr(self.handler, "wait_until_workable", None)
        # Paused on purpose, not stuck: the loop does not count for /healthz meanwhile
        # (readiness says why: the account's problem stays set while it is refused).
        HEALTH.retire_loop(self._loop)
        try:
            if wait is not None:
                wait(paused, self.stop)
            else:
                self.stop.wait(5.0)
        finally:
            HEALTH.register_loop(self._loop, max_silence=120.0)
        if not self.stop.is_set():
            log.info("taking messages again", consumer=self.name)

    def _gather(self, connection: Any) -> None:
        """Wait a moment for more messages so a burst is handled as one batch, and at least
        until `min_interval` has passed since the last batch began."""
        paced_until = self._last_batch + self.min_interval
        deadline = max(time.monotonic() + self.batch_window, paced_until)
        while len(self._pending) < self.max_batch and time.monotonic() < deadline:
            before = len(self._pending)
            paced = time.monotonic() < paced_until
            connection.process_data_events(time_limit=min(0.05 if paced else 0.005, max(0.0, deadline - time.monotonic())))
            if len(self._pending) == before and not paced:
                break
        self._last_batch = time.monotonic()

    def _handle(self, connection: Any, batch: list[Delivery]) -> Sequence[retry.Outcome]:
        future = self._executor.submit(self._run_handler, batch)
        while not future.done():
            # Keep heartbeats flowing while the handler talks to slow APIs.
            HEALTH.beat(self._loop)
            connection.process_data_events(time_limit=0.05)
        try:
            outcomes = future.result()
        except Exception as exc:  # the handler could not run at all (database down, bug)
            log.error("batch failed, retrying its messages", consumer=self.name, error=repr(exc)[:300], size=len(batch))
            return [retry.batch_failure(exc)] * len(batch)
        if len(outcomes) != len(batch):
            raise AssertionError("handler must return one outcome per delivery")
        return outcomes

    def _run_handler(self, batch: list[Delivery]) -> Sequence[retry.Outcome]:
        """In the worker thread: the handler's outcomes, after telling it which messages are final."""
        outcomes = self.handler(batch)
        if len(outcomes) != len(batch):
            return outcomes  # a broken handler: _handle refuses it
        final = [
            (delivery, outcome.reason)
            for delivery, outcome in zip(batch, outcomes)
            if isinstance(outcome, (retry.RetryLater, retry.DeadLetter)) and self.policy.is_final(outcome, delivery.headers)
        ]
        dead_lettering = getattr(self.handler, "dead_lettering", None)
        if final and dead_lettering is not None:
            dead_lettering(final)
        return outcomes

    def _settle(self, channel: Any, publish_channel: Any, batch: list[Delivery], outcomes: Sequence[retry.Outcome]) -> None:
        for delivery, outcome in zip(batch, outcomes):
            if isinstance(outcome, retry.Paused):
                # Not the message's fault: back to the queue as it was, no attempt counted.
                channel.basic_nack(delivery.delivery_tag, requeue=True)
                continue
            if not isinstance(outcome, retry.Ack):
                route = self.policy.route(outcome, delivery.headers)
                publish_channel.basic_publish(
                    "",
                    route.routing_key,
                    delivery.body,
                    properties=message_properties(delivery.message_id, route.headers),
                    mandatory=True,
                )
                metrics.record_outcome(self.queue.name, outcome, dead=route.dead)
                log.warning(
                    "message dead-lettered" if route.dead else "message will be retried",
                    consumer=self.name,
                    message_id=delivery.message_id,
                    attempts=route.headers[retry.ATTEMPTS],
                    delay=route.delay,
                    reason=route.headers[retry.REASON][:200],
                )
            else:
                metrics.record_outcome(self.queue.name, outcome)
            channel.basic_ack(delivery.delivery_tag)


def _raise_if_not_served(channel: Any, publish_channel: Any) -> None:
    """RabbitMQ can stop serving a consumer and keep its connection: it cancels the consumer
    when its queue is deleted, and closes a channel on a protocol error. Either way no message
    would come again; raising reconnects, which declares the queue again."""
    if channel.is_closed or publish_channel.is_closed:
        raise AMQPChannelError("RabbitMQ closed the consumer's channel")
    if not channel.consumer_tags:
        raise AMQPChannelError("RabbitMQ cancelled the consumer (was its queue deleted?)")
