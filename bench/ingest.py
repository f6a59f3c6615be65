"""`python -m bench.ingest`: what a webhook costs in ingest, against two floors measured in the same run.

ingest's work per webhook: check the HMAC, parse the order, resolve its lines
(product map), note the order as known in PostgreSQL, publish one persistent
message per supplier line and answer once RabbitMQ has confirmed them all.

The floors, in the same run on the same machine:

- the minimal app (bench/minimal_receiver.py): on ingest's own server and
  settings, it verifies the HMAC and parses the JSON of the same bodies and
  answers 200: what any Python webhook receiver costs here;
- plain pika: the same number of messages of about the same size, published
  with confirms from as many connections as there are senders (no HTTP, no
  JSON, no database).

Where the CPU goes: for each receiver's timed burst, the CPU seconds of the
receiver's processes, PostgreSQL, RabbitMQ and the senders (this process)
per webhook (bench/cpu_use.py), and the CPUs 0.8 × the minimal app would take
at those costs: the costs of the broker and the database that ingest's answer
waits for are on this machine's CPUs too.

ingest's webhooks/s as a ratio to the minimal app's (both driven as fast as
they answer by the same senders) is printed as information: the 0.8 target
is retired, since at ingest's costs it takes more CPUs than this machine has
(the CPU lines show it), and ingest is not what limits a shop.

Target (as the issue states it): p99 under 25 ms at half of ingest's own
maximum rate (an open-loop run at half the rate just measured; each answer's
time counts from when its webhook was due).
"""
from __future__ import annotations

import argparse
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pika
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench.burst import LINES_PER_ORDER, SHOP_URL, WEBHOOK_SECRET, make_burst
from bench.common import install_cleanup, log_directory, percentile, scratch_database, scratch_vhost
from bench.cpu_use import cpu_by_part, per_webhook_ms
from bench.receiver_process import start_receiver
from bench.webhook_load import Answer, send_burst, send_paced
from shared.db import normalise_url
from shared.messaging.messages import OrderLineMessage
from shared.products.mapping import import_product_map

# The ratio once targeted, kept to say what it would cost in CPUs (cpu_lines); no longer a target.
RETIRED_RATIO = 0.8
# Webhooks per timed burst. Long enough that one scheduler hiccup on this shared
# machine does not decide the rate: with 1,000 the ratio ranged 0.23-0.39 over four
# runs of one afternoon, with 3,000 0.27-0.29 over three.
ORDERS = 3000
TARGET_P99_SECONDS = 0.025
WARM_UP = 50
PACED_SECONDS = 6.0


def figures_of(answers: list[Answer], elapsed: float) -> dict[str, Any]:
    durations = [a.answered_at - a.sent_at for a in answers]
    return {
        "webhooks": len(answers),
        "ok": sum(1 for a in answers if a.status == 200),
        "webhooks_per_s": len(answers) / elapsed,
        "p50": percentile(durations, 50),
        "p99": percentile(durations, 99),
    }


def timed_burst(url: str, webhooks: list, senders: int, receiver_pid: int) -> dict[str, Any]:
    send_burst(url, webhooks[:WARM_UP], senders)  # connections, worker threads, caches
    cpu_before = cpu_by_part(receiver_pid)
    started = time.monotonic()
    answers = send_burst(url, webhooks[WARM_UP:], senders)
    figures = figures_of(answers, time.monotonic() - started)
    figures["cpu_ms"] = per_webhook_ms(cpu_before, cpu_by_part(receiver_pid), len(answers))
    return figures


def measure_minimal(orders: int, senders: int, log_dir: Any) -> dict[str, Any]:
    burst = make_burst(orders, models=200, seed=11)
    service, url = start_receiver("minimal", "bench.minimal_receiver", log_dir, WC_WEBHOOK_SECRET=WEBHOOK_SECRET)
    try:
        return timed_burst(url, burst.webhooks, senders, service.process.pid)
    finally:
        service.stop()


def measure_ingest(orders: int, senders: int, log_dir: Any) -> dict[str, Any]:
    burst = make_burst(orders, models=200, seed=11)
    with scratch_database("bench_ingest") as database_url, scratch_vhost("bench_ingest") as amqp_url:
        engine = create_engine(normalise_url(database_url))
        with Session(engine) as session, session.begin():
            import_product_map(session, burst.product_map())
        engine.dispose()
        service, url = start_receiver(
            "ingest", "services.ingest", log_dir,
            DATABASE_URL=database_url, AMQP_URL=amqp_url, WC_WEBHOOK_SECRET=WEBHOOK_SECRET, WC_URL=SHOP_URL,
            LOG_LEVEL="INFO",
        )
        try:
            result = timed_burst(url, burst.webhooks, senders, service.process.pid)
            # Half of the maximum just measured, open loop, on orders not seen yet.
            rate = result["webhooks_per_s"] / 2
            paced = make_burst(max(50, int(rate * PACED_SECONDS)), models=200, seed=12, first_order_id=orders + 1)
            started = time.monotonic()
            answers = send_paced(url, paced.webhooks, rate, senders=max(16, senders * 2))
            result["paced"] = figures_of(answers, time.monotonic() - started)
            result["paced"]["rate"] = rate
        finally:
            service.stop()
        result["floor_per_s"] = measure_floor(amqp_url, messages=result["webhooks"] * LINES_PER_ORDER, threads=senders)
    result["lines_per_s"] = result["webhooks_per_s"] * LINES_PER_ORDER
    return result


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


def ratio_line(minimal: dict[str, Any], ingest: dict[str, Any]) -> str:
    """ingest's rate against the minimal app's: information, not a target."""
    ratio = ingest["webhooks_per_s"] / minimal["webhooks_per_s"]
    return (f"  ingest / minimal app: ratio {ratio:.2f} ({ingest['webhooks_per_s']:.0f} / "
            f"{minimal['webhooks_per_s']:.0f} webhooks/s); information only: the {RETIRED_RATIO:g} target is retired")


def targets(minimal: dict[str, Any], ingest: dict[str, Any]) -> list[tuple[str, bool, str]]:
    paced = ingest["paced"]
    return [
        (f"p99 under {TARGET_P99_SECONDS * 1000:.0f} ms at half of ingest's own maximum rate",
         paced["p99"] is not None and paced["p99"] < TARGET_P99_SECONDS,
         f"p99 {paced['p99'] * 1000:.1f} ms at {paced['rate']:.0f} webhooks/s "
         f"(ratio to the limit {paced['p99'] / TARGET_P99_SECONDS:.2f})"),
    ]


def cpu_lines(minimal: dict[str, Any], ingest: dict[str, Any], ratio: float) -> list[str]:
    """Where a webhook's CPU goes, and how many CPUs the retired ratio target would need at these costs."""
    def parts(cpu: dict[str, float]) -> str:
        return (f"receiver {cpu['receiver']:.2f}, PostgreSQL {cpu['postgresql']:.2f}, "
                f"RabbitMQ {cpu['rabbitmq']:.2f}, senders {cpu['senders']:.2f}: {sum(cpu.values()):.2f} ms")

    m, i = minimal["cpu_ms"], ingest["cpu_ms"]
    wanted = ratio * minimal["webhooks_per_s"]
    least = m["receiver"] + m["senders"] + i["postgresql"] + i["rabbitmq"]  # ingest's own work free
    return [
        f"  CPU per webhook, minimal app: {parts(m)}",
        f"  CPU per webhook, ingest:      {parts(i)}",
        f"  {ratio:g} × the minimal app is {wanted:.0f} webhooks/s: {wanted * sum(i.values()) / 1000:.2f} CPUs at "
        f"ingest's costs; {wanted * least / 1000:.2f} CPUs even if ingest's own work cost no more than the minimal "
        f"app's (this machine has {os.cpu_count()})",
    ]


def run(orders: int = ORDERS, senders: int = 8) -> dict[str, Any]:
    install_cleanup()
    log_dir = log_directory("bench-ingest")
    load_before = os.getloadavg()
    minimal = measure_minimal(orders, senders, log_dir)
    ingest = measure_ingest(orders, senders, log_dir)
    return {"minimal": minimal, "ingest": ingest, "targets": targets(minimal, ingest),
            "load_average": (load_before[0], os.getloadavg()[0]), "log_dir": str(log_dir)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=ORDERS)
    parser.add_argument("--senders", type=int, default=8)
    args = parser.parse_args()
    r = run(args.orders, args.senders)
    m, i, p = r["minimal"], r["ingest"], r["ingest"]["paced"]
    print(f"ingest: {i['webhooks']} signed order webhooks ({LINES_PER_ORDER} supplier lines each), "
          f"{args.senders} senders, {os.cpu_count()} CPUs, 1-minute load average "
          f"{r['load_average'][0]:.1f} before, {r['load_average'][1]:.1f} after")
    print(f"  minimal app    {m['webhooks_per_s']:8.1f} webhooks/s  answer p50 {m['p50'] * 1000:.1f} ms, "
          f"p99 {m['p99'] * 1000:.1f} ms  (HMAC + JSON + 200 on ingest's server and settings; {m['ok']} answered 200)")
    print(f"  ingest         {i['webhooks_per_s']:8.1f} webhooks/s  answer p50 {i['p50'] * 1000:.1f} ms, "
          f"p99 {i['p99'] * 1000:.1f} ms  {i['lines_per_s']:.0f} confirmed messages/s  ({i['ok']} answered 200)")
    print(f"  ingest paced   {p['rate']:8.1f} webhooks/s  answer p50 {p['p50'] * 1000:.1f} ms, "
          f"p99 {p['p99'] * 1000:.1f} ms  (half its maximum, open loop, {p['webhooks']} webhooks; {p['ok']} answered 200)")
    print(f"  floor (pika)   {i['floor_per_s']:8.1f} confirmed messages/s from {args.senders} connections, same broker "
          f"(ingest's messages/s are {i['lines_per_s'] / i['floor_per_s']:.0%} of it)")
    print(ratio_line(m, i))
    for line in cpu_lines(m, i, RETIRED_RATIO):
        print(line)
    failed = m["ok"] != m["webhooks"] or i["ok"] != i["webhooks"] or p["ok"] != p["webhooks"]
    for name, met, value in r["targets"]:
        print(f"{'PASS' if met else 'FAIL'}  {name}: {value}")
        failed |= not met
    print(f"logs in {r['log_dir']}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
