"""Which polls are changes, and what each poll writes back."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shared.clients.rewix import BOOKED, CANCELLED, CONFIRMED, DISPATCHED, SupplierOrderStatus
from services.status_poller.changes import Observation, change_of, record_for
from services.status_poller.store import POLL_ERROR_PREFIX, Lease

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)


def lease(status: int = BOOKED, announced: bool = True, **kw) -> Lease:
    fields = dict(
        id=1, shop_order_id=1001, key="1001", supplier_order_id=4711, status=status,
        tracking_code=None, tracking_url=None, carrier_name=None, announced=announced, planned=NOW,
    )
    fields.update(kw)
    return Lease(**fields)


def answer(status: int, **kw) -> SupplierOrderStatus:
    return SupplierOrderStatus(order_id=4711, key="1001", status=status, **kw)


def test_same_status_already_announced_is_no_change() -> None:
    assert change_of(lease(BOOKED), answer(BOOKED), NOW) is None


def test_a_new_status_is_a_change_from_the_recorded_one() -> None:
    message = change_of(lease(BOOKED), answer(CONFIRMED), NOW)
    assert message is not None
    assert (message.old_status, message.new_status) == (BOOKED, CONFIRMED)
    assert (message.supplier_order_id, message.shop_order_id, message.order_key) == (4711, 1001, "1001")


def test_the_status_recorded_at_sending_is_announced_once_it_is_seen() -> None:
    message = change_of(lease(BOOKED, announced=False), answer(BOOKED), NOW)
    assert message is not None
    assert (message.old_status, message.new_status) == (None, BOOKED)


def test_tracking_that_appears_is_a_change() -> None:
    message = change_of(lease(DISPATCHED), answer(DISPATCHED, tracking_code="1Z"), NOW)
    assert message is not None and message.tracking_code == "1Z"
    assert change_of(lease(DISPATCHED, tracking_code="1Z"), answer(DISPATCHED, tracking_code="1Z"), NOW) is None


def test_a_confirmed_change_is_recorded_and_a_final_status_ends_polling() -> None:
    obs = Observation(lease(CONFIRMED), polled_at=NOW, status=answer(DISPATCHED, tracking_code="1Z"), requested=True)
    record = record_for(obs, interval=60, published=True)
    assert record.recorded and record.final and record.status == DISPATCHED
    assert record.tracking_code == "1Z"
    assert record.next_poll_at == NOW + timedelta(seconds=60)
    assert record.clear_error and record.error is None


def test_a_change_not_published_is_not_recorded_so_the_next_poll_sees_it_again() -> None:
    obs = Observation(lease(BOOKED), polled_at=NOW, status=answer(CONFIRMED), requested=True)
    record = record_for(obs, interval=60, published=False, publish_error="broker down")
    assert not record.recorded and record.status is None
    assert record.error is not None and record.error.startswith(POLL_ERROR_PREFIX)


def test_cancelled_is_recorded_final_with_an_error_for_operators() -> None:
    obs = Observation(lease(BOOKED), polled_at=NOW, status=answer(CANCELLED), requested=True)
    record = record_for(obs, interval=60, published=True)
    assert record.recorded and record.final
    assert record.error == "the supplier reports Cancelled (status 2000)"


def test_a_row_not_polled_is_handed_back_as_due_as_it_was() -> None:
    record = record_for(Observation(lease(), throttled=True), interval=60, published=False)
    assert record.polled_at is None and record.next_poll_at == NOW and not record.recorded


def test_a_failed_poll_waits_an_interval_and_shows_its_error() -> None:
    obs = Observation(lease(), polled_at=NOW, error="HTTP 500", requested=True)
    record = record_for(obs, interval=30, published=False)
    assert record.next_poll_at == NOW + timedelta(seconds=30)
    assert record.error == POLL_ERROR_PREFIX + "HTTP 500"
