"""Notices the supplier orders that wait too long for the dropshipper's payment.

status_poller already follows every supplier order's status; this small loop
of its process looks, every so often, at those still Booked
(shared/orders/payment_waits.py). One waiting longer than SUPPLIER_PAYMENT_ALERT_MINUTES
is counted for the alert (shared/observability/metrics.py, `payment_waits`) and
gets one private note on its shop order, asked for once (shared/orders/notices.py
`tell_once`) and written by the problem notes loop (problem_notes.py). Once the
poller records that the supplier moved the order on (paid: Confirmed, Working
on...), the next pass no longer counts it; the note stays, it said something true.

Every replica may run it: the counts come from the store, and asking for a note
twice changes nothing.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy.orm import Session

from shared.db import get_engine
from shared.observability.logging import bound_ids, get_logger
from shared.observability.metrics import payment_waits
from shared.orders.notices import tell_once
from shared.orders.payment_waits import (
    NOTICE_KIND, alert_after_seconds, customers_waiting, note_text, overdue, utc_text, waiting_for_payment,
)
from services.status_poller.loop import run_loop

log = get_logger(__name__)

LOOP = "status_poller.payment_watch"
# The watch looks about ten times within the alert threshold, within these bounds: a day's
# threshold is checked every minute, a test's few seconds every second.
MIN_INTERVAL, MAX_INTERVAL = 1.0, 60.0


def check_interval(alert_after: float) -> float:
    """Seconds between two passes for a threshold of `alert_after` seconds."""
    return min(MAX_INTERVAL, max(MIN_INTERVAL, alert_after / 10.0))


@dataclass(frozen=True)
class WatchPass:
    waiting: int  # supplier orders in Booked whose customer waits
    overdue: int  # of those, waiting longer than the threshold
    oldest_seconds: float
    noted: int  # notes asked for by this pass (each order gets one, ever)


class PaymentWatch:
    def __init__(self, database_url: str, alert_after_minutes: float, interval: float | None = None) -> None:
        self.engine = get_engine(database_url)
        self.alert_after = alert_after_seconds(alert_after_minutes)
        self.interval = float(interval) if interval is not None else check_interval(self.alert_after)
        payment_waits(0, 0, 0.0)  # served from the start, so the alert rule has its series

    def run(self, stop: threading.Event) -> None:
        log.info("payment watch started", interval=round(self.interval, 2), alert_after_seconds=self.alert_after)
        def one_pass() -> float:
            self.run_once()
            return self.interval

        run_loop(stop, loop=LOOP, label="payment watch pass", max_silence=self.interval + 120.0, run_pass=one_pass)
        log.info("payment watch stopped")

    def run_once(self) -> WatchPass:
        """Count the waits, and ask for the note of each overdue one (once per shop order, ever)."""
        noted = 0
        with Session(self.engine) as session, session.begin():
            waits = customers_waiting(waiting_for_payment(session.connection()))
            late = overdue(waits, self.alert_after)
            for wait in late:
                if tell_once(session, wait.shop_order_id, NOTICE_KIND, note_text(wait)):
                    noted += 1
                    with bound_ids(order_id=wait.shop_order_id):
                        log.warning("supplier order waits for payment longer than the alert threshold",
                                    supplier_order_id=wait.supplier_order_id, key=wait.key,
                                    waiting_since=utc_text(wait.waiting_since),
                                    waited_seconds=round(wait.waited_seconds))
        oldest = max((w.waited_seconds for w in waits), default=0.0)
        payment_waits(len(waits), len(late), oldest)
        return WatchPass(len(waits), len(late), oldest, noted)
