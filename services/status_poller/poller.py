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
"""
from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from shared import topology
from shared.amqp import BrokerUnavailable, Publisher, backoff_delays
from shared.db import get_engine
from shared.errors import PermanentError, TransientError
from shared.logging import bound_ids, get_logger
from shared.messages import StatusChangeMessage
from shared.rewix import RewixClient, SupplierOrderStatus, is_final, status_name
from services.status_poller import store
from services.status_poller.budget import RequestBudget, pace
from services.status_poller.shop_updates import is_error
from services.status_poller.store import POLL_ERROR_PREFIX, Lease, PollRecord

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


@dataclass(frozen=True, slots=True)
class Observation:
    """The outcome of one leased row's poll."""

    lease: Lease
    polled_at: datetime | None = None  # database clock; None when no answer came (not polled)
    status: SupplierOrderStatus | None = None
    error: str | None = None
    requested: bool = False
    throttled: bool = False
    retry_after: float | None = None


@dataclass
class PollStats:
    """Running totals, for logs and the benchmark."""

    requests: int = 0
    throttled: int = 0
    polled: int = 0
    changes: int = 0
    errors: int = 0
    released: int = 0
    batches: int = 0


def tracking_changed(lease: Lease, status: SupplierOrderStatus) -> bool:
    """Tracking appeared (or changed): a new value where we recorded another or none."""
    pairs = (
        (status.tracking_code, lease.tracking_code),
        (status.tracking_url, lease.tracking_url),
        (status.carrier_name, lease.carrier_name),
    )
    return any(new and new != old for new, old in pairs)


def change_of(lease: Lease, status: SupplierOrderStatus, observed_at: datetime) -> StatusChangeMessage | None:
    """The status change to announce, or None. Pure.

    A status on record that has no history row yet (the status supplier_sync
    recorded when it sent the order, or one whose message never reached the
    applier) is announced too, so every status reaches the shop.
    """
    new_status = status.status != lease.status
    if not (new_status or not lease.announced or tracking_changed(lease, status)):
        return None
    return StatusChangeMessage(
        supplier_order_id=status.order_id or lease.supplier_order_id or 0,
        shop_order_id=lease.shop_order_id,
        order_key=lease.key,
        old_status=lease.status if new_status else None,
        new_status=status.status,
        tracking_code=status.tracking_code or lease.tracking_code,
        tracking_url=status.tracking_url or lease.tracking_url,
        carrier_name=status.carrier_name or lease.carrier_name,
        observed_at=observed_at,
    )


def record_for(
    observation: Observation,
    *,
    interval: float,
    published: bool,
    publish_error: str | None = None,
) -> PollRecord:
    """What to write back for one observation. Pure."""
    lease = observation.lease
    if observation.polled_at is None:
        # Not polled (a 429, the budget, a stop): handed back as due as it was, so it goes
        # first once the budget can serve again.
        return PollRecord(id=lease.id, next_poll_at=lease.planned)
    next_poll_at = observation.polled_at + timedelta(seconds=interval)
    if observation.error is not None:
        return PollRecord(
            id=lease.id,
            next_poll_at=next_poll_at,
            polled_at=observation.polled_at,
            error=(POLL_ERROR_PREFIX + observation.error)[:1000],
        )
    status = observation.status
    assert status is not None
    known_id = status.order_id or None
    if publish_error is not None:
        return PollRecord(
            id=lease.id,
            next_poll_at=next_poll_at,
            polled_at=observation.polled_at,
            supplier_order_id=known_id,
            error=f"{POLL_ERROR_PREFIX}status {status.status} not announced yet: {publish_error}"[:1000],
        )
    if not published:
        # Nothing changed: only the poll itself is recorded.
        return PollRecord(
            id=lease.id,
            next_poll_at=next_poll_at,
            polled_at=observation.polled_at,
            supplier_order_id=known_id,
            clear_error=True,
        )
    error = None
    if is_error(status.status):
        error = f"the supplier reports {status_name(status.status)} (status {status.status})"
    return PollRecord(
        id=lease.id,
        next_poll_at=next_poll_at,
        polled_at=observation.polled_at,
        recorded=True,
        status=status.status,
        substatus=status.substatus,
        tracking_code=status.tracking_code,
        tracking_url=status.tracking_url,
        carrier_name=status.carrier_name,
        final=is_final(status.status),
        supplier_order_id=known_id,
        error=error,
        clear_error=error is None,
    )


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

    # --- the loop --------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop`; a failed cycle (database or broker down) is logged and retried."""
        log.info("status poller started", interval=self.interval, budget_per_second=self.budget.limit)
        delays = backoff_delays(first=1.0, cap=30.0)
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="status-poll") as pool:
            while not stop.is_set():
                try:
                    wait = self.run_once(stop, pool)
                    delays = backoff_delays(first=1.0, cap=30.0)
                except Exception as exc:  # keep polling after a database or broker failure
                    wait = next(delays)
                    log.warning("poll cycle failed", error=repr(exc)[:300], retry_in=round(wait, 2))
                if wait > 0:
                    stop.wait(wait)
        log.info("status poller stopped")

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
        for observation in self._observations(leases, stop, pool, offset):
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

    def _observations(
        self, leases: list[Lease], stop: threading.Event, pool: ThreadPoolExecutor, offset: timedelta
    ) -> Iterator[Observation]:
        """Each lease's poll outcome, as the workers finish them.

        A fixed set of workers pulls leases from one list (no future per row),
        so a batch of thousands costs little more memory than its rows.
        """
        pending = iter(leases)
        take = threading.Lock()
        results: queue.SimpleQueue[Observation | None] = queue.SimpleQueue()

        def work() -> None:
            try:
                while True:
                    with take:
                        lease = next(pending, None)
                    if lease is None:
                        return
                    try:
                        observation = self._poll_one(lease, stop, offset)
                    except Exception as exc:  # a bug: hand the row back rather than lose it
                        log.error("poll worker failed", key=lease.key, error=repr(exc)[:300])
                        observation = Observation(lease)
                    results.put(observation)
            finally:
                results.put(None)

        workers = min(self.concurrency, len(leases))
        for _ in range(workers):
            pool.submit(work)
        finished = 0
        while finished < workers:
            observation = results.get()
            if observation is None:
                finished += 1
            else:
                yield observation

    def _poll_one(self, lease: Lease, stop: threading.Event, offset: timedelta) -> Observation:
        """Runs in a worker: wait until due and for a budget slot, then ask the supplier."""
        now = datetime.now(timezone.utc) + offset
        due_in = (lease.planned - now).total_seconds()
        # Past this the lease no longer protects the row from another replica.
        deadline = time.monotonic() + due_in + self.lookahead
        if due_in > 0 and stop.wait(due_in):
            return Observation(lease)
        if not self.budget.acquire(stop, deadline):
            return Observation(lease)
        try:
            if lease.supplier_order_id:
                status = self.client.get_order(lease.supplier_order_id)
            else:
                status = self.client.find_order_by_key(lease.key)
        except TransientError as exc:
            if exc.status == 429:
                self.budget.throttled(exc.retry_after)
                return Observation(lease, requested=True, throttled=True, retry_after=exc.retry_after)
            return Observation(lease, _db_now(offset), error=exc.reason, requested=True)
        except PermanentError as exc:
            self.budget.answered()
            return Observation(lease, _db_now(offset), error=exc.reason, requested=True)
        except Exception as exc:  # a bug must not stop the other orders' polls
            return Observation(lease, _db_now(offset), error=f"unexpected error: {exc!r}"[:500], requested=True)
        self.budget.answered()
        if status is None:
            return Observation(
                lease, _db_now(offset), error=f"the supplier knows no order {lease.supplier_order_id or lease.key}",
                requested=True,
            )
        return Observation(lease, _db_now(offset), status=status, requested=True)

    def _settle(
        self, observation: Observation, broker_down: str | None, offset: timedelta
    ) -> tuple[str | None, PollRecord]:
        """Main thread: publish a change (confirmed) and decide the row's write-back."""
        lease = observation.lease
        stats = self.stats
        stats.requests += observation.requested
        if observation.polled_at is None:
            stats.released += 1
            stats.throttled += observation.throttled
            return broker_down, record_for(observation, interval=self.interval, published=False)
        stats.polled += 1
        if observation.error is not None:
            stats.errors += 1
            with bound_ids(order_id=lease.shop_order_id):
                log.warning("status poll failed", key=lease.key, error=observation.error[:300])
            return broker_down, record_for(observation, interval=self.interval, published=False)
        assert observation.status is not None
        message = change_of(lease, observation.status, observation.polled_at)
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


def _db_now(offset: timedelta) -> datetime:
    return datetime.now(timezone.utc) + offset
