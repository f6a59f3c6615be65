"""The worker threads that ask the supplier about each leased row, paced by the budget.

Each worker waits until its row is due and for a budget slot, asks the supplier,
and hands back an Observation; the poller's main thread settles them in the
order they finish.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from shared.clients.rewix import RewixClient
from shared.failures import retry
from shared.failures.errors import ExternalError
from shared.observability.logging import get_logger
from services.status_poller.budget import RequestBudget
from services.status_poller.changes import Observation
from services.status_poller.store import Lease

log = get_logger(__name__)


class SupplierAsker:
    """Polls leased rows on a thread pool; `lookahead` is how late a poll may still be."""

    def __init__(self, client: RewixClient, budget: RequestBudget, *, lookahead: float, concurrency: int) -> None:
        self.client = client
        self.budget = budget
        self.lookahead = lookahead
        self.concurrency = concurrency
        # Set by the first refused account of a batch; the rest of the batch is handed back unasked.
        self.refused: retry.Paused | None = None

    def observations(
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
                        observation = self.poll_one(lease, stop, offset)
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

    def poll_one(self, lease: Lease, stop: threading.Event, offset: timedelta) -> Observation:
        """Runs in a worker: wait until due and for a budget slot, then ask the supplier."""
        now = datetime.now(timezone.utc) + offset
        due_in = (lease.planned - now).total_seconds()
        # Past this the lease no longer protects the row from another replica.
        deadline = time.monotonic() + due_in + self.lookahead
        if due_in > 0 and stop.wait(due_in):
            return Observation(lease)
        if not self.budget.acquire(stop, deadline):
            return Observation(lease)
        if self.refused is not None:
            return Observation(lease)  # the account is refused: asking again tells nothing new
        try:
            if lease.supplier_order_id:
                status = self.client.get_order(lease.supplier_order_id)
            else:
                status = self.client.find_order_by_key(lease.key)
        except Exception as exc:  # what it means is the failure policy's to say; a bug must not stop the others
            return self._failed(lease, offset, exc)
        self.budget.answered()
        if status is None:
            return Observation(
                lease, _db_now(offset), error=f"the supplier knows no order {lease.supplier_order_id or lease.key}",
                requested=True,
            )
        return Observation(lease, _db_now(offset), status=status, requested=True)

    def _failed(self, lease: Lease, offset: timedelta, exc: Exception) -> Observation:
        """The observation of a poll that failed, as the failure policy (shared/failures/retry.py) reads the error."""
        outcome = retry.outcome_of(exc)
        if isinstance(outcome, retry.Paused):
            # Not this order's fault: hand the row back unpolled; the poller pauses.
            self.budget.answered()
            self.refused = outcome
            return Observation(lease)
        if isinstance(outcome, retry.RetryLater) and outcome.kind == retry.RATE_LIMITED:
            self.budget.throttled(outcome.retry_after)
            return Observation(lease, requested=True, throttled=True, retry_after=outcome.retry_after)
        if isinstance(outcome, retry.DeadLetter):
            self.budget.answered()  # refused, but answered: the pace may recover
        # The row keeps the supplier's reason; anything but the supplier's failure is a bug of ours.
        error = exc.reason if isinstance(exc, ExternalError) else f"unexpected error: {exc!r}"[:500]
        return Observation(lease, _db_now(offset), error=error, requested=True)


def _db_now(offset: timedelta) -> datetime:
    return datetime.now(timezone.utc) + offset
