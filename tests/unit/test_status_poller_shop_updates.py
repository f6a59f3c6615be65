"""What the shop is told for each supplier status."""
from __future__ import annotations

import pytest

from shared.clients.rewix import BOOKED, CANCELLED, CONFIRMED, DISPATCHED, FAILED, READY, WORKING_ON
from services.status_poller.shop_updates import already_completed, has_note, is_error, plan


@pytest.mark.parametrize(
    ("status", "name"),
    [(BOOKED, "Booked"), (CONFIRMED, "Confirmed"), (WORKING_ON, "Working on"), (READY, "Ready")],
)
def test_statuses_on_the_way_add_a_note_naming_the_status(status: int, name: str) -> None:
    update = plan(4711, status)
    assert update.note == f"Supplier order 4711 is now {name}."
    assert not update.complete
    assert update.meta == {}


def test_dispatched_completes_the_order_with_the_tracking_in_a_note_and_in_meta() -> None:
    update = plan(4711, DISPATCHED, tracking_code="1Z999", tracking_url="https://track.example/1Z999", carrier_name="UPS")
    assert update.complete
    assert update.meta == {
        "rewix_tracking_code": "1Z999",
        "rewix_tracking_url": "https://track.example/1Z999",
        "rewix_carrier": "UPS",
    }
    assert update.note.startswith("Supplier order 4711 is now Dispatched.")
    for part in ("1Z999", "https://track.example/1Z999", "UPS"):
        assert part in update.note


def test_dispatched_without_tracking_still_completes_and_says_so() -> None:
    update = plan(4711, DISPATCHED, tracking_code="  ", tracking_url=None)
    assert update.complete
    assert update.meta == {}
    assert update.note == "Supplier order 4711 is now Dispatched. No tracking was given."


@pytest.mark.parametrize(("status", "name"), [(CANCELLED, "Cancelled"), (FAILED, "Failed"), (2002, "Verify failed"), (2005, "Rejected")])
def test_cancelled_and_failed_add_a_note_and_leave_the_customers_order_alone(status: int, name: str) -> None:
    update = plan(4711, status)
    assert not update.complete
    assert update.meta == {}
    assert update.note.startswith(f"Supplier order 4711 is now {name} (status {status}).")
    assert is_error(status)


def test_the_note_is_the_same_every_time_so_a_retry_can_find_it() -> None:
    first = plan(4711, DISPATCHED, tracking_code="X", carrier_name="DHL")
    again = plan(4711, DISPATCHED, tracking_code="X", carrier_name="DHL")
    assert first == again


def test_has_note_sees_through_wordpress_escaping_and_wrapping() -> None:
    text = plan(4711, DISPATCHED, tracking_url="https://t.example/?a=1&b=2").note
    stored = "<p>" + text.replace("&", "&amp;") + "</p>\n"
    assert has_note([{"note": "Order status changed from Processing to Completed."}, {"note": stored}], text)
    assert not has_note([{"note": "Supplier order 4711 is now Ready."}], text)
    assert not has_note([], text)


def test_already_completed_needs_the_status_and_the_same_tracking_meta() -> None:
    update = plan(4711, DISPATCHED, tracking_code="1Z", carrier_name="UPS")
    meta = [{"id": 1, "key": "rewix_tracking_code", "value": "1Z"}, {"id": 2, "key": "rewix_carrier", "value": "UPS"}]
    assert already_completed({"status": "completed", "meta_data": meta}, update)
    assert not already_completed({"status": "processing", "meta_data": meta}, update)
    assert not already_completed({"status": "completed", "meta_data": meta[:1]}, update)


def test_a_dispatch_never_completes_an_order_given_up_in_the_shop():
    from services.status_poller.shop_updates import completion_needed, plan as plan_update

    update = plan_update(4711, 3, tracking_code="T1", tracking_url="https://t/1", carrier_name="BRT")
    for status in ("cancelled", "refunded", "failed", "trash"):
        assert not completion_needed({"status": status, "meta_data": []}, update)
    assert completion_needed({"status": "processing", "meta_data": []}, update)
    done = {"status": "completed", "meta_data": [{"key": k, "value": v} for k, v in update.meta.items()]}
    assert not completion_needed(done, update)


def test_dispatched_tells_the_customer_the_carrier_the_code_and_the_link() -> None:
    from datetime import date

    update = plan(4711, DISPATCHED, tracking_code="1Z999", tracking_url="https://track.example/1Z999",
                  carrier_name="UPS", shipped_on=date(2026, 12, 1))
    assert update.customer_note == (
        "Your order has been shipped with UPS. Tracking code: 1Z999. Follow your parcel here: https://track.example/1Z999"
    )
    assert update.customer_note != update.note  # a retry tells the two apart by their text
    assert (update.tracking.number, update.tracking.provider, update.tracking.link, update.tracking.shipped_on) == (
        "1Z999", "UPS", "https://track.example/1Z999", "2026-12-01"
    )


def test_the_customer_note_can_be_switched_off_and_needs_some_tracking() -> None:
    off = plan(4711, DISPATCHED, tracking_code="1Z999", carrier_name="UPS", customer_note=False)
    assert off.customer_note is None and off.tracking is not None
    bare = plan(4711, DISPATCHED)
    assert bare.customer_note is None and bare.tracking is None
    link_only = plan(4711, DISPATCHED, tracking_url="https://t.example/x")
    assert link_only.customer_note == "Your order has been shipped. Follow your parcel here: https://t.example/x"
    assert link_only.tracking is None  # the plugin needs a tracking number


@pytest.mark.parametrize("url", [
    "javascript:alert(document.cookie)", "data:text/html;base64,PHNjcmlwdD4=", "ftp://track.example/1Z999",
    "track.example/1Z999", "https://", "https://track.example/1Z999 Click here: http://evil.example",
    "http://track.example/\r\nBcc: x@example.com", "//track.example/1Z999",
])
def test_the_customer_sees_only_a_web_link_else_the_code_alone(url: str) -> None:
    update = plan(4711, DISPATCHED, tracking_code="1Z999", tracking_url=url, carrier_name="UPS")
    assert update.customer_note == "Your order has been shipped with UPS. Tracking code: 1Z999."
    assert update.tracking is not None and update.tracking.link == ""
    # The private note and the meta keep what the supplier gave, for the operator.
    assert update.meta["rewix_tracking_url"] == url.strip()
    assert plan(4711, DISPATCHED, tracking_url=url).customer_note is None  # nothing else to tell


def test_an_http_link_reaches_the_customer_too() -> None:
    update = plan(4711, DISPATCHED, tracking_code="1Z999", tracking_url="HTTP://track.example/?c=1Z999&l=it")
    assert update.customer_note.endswith("Follow your parcel here: HTTP://track.example/?c=1Z999&l=it")


def test_only_a_dispatch_reaches_the_customer() -> None:
    for status in (BOOKED, CONFIRMED, READY, CANCELLED, FAILED):
        update = plan(4711, status)
        assert update.customer_note is None and update.tracking is None


def test_has_tracking_finds_the_number_among_the_plugins_items() -> None:
    from services.status_poller.shop_updates import has_tracking

    items = [{"tracking_id": "a1", "tracking_number": "OTHER"}, {"tracking_id": "b2", "tracking_number": " 1Z999 "}]
    assert has_tracking(items, "1Z999")
    assert not has_tracking(items[:1], "1Z999")
    assert not has_tracking([], "1Z999")
