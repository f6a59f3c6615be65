"""The operator page's background drain (dead_letters.BackgroundDrain) against the real broker and database."""
from __future__ import annotations

import time

from shared.messaging import topology
from services.admin import dead_letters
from tests.conftest import queue_depth
from tests.integration.test_admin_dlq import count_rows, dead_letter, order_line
from tests.support import wait_until


def test_letters_dead_lettered_while_it_runs_reach_the_table_over_one_connection(db: str, broker: str) -> None:
    drainer = dead_letters.BackgroundDrain(broker, db, interval=0.2).start()
    try:
        first = drainer.wait_for_pass(0, timeout=10)
        assert first.passes >= 1 and first.error is None and first.finished_at is not None
        assert count_rows(db) == 0
        for order_id in (5101, 5102):
            message = order_line(order_id)
            dead_letter(broker, message.to_bytes(), message.message_id)
        wait_until(lambda: count_rows(db) == 2, timeout=10, what="both letters in the table")
        assert queue_depth(broker, topology.ORDER_LINES.dead) == 0  # acknowledged once stored
        later = drainer.wait_for_pass(drainer.state().passes + 3, timeout=10)
        assert later.error is None and later.finished_at > first.finished_at
        assert drainer.connections_opened == 1  # kept open between passes
        assert drainer.start() is drainer and drainer.connections_opened == 1  # started once per process
    finally:
        drainer.stop()
    stopped = drainer.state().passes
    time.sleep(0.5)
    assert drainer.state().passes == stopped  # no pass after stop


def test_rabbitmq_down_is_the_state_of_each_pass_and_it_recovers(db: str, broker: str) -> None:
    down = dead_letters.BackgroundDrain("amqp://guest:guest@127.0.0.1:1/%2F", db, interval=0.2,
                                        connect_timeout=1.0).start()
    try:
        state = down.wait_for_pass(0, timeout=10)
        assert state.error is not None and state.error.startswith("RabbitMQ unavailable, the dead-letter queues")
        again = down.wait_for_pass(state.passes, timeout=10)
        assert again.passes > state.passes and again.error == state.error  # tries again every interval
    finally:
        down.stop()


def test_a_letter_it_cannot_store_stays_on_its_queue(broker: str) -> None:
    drainer = dead_letters.BackgroundDrain(broker, "postgresql://postgres@127.0.0.1:1/nothing", interval=0.2).start()
    try:
        message = order_line(5103)
        dead_letter(broker, message.to_bytes(), message.message_id)
        state = drainer.wait_for_pass(drainer.state().passes + 1, timeout=20)
        assert state.error is not None and state.error.startswith("The dead-letter queues were not drained")
        wait_until(lambda: queue_depth(broker, topology.ORDER_LINES.dead) == 1, timeout=10,
                   what="the letter back on its queue")
    finally:
        drainer.stop()
