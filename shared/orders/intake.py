"""The one path every order event takes to RabbitMQ: webhooks, catch-up, verification and backfill.

Converts the order, records the lines that matched no supplier model
(shared/products/unmatched.py) and, while the order is open, that it waits for
a product map (shared/products/waiting.py), skips what costs the supplier
nothing (an order that never had a supplier line), remembers orders that had
one (so losing the last one still releases it), and publishes with confirms.
It returns only once RabbitMQ has confirmed every message.

The newest `date_modified_gmt` seen of every order is kept (order_versions),
also of one without supplier lines, and an event older than it is refused:
the latest state wins in any delivery order, and an order that never had a
supplier line still costs the supplier nothing. A webhook's delete or restore
goes out as one message to confirm with the shop (`confirm`), because the
topic header is not signed.

The database costs one statement per event in the usual case: line
resolutions come from a ProductLookupCache (shared/products/lookup.py), and
one autocommit statement, prepared once per connection, both remembers the
order (and its wait for a product map, or that it waits no more) and reads
the product lookup version that tells whether those resolutions still hold.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg2
import psycopg2.errors
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from shared.db import get_autocommit_engine
from shared.messaging import topology
from shared.messaging.amqp import Outgoing, Publishes
from shared.orders.events import Conversion, convert, refund_ids, refunded_quantities
from shared.products import unmatched as unmatched_lines, waiting as waiting_orders
from shared.products.lookup import ProductLookupCache

if TYPE_CHECKING:  # ingest never asks the shop: it does not load the client
    from shared.clients.shop import WooCommerceClient

# The open orders waiting for a product map (shared/products/waiting.py), kept in the same round trip:
# $5 NULL leaves the wait as it is; lines in $5 make the order wait on them (unless an event newer
# than this one was seen); no lines forget it (unless it waits on a newer state than this one).
WAIT_FOR_A_MAP = """, waits AS (
        INSERT INTO waiting_orders AS w (order_id, number, status, date_modified_gmt, lines, lookup_version)
        SELECT $1, $5->>'number', $5->>'status', $4, $5->'lines', $3 FROM version
        WHERE version.value = $3 AND jsonb_array_length($5->'lines') > 0
          AND NOT EXISTS (SELECT 1 FROM seen WHERE seen.latest_modified_gmt > $4)
        ON CONFLICT (order_id) DO UPDATE
        SET number = EXCLUDED.number, status = EXCLUDED.status, date_modified_gmt = EXCLUDED.date_modified_gmt,
            lines = EXCLUDED.lines, lookup_version = EXCLUDED.lookup_version, checked_at = now()
        WHERE w.date_modified_gmt <= EXCLUDED.date_modified_gmt
    ), waits_no_more AS (
        DELETE FROM waiting_orders w USING version
        WHERE w.order_id = $1 AND version.value = $3 AND jsonb_array_length($5->'lines') = 0
          AND ($4 IS NULL OR w.date_modified_gmt <= $4)
    )"""

# Remembers what this event tells of the order and reads what is known of it, in one round trip:
# its newest date_modified_gmt and whether it ever had a supplier line (only when the lines
# were resolved at the current product lookup version). Both live in the order's one
# order_versions row, written by one upsert: a concurrent event of the same order makes it
# wait, and it then reads what that event committed. (A flag read by a plain SELECT of the
# statement would see only the statement's snapshot: two deliveries of a new order at the
# same instant could then both be dropped.) `last_value + is_called` grows by one with
# every nextval, from 1 on.
# A prepared statement of each connection (PostgreSQL parses and plans it once):
# $1 order id, $2 it has supplier lines, $3 the lookup version resolved at, $4 its date_modified_gmt,
# $5 its wait for a product map (shared/products/waiting.py, `wait_of`).
REMEMBER_STATEMENT = "ingest_remember"
PREPARE_REMEMBER = f"""
    PREPARE {REMEMBER_STATEMENT} (bigint, boolean, bigint, timestamptz, jsonb) AS
    WITH version AS (
        SELECT last_value + is_called::int AS value FROM product_lookup_version
    ), seen AS (
        INSERT INTO order_versions AS v (order_id, latest_modified_gmt, had_supplier_line)
        SELECT $1, $4, COALESCE($2 AND version.value = $3, false) FROM version
        ON CONFLICT (order_id) DO UPDATE
        SET latest_modified_gmt = GREATEST(v.latest_modified_gmt, EXCLUDED.latest_modified_gmt),
            had_supplier_line = v.had_supplier_line OR EXCLUDED.had_supplier_line
        RETURNING latest_modified_gmt, had_supplier_line
    ){WAIT_FOR_A_MAP}
    SELECT version.value, seen.had_supplier_line, seen.latest_modified_gmt FROM version, seen
"""
REMEMBER = f"EXECUTE {REMEMBER_STATEMENT} (%(order_id)s, %(remember)s, %(version)s, %(modified)s, %(wait)s)"
# Topics whose webhook cannot be taken at its word: the signature does not cover the
# topic header, so a signed body replayed under one of these must change nothing until
# the shop confirms it.
UNCONFIRMED_TOPICS = frozenset({"order.deleted", "order.restored"})

# The product map changing under one event this many times in a row is an
# import running in a loop; the event is answered as a database failure and retried.
MAX_VERSION_CHANGES = 5


class LookupKeptChanging(RuntimeError):
    """The product lookup version moved during every try: the database is not settled."""


class OrderIntake:
    def __init__(self, database_url: str, publisher: Publishes, lookups: ProductLookupCache | None = None,
                 shop: WooCommerceClient | None = None) -> None:
        self.database_url = database_url
        self.publisher = publisher
        # Shared by every thread of a process when the caller passes one.
        self.lookups = lookups if lookups is not None else ProductLookupCache()
        # Where the refunded quantities of an order that lists refunds are read; without a shop
        # (ingest) such an order goes to supplier_sync to be read from the shop (`to_confirm`).
        self.shop = shop

    def submit(self, body: Any, topic: str, source: str = "webhook") -> Conversion:
        """Publish what the order event needs; raises InvalidOrder, BrokerUnavailable or the shop's ExternalError."""
        conversion = self._convert_and_remember(body, topic, source, self._refunded(body, topic))
        if conversion.messages:
            # Remembered before publishing: a message only exists for a known order.
            # All of the order's messages go out at once and are confirmed together.
            self.publisher.publish_all(
                [Outgoing(m.to_bytes(), topology.ORDER_LINE, m.message_id) for m in conversion.messages]
            )
        return conversion

    def _refunded(self, body: Any, topic: str) -> dict[int, int] | None:
        """Units refunded per line item, asked of the shop outside any database connection."""
        if self.shop is None or topic == "order.deleted":
            return None
        return read_refunds(self.shop, body)

    def _convert_and_remember(self, body: Any, topic: str, source: str, refunded: dict[int, int] | None) -> Conversion:
        engine = get_autocommit_engine(self.database_url)
        for attempt in (1, 2):
            try:
                with engine.connect() as connection:
                    return self._in(connection, body, topic, source, refunded)
            except DBAPIError as exc:
                # A connection PostgreSQL dropped since its last use (no ping on checkout): one fresh try.
                if attempt == 2 or not exc.connection_invalidated:
                    raise
                # What dropped one (a restart, connections terminated) dropped the others in the pool too.
                engine.dispose()
        raise AssertionError("unreachable")

    def _in(self, connection: Connection, body: Any, topic: str, source: str, refunded: dict[int, int] | None) -> Conversion:
        for _ in range(MAX_VERSION_CHANGES):
            version = self.lookups.version
            conversion = convert(body, topic, self.lookups.resolver(connection), source, refunded=refunded)
            if not conversion.messages:
                self._record_unmatched(connection, conversion)
                return conversion
            modified = conversion.messages[0].date_modified_gmt
            unconfirmed = topic in UNCONFIRMED_TOPICS and source == "webhook"
            current, known, latest = remember(
                connection,
                {"order_id": conversion.order_id, "remember": conversion.has_supplier_lines, "version": version,
                 "modified": modified, "wait": waiting_orders.wait_of(conversion, unconfirmed=unconfirmed, source=source)},
            )
            if current != version:
                # The map or the catalog changed (or this is the first event): resolve again.
                self.lookups.reset(current)
                continue
            self._record_unmatched(connection, conversion)
            if modified is not None and latest is not None and latest > modified:
                # A newer state of this order was seen already (maybe one without supplier
                # lines, which published nothing): the newest state wins, whatever came first.
                return Conversion(conversion.order_id, [], False, ignored="older than a state already seen")
            if not known:
                # Never had a supplier line: nothing to lock, nothing to release.
                return Conversion(conversion.order_id, [], False, ignored="no supplier line")
            if unconfirmed:
                return to_confirm(conversion, topic)
            if conversion.refunds_unread:
                # Only the shop knows how many units its refunds gave back: supplier_sync asks it.
                return to_confirm(conversion, "order.updated")
            return conversion
        raise LookupKeptChanging("the product map changed during every try")

    @staticmethod
    def _record_unmatched(connection: Connection, conversion: Conversion) -> None:
        if conversion.unmatched:
            unmatched_lines.record(Session(bind=connection), conversion.order_id, conversion.unmatched)


def read_refunds(shop: "WooCommerceClient", body: Any) -> dict[int, int] | None:
    """line item id -> units refunded when the order lists refunds (asked of the shop), else None."""
    if not refund_ids(body):
        return None
    return refunded_quantities(shop.list_refunds(int(body["id"])))


def remember(connection: Connection, parameters: dict[str, Any]) -> tuple[int, bool, Any]:
    """Run REMEMBER on the connection's own psycopg2 cursor, preparing it first where it is not yet.

    The DBAPI cursor, not `exec_driver_sql`: SQLAlchemy builds a result's
    metadata anew for every uncompiled statement, a tenth of ingest's CPU per
    webhook. A connection that fails is invalidated and the failure raised
    as SQLAlchemy's OperationalError, so the pool drops it and the caller
    tries once more on a new one, as with any other statement. A statement
    cancelled by the statement timeout is raised as it is: no second wait.
    """
    raw = connection.connection  # the pool's proxy of the psycopg2 connection
    try:
        with raw.cursor() as cursor:
            if not raw.info.get(REMEMBER_STATEMENT):  # kept with the DBAPI connection, new with a new one
                cursor.execute(PREPARE_REMEMBER)
                raw.info[REMEMBER_STATEMENT] = True
            cursor.execute(REMEMBER, parameters)
            return cursor.fetchone()
    except psycopg2.errors.QueryCanceled as exc:
        # The statement timeout (shared/db): the connection is fine, and trying again would
        # only wait as long once more.
        raise OperationalError(REMEMBER, None, exc, hide_parameters=True) from exc
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        connection.invalidate(exc)
        raise OperationalError(REMEMBER, None, exc, hide_parameters=True, connection_invalidated=True) from exc


def to_confirm(conversion: Conversion, topic: str) -> Conversion:
    """One message asking supplier_sync to read the order from the shop first: a delete or restore the
    webhook claimed, or an order whose refunds only the shop can say (services/supplier_sync/confirm.py)."""
    first = conversion.messages[0]
    claim = first.model_copy(update={"topic": topic, "line": None, "confirm": True})
    return Conversion(conversion.order_id, [claim], conversion.has_supplier_lines, unmatched=conversion.unmatched)
