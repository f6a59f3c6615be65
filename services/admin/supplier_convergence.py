"""How `rewix-sync reconcile --apply` gets the supplier right: supplier_sync sets it, the admin asks and waits.

supplier_sync is the one writer of the growing order
(services/supplier_sync/handler.py): it alone pauses on a refused account,
retries on the schedule, dead-letters what the supplier refuses, and holds
the per-model locks while it sets. The admin never changes the supplier
itself. To get models set it

1. marks them "supplier state not known" (shared/reservations/repository.py,
   `forget_supplier_state`), committed, under the per-model advisory locks
   supplier_sync takes: a convergence in progress finishes first, and
   whichever convergence takes a model next sets it to what the records need,
   whatever stock_locks said of it;
2. publishes a convergence request naming them on the order-lines queue
   (shared/messaging/messages.py, ConvergeMessage), so a convergence comes even when no
   order message would bring one;
3. waits until every marked model's row is known again: only a convergence
   that took the model's lock after the mark can write it, and it read the
   records as they were then.

Orders are brought to the shop's state before any of this, through
OrderIntake (services/admin/backfill.py, `submit_one`), and waited for until
supplier_sync has recorded them (`not_recorded`), so the models are marked
once the records already say what the shop says.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, text

from shared.db import session_scope
from shared.messaging import topology
from shared.messaging.amqp import Publisher, consumer_count
from shared.messaging.messages import MAX_CONVERGE_STOCK_IDS, ConvergeMessage
from shared.observability.logging import get_logger
from shared.reservations import repository

log = get_logger(__name__)

# How long reconcile --apply waits for supplier_sync at the most, all steps together.
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.25


class NotConsuming(RuntimeError):
    """Nothing consumes the order-lines queue: supplier_sync is not running (or paused)."""


def require_supplier_sync(amqp_url: str) -> int:
    """How many supplier_sync workers consume the order-lines queue; raises NotConsuming for none."""
    workers = consumer_count(amqp_url, topology.ORDER_LINES.name)
    if not workers:
        raise NotConsuming(f"supplier_sync is not running: nothing consumes {topology.ORDER_LINES.name}")
    return workers


def ask(database_url: str, publisher: Publisher, stock_ids: Iterable[int]) -> list[str]:
    """Mark the models "not known" and ask supplier_sync to converge them; returns the requests' message ids."""
    ids = sorted(set(stock_ids))
    if not ids:
        return []
    with session_scope(database_url) as session:
        # The locks supplier_sync converges under, in its order: a convergence holding one ends first.
        repository.lock(session, ids)
        repository.forget_supplier_state(session, ids)
    requests = [ConvergeMessage(stock_ids=ids[start:start + MAX_CONVERGE_STOCK_IDS])
                for start in range(0, len(ids), MAX_CONVERGE_STOCK_IDS)]
    for request in requests:
        publisher.publish(request.to_bytes(), routing_key=topology.ORDER_LINE, message_id=request.message_id)
        log.info("convergence asked of supplier_sync", message_id=request.message_id, models=len(request.stock_ids))
    return [request.message_id for request in requests]


_NOT_KNOWN = text("SELECT stock_id FROM stock_locks WHERE stock_id IN :ids AND needed = :unknown").bindparams(
    bindparam("ids", expanding=True))
_SET_TO = text("SELECT stock_id, needed FROM stock_locks WHERE stock_id IN :ids AND needed <> :unknown").bindparams(
    bindparam("ids", expanding=True))


def not_known(database_url: str, stock_ids: Iterable[int]) -> set[int]:
    """The models no convergence has set since they were marked."""
    ids = sorted(set(stock_ids))
    if not ids:
        return set()
    with session_scope(database_url) as session:
        return set(session.scalars(_NOT_KNOWN, {"ids": ids, "unknown": repository.UNKNOWN_NEEDED}))


def set_to(database_url: str, stock_ids: Iterable[int]) -> dict[int, int]:
    """stock_id -> units supplier_sync last set the model to (what the records needed then)."""
    ids = sorted(set(stock_ids))
    if not ids:
        return {}
    with session_scope(database_url) as session:
        rows = session.execute(_SET_TO, {"ids": ids, "unknown": repository.UNKNOWN_NEEDED})
        return {int(stock_id): int(needed) for stock_id, needed in rows}


_RECORDED = text("SELECT id, date_modified_gmt, deleted FROM shop_orders WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True))


def not_recorded(database_url: str, submitted: Mapping[int, datetime | None]) -> set[int]:
    """The submitted orders whose state supplier_sync has not recorded yet.

    `submitted`: order_id -> the date_modified_gmt of the state published
    (None for a delete). A state counts as recorded once the records hold it
    or a newer one (which it then loses to).
    """
    if not submitted:
        return set()
    with session_scope(database_url) as session:
        rows = {int(r.id): r for r in session.execute(_RECORDED, {"ids": sorted(submitted)})}
    waiting = set()
    for order_id, date in submitted.items():
        row = rows.get(order_id)
        if row is None:
            waiting.add(order_id)
        elif date is None:
            if not row.deleted:
                waiting.add(order_id)
        elif row.date_modified_gmt is None or row.date_modified_gmt < date:
            waiting.add(order_id)
    return waiting


def wait_for(
    remaining: Callable[[], set[int]],
    *,
    until: float,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> set[int]:
    """Look at `remaining()` every POLL_SECONDS until it is empty or the clock reaches `until`; what is left.

    `progress(left)` is called after every look.
    """
    while True:
        left = remaining()
        if progress is not None:
            progress(len(left))
        if not left or clock() >= until:
            return left
        sleep(max(0.0, min(POLL_SECONDS, until - clock())))


@dataclass(frozen=True)
class Converged:
    asked: list[int]  # the models supplier_sync was asked to set
    set_to: dict[int, int]  # of those, stock_id -> units it set the model to
    not_set: set[int]  # of those, the models it had not set when the wait ended


def converge(database_url: str, publisher: Publisher, stock_ids: Iterable[int], *, until: float,
             progress: Callable[[int, int], None] | None = None) -> Converged:
    """Ask supplier_sync to set these models and wait for it until `until` (time.monotonic);
    `progress(left, asked)` after every look."""
    ids = sorted(set(stock_ids))
    if not ids:
        return Converged([], {}, set())
    ask(database_url, publisher, ids)
    left = wait_for(lambda: not_known(database_url, ids), until=until,
                    progress=None if progress is None else (lambda n: progress(n, len(ids))))
    return Converged(ids, set_to(database_url, set(ids) - left), left)
