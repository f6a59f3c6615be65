"""One rush: orders arriving open-loop at a steady rate, as WooCommerce delivers them, against a throttled supplier.

Its own database, vhost, supplier simulator (latency and rate limit), ingest
and worker (supplier_sync, or the naive baseline), as bench/pipeline_run.py
builds them. Each order is posted as the shop posts it: `order.created` and
`order.updated` together when it is made, then, PAY_DELAY seconds later,
another `order.updated` when it is paid (or cancelled); some stay pending.
While it runs, the lock backlog and the supplier's orders are sampled every
second; after it, the send backlog is left to drain (supplier_sync only: the
naive worker sends nothing).
"""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from bench.burst import SHOP_URL, WEBHOOK_SECRET, Burst, catalog
from bench.common import Service, percentile, scratch_database, scratch_vhost, service_env, start_rewix_simulator, wait_until
from bench.pipeline_result import lock_stamps
from bench.pipeline_run import API_KEY, AVAILABILITY, PASSWORD, WORKERS, prepare_database
from bench.pipeline_watch import consumers
from bench.receiver_process import start_receiver
from bench.webhook_load import _Sender
from shared.clients.shop.signature import sign
from shared.db import normalise_url
from simulators.rewix.control import SimulatorControl
from simulators.shop.orders import _set_date, make_order
from simulators.shop.php_json import wp_json_encode

LINES_PER_ORDER = 3
PAY_DELAY = 3.0  # seconds from an order's creation to its payment (or cancellation)
PAID, CANCELLED = 0.60, 0.15  # the rest stay pending
SENDERS = 24  # sender threads: enough that a slow answer does not delay the schedule
SAMPLE_EVERY = 1.0
# supplier_sync's SUPPLIER_REQUESTS_PER_SECOND as a share of the supplier's limit: "a little under it", as
# the setting is documented. Slots are spaced at take time; a request held up between its slot and the
# wire (a busy CPU) lands in the next second beside the next one, and at exactly the limit that second
# would count one more than the limit.
BUDGET_SHARE = 0.9


@dataclass(frozen=True)
class RushSpec:
    worker: str  # "supplier_sync" or "naive"
    rate: float  # orders per second
    seconds: float
    latency_ms: int
    limit: float  # the supplier's requests/s (429 above it); supplier_sync's budget is BUDGET_SHARE of it
    models: int
    seed: int
    log_dir: Path
    drain: bool  # wait for the send backlog to drain after the rush


@dataclass
class Order:
    order_id: int
    fate: str  # "paid", "cancelled", "pending"
    lines: dict[int, tuple[int, int]]  # line_id -> (stock_id, quantity)
    created: bytes
    later: bytes | None  # the paid or cancelled state


@dataclass
class RushResult:
    spec: RushSpec
    orders: int = 0
    lines: int = 0
    answered_non_200: int = 0
    late_start_p99: float | None = None  # how late the sender posted behind the schedule
    lock_latencies: list[float] = field(default_factory=list)
    backlog: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, lines waiting for a lock)
    sent: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, supplier orders)
    per_second: dict[int, int] = field(default_factory=dict)  # unix second -> supplier requests
    calls: dict[str, int] = field(default_factory=dict)
    rejected_429: int = 0
    paid_orders: int = 0
    sent_orders: int = 0  # supplier orders at the end
    started_at: float = 0.0  # time.time() the first order was due
    rush_end: float = 0.0  # seconds since start when the last webhook was due
    drained_at: float | None = None  # seconds since start when the last paid order was sent
    exact: bool | None = None
    exact_detail: str = ""
    problems: list[str] = field(default_factory=list)


def make_orders(spec: RushSpec) -> list[Order]:
    rng = random.Random(spec.seed)
    pool = catalog(spec.models)
    orders = []
    for order_id in range(1, int(spec.rate * spec.seconds) + 1):
        chosen = rng.sample(pool, LINES_PER_ORDER)
        quantities = [rng.randint(1, 3) for _ in chosen]
        body = make_order(order_id, status="pending", lines=[
            {"product_id": m.product_id, "variation_id": m.variation_id, "quantity": q, "sku": f"BENCH-{m.stock_id}",
             "name": f"Bench product {m.product_id} - {m.variation_id}", "price": "29.90"}
            for m, q in zip(chosen, quantities)
        ])
        lines = {item["id"]: (m.stock_id, q) for item, m, q in zip(body["line_items"], chosen, quantities)}
        draw = rng.random()
        fate = "paid" if draw < PAID else "cancelled" if draw < PAID + CANCELLED else "pending"
        later = None
        if fate != "pending":
            changed = dict(body, status="processing" if fate == "paid" else "cancelled")
            modified = datetime.fromisoformat(body["date_modified_gmt"]) + timedelta(seconds=PAY_DELAY)
            _set_date(changed, "date_modified", modified)
            if fate == "paid":
                _set_date(changed, "date_paid", modified)
            later = wp_json_encode(changed)
        orders.append(Order(order_id, fate, lines, wp_json_encode(body), later))
    return orders


def run_rush(spec: RushSpec) -> RushResult:
    result = RushResult(spec)
    orders = make_orders(spec)
    result.orders, result.lines = len(orders), sum(len(o.lines) for o in orders)
    result.paid_orders = sum(o.fate == "paid" for o in orders)
    spec.log_dir.mkdir(parents=True, exist_ok=True)
    lock_log = spec.log_dir / "locks.txt"
    with ExitStack() as stack:
        database_url = stack.enter_context(scratch_database("bench_rush"))
        amqp_url = stack.enter_context(scratch_vhost("bench_rush"))
        engine = create_engine(normalise_url(database_url))
        stack.callback(engine.dispose)
        models = catalog(spec.models)
        prepare_database(engine, Burst(models, [], {}, {}))

        simulator, simulator_url = start_rewix_simulator(spec.log_dir, API_KEY, PASSWORD)
        stack.callback(simulator.stop)
        control = SimulatorControl(simulator_url)
        stack.callback(control.close)
        control.seed_catalog([{"stock_id": m.stock_id, "product_id": m.product_id, "code": f"BENCH-{m.stock_id}",
                               "barcode": f"80{m.stock_id:011d}", "availability": AVAILABILITY} for m in models])
        control.faults(latency_ms=spec.latency_ms, rate_limit={"per_second": spec.limit, "retry_after": 1})

        common = dict(DATABASE_URL=database_url, AMQP_URL=amqp_url, SYNC_RETRY_DELAYS="1,2,4,8,16,30,60,120", LOG_LEVEL="INFO")
        ingest, ingest_url = start_receiver("ingest", "services.ingest", spec.log_dir,
                                            **common, WC_WEBHOOK_SECRET=WEBHOOK_SECRET, WC_URL=SHOP_URL)
        stack.callback(ingest.stop)
        worker = Service(
            spec.worker, WORKERS[spec.worker],
            service_env(**common, REWIX_API_URL=simulator_url, REWIX_API_KEY=API_KEY, REWIX_API_PASSWORD=PASSWORD,
                        SUPPLIER_REQUESTS_PER_SECOND=f"{spec.limit * BUDGET_SHARE:g}", BENCH_LOCK_LOG=str(lock_log)),
            spec.log_dir,
        )
        stack.callback(worker.stop)
        wait_until(lambda: consumers(amqp_url) > 0, timeout=30, interval=0.1, what=f"{spec.worker} consuming")

        created_at: dict[int, float] = {}
        started = result.started_at = time.time() + 0.5
        sampler = _Sampler(engine, control, lock_log, spec.worker, created_at, orders, started)
        sampler.start()
        stack.callback(sampler.halt.set)
        lates = _post_all(ingest_url, orders, spec.rate, started, created_at, result)
        result.late_start_p99 = percentile(lates, 99)
        result.rush_end = max(0.0, (len(orders) - 1) / spec.rate + PAY_DELAY)
        if spec.drain:
            # Two requests a send at the leftover pace, and a generous margin: the figure is when it drained.
            timeout = result.paid_orders * 2 / spec.limit * 2 + 120
            try:
                wait_until(lambda: _sent_count(control) >= result.paid_orders, timeout=timeout, interval=1.0,
                           what="the send backlog drained")
                result.drained_at = time.time() - started
            except Exception as exc:
                result.problems.append(f"send backlog not drained: {exc}")
        else:
            time.sleep(2 * SAMPLE_EVERY)
        sampler.halt.set()
        sampler.join(timeout=10)
        result.backlog, result.sent = sampler.backlog, sampler.sent

        state = control.state()
        result.calls = {k: int(v) for k, v in state["calls"].items()}
        result.rejected_429 = int(state["rejected_429"])
        result.sent_orders = len(state["orders"])
        result.per_second = {int(s): int(n) for s, n in state["requests_per_second"].items()}
        stamps = lock_stamps(engine, lock_log, spec.worker)
        for order in orders:
            if order.order_id not in created_at:
                continue
            for line_id in order.lines:
                stamp = stamps.get((order.order_id, line_id))
                if stamp is not None:
                    result.lock_latencies.append(stamp.at - created_at[order.order_id])
        if spec.drain:
            _judge_end_state(result, orders, state)
    return result


def _post_all(url: str, orders: list[Order], rate: float, started: float, created_at: dict[int, float],
              result: RushResult) -> list[float]:
    """Post every order's deliveries on schedule from a pool of senders; returns how late each was posted."""
    jobs: list[tuple[float, int, str, bytes]] = []
    for n, order in enumerate(orders):
        due = started + n / rate
        jobs.append((due, order.order_id, "order.created", order.created))
        jobs.append((due, order.order_id, "order.updated", order.created))
        if order.later is not None:
            jobs.append((due + PAY_DELAY, order.order_id, "order.updated", order.later))
    jobs.sort(key=lambda job: job[0])
    local = threading.local()
    lock = threading.Lock()
    lates: list[float] = []
    todo = iter(jobs)

    def sender_loop() -> None:
        senders: dict[str, _Sender] = {}
        local.senders = senders
        try:
            while True:
                with lock:
                    job = next(todo, None)
                if job is None:
                    return
                due, order_id, topic, body = job
                delay = due - time.time()
                if delay > 0:
                    time.sleep(delay)
                sender = senders.setdefault(topic, _Sender(url, topic))
                began = time.time()
                webhook = (order_id, body, sign(body, WEBHOOK_SECRET))
                status, _ = sender.post(webhook)
                if status == 0:
                    # A keep-alive connection the server closed while this sender waited for its next
                    # due time: WooCommerce would deliver again, and so does the sender, at once.
                    status, _ = sender.post(webhook)
                with lock:
                    lates.append(began - due)
                    if status != 200:
                        result.answered_non_200 += 1
                    elif topic == "order.created":
                        created_at.setdefault(order_id, time.time())
        finally:
            for sender in senders.values():
                sender.close()

    with ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="rush-sender") as pool:
        for future in [pool.submit(sender_loop) for _ in range(SENDERS)]:
            future.result()
    return lates


def _sent_count(control: SimulatorControl) -> int:
    return len(control.state()["orders"])


class _Sampler(threading.Thread):
    """Every second: the lines waiting for a lock (delivered, not locked yet) and the supplier's orders."""

    def __init__(self, engine: Any, control: SimulatorControl, lock_log: Path, worker: str,
                 created_at: dict[int, float], orders: list[Order], started: float) -> None:
        super().__init__(daemon=True, name="rush-sampler")
        self.engine, self.control, self.lock_log, self.worker = engine, control, lock_log, worker
        self.created_at, self.started = created_at, started
        self.lines_of = {o.order_id: len(o.lines) for o in orders}
        self.halt = threading.Event()
        self.backlog: list[tuple[float, int]] = []
        self.sent: list[tuple[float, int]] = []

    def run(self) -> None:
        while not self.halt.wait(SAMPLE_EVERY):
            try:
                now = time.time() - self.started
                delivered = sum(self.lines_of[o] for o in list(self.created_at))
                locked = len(lock_stamps(self.engine, self.lock_log, self.worker))
                self.backlog.append((now, max(0, delivered - locked)))
                self.sent.append((now, _sent_count(self.control)))
            except Exception:  # a sample missed is a gap in the curve, not a failed run
                continue


def _judge_end_state(result: RushResult, orders: list[Order], state: dict[str, Any]) -> None:
    """Every paid order sent once, nothing else sent, and the growing order holding what the unsent orders need."""
    keys = Counter(str(o["key"]) for o in state["orders"])
    paid = {str(o.order_id) for o in orders if o.fate == "paid"}
    doubled = sorted(k for k, n in keys.items() if n > 1)
    missing = sorted(paid - set(keys), key=int)
    extra = sorted(set(keys) - paid)
    needed: Counter[int] = Counter()
    for order in orders:
        if order.fate == "pending":
            for stock_id, quantity in order.lines.values():
                needed[stock_id] += quantity
    held = {int(s): int(q) for s, q in state["growing_order"]["models"].items() if int(q) > 0}
    wrong_locks = {s: (held.get(s, 0), needed.get(s, 0)) for s in set(held) | set(needed) if held.get(s, 0) != needed.get(s, 0)}
    result.exact = not (doubled or missing or extra or wrong_locks)
    parts = []
    if doubled:
        parts.append(f"{len(doubled)} sent twice")
    if missing:
        parts.append(f"{len(missing)} paid orders not sent (first: {missing[:5]})")
    if extra:
        parts.append(f"{len(extra)} unpaid orders sent")
    if wrong_locks:
        parts.append(f"{len(wrong_locks)} models held wrong (held, needed): {dict(list(wrong_locks.items())[:5])}")
    result.exact_detail = "; ".join(parts) or (
        f"{len(keys)} paid orders sent once each, locks equal to the {sum(o.fate == 'pending' for o in orders)} "
        f"pending orders' needs")
