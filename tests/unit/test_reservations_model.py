"""The reservation model the operator views and reconcile read, without I/O."""
from __future__ import annotations

from shared.reservations.model import HeldLine, Lock, Reservation, Snapshot


def test_a_reservation_adds_up_its_held_lines_and_tells_paid_from_unpaid():
    reservation = Reservation(
        7, (HeldLine(1, 10, 7, 2, order_status="processing"), HeldLine(2, 20, 7, 3, order_status="on-hold")),
        Lock(7, needed=5, locked=4),
    )
    assert (reservation.needed, reservation.needed_paid, reservation.locked) == (5, 2, 4)
    assert not reservation.in_step()
    assert Reservation(7, (HeldLine(1, 10, 7, 4),), Lock(7, needed=4, locked=4)).in_step()
    assert Reservation(7).in_step() and not Reservation(7, (HeldLine(1, 10, 7, 1),)).in_step()


def test_the_snapshot_lists_models_needed_or_still_locked():
    snap = Snapshot(
        {7: (HeldLine(1, 10, 7, 2),), 8: ()},
        {8: Lock(8, needed=0, locked=0), 9: Lock(9, needed=0, locked=3)},
    )
    assert list(snap.reservations()) == [7, 9]
    assert snap.reservations()[9].locked == 3 and snap.reservations()[9].needed == 0
    assert snap.needed_by_stock() == {7: 2}
