"""What recording a batch changes, as plain data. No I/O.

Given the batch's messages and what is recorded of their orders, this says
which messages carry the latest state (lifecycle.supersedes), which
contradict the recorded state of the same date (lifecycle.contradicts: the
shop is asked), and which rows change: the orders' columns, each line at the
newest state the batch has of it, and the lines each head no longer lists.
store.record_batch writes that in a handful of statements; the in-memory
unit of work of the unit tests applies the same changes, with the same
conditions on lines (`line_write_applies`, `removal_applies`), so both record
a batch alike.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.failures import retry
from shared.messaging.messages import OrderLineMessage
from shared.orders.text import storable, storable_json
from shared.orders.vocabulary import ShopStatus
from shared.reservations.model import LineKey
from services.supplier_sync.lifecycle import RecordedLine, StoredState, contradicts, supersedes


@dataclass(frozen=True)
class Recorded:
    applied: list[bool]  # per message: did it carry the order's latest state?
    stock_ids: frozenset[int]  # every model whose total may have changed
    order_ids: frozenset[int]  # orders whose state changed
    # Position of each message the database refused, and why (services/supplier_sync/recording.py).
    refused: Mapping[int, retry.DeadLetter] = field(default_factory=dict)
    # Positions of messages not recorded because they contradict the recorded state of the same
    # date (lifecycle.contradicts): the shop must be asked for the order as it is now.
    ask_shop: frozenset[int] = frozenset()

    @classmethod
    def merge(
        cls, count: int, parts: Iterable[tuple[list[int], "Recorded"]], refused: Mapping[int, retry.DeadLetter]
    ) -> "Recorded":
        """One Recorded for `count` messages from the parts recorded apart (their positions, their Recorded)."""
        applied = [False] * count
        stock_ids: set[int] = set()
        order_ids: set[int] = set()
        ask_shop: set[int] = set()
        for positions, part in parts:
            for position, was_applied in zip(positions, part.applied):
                applied[position] = was_applied
            stock_ids |= part.stock_ids
            order_ids |= part.order_ids
            ask_shop |= {positions[p] for p in part.ask_shop}
        return cls(applied, frozenset(stock_ids), frozenset(order_ids), dict(refused), frozenset(ask_shop))


@dataclass(frozen=True)
class BatchChanges:
    """The rows recording a batch writes, and what the handler is told of it."""

    recorded: Recorded
    orders: list[dict[str, Any]]  # shop_orders rows of the changed orders, every column but updated_at, by id
    lines: list[dict[str, Any]]  # order_lines to write: order_id, the message's line fields, version
    removals: dict[int, tuple[datetime, list[int]]]  # order_id -> (its head's state, the line ids it keeps)


def batch_changes(
    messages: Sequence[OrderLineMessage],
    stored: Mapping[int, Mapping[str, Any]],
    created: Iterable[int],
    recorded_lines: Mapping[LineKey, RecordedLine],
) -> BatchChanges:
    """What recording `messages` changes.

    `stored`: the shop_orders row of every order of the batch (a bare row,
    status "" and no line ids, for the `created` ones, which had none);
    `recorded_lines`: every line recorded of those orders, removed ones too.
    """
    created = set(created)
    orders = {order_id: dict(row) for order_id, row in stored.items()}
    lines_now = dict(recorded_lines)
    before: dict[int, set[int]] = {order_id: set() for order_id in orders}
    for (order_id, _), line in recorded_lines.items():
        before.setdefault(order_id, set()).add(line.stock_id)

    applied: list[bool] = []
    ask_shop: set[int] = set()
    changed: set[int] = set()
    lines: dict[LineKey, dict[str, Any]] = {}
    removals: dict[int, tuple[datetime, list[int]]] = {}
    for position, message in enumerate(messages):
        order = orders[message.order_id]
        state = None if message.order_id in created and message.order_id not in changed else StoredState(
            order["date_modified_gmt"], order["deleted"]
        )
        if not supersedes(message.date_modified_gmt, message.deleted, message.topic, state):
            applied.append(False)
            continue
        if state is not None and not message.deleted and message.source != "confirmation" and _contradicts(
            message, order, lines_now
        ):
            # The shop's own answer (a confirmation) is the state of that date; anything else is asked again.
            applied.append(False)
            ask_shop.add(position)
            continue
        applied.append(True)
        changed.add(message.order_id)
        if message.deleted:
            order.update(deleted=True, status=str(ShopStatus.TRASH))
            continue
        order.update(order_state(message, order))
        version = message.date_modified_gmt
        if message.line is not None:
            key = (message.order_id, message.line.line_id)
            if key not in lines or lines[key]["version"] <= version:
                lines[key] = {"order_id": key[0], **message.line.model_dump(), "version": version}
                lines_now[key] = RecordedLine(message.line.stock_id, message.line.quantity, version)
        # Only the head knows every line of its state, so only it releases the others.
        if message.head and (message.order_id not in removals or removals[message.order_id][0] <= version):
            removals[message.order_id] = (version, list(message.supplier_line_ids))

    stock_ids = set().union(*(before[i] for i in changed)) | {line["stock_id"] for line in lines.values()}
    return BatchChanges(
        recorded=Recorded(applied, frozenset(stock_ids), frozenset(changed), ask_shop=frozenset(ask_shop)),
        orders=[orders[i] for i in sorted(changed)],
        lines=list(lines.values()),
        removals=removals,
    )


def line_write_applies(recorded_version: datetime | None, version: datetime | None) -> bool:
    """Does a line written from the state `version` replace the recorded one? Never by an older state.

    (The condition of store._write_lines' upsert; a missing date compares as SQL's NULL does.)
    """
    return recorded_version is None or (version is not None and recorded_version <= version)


def removal_applies(line_id: int, removed: bool, recorded_version: datetime | None, keep: Sequence[int],
                    version: datetime) -> bool:
    """Is a recorded line released by a head of state `version` that keeps only `keep`?

    Not a line it keeps, not a line of a newer state, and not one released at
    this very state already. (A missing date compares as SQL's NULL does: never equal.)
    """
    if line_id in keep:
        return False
    if recorded_version is not None and (version is None or recorded_version > version):
        return False
    return not (removed and (recorded_version is None or version is None or recorded_version == version))


def _contradicts(message: OrderLineMessage, order: Mapping[str, Any], recorded_lines: Mapping[LineKey, RecordedLine]) -> bool:
    """Does the message claim the recorded date of its order with another state? (lifecycle.contradicts)"""
    line = message.line
    return contradicts(
        date=message.date_modified_gmt,
        status=message.status,
        line=(line.stock_id, line.quantity) if line is not None else None,
        line_ids=message.supplier_line_ids if message.head else None,
        stored_date=order["date_modified_gmt"],
        stored_status=order["status"],
        stored_line=recorded_lines.get((message.order_id, line.line_id)) if line is not None else None,
        stored_line_ids=order["supplier_line_ids"] or (),
    )


def order_state(message: OrderLineMessage, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The shop_orders columns a (superseding, not deleted) message sets over the `stored` row.

    Every message of an event carries its status, number and date; only its
    head carries the recipient, the note and the line ids. A line of a newer
    state arriving before its head leaves the line ids empty (not known for
    that state yet), so the paid order is not sent until the head is recorded
    (services/supplier_sync/plan.py, orders_to_send), whatever part of an
    event reached the broker (ingest may have answered 503 half-way).
    """
    # ingest never publishes a NUL, but a message put on the queue by other means may hold one.
    state: dict[str, Any] = dict(
        deleted=False, status=storable(message.status), number=storable(message.order_number),
        date_modified_gmt=message.date_modified_gmt,
    )
    if message.head:
        state.update(
            recipient=storable_json(message.recipient.model_dump()) if message.recipient else None,
            customer_note=storable(message.customer_note),
            supplier_line_ids=list(message.supplier_line_ids),
        )
    elif stored.get("date_modified_gmt") != message.date_modified_gmt:
        state.update(supplier_line_ids=[])
    return state
