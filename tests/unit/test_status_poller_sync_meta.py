"""The meta loop's pure parts: which of an order's two meta keys to write, given what the shop holds."""
from __future__ import annotations

from shared.clients.rewix import BOOKED
from shared.orders.sync_status import Line, OrderFacts, SupplierOrder
from services.status_poller.shop_watch.sync_meta import Decision, decide, meta_to_write, shop_has, wanted_meta
from services.status_poller.shop_watch.sync_meta_store import Written


def facts(status: str, *lines: Line, **more) -> OrderFacts:
    return OrderFacts(order_id=1001, shop_status=status, lines=lines, **more)


LOCKED = Line(100001, 2, "locked")
SENT = Line(100001, 2, "sent")


def test_only_the_keys_that_differ_are_written_and_an_empty_id_never_first() -> None:
    reserved = wanted_meta(facts("on-hold", LOCKED))
    assert reserved == {"rewix_sync_status": "reserved", "rewix_supplier_order": ""}
    assert meta_to_write(reserved, shop_has(None)) == {"rewix_sync_status": "reserved"}
    assert meta_to_write(reserved, shop_has(Written("reserved", ""))) == {}
    sent = wanted_meta(facts("processing", SENT, supplier=SupplierOrder(BOOKED, 4711)))
    assert meta_to_write(sent, shop_has(Written("reserved", ""))) == {
        "rewix_sync_status": "sent: Booked", "rewix_supplier_order": "4711"}
    assert meta_to_write({**sent, "rewix_sync_status": "sent: Confirmed"}, shop_has(Written("sent: Booked", "4711"))) == {
        "rewix_sync_status": "sent: Confirmed"}
    # Refused before: what the shop holds is not known, so every value is written.
    assert meta_to_write(sent, shop_has(Written("sent: Booked", "4711", error="400"))) == sent
    # An order that stops waiting on nothing the records know: the value written before is cleared.
    assert meta_to_write(wanted_meta(None), shop_has(Written("waiting: no product map for X", ""))) == {
        "rewix_sync_status": ""}


def test_what_a_pass_does_with_each_order() -> None:
    want = {"rewix_sync_status": "sent: Booked", "rewix_supplier_order": "4711"}
    assert decide(want, None) == Decision(want)  # never written
    assert decide(want, Written("reserved", "")) == Decision(want)
    assert decide(want, Written("sent: Booked", "4711")) == Decision({})  # written already: nothing at all
    assert decide(want, Written("x", "", gone=True)) == Decision({})  # the shop has no such order
    # Refused as it is: waits for the next change; changed since: written whole.
    assert decide(want, Written("sent: Booked", "4711", error="400 plugin")) == Decision({})
    assert decide(want, Written("reserved", "", error="400 plugin")) == Decision(want)
    # A write under way when the last pass ended: the shop's own meta decides.
    writing = Written("reserved", "", writing=True)
    assert decide(want, writing, read_back=want) == Decision({}, settle=True)  # it landed: recorded, not repeated
    assert decide(want, writing, read_back={"rewix_sync_status": "reserved", "rewix_supplier_order": ""}) == \
        Decision(want)
    assert decide(want, writing, read_back=None) == Decision(want)  # not listed: the write will say
