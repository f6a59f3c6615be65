"""What waits for a person, read from the store and the broker: the gauges an operator alerts on.

Counted once for the whole system (not per process), so any number of workers
serving them report the same values and the alert rules take `max`:
- dead letters waiting: rows of the operators' table not replayed, plus
  messages still in the `.dead` queues (not drained into the table yet);
- lines the supplier could not lock in full, and how long the oldest has been so;
- paid orders whose supplier order has not been created yet (those held by
  `backfill` for the owner to decide are counted apart: shared/orders/send_holds.py);
- poll lag: how far past its due time the most overdue open supplier order is.

`rewix-sync status` shows the same numbers (`read_backlog`).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from shared.db import get_engine
from shared.messaging import topology
from shared.observability.logging import get_logger
from shared.orders.vocabulary import READY_TO_SEND, LineState

log = get_logger(__name__)

_COUNTS = f"""
SELECT
  (SELECT count(*) FROM order_lines l JOIN shop_orders o ON o.id = l.order_id
    WHERE l.sync_status = '{LineState.SHORT}' AND NOT l.removed AND NOT o.deleted) AS lines_short,
  (SELECT coalesce(extract(epoch FROM now() - min(l.updated_at)), 0)
     FROM order_lines l JOIN shop_orders o ON o.id = l.order_id
    WHERE l.sync_status = '{LineState.SHORT}' AND NOT l.removed AND NOT o.deleted) AS oldest_short_seconds,
  w.orders_waiting, w.oldest_waiting_seconds,
  (SELECT coalesce(greatest(0, extract(epoch FROM now() - min(next_poll_at))), 0)
     FROM supplier_orders WHERE NOT final) AS poll_lag_seconds,
  (SELECT count(*) FROM send_holds h JOIN shop_orders o ON o.id = h.order_id
    WHERE o.status = 'processing' AND NOT o.deleted
      AND NOT EXISTS (SELECT 1 FROM supplier_orders s WHERE s.shop_order_id = o.id)) AS orders_held
FROM (
  SELECT count(*) AS orders_waiting,
         coalesce(extract(epoch FROM now() - min(o.updated_at)), 0) AS oldest_waiting_seconds
  FROM shop_orders o
  WHERE o.status = '{READY_TO_SEND}' AND NOT o.deleted
    AND NOT EXISTS (SELECT 1 FROM supplier_orders s WHERE s.shop_order_id = o.id)
    AND NOT EXISTS (SELECT 1 FROM send_holds h WHERE h.order_id = o.id)
    AND EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id AND NOT l.removed AND l.quantity > 0)
) w
"""
_DEAD_IN_TABLE = "SELECT queue, count(*) FROM dead_letters WHERE replayed_at IS NULL GROUP BY queue"


@dataclass(frozen=True)
class Backlog:
    lines_short: int
    oldest_short_seconds: float
    orders_waiting_to_be_sent: int
    poll_lag_seconds: float
    # since the last change of the paid order waiting longest
    oldest_waiting_seconds: float = 0.0
    # queue -> count, in the operators' table and still in the broker's dead-letter queue
    dead_in_table: dict[str, int] = field(default_factory=dict)
    dead_in_queue: dict[str, int] | None = None  # None: the broker did not answer
    # paid orders locked but held from sending until the owner decides (backfill without --send-paid)
    orders_held: int = 0

    @property
    def dead_letters_waiting(self) -> int:
        return sum(self.dead_in_table.values()) + sum((self.dead_in_queue or {}).values())


def read_backlog(database_url: str, amqp_url: str | None = None) -> Backlog:
    """One look at the store (and the broker's dead-letter queues when `amqp_url` is given)."""
    with get_engine(database_url).connect() as connection:
        row = connection.execute(text(_COUNTS)).one()
        dead_in_table = {queue: int(n) for queue, n in connection.execute(text(_DEAD_IN_TABLE))}
    dead_in_queue = _dead_queue_depths(amqp_url) if amqp_url else None
    return Backlog(
        lines_short=int(row.lines_short),
        oldest_short_seconds=float(row.oldest_short_seconds),
        orders_waiting_to_be_sent=int(row.orders_waiting),
        poll_lag_seconds=float(row.poll_lag_seconds),
        oldest_waiting_seconds=float(row.oldest_waiting_seconds),
        dead_in_table=dead_in_table,
        dead_in_queue=dead_in_queue,
        orders_held=int(row.orders_held),
    )


def _dead_queue_depths(amqp_url: str) -> dict[str, int] | None:
    # Imported here: reading the store alone must not need pika's connection machinery.
    from shared.messaging.amqp import connect

    try:
        connection = connect(amqp_url, connect_timeout=2.0)
    except Exception as exc:  # the broker's readiness is reported on its own; keep the store's numbers
        log.warning("dead-letter queues not counted: broker unreachable", error=str(exc)[:200])
        return None
    try:
        depths = {}
        for queue in topology.WORK_QUEUES:
            channel = connection.channel()
            try:
                depths[queue.name] = channel.queue_declare(queue.dead, passive=True).method.message_count
            except Exception:  # not declared yet: nothing has been dead-lettered into it
                depths[queue.name] = 0
        return depths
    finally:
        try:
            connection.close()
        except Exception:
            pass


class BacklogCollector(Collector):
    """Serves the backlog as gauges; reads at most every `ttl` seconds (scrapes can be frequent)."""

    def __init__(self, database_url: str, amqp_url: str | None = None, ttl: float = 10.0) -> None:
        self.database_url = database_url
        self.amqp_url = amqp_url
        self.ttl = ttl
        self._lock = threading.Lock()
        self._read_at = 0.0
        self._backlog: Backlog | None = None

    def _current(self) -> Backlog | None:
        with self._lock:
            if self._backlog is None or time.monotonic() - self._read_at >= self.ttl:
                try:
                    self._backlog = read_backlog(self.database_url, self.amqp_url)
                except Exception as exc:  # database down: /readyz says so; serve no stale numbers
                    log.warning("backlog not read", error=str(exc)[:200])
                    self._backlog = None
                self._read_at = time.monotonic()
            return self._backlog

    def collect(self) -> Iterator[GaugeMetricFamily]:
        backlog = self._current()
        if backlog is None:
            return
        dead = GaugeMetricFamily(
            "rewix_dead_letters_waiting",
            "Dead letters waiting for an operator, by work queue and place (table: drained, not replayed; "
            "queue: still in the broker's dead-letter queue).",
            labels=["queue", "place"],
        )
        for queue in topology.WORK_QUEUES:
            dead.add_metric([queue.name, "table"], backlog.dead_in_table.get(queue.name, 0))
            if backlog.dead_in_queue is not None:
                dead.add_metric([queue.name, "queue"], backlog.dead_in_queue.get(queue.name, 0))
        yield dead
        yield GaugeMetricFamily("rewix_lines_short", "Order lines the supplier could not lock in full.",
                                value=backlog.lines_short)
        yield GaugeMetricFamily("rewix_short_line_oldest_age_seconds",
                                "How long the oldest short line has been short (0 when none is).",
                                value=backlog.oldest_short_seconds)
        yield GaugeMetricFamily("rewix_orders_waiting_to_be_sent",
                                "Paid shop orders with supplier lines whose supplier order is not created yet.",
                                value=backlog.orders_waiting_to_be_sent)
        yield GaugeMetricFamily("rewix_poll_lag_seconds",
                                "How far past its due time the most overdue open supplier order is.",
                                value=backlog.poll_lag_seconds)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Registration must not query the database: an empty description is allowed for custom collectors.
        return iter(())
