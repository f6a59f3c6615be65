"""One pipeline run: its own database, vhost and supplier simulator, a worker, and a burst fed to it.

The burst is fed either through ingest (signed webhooks from sender threads)
or straight onto the work queue (the order-line messages ingest would have
published, confirmed in batches), which shows the worker's own rate. The
peak memory of ingest and of the worker is sampled throughout (bench/memory.py).
"""
from __future__ import annotations

import json
import time
from contextlib import ExitStack
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.burst import SHOP_URL, WEBHOOK_SECRET, Burst
from bench.common import Service, scratch_database, scratch_vhost, service_env, start_rewix_simulator, wait_until
from bench.cpu_use import busy_share, cpu_by_process
from bench.db_waits import DatabaseWaits
from bench.memory import PeakMemory
from bench.pipeline_result import RunResult, RunSpec, lock_stamps, note_answers, note_latencies
from bench.pipeline_watch import ExactWatcher, consumers, difference, models_per_call, settle
from bench.receiver_process import start_receiver
from bench.webhook_load import Answer, send_burst
from shared.db import normalise_url
from shared.messaging import topology
from shared.messaging.amqp import Outgoing, Publisher
from shared.orders.events import convert
from shared.products.mapping import import_product_map
from simulators.rewix.control import SimulatorControl

API_KEY, PASSWORD = "bench-key", "bench-password"
RETRY_DELAYS = "1,2,4"
WORKERS = {"supplier_sync": "services.supplier_sync", "naive": "bench.naive_worker"}
AVAILABILITY = 1_000_000
QUEUE_FEED_BATCH = 100  # orders whose messages are published, then confirmed, together

# Stamps each order line the first time its sync_status becomes 'locked', with
# the wall-clock time of that statement and its transaction (= one convergence).
LOCK_STAMPS = [
    """
    CREATE TABLE bench_line_locked (
        order_id bigint NOT NULL, line_id bigint NOT NULL,
        locked_at timestamptz NOT NULL, tx bigint NOT NULL,
        PRIMARY KEY (order_id, line_id)
    )
    """,
    """
    CREATE FUNCTION bench_note_locked() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO bench_line_locked VALUES (NEW.order_id, NEW.line_id, clock_timestamp(), txid_current())
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER bench_note_locked AFTER UPDATE OF sync_status ON order_lines FOR EACH ROW
    WHEN (NEW.sync_status = 'locked' AND OLD.sync_status IS DISTINCT FROM 'locked')
    EXECUTE FUNCTION bench_note_locked()
    """,
]



def run_one(spec: RunSpec, result: RunResult) -> RunResult:
    """Measure one worker at one latency into `result`; figures taken before a failure stay in it."""
    burst = spec.burst
    spec.log_dir.mkdir(parents=True, exist_ok=True)
    lock_log = spec.log_dir / "locks.txt"
    memory: list[PeakMemory] = []
    with ExitStack() as stack:
        database_url = stack.enter_context(scratch_database("bench_pipeline"))
        amqp_url = stack.enter_context(scratch_vhost("bench_pipeline"))
        engine = create_engine(normalise_url(database_url))
        stack.callback(engine.dispose)
        prepare_database(engine, burst)

        simulator, simulator_url = start_rewix_simulator(spec.log_dir, API_KEY, PASSWORD)
        stack.callback(simulator.stop)
        control = SimulatorControl(simulator_url)
        stack.callback(control.close)
        control.seed_catalog(
            [
                {"stock_id": m.stock_id, "product_id": m.product_id, "code": f"BENCH-{m.stock_id}",
                 "barcode": f"80{m.stock_id:011d}", "availability": AVAILABILITY}
                for m in burst.models
            ]
        )
        control.faults(latency_ms=spec.latency_ms)

        # METRICS_PORT 0: no endpoints, so replicas on one machine do not contend for a port.
        common = dict(DATABASE_URL=database_url, AMQP_URL=amqp_url, SYNC_RETRY_DELAYS=RETRY_DELAYS, LOG_LEVEL="INFO",
                      METRICS_PORT="0")
        ingest_url = ingest = None
        if spec.feed == "webhooks":
            ingest, ingest_url = start_receiver("ingest", "services.ingest", spec.log_dir,
                                                **common, WC_WEBHOOK_SECRET=WEBHOOK_SECRET, WC_URL=SHOP_URL)
            stack.callback(ingest.stop)
            memory.append(watch_memory(stack, "ingest", ingest))

        workers = []
        for number in range(1, spec.replicas + 1):
            name = spec.worker if spec.replicas == 1 else f"{spec.worker}-{number}"
            worker = Service(
                name, WORKERS[spec.worker],
                service_env(**common, REWIX_API_URL=simulator_url, REWIX_API_KEY=API_KEY, REWIX_API_PASSWORD=PASSWORD,
                            BENCH_LOCK_LOG=str(lock_log)),
                spec.log_dir,
            )
            stack.callback(worker.stop)
            workers.append(worker)
            memory.append(watch_memory(stack, name, worker))
        wait_until(lambda: consumers(amqp_url) >= spec.replicas, timeout=30, interval=0.1,
                   what=f"{spec.replicas} {spec.worker} consuming")
        processes = {w.name: w.process.pid for w in workers}
        processes["supplier simulator"] = simulator.process.pid
        if ingest is not None:
            processes["ingest"] = ingest.process.pid

        watcher = ExactWatcher(simulator_url, burst.expected)
        watcher.start()
        stack.callback(watcher.halt.set)
        waits = DatabaseWaits(database_url)
        waits.start()
        stack.callback(waits.stop)
        cpu_before = cpu_by_process(processes)
        started = time.time()
        if ingest_url is not None:
            answers = send_burst(ingest_url, burst.webhooks, spec.senders)
        else:
            answers = feed_queue(amqp_url, burst)
        note_answers(result, answers, started)
        exact_in_time = watcher.exact.wait(timeout=spec.timeout)
        result.cpu = busy_share(cpu_before, cpu_by_process(processes), time.time() - started)
        result.db_backends = waits.stop()
        if not exact_in_time:
            result.problems.append(
                f"growing order not exact after {spec.timeout:.0f} s: {difference(burst.expected, watcher.last_locks)}"
            )
        if watcher.error:
            result.problems.append(f"watching the simulator failed: {watcher.error}")
        if watcher.exact_at is not None:
            result.seconds = watcher.exact_at - started
            result.lines_per_s = result.lines / result.seconds
        watcher.halt.set()

        settle(result, amqp_url, control, burst.expected, [int(d) for d in RETRY_DELAYS.split(",")])
        result.memory = {m.service: m.stop() for m in memory}
        calls = control.state()["calls"]
        result.supplier_calls = {k: int(v) for k, v in sorted(calls.items())}
        result.calls_per_line = calls.get("lock", 0) / result.lines
        result.models_per_call_mean = models_per_call(control)
        stamps = lock_stamps(engine, lock_log, spec.worker)
        note_latencies(result, burst, answers, stamps)
        result.exact = result.exact and watcher.exact_at is not None
    return result


def watch_memory(stack: ExitStack, name: str, service: Service) -> PeakMemory:
    sampler = PeakMemory(name, service.process.pid)
    sampler.start()
    stack.callback(sampler.stop)
    return sampler


def prepare_database(engine: Any, burst: Burst) -> None:
    with engine.begin() as connection:
        for statement in LOCK_STAMPS:
            connection.execute(text(statement))
    with Session(engine) as session, session.begin():
        import_product_map(session, burst.product_map())


def feed_queue(amqp_url: str, burst: Burst) -> list[Answer]:
    """Publish the messages ingest would publish for the burst; each order 'answered' once confirmed."""
    stock_ids = {(m.product_id, m.variation_id): m.stock_id for m in burst.models}

    def resolve(refs: list[Any]) -> dict[Any, int]:
        return {r: stock_ids[(r.product_id, r.variation_id)] for r in refs if (r.product_id, r.variation_id) in stock_ids}

    orders = [(order_id, convert(json.loads(body), "order.created", resolve).messages)
              for order_id, body, _signature in burst.webhooks]
    publisher = Publisher(amqp_url)
    answers: list[Answer] = []
    try:
        for first in range(0, len(orders), QUEUE_FEED_BATCH):
            batch = orders[first:first + QUEUE_FEED_BATCH]
            sent = time.time()
            publisher.publish_all([Outgoing(m.to_bytes(), topology.ORDER_LINE, m.message_id)
                                   for _order_id, messages in batch for m in messages])
            confirmed = time.time()
            answers += [Answer(order_id, sent, confirmed, 200, len(messages)) for order_id, messages in batch]
    finally:
        publisher.close()
    return answers
