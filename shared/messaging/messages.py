"""The messages that travel between the services, with an explicit schema version.

The order-line messages of one order event carry together everything
supplier_sync needs without calling the shop back. Every message may arrive
twice or out of order: the receiver orders them by the shop's
`date_modified_gmt`, never by arrival.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SCHEMA_VERSION = 1
# Version 2: the recipient, the note and the line ids travel once per order event
# (on its head message), not on every line. Version 1 messages (every one a head)
# are still read: they may wait in a wait queue or the dead letters for a replay.
ORDER_LINE_SCHEMA_VERSION = 2
# What an order event may hold (shared/orders/events.py refuses more at ingest).
MAX_EVENT_LINES = 500
# What one convergence request may name (a bigger request goes as several).
MAX_CONVERGE_STOCK_IDS = 500


def new_message_id() -> str:
    return uuid.uuid4().hex


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    message_id: str = Field(default_factory=new_message_id)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


class ShopRecipient(BaseModel):
    """Who and where an order ships to, in the shop's field names.

    supplier_sync turns it into `shared.clients.rewix.Recipient` (the supplier's field
    names) when it sends a dropshipping order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    company: str = ""
    phone: str = ""
    address_1: str = ""
    address_2: str = ""
    postcode: str = ""
    city: str = ""
    state: str = ""
    country: str = ""


class SupplierLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    line_id: int
    product_id: int
    variation_id: int = 0
    stock_id: int
    quantity: int = Field(ge=0)


class OrderLineMessage(_Message):
    """One supplier line of a shop order event, or (line=None) an order left with none.

    The messages of one event share `event_id` and `line_count`; exactly one
    of them, the head, also carries what belongs to the whole order: the
    recipient, the customer note and `supplier_line_ids`, every supplier line
    the order had at that moment (so a line that disappeared from the order
    can be released, and a paid order is sent only once all of them are
    recorded). The others leave those empty, so an order's bytes on the
    broker grow linearly with its lines.
    """

    schema_version: Literal[1, 2] = ORDER_LINE_SCHEMA_VERSION
    kind: Literal["order_line"] = "order_line"
    # "mapping": an open order sent down the normal path once a mapping made its lines match
    # (services/status_poller/shop_watch/mapping_pickup.py).
    source: Literal["webhook", "catchup", "backfill", "verification", "confirmation", "reconcile",
                    "mapping"] = "webhook"
    topic: str
    order_id: int
    order_number: str = ""
    status: str
    # None only for order.deleted, whose body is just {"id": N}.
    date_modified_gmt: datetime | None
    deleted: bool = False
    line: SupplierLine | None = None
    # Every version 1 message is a head; version 2 marks the one head of its event.
    head: bool = True
    event_id: str = ""  # shared by the messages of one order event ("" in version 1)
    line_count: int | None = Field(default=None, ge=0, le=MAX_EVENT_LINES)  # the event's supplier lines
    supplier_line_ids: list[int] = Field(default_factory=list)
    recipient: ShopRecipient | None = None
    customer_note: str = ""
    # A delete or restore as a webhook claimed it (the topic header is not signed): nothing
    # is released or locked for it until the shop is asked (services/supplier_sync/confirm.py).
    confirm: bool = False

    @model_validator(mode="after")
    def _order_fields_only_on_the_head(self) -> "OrderLineMessage":
        if not self.head and (self.supplier_line_ids or self.recipient is not None or self.customer_note):
            raise ValueError("only the head message of an order event carries the recipient, note and line ids")
        # Version 1 had no limit of its own: a message waiting for a replay is read as it is.
        if self.schema_version >= 2 and len(self.supplier_line_ids) > MAX_EVENT_LINES:
            raise ValueError(f"an order event has at most {MAX_EVENT_LINES} supplier lines")
        if self.head and self.line_count is not None and self.line_count != len(self.supplier_line_ids):
            raise ValueError("the head's supplier_line_ids must list line_count lines")
        return self


class ConvergeMessage(_Message):
    """Asks supplier_sync to set these models at the supplier to what the records need now.

    It shares the order-lines queue (and so its retries and dead letters) with
    OrderLineMessage, told apart by `kind`. supplier_sync adds the models to
    the convergence of the batch that takes it, as if an order line had
    touched them; `rewix-sync reconcile --apply` sends it after marking the
    models' supplier state "not known", so they are set whatever
    stock_locks said (services/admin/supplier_convergence.py). supplier_sync's
    send worker sends it after dropshipping orders took their units (source
    "send"): the lock work sets those models to what the unsent orders need,
    in the call it makes anyway.
    """

    kind: Literal["converge"] = "converge"
    source: Literal["reconcile", "send"] = "reconcile"
    stock_ids: list[int] = Field(min_length=1, max_length=MAX_CONVERGE_STOCK_IDS)


class SendOrderMessage(_Message):
    """Asks supplier_sync's send worker to send this paid order to the supplier, if it still must.

    The lock work publishes it once a convergence finds the order paid and
    every line locked (services/supplier_sync/handler.py); the send worker
    reads the order again under its models' locks, so a request for an order
    sent, cancelled or changed since is acked and does nothing. Sending stays
    exactly once through the key frozen before the first request (keys.py,
    sending.py), however often the request comes.
    """

    kind: Literal["send"] = "send"
    order_id: int


def parse_send(body: bytes) -> SendOrderMessage:
    try:
        return SendOrderMessage.model_validate_json(body)
    except ValidationError as exc:
        raise UnparseableMessage(_first_error(exc)) from exc


class StatusChangeMessage(_Message):
    """The supplier moved one of our orders to another status."""

    kind: Literal["status_change"] = "status_change"
    supplier_order_id: int
    shop_order_id: int
    order_key: str
    old_status: int | None
    new_status: int
    tracking_code: str | None = None
    tracking_url: str | None = None
    carrier_name: str | None = None
    observed_at: datetime


class UnparseableMessage(ValueError):
    """A body that is not a valid message of its kind: no retry can make it one."""


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"[:300]


def parse_order_line(body: bytes) -> OrderLineMessage:
    try:
        return OrderLineMessage.model_validate_json(body)
    except ValidationError as exc:
        raise UnparseableMessage(_first_error(exc)) from exc


class _Kind(BaseModel):
    """Only the `kind` of a message; a body naming none is an order line (every one names it)."""

    model_config = ConfigDict(extra="ignore")

    kind: str = "order_line"


def parse_converge(body: bytes) -> ConvergeMessage:
    try:
        return ConvergeMessage.model_validate_json(body)
    except ValidationError as exc:
        raise UnparseableMessage(_first_error(exc)) from exc


def parse_order_lines_message(body: bytes) -> OrderLineMessage | ConvergeMessage:
    """A message of the order-lines queue, read as the kind it says it is.

    Anything but a convergence request is read as an order line, so a body
    that is not one fails with the order line's reason, as before the
    request kind existed.
    """
    try:
        kind = _Kind.model_validate_json(body).kind
    except ValidationError:
        kind = "order_line"
    if kind == "converge":
        return parse_converge(body)
    return parse_order_line(body)


def parse_status_change(body: bytes) -> StatusChangeMessage:
    try:
        return StatusChangeMessage.model_validate_json(body)
    except ValidationError as exc:
        raise UnparseableMessage(_first_error(exc)) from exc
