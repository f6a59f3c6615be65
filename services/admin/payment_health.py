"""`rewix-sync status`'s payments row: supplier orders waiting for the dropshipper's payment.

Read from the store (shared/orders/payment_waits.py), so it clears by itself once the
poller records the supplier's next status. One waiting longer than
SUPPLIER_PAYMENT_ALERT_MINUTES needs a person: its customer waits for a parcel
the supplier prepares only once it is paid. Those under the threshold are worth
knowing (the owner pays every day), nothing more.
"""
from __future__ import annotations

from collections.abc import Sequence

from shared.db import get_engine
from services.admin.health_report import ATTENTION, OK, WARNING, Row, ago
from shared.orders.payment_waits import PaymentWait, alert_after_seconds, customers_waiting, overdue, utc_text, \
    waiting_for_payment
from shared.settings import Settings

NAME = "payments"
# Orders named on the row at the most; `rewix-sync pay` lists them all.
NAMED = 10


def payment_rows(settings: Settings) -> list[Row]:
    with get_engine(settings.database_url).connect() as connection:
        waits = customers_waiting(waiting_for_payment(connection))
        connection.rollback()
    return [payment_row(waits, alert_after_seconds(settings.supplier_payment_alert_minutes))]


def payment_row(waits: Sequence[PaymentWait], alert_after: float) -> Row:
    """The row for the customers' waits (the longest first) and the threshold in seconds. Pure."""
    if not waits:
        return Row(NAME, OK, "no supplier order waits for payment")
    oldest = waits[0]
    late = overdue(waits, alert_after)
    if late:
        named = ", ".join(f"{w.label} ({ago(w.waited_seconds)})" for w in late[:NAMED])
        more = f" and {len(late) - NAMED} more" if len(late) > NAMED else ""
        many = len(late) != 1
        return Row(NAME, ATTENTION,
                   f"{len(late)} supplier order{'s' if many else ''} {'have' if many else 'has'} waited for payment "
                   f"longer than {ago(alert_after)}: {named}{more}; the oldest, {oldest.label}, since "
                   f"{utc_text(oldest.waiting_since)}. Their customers wait: pay them on the supplier's platform "
                   "(`rewix-sync pay` checks them first and says where)")
    many = len(waits) != 1
    return Row(NAME, WARNING,
               f"{len(waits)} supplier order{'s' if many else ''} {'wait' if many else 'waits'} for payment, the oldest "
               f"{oldest.label} for {ago(oldest.waited_seconds)} (a person is needed after {ago(alert_after)}): "
               "`rewix-sync pay`")
