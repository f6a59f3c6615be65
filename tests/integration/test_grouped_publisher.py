"""The shared, pipelined publisher on the real broker: many threads, one connection, each batch confirmed.

Each caller must return only once its own messages are confirmed, a refusal
must fail only the batch it belongs to, and a broken connection must send
the unconfirmed batches again or fail them: never report one as sent that
is not on the queue.
"""
from __future__ import annotations

import threading
import time
import urllib.parse
from collections import defaultdict

import pytest

from shared.messaging import topology
from shared.messaging.amqp import BrokerUnavailable, Outgoing
from services.ingest.grouped_publisher import GroupedPublisher
from tests.conftest import drain, queue_depth
from tests.support import TcpProxy, wait_until

LINES = topology.ORDER_LINES.name
THREADS = 12
BATCHES_PER_THREAD = 40


def batch(thread: int, n: int, size: int = 3) -> list[Outgoing]:
    return [Outgoing(f"{thread}:{n}:{m}".encode(), topology.ORDER_LINE, f"{thread}-{n}-{m}") for m in range(size)]


def test_every_threads_batches_are_on_the_queue_once_and_in_order_when_publish_all_returns(broker: str) -> None:
    publisher = GroupedPublisher(broker)
    confirmed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def work(thread: int) -> None:
        start.wait()
        for n in range(BATCHES_PER_THREAD):
            messages = batch(thread, n)
            publisher.publish_all(messages)
            with lock:
                confirmed.extend(m.message_id for m in messages)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        # Confirmed means on the queue: nothing is still in the client's hands.
        assert queue_depth(broker, LINES) == THREADS * BATCHES_PER_THREAD * 3
    finally:
        publisher.close()
    got = [body.decode() for _props, body in drain(broker, LINES)]
    assert sorted(got) == sorted(f"{t}:{n}:{m}" for t in range(THREADS) for n in range(BATCHES_PER_THREAD)
                                 for m in range(3))
    assert len(confirmed) == len(got)
    # A batch's messages are written together, and each thread's batches keep their order.
    by_thread: dict[str, list[str]] = defaultdict(list)
    for position, body in enumerate(got):
        thread, n, m = body.split(":")
        if m != "0":
            assert got[position - int(m)] == f"{thread}:{n}:0"
        by_thread[thread].append(body)
    for thread, bodies in by_thread.items():
        assert bodies == [f"{thread}:{n}:{m}" for n in range(BATCHES_PER_THREAD) for m in range(3)]


def test_an_unroutable_message_fails_its_own_batch_only(broker: str) -> None:
    publisher = GroupedPublisher(broker)
    outcomes: dict[str, str] = {}
    start = threading.Barrier(3)

    def send(name: str, messages: list[Outgoing]) -> None:
        start.wait()
        try:
            publisher.publish_all(messages)
            outcomes[name] = "confirmed"
        except BrokerUnavailable as exc:
            outcomes[name] = str(exc)

    bad = [Outgoing(b"routed", topology.ORDER_LINE, "bad-1"), Outgoing(b"lost", "no.such.routing.key", "bad-2")]
    threads = [
        threading.Thread(target=send, args=("good-1", batch(1, 0))),
        threading.Thread(target=send, args=("bad", bad)),
        threading.Thread(target=send, args=("good-2", batch(2, 0))),
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        # The publisher goes on: the refusal does not leak into what comes next.
        publisher.publish_all([Outgoing(b"after", topology.ORDER_LINE, "after")])
    finally:
        publisher.close()
    assert outcomes["good-1"] == outcomes["good-2"] == "confirmed"
    assert "no queue took a message" in outcomes["bad"] and "no.such.routing.key" in outcomes["bad"]
    bodies = {body for _props, body in drain(broker, LINES)}
    assert {b"1:0:0", b"2:0:2", b"after"} <= bodies


def _through_proxy(broker: str, **options: float) -> tuple[TcpProxy, GroupedPublisher]:
    """A publisher that reaches the broker through a proxy the test can cut or stall."""
    address = urllib.parse.urlsplit(broker)
    proxy = TcpProxy((address.hostname or "127.0.0.1", address.port or 5672))
    return proxy, GroupedPublisher(proxy.url_for(broker), **options)


def test_a_cut_connection_is_rebuilt_and_a_broker_out_of_reach_fails_the_callers(broker: str) -> None:
    proxy, publisher = _through_proxy(broker, connect_timeout=1.0)
    try:
        publisher.publish_all(batch(1, 0))
        proxy.cut()
        proxy.restore()
        # The connection the publisher held is gone: the next batch goes on a new one.
        publisher.publish_all(batch(1, 1))
        publisher.ping()

        proxy.cut()
        with pytest.raises(BrokerUnavailable):
            publisher.publish_all(batch(1, 2))
        with pytest.raises(BrokerUnavailable):
            publisher.ping()

        proxy.restore()
        wait_until(lambda: _publishes(publisher, batch(1, 3)), timeout=20, what="a publish after the broker is back")
    finally:
        publisher.close()
        proxy.cut()
    bodies = [body for _props, body in drain(broker, LINES)]
    for n in (0, 1, 3):
        assert f"1:{n}:0".encode() in bodies
    assert b"1:2:0" not in bodies  # refused to its caller, and indeed never sent


def _publishes(publisher: GroupedPublisher, messages: list[Outgoing]) -> bool:
    try:
        publisher.publish_all(messages)
        return True
    except BrokerUnavailable:
        return False


def test_close_lets_the_batches_in_hand_finish_and_refuses_new_ones(broker: str) -> None:
    publisher = GroupedPublisher(broker)
    publisher.publish_all(batch(1, 0))
    publisher.close()
    with pytest.raises(BrokerUnavailable, match="closed"):
        publisher.publish_all(batch(1, 1))
    assert [body for _props, body in drain(broker, LINES)] == [b"1:0:0", b"1:0:1", b"1:0:2"]


def _publish_at_once(publisher: GroupedPublisher, batches: dict[str, tuple[list[Outgoing], str]]) -> dict[str, str]:
    """Each batch from its own thread, all at once: every caller's answer, "confirmed" or
    "refused". None may be left waiting."""
    outcomes: dict[str, str] = {}
    start = threading.Barrier(len(batches))

    def publish(name: str, messages: list[Outgoing], exchange: str) -> None:
        start.wait()
        try:
            publisher.publish_all(messages, exchange=exchange)
            outcomes[name] = "confirmed"
        except BrokerUnavailable:
            outcomes[name] = "refused"

    threads = [threading.Thread(target=publish, args=(name, messages, exchange), daemon=True)
               for name, (messages, exchange) in batches.items()]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not [t for t in threads if t.is_alive()], f"callers left waiting; answered: {outcomes}"
    return outcomes


def test_a_channel_the_broker_closed_fails_or_resends_every_batch_and_leaves_no_caller_waiting(broker: str) -> None:
    """A publish to a missing exchange makes RabbitMQ close the channel: pika then refuses the
    batches sent after it on that channel. Each caller must still get an answer."""
    publisher = GroupedPublisher(broker)
    try:
        outcomes = _publish_at_once(publisher, {
            "lost": (batch(0, 0), "no-such-exchange"),
            **{f"t{t}": (batch(t, 0), topology.EXCHANGE) for t in range(1, THREADS)},
        })
        assert outcomes["lost"] == "refused"
        # The others were sent again on a new channel, or refused to their callers (a 503 for a
        # webhook); one refused may still have got through, its confirm lost with the channel.
        publisher.publish_all(batch(99, 0))
    finally:
        publisher.close()
    bodies = {body for _props, body in drain(broker, LINES)}
    assert b"99:0:0" in bodies
    assert b"0:0:0" not in bodies
    for t in range(1, THREADS):
        if outcomes[f"t{t}"] == "confirmed":
            assert {f"{t}:0:{m}".encode() for m in range(3)} <= bodies


def test_a_batch_pika_cannot_encode_fails_alone_and_leaves_no_caller_waiting(broker: str) -> None:
    publisher = GroupedPublisher(broker)
    unencodable = [Outgoing(b"x", topology.ORDER_LINE, "bad-0", headers={"when": object()})]
    try:
        outcomes = _publish_at_once(publisher, {
            "bad": (unencodable, topology.EXCHANGE),
            **{f"t{t}": (batch(t, 0), topology.EXCHANGE) for t in (1, 2)},
        })
        assert outcomes["bad"] == "refused"
        publisher.publish_all(batch(99, 0))  # and the publisher goes on
    finally:
        publisher.close()
    bodies = {body for _props, body in drain(broker, LINES)}
    assert b"x" not in bodies and b"99:0:0" in bodies
    for t in (1, 2):
        if outcomes[f"t{t}"] == "confirmed":
            assert f"{t}:0:0".encode() in bodies


def test_a_broker_that_hangs_is_answered_for_within_the_limit(broker: str) -> None:
    proxy, publisher = _through_proxy(broker, answer_within=1.0)
    try:
        publisher.publish_all(batch(1, 0))
        proxy.stall()
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="did not confirm within 1 s"):
            publisher.publish_all(batch(1, 1))
        assert time.monotonic() - started < 3
        proxy.flow()
        wait_until(lambda: _publishes(publisher, batch(1, 2)), timeout=20, what="a publish once the broker answers")
    finally:
        publisher.close()
        proxy.cut()
    bodies = {body for _props, body in drain(broker, LINES)}
    assert {b"1:0:0", b"1:2:0"} <= bodies
