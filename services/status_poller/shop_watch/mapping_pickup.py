"""The mapping pickup: an open order that waited for a product map goes down the normal path once it matches.

ingest remembers every open order with lines that matched no supplier model
(shared/products/waiting.py). A mapping (`products import`, `products match
--import`, a `catalog sync` that brings the SKU's code) or a mark (`products
own`) moves the product lookup version. Every CHECK_SECONDS this loop reads
that version with the waiting orders resolved before it: with nothing
mapped, marked or synced since, that one query is the whole pass. Otherwise
one status_poller replica (a transaction-level advisory lock) resolves their
lines again (shared/products/mapping.py): an order with a line that matches now
is read from the shop, 100 ids a request (`include=`, every registered
status plus `trash`), and submitted through the OrderIntake as a webhook
would be (source "mapping"), so a pending order is locked and a paid one
sent by supplier_sync as usual. A paid order is marked first, so that its
send tells the owner once, in a private note, that it was sent once its
product was mapped (`prepare_pick_up`); a held one (shared/orders/send_holds.py)
stays held. Lines marked as the shop's own since stop counting, and an
order left waiting on nothing is let go.

Every LOOK_SECONDS the waiting orders the shop has told nothing of for as
long are read again too, so that one cancelled, completed or deleted without
its webhook reaching us leaves the list (`status` would show it for ever)
and one whose shop state is newer goes down the webhook path, as the
verification sweep does for the orders that hold units.

A pass that fails (the shop, RabbitMQ or the database down) loses nothing:
a waiting order's row changes only with its submission, so the next pass,
after a growing backoff, takes it again; while the shop refuses the REST
keys the loop waits for it instead (key_pause.py).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.clients.shop import WooCommerceClient
from shared.db import session_scope
from shared.observability.health import HEALTH
from shared.observability.logging import bound_ids, get_logger
from shared.orders.events import InvalidOrder
from shared.orders.intake import OrderIntake
from shared.products import waiting as waiting_orders
from shared.products.mapping import LineRef, ProductResolver
from shared.products.waiting import Waiting
from services.status_poller.budget import RequestBudget
from services.status_poller.shop_watch.order_reader import ShopOrderReader, batches, newer_in_the_shop
from services.status_poller.loop import run_loop

log = get_logger(__name__)

LOOP = "status_poller.mapping_pickup"
# How soon a mapping reaches its waiting orders; an idle pass is one query.
CHECK_SECONDS = 5.0
# A waiting order the shop has told nothing of for this long is read again.
LOOK_SECONDS = 3600.0
# How often the loop asks which waiting orders are due for that look.
LOOK_QUERY_SECONDS = 60.0
BATCH = 100  # WooCommerce's per_page maximum
# Waiting orders taken in one pass at the most; the rest in the next, at once.
PASS_LIMIT = 1000
# Requests per second the loop may spend on the shop at the most.
REQUESTS_PER_SECOND = 4.0
# pg_try_advisory_xact_lock key of the pickup ("rewixmap" as a number); no other lock uses it.
LOCK_KEY = 0x72657769786D6170


@dataclass
class PickupPass:
    picked_up: int = 0  # orders submitted because a line matches now
    let_go: int = 0  # orders that wait on nothing now (their lines marked as the shop's own)
    looked_at: int = 0  # orders read again because the shop had told nothing of them for long
    updated: int = 0  # of those, submitted because the shop's state was newer, trashed or gone
    invalid: int = 0
    skipped: bool = False  # another replica holds the pass
    more: bool = False  # PASS_LIMIT reached: the next pass follows at once
    outcomes: dict[int, str] = field(default_factory=dict)  # order_id -> what happened to it


class MappingPickup(ShopOrderReader):
    def __init__(self, database_url: str, shop: WooCommerceClient, intake: OrderIntake,
                 interval: float = CHECK_SECONDS, *, look_after: float = LOOK_SECONDS,
                 look_every: float = LOOK_QUERY_SECONDS, budget: RequestBudget | None = None) -> None:
        super().__init__(database_url, shop, intake, interval)
        self.look_after = float(look_after)
        self.look_every = float(look_every)
        self.budget = budget or RequestBudget(REQUESTS_PER_SECOND)
        self._next_look = 0.0  # monotonic: when to ask again which orders are due for a look

    def run(self, stop: threading.Event) -> None:
        log.info("mapping pickup started", interval=self.interval)
        run_loop(stop, loop=LOOP, label="mapping pickup", max_silence=self.interval + 300.0,
                 run_pass=lambda: 0.0 if self.run_once(stop).more else self.interval, shop=self.shop)
        log.info("mapping pickup stopped")

    def run_once(self, stop: threading.Event | None = None) -> PickupPass:
        stop = stop or threading.Event()
        look = time.monotonic() >= self._next_look
        with self.engine.connect() as connection:
            _, stale = waiting_orders.stale(connection, 1)
            connection.rollback()
        if not stale and not look:
            return PickupPass()  # nothing mapped, marked or synced since the last pass: the usual pass
        with self.engine.connect() as holder, holder.begin():
            if not holder.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}).scalar():
                return PickupPass(skipped=True)
            done = self._pass(stop, look)
        if look:
            self._next_look = time.monotonic() + min(self.look_every, self.look_after)
        return done

    def _pass(self, stop: threading.Event, look: bool) -> PickupPass:
        done = PickupPass()
        pick_up: dict[int, tuple[Waiting, tuple[LineRef, ...]]] = {}
        with Session(self.engine) as session, session.begin():
            version, rows = waiting_orders.stale(session, PASS_LIMIT)
            done.more = len(rows) >= PASS_LIMIT
            if rows:
                resolved = ProductResolver(session).resolve({r for row in rows for r in row.lines})
                sorted_out = waiting_orders.sort_out(rows, resolved)
                done.let_go = waiting_orders.settle(session, version, sorted_out.still)
                pick_up = {row.order_id: (row, matched) for row, matched in sorted_out.pick_up}
            due: dict[int, Waiting] = {}
            if look:
                due = {row.order_id: row for row in waiting_orders.due_for_a_look(session, self.look_after, PASS_LIMIT)
                       if row.order_id not in pick_up}
                if waiting_orders.forget_pickups_never_sent(session):
                    log.info("marks of picked-up orders that ended unsent forgotten")
        if done.let_go:
            log.info("orders no longer waiting for a product map: their lines are the shop's own", orders=done.let_go)
        ids = sorted(pick_up) + sorted(due)
        if not ids:
            return done
        statuses = self.statuses.current()
        for batch in batches(ids, BATCH):
            if not self.budget.acquire(stop):
                break
            found = {int(o["id"]): o for o in self.shop.get_orders(batch, statuses) if isinstance(o, dict) and "id" in o}
            for order_id in batch:
                with bound_ids(order_id=order_id):
                    order = found.get(order_id)
                    if order is None:
                        # Not in the listing: deleted for good, or in a status the list did not name.
                        if not self.budget.acquire(stop):
                            return done
                        order = self.shop.find_order(order_id)
                    if order_id in pick_up:
                        self._pick_up(*pick_up[order_id], order, version, done)
                    else:
                        self._look(due[order_id], order, done)
            with session_scope(self.database_url) as session:
                waiting_orders.looked_at(session, [i for i in batch if i in due])
            HEALTH.beat(LOOP)
            if stop.is_set():
                break
        log.info("mapping pickup done", picked_up=done.picked_up, let_go=done.let_go, looked_at=done.looked_at,
                 updated=done.updated, invalid=done.invalid)
        return done

    @property
    def database_url(self) -> str:
        return self.intake.database_url

    def _pick_up(self, row: Waiting, matched: tuple[LineRef, ...], order: dict[str, Any] | None, version: int,
                 done: PickupPass) -> None:
        """A line of this waiting order matches now: the order goes down the webhook path as the shop has it."""
        if order is None:
            if self._submit(row, {"id": row.order_id}, "order.deleted", done):
                done.outcomes[row.order_id] = "deleted in the shop"
            return
        with session_scope(self.database_url) as session:
            prepared = waiting_orders.prepare_pick_up(session, row.order_id, str(order.get("status") or ""), matched)
        if prepared == "sent already":
            log.warning("a product was mapped after its order was sent to the supplier: the owner is told",
                        products=[waiting_orders.describe(r) for r in matched])
        if self._submit(row, order, "order.updated", done):
            done.picked_up += 1
            done.outcomes[row.order_id] = f"picked up ({order.get('status')})"
            log.info("order picked up once its product was mapped", status=order.get("status"),
                     products=[waiting_orders.describe(r) for r in matched])
        else:
            # Not an order we can take (a 400 at ingest): it keeps waiting, untouched until the next mapping.
            with session_scope(self.database_url) as session:
                waiting_orders.settle(session, version, {row.order_id: row.lines})

    def _look(self, row: Waiting, order: dict[str, Any] | None, done: PickupPass) -> None:
        """The shop told nothing of this waiting order for long: is it still as we have it?"""
        done.looked_at += 1
        if order is None:
            if self._submit(row, {"id": row.order_id}, "order.deleted", done):
                done.updated += 1
        elif order.get("status") != row.status or newer_in_the_shop(order, row.date_modified_gmt):  # trashed, paid, newer
            if self._submit(row, order, "order.updated", done):
                done.updated += 1

    def _submit(self, row: Waiting, body: dict[str, Any], topic: str, done: PickupPass) -> bool:
        """Through the OrderIntake; once RabbitMQ confirmed it, the wait ends unless the order still waits.

        Raises what the intake raises for the shop's or the broker's failure: the row stays, the next
        pass takes it again.
        """
        try:
            self.intake.submit(body, topic, source=waiting_orders.PICKUP_SOURCE)
        except InvalidOrder as exc:
            done.invalid += 1
            log.warning("mapping pickup skipped an order that is not valid", error=str(exc)[:300])
            return False
        with session_scope(self.database_url) as session:
            waiting_orders.forget_unless_rewritten(session, row)
        return True

