"""What one poll's answer means, as pure functions: the status change to announce
and the values to write back to the leased row.

The poller (poller.py) calls them between asking the supplier (workers.py) and
writing back (store.py); tests/unit/test_status_poller_changes.py covers them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.clients.rewix import SupplierOrderStatus, is_final, status_name
from shared.messaging.messages import StatusChangeMessage
from services.status_poller.shop_updates import is_error
from services.status_poller.store import POLL_ERROR_PREFIX, Lease, PollRecord


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
