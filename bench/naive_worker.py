"""`python -m bench.naive_worker`: the baseline, one supplier call per order line.

What a straightforward plugin-style worker does: a plain pika consumer with
prefetch 1 that, for each order-line message, locks that line's quantity with
one `modify_growing_order(lock={stock_id: quantity})` call and acks. No
batching, no database, no retries beyond putting a failed message back.

Environment: AMQP_URL, REWIX_API_URL, REWIX_API_KEY, REWIX_API_PASSWORD,
SYNC_RETRY_DELAYS (names the wait queues of the topology it declares), and
BENCH_LOCK_LOG: a file that gets one line `order_id line_id unix_time` for
every line once the supplier has answered its lock, so the benchmark can
measure per-line latency the same way for every worker.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from pydantic import ValidationError

from shared.clients.rewix import RewixClient
from shared.failures.errors import ExternalError
from shared.messaging import topology
from shared.messaging.amqp import connect
from shared.messaging.messages import parse_order_line
from shared.settings import load_settings, require


def main() -> int:
    settings = require(load_settings(), "REWIX_API_URL", "REWIX_API_KEY", "REWIX_API_PASSWORD")
    lock_log_path = os.environ.get("BENCH_LOCK_LOG")
    lock_log = open(lock_log_path, "a", buffering=1) if lock_log_path else None
    client = RewixClient(settings.rewix_api_url, settings.rewix_api_key, settings.secret("rewix_api_password"))
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    connection = connect(settings.amqp_url)
    channel = connection.channel()
    topology.declare(channel)
    topology.declare_wait_queues(channel, topology.ORDER_LINES, topology.ORDER_LINES.retry_delays(settings))
    channel.basic_qos(prefetch_count=1)

    def on_message(ch: Any, method: Any, _properties: Any, body: bytes) -> None:
        try:
            message = parse_order_line(body)
        except (ValidationError, ValueError):
            ch.basic_ack(method.delivery_tag)  # nothing a retry could fix
            return
        if message.line is None or message.line.quantity <= 0:
            ch.basic_ack(method.delivery_tag)
            return
        try:
            client.modify_growing_order(lock={message.line.stock_id: message.line.quantity})
        except ExternalError as exc:
            print(f"lock failed, message put back: {exc}", file=sys.stderr, flush=True)
            ch.basic_nack(method.delivery_tag, requeue=True)
            return
        if lock_log is not None:
            lock_log.write(f"{message.order_id} {message.line.line_id} {time.time():.6f}\n")
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(topology.ORDER_LINES.name, on_message)
    print("naive worker consuming", flush=True)
    while not stopping:
        connection.process_data_events(time_limit=0.2)
    connection.close()
    client.close()
    if lock_log is not None:
        lock_log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
