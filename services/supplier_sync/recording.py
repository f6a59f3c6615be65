"""Recording a batch's order states, with the messages the database refuses isolated.

A batch is recorded in one unit of work (unit_of_work.py, `orders.record_batch`),
one transaction, so one message the database refuses (an order number
longer than its column, a quantity out of range) would fail every message
batched with it. A refused batch is split
in two and each half recorded in a unit of its own, until the culprit is
alone: only it is dead-lettered, with the database's reason
(shared/failures/retry.py, database_refusal); the others are recorded as if it had
never been there. A failure that is not about the data (the connection, a
deadlock) is raised as it is: the whole batch is retried.

Recording is idempotent (the latest state wins), so halves recorded before
such a failure are simply recorded again when the batch comes back.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from shared.failures import retry
from shared.messaging.messages import OrderLineMessage
from shared.observability.logging import get_logger
from services.supplier_sync.batch_changes import Recorded
from services.supplier_sync.unit_of_work import UnitOfWorkFactory

log = get_logger(__name__)

Result = TypeVar("Result")


def split_until_alone(
    positions: list[int],
    attempt: Callable[[list[int]], Result],
    refusal_of: Callable[[BaseException], retry.DeadLetter | None],
) -> tuple[list[tuple[list[int], Result]], dict[int, retry.DeadLetter]]:
    """Run `attempt` on all positions; while it is refused, on each half, down to one position.

    Returns what every accepted part gave, and the refusal of each position
    that failed alone. A failure `refusal_of` does not call a refusal is raised.
    """
    try:
        return [(positions, attempt(positions))], {}
    except Exception as exc:
        refusal = refusal_of(exc)
        if refusal is None:
            raise
        if len(positions) == 1:
            return [], {positions[0]: refusal}
    middle = len(positions) // 2
    done, refused = split_until_alone(positions[:middle], attempt, refusal_of)
    more, also = split_until_alone(positions[middle:], attempt, refusal_of)
    return done + more, refused | also


def record_isolating(units: UnitOfWorkFactory, messages: Sequence[OrderLineMessage]) -> Recorded:
    """Record the messages' order states; `refused` holds the position of each one the database refused."""

    def attempt(positions: list[int]) -> Recorded:
        with units() as uow:
            recorded = uow.orders.record_batch([messages[p] for p in positions])
            uow.commit()
        return recorded

    def refusal_of(exc: BaseException) -> retry.DeadLetter | None:
        refusal = retry.database_refusal(exc)
        if refusal is not None and len(messages) > 1:
            log.warning("the database refused part of a batch, splitting it to find the culprit", reason=refusal.reason[:200])
        return refusal

    parts, refused = split_until_alone(list(range(len(messages))), attempt, refusal_of)
    for position, refusal in sorted(refused.items()):
        message = messages[position]
        log.error("message refused by the database", order_id=message.order_id, message_id=message.message_id,
                  reason=refusal.reason[:200])
    return Recorded.merge(len(messages), parts, refused)
