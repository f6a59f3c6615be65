"""Polls the supplier for every open supplier order and emits each status change.

A cycle: size the work (how many orders are open), lease the rows due within
the next half interval, poll each no earlier than it is due and within the
request budget, publish a StatusChangeMessage for each change and, only after
RabbitMQ confirmed it, record the new status with the whole batch's results in
one statement.

Why several replicas never poll one order twice in an interval: a leased row's
next_poll_at moves to (its due time + 1.5 intervals), so no other replica can
lease it until a full interval after this replica's poll, which must happen
within half an interval of the due time or the row is handed back unpolled.
The write-back then sets next_poll_at to the poll's end + one interval.

This module runs the cycle; workers.py asks the supplier on worker threads,
changes.py decides what an answer means (pure), store.py leases and writes back.
"""
from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from shared.clients.rewix import RewixClient, status_name
from shared.db import get_engine
from shared.failures import account_pause
from shared.messaging import topology
from shared.messaging.amqp import BrokerUnavailable, Publisher, backoff_delays
from shared.observability import metrics
from shared.observability.health import HEALTH
from shared.observability.logging import bound_ids, get_logger
from services.status_poller import store
from services.status_poller.budget import RequestBudget, pace
from services.status_poller.changes import Observation, change_of, record_for
from services.status_poller.store import Lease, PollRecord
from services.status_poller.workers import SupplierAsker

log = get_logger(__name__)

# Worker threads asking the supplier at once (the budget spaces their requests).
DEFAULT_CONCURRENCY = 8
# Rows leased in one statement at the most; bounds the memory of a batch.
DEFAULT_MAX_LEASE = 5000
# Share of the lookahead a lease fills at the current pace.
LEASE_FILL = 0.8
# Longest sleep when nothing is due, so newly sent orders are polled soon.
MAX_IDLE = 5.0
# Shorter waits than this are left to the budget's own spacing.
MIN_SLEEP = 0.05
# Pause after leasing nothing although rows looked due (another replica holds them).
CONTENDED_PAUSE = 0.5
# The poll loop's name in /healthz.
LOOP = "status_poller.poll"


@dataclass
class PollStats:
    """Running totals, for logs and the benchmark."""

    requests: int = 0
    throttled: int = 0
    polled: int = 0
    changes: int = 0
    errors: int = 0
    batches: int = 0


def lease_size(per_second: float, lookahead: float, max_lease: int) -> int:
    """Rows one lease takes: what the pace polls in most of the lookahead, at least one.

    The rest of the lookahead is slack, so the last rows are not handed back
    unpolled for being a few milliseconds late.
    """
    return max(1, min(max_lease, math.ceil(per_second * lookahead * LEASE_FILL)))


class StatusPoller:
    def __init__(
        self,
        database_url: str,
        client: RewixClient,
        publisher: Publisher,
        *,
        interval: float,
        budget: RequestBudget,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_lease: int = DEFAULT_MAX_LEASE,
    ) -> None:
        self.engine = get_engine(database_url)
        self.client = client
        self.publisher = publisher
        self.interval = float(interval)
        self.lookahead = self.interval / 2.0
        self.budget = budget
        self.max_lease = max_lease
        self.concurrency = concurrency
        self.stats = PollStats()
        self.asker = SupplierAsker(client, budget, lookahead=self.lookahead, concurrency=concurrency)

    # --- the loop --------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop`; a failed cycle (database or broker down) is logged and retried."""
        log.info("status poller started", interval=self.interval, budget_per_second=self.budget.limit)
        # A batch may take up to the lookahead, a failed cycle waits 30 s at most.
        HEALTH.register_loop(LOOP, max_silence=max(120.0, 2 * self.interval))
        delays = backoff_delays(first=1.0, cap=30.0)
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="status-poll") as pool:
            while not stop.is_set():
                HEALTH.beat(LOOP)
                try:
                    wait = self.run_once(stop, pool)
                    delays = backoff_delays(first=1.0, cap=30.0)
                    if self.asker.refused is not None:
                        self._wait_until_accepted(stop)
                        wait = 0.0
                except Exception as exc:  # keep polling after a database or broker failure
                    wait = next(delays)
                    log.warning("poll cycle failed", error=repr(exc)[:300], retry_in=round(wait, 2))
                if wait > 0:
                    stop.wait(wait)
        HEALTH.retire_loop(LOOP)
        log.info("status poller stopped")

    def _wait_until_accepted(self, stop: threading.Event) -> None:
        """The supplier refuses the account: poll nothing until it accepts it again
        (shared/failures/account_pause.py)."""
        refused = self.asker.refused
        assert refused is not None

        def probe() -> object:
            HEALTH.beat(LOOP)  # paused on purpose, not stuck
            return self.client.get_growing_order()

        account_pause.wait_until_accepted(probe, stop, worker="status_poller", reason=refused.reason,
                                          account=refused.account)
        self.asker.refused = None

    def run_once(self, stop: threading.Event, pool: ThreadPoolExecutor) -> float:
        """One lease-poll-record round; returns how long to sleep before the next."""
        orders = store.open_orders(self.engine)
        # The database clock decides what is due; our clock only measures waits.
        offset = orders.db_now - datetime.now(timezone.utc)
        if orders.count == 0:
            return min(self.interval, MAX_IDLE)
        per_second = pace(self.budget.limit, orders.count, self.interval)
        self.budget.set_demand(per_second)
        assert orders.next_due is not None
        until_due = (orders.next_due - orders.db_now).total_seconds() - self.lookahead
        if until_due > 0:
            return min(until_due, MAX_IDLE)
        # Paused after a 429: lease nothing until the supplier takes requests again.
        until_free = self.budget.seconds_until_free()
        if until_free > MIN_SLEEP:
            return min(until_free, MAX_IDLE)
        leases = store.lease(
            self.engine,
            limit=lease_size(min(per_second, self.budget.rate), self.lookahead, self.max_lease),
            lookahead=self.lookahead,
            hold=self.interval + self.lookahead,
        )
        if not leases:
            return CONTENDED_PAUSE
        self._poll_batch(leases, stop, pool, offset)
        return 0.0

    # --- one batch -------------------------------------------------------------------

    def _poll_batch(
        self, leases: list[Lease], stop: threading.Event, pool: ThreadPoolExecutor, offset: timedelta
    ) -> None:
        started = time.monotonic()
        before = (self.stats.requests, self.stats.changes, self.stats.errors, self.stats.throttled)
        records: list[PollRecord] = []
        broker_down: str | None = None
        for observation in self.asker.observations(leases, stop, pool, offset):
            broker_down, record = self._settle(observation, broker_down, offset)
            records.append(record)
        store.write_back(self.engine, records)
        self.stats.batches += 1
        requests, changes, errors, throttled = (
            now - then
            for now, then in zip((self.stats.requests, self.stats.changes, self.stats.errors, self.stats.throttled), before)
        )
        # Quiet unless something happened: a batch per half interval is routine.
        report = log.info if (changes or errors or throttled) else log.debug
        report(
            "poll batch done",
            leased=len(leases),
            seconds=round(time.monotonic() - started, 3),
            requests=requests,
            changes=changes,
            errors=errors,
            throttled=throttled,
        )


    def _settle(
        self, observation: Observation, broker_down: str | None, offset: timedelta
    ) -> tuple[str | None, PollRecord]:
        """Main thread: publish a change (confirmed) and decide the row's write-back."""
        lease = observation.lease
        stats = self.stats
        stats.requests += observation.requested
        if observation.polled_at is None:
            stats.throttled += observation.throttled
            return broker_down, record_for(observation, interval=self.interval, published=False)
        stats.polled += 1
        HEALTH.beat(LOOP)
        if observation.error is not None:
            stats.errors += 1
            metrics.POLLS.labels(result="error").inc()
            with bound_ids(order_id=lease.shop_order_id):
                log.warning("status poll failed", key=lease.key, error=observation.error[:300])
            return broker_down, record_for(observation, interval=self.interval, published=False)
        assert observation.status is not None
        message = change_of(lease, observation.status, observation.polled_at)
        metrics.POLLS.labels(result="unchanged" if message is None else "changed").inc()
        if message is None:
            return broker_down, record_for(observation, interval=self.interval, published=False)
        publish_error = broker_down
        if publish_error is None:
            try:
                self.publisher.publish(
                    message.to_bytes(), routing_key=topology.STATUS_CHANGE, message_id=message.message_id
                )
            except BrokerUnavailable as exc:
                publish_error = broker_down = str(exc)[:300]
                log.warning("cannot announce status changes, will poll again", error=publish_error)
        if publish_error is None:
            stats.changes += 1
            with bound_ids(order_id=lease.shop_order_id, message_id=message.message_id):
                log.info(
                    "supplier status changed",
                    key=lease.key,
                    supplier_order_id=message.supplier_order_id,
                    old_status=message.old_status,
                    new_status=message.new_status,
                    status_name=status_name(message.new_status),
                )
        return broker_down, record_for(
            observation, interval=self.interval, published=publish_error is None,
            publish_error=publish_error,
        )


