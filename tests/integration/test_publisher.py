"""The confirmed publisher on the real broker: a batch is confirmed as a whole, refusals raise."""
from __future__ import annotations

import pytest

from shared.messaging import topology
from shared.messaging.amqp import BrokerUnavailable, Outgoing, Publisher
from tests.conftest import drain

LINES = topology.ORDER_LINES.name


def test_a_batch_is_on_the_queue_in_order_once_publish_all_returns(broker: str) -> None:
    publisher = Publisher(broker)
    try:
        publisher.publish_all([Outgoing(f"m{n}".encode(), topology.ORDER_LINE, f"id-{n}") for n in range(50)])
        publisher.publish(b"single", routing_key=topology.ORDER_LINE, message_id="id-single")
    finally:
        publisher.close()
    got = drain(broker, LINES)
    assert [body for _props, body in got] == [f"m{n}".encode() for n in range(50)] + [b"single"]
    assert [props.message_id for props, _ in got][:2] == ["id-0", "id-1"]
    assert all(props.delivery_mode == 2 for props, _ in got)


def test_a_batch_with_an_unroutable_message_raises_and_the_publisher_goes_on(broker: str) -> None:
    publisher = Publisher(broker)
    try:
        with pytest.raises(BrokerUnavailable, match="no queue took"):
            publisher.publish_all([
                Outgoing(b"routed", topology.ORDER_LINE, "a"),
                Outgoing(b"lost", "no.such.routing.key", "b"),
            ])
        # The confirms of the failed batch do not leak into the next one.
        publisher.publish_all([Outgoing(b"after", topology.ORDER_LINE, "c")])
    finally:
        publisher.close()
    assert [body for _props, body in drain(broker, LINES)] == [b"routed", b"after"]


def test_a_connection_closed_under_the_publisher_is_rebuilt_once(broker: str) -> None:
    publisher = Publisher(broker)
    try:
        publisher.publish(b"first", routing_key=topology.ORDER_LINE, message_id="1")
        publisher._connection.close()  # as a broker restart would leave it
        publisher.publish_all([Outgoing(b"second", topology.ORDER_LINE, "2")])
    finally:
        publisher.close()
    assert [body for _props, body in drain(broker, LINES)] == [b"first", b"second"]
