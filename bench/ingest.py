"""`python -m bench.ingest`: what a webhook costs, against the cost floor of a confirmed publish.

ingest's work per webhook is: check the HMAC, parse the order, resolve its
lines in PostgreSQL, publish one persistent message per supplier line and wait
for RabbitMQ's confirm of each. The floor it is measured against, in the same
run on the same broker: the same number of messages of the same size,
published with confirms by plain pika from as many threads as ingest has
senders, with no HTTP, no JSON and no database.

Target: every webhook of the burst answered within one second at p99
(WooCommerce waits up to 60 s, but a slow receiver delays the shop's own
queue); the ratio to the floor is printed, not judged.
"""
from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pika
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench.common import (
    Service, install_cleanup, log_directory, percentile, scratch_database, scratch_vhost, service_env, wait_until,
)
from bench.pipeline import LINES_PER_ORDER, WEBHOOK_SECRET, _listening_url, _ready, make_burst, send_burst
from shared.db import normalise_url
from shared.messages import OrderLineMessage
from shared.product_map import import_product_map

P99_TARGET_SECONDS = 1.0


def measure_ingest(orders: int, senders: int) -> dict:
    burst = make_burst(orders, models=200, seed=11)
    log_dir = log_directory("bench-ingest")
    with scratch_database("bench_ingest") as database_url, scratch_vhost("bench_ingest") as amqp_url:
        engine = create_engine(normalise_url(database_url))
        with Session(engine) as session, session.begin():
            import_product_map(session, [(m.product_id, m.variation_id, m.stock_id) for m in burst.models])
        engine.dispose()
        ingest = Service(
            "ingest", "services.ingest",
            service_env(DATABASE_URL=database_url, AMQP_URL=amqp_url, WC_WEBHOOK_SECRET=WEBHOOK_SECRET,
                        INGEST_HOST="127.0.0.1", INGEST_PORT="0", LOG_LEVEL="INFO"),
            log_dir,
        )
        try:
            url = ingest.wait_for_output(_listening_url)
            wait_until(lambda: _ready(url), timeout=20, what="ingest /readyz")
            send_burst(url, burst.webhooks[:20], senders)  # warm the connections and the workers
            started = time.monotonic()
            answers = send_burst(url, burst.webhooks[20:], senders)
            elapsed = time.monotonic() - started
        finally:
            ingest.stop()
        floor = measure_floor(amqp_url, messages=len(answers) * LINES_PER_ORDER, threads=senders)
    durations = [a.answered_at - a.sent_at for a in answers]
    return {
        "webhooks": len(answers),
        "ok": sum(1 for a in answers if a.status == 200),
        "webhooks_per_s": len(answers) / elapsed,
        "lines_per_s": len(answers) * LINES_PER_ORDER / elapsed,
        "p50": percentile(durations, 50),
        "p99": percentile(durations, 99),
        "floor_per_s": floor,
    }


def measure_floor(amqp_url: str, messages: int, threads: int) -> float:
    """Confirmed persistent publishes of an order-line-sized message, `threads` connections at once."""
    body = OrderLineMessage(topic="order.created", order_id=1, status="pending", date_modified_gmt=None).to_bytes()
    body = body + b" " * max(0, 900 - len(body))  # about the size of a real order-line message
    per_thread = messages // threads
    barrier = threading.Barrier(threads + 1)

    def publish() -> None:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = connection.channel()
        channel.confirm_delivery()
        barrier.wait()
        for _ in range(per_thread):
            channel.basic_publish(
                "", "bench.floor", body, pika.BasicProperties(delivery_mode=2), mandatory=True
            )
        connection.close()

    setup = pika.BlockingConnection(pika.URLParameters(amqp_url))
    setup.channel().queue_declare("bench.floor", durable=True, arguments={"x-queue-type": "quorum"})
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(publish) for _ in range(threads)]
        barrier.wait()
        started = time.monotonic()
        for f in futures:
            f.result()
        elapsed = time.monotonic() - started
    setup.channel().queue_delete("bench.floor")
    setup.close()
    return per_thread * threads / elapsed


def run(orders: int = 1000, senders: int = 8) -> dict:
    install_cleanup()
    result = measure_ingest(orders, senders)
    result["targets"] = {"p99 answer <= 1 s": (result["p99"] <= P99_TARGET_SECONDS, result["p99"])}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=8)
    args = parser.parse_args()
    r = run(args.orders, args.senders)
    print(f"ingest: {r['webhooks']} signed order webhooks ({LINES_PER_ORDER} supplier lines each), {args.senders} senders")
    print(f"  ingest         {r['webhooks_per_s']:8.1f} webhooks/s  {r['lines_per_s']:8.1f} confirmed messages/s"
          f"  answer p50 {r['p50'] * 1000:.0f} ms, p99 {r['p99'] * 1000:.0f} ms  ({r['ok']} answered 200)")
    print(f"  floor (pika)   {r['floor_per_s']:8.1f} confirmed messages/s from {args.senders} connections, same broker, same run")
    print(f"  ingest reaches {r['lines_per_s'] / r['floor_per_s']:.0%} of the floor: the rest is HTTP, HMAC, JSON and the product-map lookup")
    failed = False
    for name, (met, value) in r["targets"].items():
        print(f"{'PASS' if met else 'FAIL'}  {name}: {value * 1000:.0f} ms")
        failed |= not met
    failed |= r["ok"] != r["webhooks"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
