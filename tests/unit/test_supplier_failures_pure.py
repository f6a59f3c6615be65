"""The pure parts of handling supplier failures: the key choice, which failures isolate a model,
what a refused account means for a message, and the account pause's probing."""
from __future__ import annotations

import threading

import pytest

from shared.failures import account_pause, retry
from shared.failures.account_pause import probe_delays, wait_until_accepted
from shared.failures.errors import AccountRefused, AmbiguousLookup, PermanentError, TransientError
from shared.orders.events import convert
from shared.reservations.model import HeldLine, Lock, Snapshot, TrackedLine
from services.supplier_sync import plan
from services.supplier_sync.keys import choose_key, fallback_key, is_safe_key
from services.supplier_sync.plan import Convergence, Locked
from tests.unit.test_supplier_sync_plan import message


# --- the key ------------------------------------------------------------------------------------

@pytest.mark.parametrize("number", ["1234", "WC-2026-0042", "A_b.c", "x" * 100])
def test_a_safe_number_is_the_key(number: str) -> None:
    assert choose_key(number, 7) == number


@pytest.mark.parametrize(
    "number",
    [".", "..", "...", "a/b", "", None, "Zoë", "50%", "a b", "x?y", "x#y", "a\\b", "x" * 101, "№1", "\u0000", "~1"],
)
def test_an_unsafe_number_gets_the_fallback(number: str | None) -> None:
    assert choose_key(number, 7) == fallback_key(7) == "order-7"
    assert is_safe_key(fallback_key(7))


def test_fallbacks_of_different_orders_differ() -> None:
    assert choose_key("..", 1) != choose_key("..", 2)


def test_a_number_cut_for_its_column_is_never_the_key() -> None:
    """A number over 100 characters is stored cut and marked (shared/orders/events.py): two orders whose
    numbers begin alike must not share a key, and no key is longer than its column."""
    [head, *_] = convert({"id": 2**63 - 1, "number": "9" * 150, "status": "pending",
                          "date_modified_gmt": "2026-11-26T09:30:00", "line_items": []}, "order.updated", lambda _: {}).messages
    assert len(head.order_number) == 100
    assert choose_key(head.order_number, head.order_id) == f"order-{2**63 - 1}"
    assert len(fallback_key(2**63 - 1)) <= 100


# --- which set failures isolate a model --------------------------------------------------------------

@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (PermanentError("bad model", status=400), retry.DeadLetter),
        (TransientError("boom", status=500), retry.RetryLater),
        (TransientError("unavailable", status=503), retry.RetryLater),
        (TransientError("slow down", status=429, retry_after=2), type(None)),
        (TransientError("timeout", outcome_unknown=True), type(None)),
        (TransientError("maintenance page", status=200), type(None)),
        (AccountRefused("no", status=401), type(None)),
    ],
)
def test_model_failure(exc: Exception, expected: type) -> None:
    assert isinstance(plan.model_failure(exc), expected)


def test_a_model_failing_with_a_5xx_is_not_set_again_and_its_message_waits() -> None:
    lines = (HeldLine(1, 10, 1001, 2), HeldLine(2, 20, 1002, 1))
    snap = Snapshot({1001: lines[:1], 1002: lines[1:]}, {}, tuple(TrackedLine(l.order_id, l.line_id, False, "pending", False, False) for l in lines))
    answers = {1001: retry.RetryLater("HTTP 503", 503)}
    assert plan.totals_to_set(snap, answers) == {1002: 1}
    convergence = Convergence(stock={1001: answers[1001], 1002: Locked(1)})
    outcome = plan.message_outcome(message(1, "pending", stock_id=1001), convergence)
    assert isinstance(outcome, retry.RetryLater) and outcome.status == 503 and "1001" in outcome.reason
    assert isinstance(plan.message_outcome(message(2, "pending", stock_id=1002), convergence), retry.Ack)


def test_lock_answers_of_a_failed_model_are_not_saved() -> None:
    assert plan.locks_to_save({1001: 2, 1002: 1}, {1001: retry.RetryLater("x", 503), 1002: Locked(1, 9)}) == [
        Lock(1002, 1, 1, 9)
    ]


# --- the retry policy ---------------------------------------------------------------------------

def test_a_refused_account_pauses_and_blames_no_message() -> None:
    outcome = retry.outcome_of(AccountRefused("HTTP 401", status=401), "supplier")
    assert isinstance(outcome, retry.Paused) and outcome.status == 401 and outcome.reason == "supplier: HTTP 401"


def test_an_ambiguous_lookup_is_retried() -> None:
    assert isinstance(retry.outcome_of(AmbiguousLookup("500", status=500)), retry.RetryLater)


# --- the account pause ------------------------------------------------------------------------------

def test_probe_delays_back_off_to_a_ceiling() -> None:
    delays = probe_delays(1, 30)
    assert [next(delays) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]


class RecordingLog:
    """Stands in for a module's structlog logger: what the module logged, whatever logging is configured."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level: str):
        return lambda event, **fields: self.lines.append((level, event))


def test_the_pause_ends_when_the_supplier_accepts_again_and_logs_once_a_minute(monkeypatch) -> None:
    recorded = RecordingLog()
    monkeypatch.setattr(account_pause, "log", recorded)
    answers = iter([AccountRefused("HTTP 401", status=401)] * 4 + [None])
    now = [0.0]

    def probe() -> None:
        now[0] += 40.0  # each probe "takes" 40 s of the clock
        answer = next(answers)
        if answer is not None:
            raise answer

    assert wait_until_accepted(probe, threading.Event(), worker="w", reason="HTTP 401", first_delay=0, max_delay=0,
                               clock=lambda: now[0])
    errors = [event for level, event in recorded.lines if level == "error" and "refuses the account" in event]
    # Refused at 40, 80, 120 and 160 s: the first line, then at 80 and 160 s (a minute after the last), not once per probe.
    assert len(errors) == 3


def test_the_pause_ends_on_stop() -> None:
    stop = threading.Event()
    stop.set()
    assert not wait_until_accepted(lambda: None, stop, worker="w", reason="HTTP 401")


# --- problems told to the shop owner -------------------------------------------------------------------

from services.supplier_sync import problems  # noqa: E402
from shared.orders.vocabulary import LineState  # noqa: E402

FACT = problems.LineFacts(7, 70, 1008, 3, "Trail sneaker", "42", "SNK-1008")


def test_a_short_line_opens_a_note_saying_what_and_how_many_of_how_many() -> None:
    changes = problems.from_line_states({(7, 70): (LineState.SHORT, "supplier locked 1 of 5 for stock_id 1008")}, {(7, 70): FACT})
    (opened,) = changes.opened
    assert (opened.order_id, opened.line_id, opened.kind) == (7, 70, problems.SHORT)
    assert "Trail sneaker" in opened.note and "SNK-1008" in opened.note and "1 of the 5" in opened.note and "3 ordered" in opened.note
    assert changes.cleared == []


def test_a_locked_or_sent_line_clears_with_a_note_and_a_released_one_silently() -> None:
    changes = problems.from_line_states(
        {(7, 70): (LineState.LOCKED, None), (8, 80): (LineState.RELEASED, None), (9, 90): (LineState.SENT, None)},
        {(7, 70): FACT},
    )
    assert changes.opened == []
    cleared = {(c.order_id, c.line_id): c.note for c in changes.cleared}
    assert "now reserved in full" in cleared[(7, 70)] and "SNK-1008" in cleared[(7, 70)]
    assert cleared[(8, 80)] is None
    assert "now sent" in cleared[(9, problems.ORDER_ITSELF)]


def test_a_refused_order_is_one_problem_of_the_order_and_a_refused_model_one_of_its_line() -> None:
    changes = problems.from_line_states(
        {
            (7, 70): (LineState.FAILED, "supplier refused the order: POST …: HTTP 400: NOAVAILABILITY"),
            (7, 71): (LineState.FAILED, "supplier refused the order: POST …: HTTP 400: NOAVAILABILITY"),
            (8, 80): (LineState.FAILED, "supplier refused stock_id 1008: HTTP 400: not orderable, write to ops@example.com"),
        },
        {(8, 80): FACT},
    )
    kinds = sorted((p.order_id, p.line_id, p.kind) for p in changes.opened)
    assert kinds == [(7, 0, problems.REFUSED_ORDER), (8, 80, problems.REFUSED_MODEL)]
    refused_model = next(p for p in changes.opened if p.kind == problems.REFUSED_MODEL)
    assert "ops@example.com" not in refused_model.note  # supplier texts are masked


def test_every_message_of_an_order_with_a_line_in_a_failed_model_waits() -> None:
    # A cancelled order's message carries no line, but its release of 1001 failed: it must come back.
    failure = retry.RetryLater("HTTP 503", 503)
    convergence = Convergence(stock={1001: failure}, held_up={5: (1001, failure)})
    released = message(5, "cancelled", stock_id=1002).model_copy(update={"line": None})
    outcome = plan.message_outcome(released, convergence)
    assert isinstance(outcome, retry.RetryLater) and "1001" in outcome.reason
