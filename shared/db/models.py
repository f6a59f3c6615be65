"""The tables: what the shop ordered, what the supplier holds, what failed.

Shop orders and their supplier lines record the *latest* state WooCommerce
told us (newest `date_modified_gmt` wins). What the supplier must hold of a
stock_id is derived from them; `stock_locks` remembers what the supplier
answered last, so unchanged totals cost no call.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, Numeric, SmallInteger, String, Text,
    UniqueConstraint,
    func, text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.orders.vocabulary import LineState


class Base(DeclarativeBase):
    pass


class ProductMapping(Base):
    """A shop product (or variation) that is a supplier model."""

    __tablename__ = "product_map"
    wc_product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    wc_variation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, default=0)
    stock_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now())


class CatalogModel(Base):
    """One supplier model (size/colour) from the catalog export."""

    __tablename__ = "catalog_models"
    stock_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    product_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    code: Mapped[str] = mapped_column(String(200), nullable=False, default="", index=True)
    barcode: Mapped[str] = mapped_column(String(200), nullable=False, default="", index=True)
    # The product's name and the model's size, so that people can tell models apart.
    name: Mapped[str] = mapped_column(String(300), nullable=False, default="", server_default="")
    size: Mapped[str] = mapped_column(String(100), nullable=False, default="", server_default="")
    availability: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # What the dropshipper pays for one unit before VAT, when the export gives it (`rewix-sync pay` sums it).
    price: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now())


class UnmatchedLine(Base):
    """A shop product (or variation) seen in an order line that matched nothing of the supplier's.

    Either the shop's own product, or a supplier product missing from the
    product map and the catalog: `rewix-sync products unmatched` lists them.
    """

    __tablename__ = "unmatched_lines"
    product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    variation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sku: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")
    last_order_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OwnProduct(Base):
    """A shop product the owner marked as the shop's own (`rewix-sync products own`): never the supplier's.

    A product with every variation (`variation_id` None), one variation of it,
    or a SKU (shared/products/own.py). An explicit product map entry still
    wins over it; a SKU match to the catalog does not.
    """

    __tablename__ = "own_products"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    product_id: Mapped[int | None] = mapped_column(BigInteger)
    variation_id: Mapped[int | None] = mapped_column(BigInteger)
    sku: Mapped[str | None] = mapped_column(String(200))
    marked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)

    __table_args__ = (
        UniqueConstraint("product_id", "variation_id", "sku", name="uq_own_products_mark",
                         postgresql_nulls_not_distinct=True),
        CheckConstraint("(product_id IS NULL) <> (sku IS NULL)", name="ck_own_products_one_kind"),
        CheckConstraint("variation_id IS NULL OR product_id IS NOT NULL", name="ck_own_products_variation"),
        Index("ix_own_products_sku", "sku", postgresql_where=text("sku IS NOT NULL")),
    )


class WaitingOrder(Base):
    """An open shop order with lines that matched nothing: it waits for a product map (or the owner's mark).

    ingest writes and forgets the row in the statement it runs for every order
    event (shared/orders/intake.py); status_poller's pickup loop sends the order
    down the normal path once a mapping makes one of its `lines` match
    (services/status_poller/shop_watch/mapping_pickup.py); `rewix-sync status` shows them.
    """

    __tablename__ = "waiting_orders"
    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    number: Mapped[str] = mapped_column(String(100), nullable=False, default="", server_default="")
    status: Mapped[str] = mapped_column(String(50), nullable=False)
    date_modified_gmt: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # The lines that matched nothing, [[product_id, variation_id, sku], ...] (shared/products/waiting.py).
    lines: Mapped[list[Any]] = mapped_column(JSONB, nullable=False)
    # The product lookup version the lines were resolved at: a newer one may make them match.
    lookup_version: Mapped[int] = mapped_column(BigInteger, nullable=False)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    # When the shop last told us of this order (an event, or the pickup loop's look).
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class MappingPickup(Base):
    """A paid order sent down the normal path once its product was mapped: its send tells the owner once.

    Written by the pickup loop before it submits the order; supplier_sync
    takes it when the dropshipping order is recorded and asks for the order
    notice "sent once its product was mapped" (shared/products/waiting.py).
    """

    __tablename__ = "mapping_pickups"
    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    picked_up_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class SendHold(Base):
    """A paid order that is locked but not sent until the owner says so (`backfill --send-paid`).

    Written by `rewix-sync backfill` for orders it found already paid: the
    owner may have placed them at the supplier by hand. A later webhook or
    catch-up of the same order leaves the hold in place.
    """

    __tablename__ = "send_holds"
    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    held_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OrderVersion(Base):
    """What ingest has seen of an order: its newest `date_modified_gmt`, and whether it ever had a supplier line.

    An event older than the newest date is refused, so a newest state that
    left the order without supplier lines still wins when older events arrive
    after it. An order that never had a supplier line costs the supplier
    nothing; one that had one is released when it loses the last. Both are
    read and written by one upsert of this row (shared/orders/intake.py), so two
    deliveries of one order at the same instant see each other.
    """

    __tablename__ = "order_versions"
    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # None until an event with a date is seen (a delete carries none).
    latest_modified_gmt: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    had_supplier_line: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=text("false"))


class ShopOrder(Base):
    __tablename__ = "shop_orders"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # WooCommerce order id
    number: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    status: Mapped[str] = mapped_column(String(50), nullable=False, index=True)
    date_modified_gmt: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    recipient: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    customer_note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    supplier_line_ids: Mapped[list[int]] = mapped_column(JSONB, nullable=False, default=list)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now())

    # The operator page's "needs attention" filter (services/admin/order_filters.py), part by part.
    __table_args__ = (Index("ix_shop_orders_attention", "id", postgresql_where=text("last_error IS NOT NULL")),)


class OrderLine(Base):
    """A supplier line of a shop order and its sync state."""

    __tablename__ = "order_lines"
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("shop_orders.id", ondelete="CASCADE"), primary_key=True)
    line_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    product_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    variation_id: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    stock_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    # The order state (date_modified_gmt) this line was last written from.
    version: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    removed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # pending, locked, short, sent, released, failed, dead_lettered
    sync_status: Mapped[str] = mapped_column(String(20), nullable=False, default=str(LineState.PENDING))
    sync_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        Index("ix_order_lines_attention", "order_id", postgresql_where=text(
            "NOT removed AND (sync_status IN ('dead_lettered', 'failed', 'short') OR sync_error IS NOT NULL)")),
    )


class StockLock(Base):
    """What the supplier's growing order held of a model when we last asked or set it."""

    __tablename__ = "stock_locks"
    stock_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    needed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    available: Mapped[int | None] = mapped_column(Integer)
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SupplierOrder(Base):
    """The dropshipping order created at the supplier for one shop order."""

    __tablename__ = "supplier_orders"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    shop_order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("shop_orders.id"), unique=True, nullable=False)
    key: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    supplier_order_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    substatus: Mapped[int | None] = mapped_column(Integer)
    tracking_code: Mapped[str | None] = mapped_column(Text)
    tracking_url: Mapped[str | None] = mapped_column(Text)
    carrier_name: Mapped[str | None] = mapped_column(Text)
    final: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # stock_id (as text) -> units it was sent with; None for orders sent before this was kept.
    items: Mapped[dict[str, int] | None] = mapped_column(JSONB)
    # Set when the shop order was cancelled, refunded or trashed after this was sent, or now wants
    # fewer units than were sent: an operator must act.
    cancelled_in_shop: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # When the flag was set (a trigger, migration 0013, whoever sets it).
    cancelled_in_shop_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # `rewix-sync orders handled`: a person dealt with it at the supplier.
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handled_by: Mapped[str | None] = mapped_column(Text)
    handled_note: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    next_poll_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_polled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        Index("ix_supplier_orders_due", "final", "next_poll_at"),
        Index("ix_supplier_orders_attention", "shop_order_id", postgresql_where=text(
            "handled_at IS NULL AND (cancelled_in_shop OR last_error IS NOT NULL OR (final AND status <> 3))")),
    )


class StatusHistory(Base):
    """One status a supplier order went through, and whether the shop has been told.

    Written and read with plain SQL by `services/status_poller/store.py`; the
    class declares the table for the migrations and the test clean-up.
    """

    __tablename__ = "supplier_status_history"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    supplier_order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("supplier_orders.id"), nullable=False)
    old_status: Mapped[int | None] = mapped_column(Integer)
    new_status: Mapped[int] = mapped_column(Integer, nullable=False)
    tracking_code: Mapped[str | None] = mapped_column(Text)
    tracking_url: Mapped[str | None] = mapped_column(Text)
    carrier_name: Mapped[str | None] = mapped_column(Text)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # new -> noting (a note write started) -> done
    shop_state: Mapped[str] = mapped_column(String(20), nullable=False, default="new")
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("supplier_order_id", "new_status", name="uq_status_history_once"),)


class SyncState(Base):
    """Small named values that must survive restarts (catch-up watermark, catalog lastUpdate)."""

    __tablename__ = "sync_state"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now())


class SupplierRequestBudget(Base):
    """The supplier's request budget every process shares: the next free request slot
    (seconds on the database's clock; shared/clients/rewix/budget.py). One row."""

    __tablename__ = "supplier_request_budget"
    __table_args__ = (CheckConstraint("id = 1", name="supplier_request_budget_one_row"),)
    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    next_free: Mapped[float] = mapped_column(Float(precision=53), nullable=False, server_default="0")


class DeadLetterRecord(Base):
    """A dead-lettered message moved from its dead-letter queue into operators' hands."""

    __tablename__ = "dead_letters"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(String(200), nullable=False)
    message_id: Mapped[str] = mapped_column(String(100), nullable=False)
    order_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    first_failed_at: Mapped[str | None] = mapped_column(String(40))
    last_failed_at: Mapped[str | None] = mapped_column(String(40))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("queue", "message_id", "last_failed_at", name="uq_dead_letter_once"),)


class AdminSession(Base):
    """A person logged in to the operator page: the cookie carries a random id, only its hash is kept.

    In the database so that every gunicorn worker (and every replica) sees the
    same sessions, and logout revokes one everywhere at once.
    """

    __tablename__ = "admin_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Which ADMIN_TOKEN opened it: a new token ends every session opened with the old one.
    token_fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)


class AdminLoginFailure(Base):
    """A wrong token sent to the operator page's login, by client address (for throttling)."""

    __tablename__ = "admin_login_failures"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(64), nullable=False)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)

    __table_args__ = (Index("ix_admin_login_failures_address_time", "address", "failed_at"),)


class ShopWebhookRecord(Base):
    """One of the shop's webhooks that delivers to this system, as the webhook check last saw it.

    WooCommerce keeps no history of a webhook's status, so the check does:
    when it last saw the webhook active (where the catch-up must look back to
    after the webhook was found off) and when it last re-activated it (for
    `rewix-sync webhooks status` and the operator page).
    """

    __tablename__ = "shop_webhooks"
    webhook_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    topic: Mapped[str] = mapped_column(String(100), nullable=False)
    delivery_url: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    last_checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen_active_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reactivated_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    last_reactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the check found when it last re-activated it: disabled (by WooCommerce) or paused.
    last_found_status: Mapped[str | None] = mapped_column(String(20))
    # From when the catch-up re-read the shop for that re-activation.
    last_off_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OrderNotice(Base):
    """A private note the shop owner reads once on a shop order: something that happened, not a problem.

    Once per (order, kind), however often it is asked for: a field fitted to
    the supplier's limits, an order sent once its product was mapped, a wait
    for payment. Written by whoever notices; status_poller writes the note
    (services/status_poller/shop_watch/problem_notes.py) and sets `sent_at`.
    """

    __tablename__ = "order_notices"
    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    note: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_order_notices_due", "created_at", postgresql_where=text("sent_at IS NULL")),)


class SupplierKey(Base):
    """The key a paid order is sent to the supplier under, chosen once and never changed.

    Written (and committed) before the first request, so every later attempt,
    after a crash or a renumbering plugin, asks for the same order.
    `first_sent_at` is set just before the first POST: an order whose key
    was never sent needs no lookup.
    """

    __tablename__ = "supplier_keys"
    shop_order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    chosen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    first_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("key", name="uq_supplier_keys_key"),)


class OrderProblem(Base):
    """A problem the shop owner is told of in a private order note, once, and once more when it clears.

    supplier_sync opens and clears problems; status_poller sends the notes
    (services/status_poller/shop_watch/problem_notes.py). `line_id` 0 is the order itself.
    """

    __tablename__ = "order_problems"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    line_id: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # short, refused_model, refused_order, dead_lettered
    note: Mapped[str] = mapped_column(Text, nullable=False)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    note_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    clear_note: Mapped[str | None] = mapped_column(Text)  # None: cleared without a note (the order was released)
    clear_note_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_order_problems_open", "order_id", "kind", "line_id", unique=True, postgresql_where=text("cleared_at IS NULL")),
        Index("ix_order_problems_order", "order_id"),
    )


class RefusedSource(Base):
    """Signed webhook deliveries ingest refused because they came from a site that is not the shop's.

    One row per `X-WC-Webhook-Source` as sent ("" when the header was
    missing): a staging copy of the shop that kept the webhooks and their
    secret, or a second address of the shop missing from WC_WEBHOOK_SOURCES.
    Each ingest process adds what it refused at most once a minute per source
    (shared/shop_state/site_records.py); `rewix-sync status` names the recent ones.
    """

    __tablename__ = "refused_sources"
    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    refused_count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    first_refused_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_refused_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ShopOrderMeta(Base):
    """The sync status last written on a shop order's meta, so each value is written once.

    status_poller's meta loop (services/status_poller/shop_watch/sync_meta.py) writes
    `rewix_sync_status` and `rewix_supplier_order` (shared/orders/sync_status.py)
    when they differ from what this row says was written.
    """

    __tablename__ = "shop_order_meta"
    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sync_status: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    supplier_order: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    # Why the shop refused these values (not tried again until they change); None: the shop has them.
    error: Mapped[str | None] = mapped_column(Text)
    # Set just before a write and cleared when its outcome is recorded: found set, a write may have
    # landed unrecorded (a crash, a timeout), so the shop is read before writing again.
    writing: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    # The shop has no such order any more: nothing is written to it again.
    gone: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    settled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class ShopMetaChange(Base):
    """An order whose sync status may have changed: appended by triggers, taken by the meta loop.

    Migration 0017's row triggers on shop_orders, order_lines, supplier_orders,
    send_holds and waiting_orders append the order's id when a column the
    sync status reads changes; the loop deletes the rows it handled, by id.
    """

    __tablename__ = "shop_meta_changes"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
