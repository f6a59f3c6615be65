"""A consumer the broker stops serving without closing the connection takes up its queue again.

RabbitMQ cancels a consumer whose queue is deleted (an operator's mistake,
a policy) and closes a channel on a protocol error, and neither ends the
connection: a consumer that only watched the connection would look healthy
while its messages waited for ever.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence

import pika
import pytest
from pika.exceptions import AMQPChannelError

from shared.failures import retry
from shared.messaging import topology
from shared.messaging.amqp import Publisher
from shared.messaging.consumer import BatchConsumer, Delivery, _raise_if_not_served
from tests.conftest import TEST_RETRY_DELAYS
from tests.support import wait_until

QUEUE = topology.ORDER_LINES


class Recorder:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, batch: Sequence[Delivery]) -> list[retry.Outcome]:
        self.bodies.extend(d.body for d in batch)
        return [retry.Ack() for _ in batch]


def _queue_consumed(amqp_url: str) -> bool:
    """The queue exists and has a consumer again. The consumer declares the queue, then its binding,
    then consumes (shared/messaging/consumer.py): once it consumes, a publish is routed to the queue;
    a queue that merely exists may not be bound yet, and a publish then is unroutable."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return connection.channel().queue_declare(QUEUE.name, passive=True).method.consumer_count > 0
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()


def test_a_consumer_whose_queue_was_deleted_declares_it_again_and_consumes(broker: str) -> None:
    recorder, stop = Recorder(), threading.Event()
    consumer = BatchConsumer(broker, QUEUE, recorder, retry_delays=TEST_RETRY_DELAYS, stop=stop, name="recovery")
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    publisher = Publisher(broker)
    try:
        publisher.publish(b"before", routing_key=topology.ORDER_LINE, message_id="before")
        wait_until(lambda: b"before" in recorder.bodies, timeout=10, what="the first message handled")

        connection = pika.BlockingConnection(pika.URLParameters(broker))
        connection.channel().queue_delete(QUEUE.name)  # RabbitMQ cancels the consumer
        connection.close()

        wait_until(lambda: _queue_consumed(broker), timeout=20, what="the consumer declaring, binding and consuming its queue again")
        publisher.publish(b"after", routing_key=topology.ORDER_LINE, message_id="after")
        wait_until(lambda: b"after" in recorder.bodies, timeout=20, what="a message after the queue came back")
    finally:
        stop.set()
        thread.join(timeout=10)
        publisher.close()


class _Channel:
    def __init__(self, *, closed: bool = False, consumers: tuple[str, ...] = ("ctag",)) -> None:
        self.is_closed = closed
        self.consumer_tags = list(consumers)


def test_a_closed_channel_or_a_cancelled_consumer_is_noticed() -> None:
    _raise_if_not_served(_Channel(), _Channel(consumers=()))  # the publish channel consumes nothing
    for consume, publish in ((_Channel(closed=True), _Channel()), (_Channel(), _Channel(closed=True)),
                             (_Channel(consumers=()), _Channel())):
        with pytest.raises(AMQPChannelError):
            _raise_if_not_served(consume, publish)
