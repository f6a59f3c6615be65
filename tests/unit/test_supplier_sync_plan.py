"""The convergence plan, without PostgreSQL or RabbitMQ: what to set, what becomes of each line, what is sent."""
from __future__ import annotations

from datetime import datetime, timezone

from shared.failures import retry
from shared.messaging.messages import OrderLineMessage, SupplierLine
from shared.orders.vocabulary import LineState
from shared.reservations.model import HeldLine, Lock, Snapshot, TrackedLine
from services.supplier_sync import plan
from services.supplier_sync.plan import Convergence, Locked, PaidLine, PaidOrder, Sent

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
STOCK = 1001


def held(order_id: int, quantity: int, stock_id: int = STOCK, status: str = "pending") -> HeldLine:
    return HeldLine(order_id, order_id * 10, stock_id, quantity, order_status=status)


def tracked(order_id: int, *, removed=False, status="pending", deleted=False, sent=False) -> TrackedLine:
    return TrackedLine(order_id, order_id * 10, removed, status, deleted, sent)


def snapshot(lines: list[HeldLine], locks: dict[int, Lock] | None = None, tracked_lines=(), stock_ids=(STOCK,)) -> Snapshot:
    by_stock = {s: tuple(l for l in lines if l.stock_id == s) for s in stock_ids}
    every = tuple(tracked_lines) or tuple(tracked(l.order_id, status=l.order_status) for l in lines)
    return Snapshot(by_stock, locks or {}, every)


def message(order_id: int, status: str = "processing", *, stock_id: int = STOCK, deleted=False) -> OrderLineMessage:
    return OrderLineMessage(
        topic="order.updated", order_id=order_id, status=status, date_modified_gmt=T0, deleted=deleted,
        supplier_line_ids=[order_id * 10],
        line=SupplierLine(line_id=order_id * 10, product_id=stock_id, stock_id=stock_id, quantity=1),
    )


# --- what to set ----------------------------------------------------------------------------------


def test_a_model_out_of_step_is_set_to_what_its_held_lines_need():
    snap = snapshot([held(1, 2), held(2, 3)], {STOCK: Lock(STOCK, needed=2, locked=2)})
    assert plan.totals_to_set(snap, {}) == {STOCK: 5}


def test_a_model_in_step_is_not_set_again():
    snap = snapshot([held(1, 2)], {STOCK: Lock(STOCK, needed=2, locked=2)})
    assert plan.totals_to_set(snap, {}) == {}


def test_a_model_never_set_and_needed_by_nobody_costs_no_call():
    assert plan.totals_to_set(snapshot([]), {}) == {}


def test_a_model_no_order_needs_any_more_is_set_to_zero():
    snap = snapshot([], {STOCK: Lock(STOCK, needed=3, locked=3)}, tracked_lines=[tracked(1, status="cancelled")])
    assert plan.totals_to_set(snap, {}) == {STOCK: 0}


def test_a_model_the_supplier_refused_is_not_asked_again_in_the_batch():
    snap = snapshot([held(1, 2)])
    assert plan.totals_to_set(snap, {STOCK: retry.DeadLetter("unknown model", 404)}) == {}


def test_the_locks_saved_are_what_was_asked_and_what_the_supplier_then_held():
    answers = {STOCK: Locked(3, available=0), 1002: retry.DeadLetter("unknown model", 404)}
    assert plan.locks_to_save({STOCK: 5, 1002: 1}, answers) == [Lock(STOCK, 5, 3, 0)]


# --- what becomes of each line --------------------------------------------------------------------


def test_locked_units_cover_the_oldest_orders_and_the_rest_are_short():
    snap = snapshot([held(3, 2), held(1, 2), held(2, 2)])
    lines = plan.settle_lines(snap, {STOCK: Locked(4)})
    assert lines.states[(1, 10)] == (LineState.LOCKED, None)
    assert lines.states[(2, 20)] == (LineState.LOCKED, None)
    assert lines.states[(3, 30)] == (LineState.SHORT, "supplier locked 4 of 6 for stock_id 1001")
    assert lines.short == {3: "supplier locked 4 of 6 for stock_id 1001"}


def test_without_a_new_answer_the_lock_last_seen_is_shared():
    snap = snapshot([held(1, 2), held(2, 2)], {STOCK: Lock(STOCK, needed=4, locked=2)})
    lines = plan.settle_lines(snap, {})
    assert lines.states[(1, 10)][0] == LineState.LOCKED and lines.states[(2, 20)][0] == LineState.SHORT


def test_every_held_line_of_a_refused_model_fails_with_the_reason():
    snap = snapshot([held(1, 2), held(2, 1, stock_id=1002)], stock_ids=(STOCK, 1002))
    lines = plan.settle_lines(snap, {STOCK: retry.DeadLetter("unknown model", 404), 1002: Locked(1)})
    assert lines.states[(1, 10)] == (LineState.FAILED, "supplier refused stock_id 1001: unknown model")
    assert lines.states[(2, 20)] == (LineState.LOCKED, None)
    assert lines.short == {}


def test_removed_lines_are_released():
    snap = snapshot([held(1, 2)], tracked_lines=[tracked(1), tracked(2, removed=True)])
    assert plan.settle_lines(snap, {STOCK: Locked(2)}).states[(2, 20)] == (LineState.RELEASED, None)


def test_lines_of_cancelled_completed_or_deleted_orders_are_released():
    snap = snapshot(
        [], tracked_lines=[tracked(1, status="cancelled"), tracked(2, status="completed"), tracked(3, deleted=True)]
    )
    states = plan.settle_lines(snap, {STOCK: Locked(0)}).states
    assert states == {(1, 10): (LineState.RELEASED, None), (2, 20): (LineState.RELEASED, None), (3, 30): (LineState.RELEASED, None)}


def test_a_restored_order_holds_again():
    # Restored: its line is held again, and the model is set to include it.
    snap = snapshot([held(1, 2)], {STOCK: Lock(STOCK, needed=0, locked=0)})
    assert plan.totals_to_set(snap, {}) == {STOCK: 2}
    assert plan.settle_lines(snap, {STOCK: Locked(2)}).states[(1, 10)] == (LineState.LOCKED, None)


def test_lines_already_sent_are_left_alone():
    snap = snapshot([], tracked_lines=[tracked(1, status="completed", sent=True)])
    assert plan.settle_lines(snap, {STOCK: Locked(0)}).states == {}


# --- which paid orders are sent -------------------------------------------------------------------


def paid(order_id: int, *lines: PaidLine, line_ids=None) -> PaidOrder:
    ids = tuple(line_ids if line_ids is not None else (l.line_id for l in lines))
    return PaidOrder(order_id, f"WC-{order_id}", T0, ids, tuple(lines))


def test_a_paid_order_whose_lines_are_all_locked_is_sent_with_its_items_per_model():
    order = paid(1, PaidLine(10, STOCK, 2, T0, "pending"), PaidLine(11, STOCK, 1, T0, "locked"), PaidLine(12, 1002, 1, T0, "pending"))
    states = {(1, 10): (LineState.LOCKED, None), (1, 12): (LineState.LOCKED, None)}
    [send] = plan.orders_to_send([order], states)
    assert send.items == {STOCK: 3, 1002: 1} and send.line_keys == [(1, 10), (1, 11), (1, 12)]
    assert send.order.key == "WC-1"


def test_a_paid_order_with_a_short_line_waits():
    order = paid(1, PaidLine(10, STOCK, 2, T0, "locked"))
    assert plan.orders_to_send([order], {(1, 10): (LineState.SHORT, "supplier locked 0 of 2")}) == []


def test_a_paid_order_waits_for_lines_not_recorded_yet_or_of_an_older_state():
    missing = paid(1, PaidLine(10, STOCK, 1, T0, "locked"), line_ids=(10, 11))
    older = paid(2, PaidLine(20, STOCK, 1, datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc), "locked"))
    assert plan.orders_to_send([missing, older], {}) == []


def test_a_line_refunded_whole_is_neither_waited_for_nor_sent():
    order = paid(1, PaidLine(10, STOCK, 2, T0, "locked"), PaidLine(11, 1002, 0, T0, "released"))
    [send] = plan.orders_to_send([order], {(1, 11): (LineState.RELEASED, None)})
    assert send.items == {STOCK: 2} and send.line_keys == [(1, 10)]
    # Every line refunded whole: the supplier is asked for nothing.
    assert plan.orders_to_send([paid(2, PaidLine(20, STOCK, 0, T0, "released"))], {}) == []


def test_lines_of_a_sent_order_are_sent_and_its_models_converge_again():
    order = paid(1, PaidLine(10, STOCK, 2, T0, "locked"))
    [send] = plan.orders_to_send([order], {})
    result = Convergence(orders={1: Sent(77, 5)})
    assert plan.lines_after_send(send, result.orders[1]) == {(1, 10): (LineState.SENT, None)}
    assert plan.sent_stock([send], result) == {STOCK}


def test_a_refused_order_fails_its_lines_and_one_to_retry_changes_nothing():
    [send] = plan.orders_to_send([paid(1, PaidLine(10, STOCK, 2, T0, "locked"))], {})
    refused = retry.DeadLetter("bad address", 400)
    assert plan.lines_after_send(send, refused) == {(1, 10): (LineState.FAILED, "supplier refused the order: bad address")}
    assert plan.lines_after_send(send, retry.RetryLater("HTTP 503", 503)) == {}
    assert plan.sent_stock([send], Convergence(orders={1: refused})) == set()
    assert plan.order_errors({1, 2}, Convergence(orders={1: refused})) == {1: "bad address", 2: None}


# --- what happens to each message -----------------------------------------------------------------


def test_message_outcomes():
    result = Convergence(
        stock={1002: retry.DeadLetter("unknown model", 404)},
        orders={2: retry.DeadLetter("bad address", 400), 3: retry.RetryLater("HTTP 503", 503, 30.0)},
        short={4: "supplier locked 0 of 1 for stock_id 1001", 5: "supplier locked 0 of 1 for stock_id 1001"},
    )
    assert plan.message_outcome(message(1, stock_id=1002), result) == retry.DeadLetter(
        "supplier refused stock_id 1002: unknown model", 404
    )
    assert plan.message_outcome(message(2), result) == retry.DeadLetter("supplier refused the dropshipping order: bad address", 400)
    assert plan.message_outcome(message(3), result) == retry.RetryLater("dropshipping order not sent: HTTP 503", 503, 30.0)
    # A paid order short of goods is retried; an unpaid one just waits for the next change.
    assert plan.message_outcome(message(4), result) == retry.RetryLater("supplier locked 0 of 1 for stock_id 1001",
                                                                        kind=retry.SHORT)
    assert plan.message_outcome(message(5, "pending"), result) == retry.Ack()
    assert plan.message_outcome(message(6), result) == retry.Ack()


def test_a_convergence_request_is_acked_once_its_models_are_set():
    convergence = Convergence(stock={1001: Locked(0), 1002: Locked(3)})
    assert plan.models_outcome([1001, 1002], convergence) == retry.Ack()


def test_a_convergence_request_waits_for_a_model_that_failed_with_a_5xx_before_any_refusal_dead_letters_it():
    failing = retry.RetryLater("HTTP 503", 503)
    refused = retry.DeadLetter("stock_id 1003 is not orderable", 400)
    outcome = plan.models_outcome([1003, 1002, 1001], Convergence(stock={1001: Locked(1), 1002: failing, 1003: refused}))
    assert isinstance(outcome, retry.RetryLater) and outcome.reason == "supplier failed on stock_id 1002: HTTP 503"
    outcome = plan.models_outcome([1001, 1003], Convergence(stock={1001: Locked(1), 1003: refused}))
    assert isinstance(outcome, retry.DeadLetter)
    assert outcome.reason == "supplier refused stock_id 1003: stock_id 1003 is not orderable" and outcome.status == 400
