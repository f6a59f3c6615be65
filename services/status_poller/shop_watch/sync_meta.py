"""Writes each shop order's sync status into its meta, `rewix_sync_status` and `rewix_supplier_order`, when they change.

The values are shared/orders/sync_status.py's, from the facts shared/orders/sync_facts.py
reads: the same text `rewix-sync orders` shows. Triggers append an order to
`shop_meta_changes` whenever a column the status reads changes (migration
0017), so a pass with nothing changed is one query, however many orders
there are. Otherwise one status_poller replica at a time (a
transaction-level advisory lock) takes the oldest changes, computes each
order's values and compares them with what `shop_order_meta` says the shop
was given: only an order whose values differ is written, and only the keys
that differ. One order is written with `PUT /orders/{id}`, several with
`POST /orders/batch`, up to BATCH_LIMIT a request (fewer when the shop's
`woocommerce_rest_batch_items_limit` says so: its 413 is taken at its word),
REQUESTS_PER_SECOND at the most.

Once, never twice: the orders of a request are marked `writing` (committed)
before it is sent, and settled with what the shop answered after. One found
still marked (a crash, a timeout) is read from the shop before anything is
written again, so a write that landed unrecorded is not repeated. A value is
never a time or a count, so the shop's `order.updated` echo of a write
changes no fact and writes nothing (the echo goes down the webhook path like
any delivery; supplier_sync finds nothing to change at the supplier).

What fails: the shop down, a 5xx or 429 (the whole request, or one order's
item in a batch) leaves the orders' change rows in place: the next pass
tries them again, after a growing backoff when the whole pass failed. A
refused key (401/403, the shop's AccountRefused) stops the pass with nothing
counted against any order, and the loop waits until the shop accepts the key
again, as the other shop writes do (key_pause.py). An order the shop no
longer has (404, or 400 "Invalid ID." on an update, batch item or not) is
marked gone and never written again.
Any other refusal of one order (a plugin's validation) is recorded with its
reason and not tried again until the order's values change.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.clients.shop import WooCommerceClient
from shared.clients.shop.client import BATCH_LIMIT, BatchAnswer, order_gone
from shared.db import get_engine
from shared.failures import retry
from shared.failures.errors import AccountRefused, ExternalError, PermanentError, TransientError
from shared.observability import metrics
from shared.observability.health import HEALTH
from shared.observability.logging import bound_ids, get_logger
from shared.orders.sync_facts import read_facts
from shared.orders.sync_status import STATUS_META, SUPPLIER_ORDER_META, OrderFacts, supplier_order, sync_status
from services.status_poller.budget import RequestBudget
from services.status_poller.shop_watch import sync_meta_store as store
from services.status_poller.shop_watch.shop_statuses import ListedStatuses
from services.status_poller.shop_watch.sync_meta_store import Settled, Written
from services.status_poller.loop import run_loop

log = get_logger(__name__)

LOOP = "status_poller.sync_meta"
# How soon a change reaches the shop; an idle pass is one query.
INTERVAL_SECONDS = 2.0
# Change rows taken in one pass at the most; the rest in the next, at once.
PASS_LIMIT = 2000
# Requests per second the loop may spend on the shop at the most: a batch saves up to 100 orders.
REQUESTS_PER_SECOND = 2.0
# A batch of 100 saves takes WordPress a while; a request cut short is read back, not repeated.
SHOP_TIMEOUT = 60.0
# pg_try_advisory_xact_lock key of the meta loop ("rewixmet" as a number); no other lock uses it.
LOCK_KEY = 0x72657769786D6574
_LIMIT_IN_413 = re.compile(r"more than (\d+) items")

Meta = dict[str, str]


def wanted_meta(facts: OrderFacts | None) -> Meta:
    """The order's two meta values as the records have them now."""
    return {STATUS_META: sync_status(facts), SUPPLIER_ORDER_META: supplier_order(facts)}


def meta_to_write(want: Meta, have: Meta | None) -> Meta:
    """The keys whose value differs from what the shop has (`have`; None: not known, so every key set).

    A key the shop never had and that is still empty is not written: an order
    not sent gets no `rewix_supplier_order` before the supplier's id exists.
    """
    known = have or {}
    return {key: value for key, value in want.items()
            if value != known.get(key, "") or (have is None and value)}


def shop_has(written: Written | None) -> Meta | None:
    """What the shop holds, as far as the records know; None when they cannot say (refused values)."""
    if written is None:
        return {}
    if written.error is not None:
        return None  # refused: whatever the shop holds, it is not these values
    return {STATUS_META: written.sync_status, SUPPLIER_ORDER_META: written.supplier_order}


@dataclass(frozen=True)
class Decision:
    write: Meta  # the keys to write (empty: nothing to write)
    settle: bool = False  # nothing to write, but the record must say the shop has the values wanted


def decide(want: Meta, before: Written | None, read_back: Meta | None = None) -> Decision:
    """What to do for one order: `want` its values now, `before` its shop_order_meta row, `read_back`
    what the shop's meta said when a write of it was found under way (None: the shop did not list it)."""
    if before is not None and before.gone:
        return Decision({})  # the shop has no such order
    if before is not None and before.error is not None and not before.writing and want == _as_meta(before):
        return Decision({})  # refused as it is: tried again once the values change
    have = read_back if before is not None and before.writing else shop_has(before)
    meta = meta_to_write(want, have)
    if meta:
        return Decision(meta)
    return Decision({}, settle=before is not None and (
        before.writing or before.error is not None or _as_meta(before) != want))


@dataclass
class MetaPass:
    looked_at: int = 0  # orders whose changes were read
    written: int = 0  # orders whose meta the shop saved
    requests: int = 0  # PUTs and batches sent
    read_back: int = 0  # orders read from the shop because a write of theirs had not been recorded
    gone: int = 0  # orders the shop no longer has
    refused: int = 0  # orders the shop refused (recorded, not tried again until their values change)
    retry: int = 0  # orders left for the next pass (a transient failure of their own)
    skipped: bool = False  # another replica holds the pass
    more: bool = False  # PASS_LIMIT reached: the next pass follows at once
    written_ids: list[int] = field(default_factory=list)


class SyncMetaWriter:
    def __init__(self, database_url: str, shop: WooCommerceClient, interval: float = INTERVAL_SECONDS, *,
                 budget: RequestBudget | None = None, batch_size: int = BATCH_LIMIT) -> None:
        self.engine = get_engine(database_url)
        self.shop = shop
        self.interval = float(interval)
        self.budget = budget or RequestBudget(REQUESTS_PER_SECOND)
        self.batch_size = max(1, min(int(batch_size), BATCH_LIMIT))
        self.statuses = ListedStatuses(shop)
        self._in_loop = False  # run() beats /healthz; a pass run on its own does not

    def run(self, stop: threading.Event) -> None:
        log.info("order meta started", interval=self.interval)
        self._in_loop = True
        run_loop(stop, loop=LOOP, label="order meta pass", max_silence=self.interval + 300.0,
                 run_pass=lambda: 0.0 if self.run_once(stop).more else self.interval, shop=self.shop)
        self._in_loop = False
        log.info("order meta stopped")

    def run_once(self, stop: threading.Event | None = None) -> MetaPass:
        stop = stop or threading.Event()
        with self.engine.connect() as connection:
            pending = store.changes(connection, 1)
            connection.rollback()
        if not pending:
            return MetaPass()  # nothing changed since the last pass: the usual pass
        with self.engine.connect() as holder, holder.begin():
            if not holder.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}).scalar():
                return MetaPass(skipped=True)
            done = self._pass(stop)
        if done.written or done.gone or done.refused or done.retry:
            log.info("order meta written", written=done.written, requests=done.requests, gone=done.gone,
                     refused=done.refused, retry=done.retry, read_back=done.read_back)
        return done

    # -- one pass ----------------------------------------------------------------------------

    def _pass(self, stop: threading.Event) -> MetaPass:
        done = MetaPass()
        with Session(self.engine) as session, session.begin():
            changes = store.changes(session, PASS_LIMIT)
            order_ids = sorted({c.order_id for c in changes})
            facts = read_facts(session, order_ids)
            written = store.written(session, order_ids)
        done.looked_at, done.more = len(order_ids), len(changes) >= PASS_LIMIT
        rows_of: dict[int, list[int]] = {}
        for change in changes:
            rows_of.setdefault(change.order_id, []).append(change.id)
        want = {order_id: wanted_meta(facts.get(order_id)) for order_id in order_ids}
        # A write under way when the last pass ended (a crash, a timeout): what did the shop keep?
        read_back = self._read_back([o for o, w in written.items() if w.writing and not w.gone], done)
        to_write: dict[int, Meta] = {}
        settled_now: dict[int, Settled] = {}
        for order_id in order_ids:
            decision = decide(want[order_id], written.get(order_id), read_back.get(order_id))
            if decision.write:
                to_write[order_id] = decision.write
            elif decision.settle:
                settled_now[order_id] = _settled(want[order_id])
        with self.engine.begin() as connection:
            store.settle(connection, settled_now)
            store.forget(connection, [row for o in order_ids if o not in to_write for row in rows_of[o]])
        ids = sorted(to_write)
        one_at_a_time = len(ids) == 1
        while ids:
            if self._in_loop:
                HEALTH.beat(LOOP)  # a long pass of slow batches is work, not a stopped loop
            if not self.budget.acquire(stop):
                break
            chunk, ids = ids[:self.batch_size], ids[self.batch_size:]
            try:
                answers = self._send({o: to_write[o] for o in chunk}, single=one_at_a_time, done=done)
            except BatchTooLarge as refused:
                self.batch_size = refused.limit
                log.warning("the shop takes fewer orders a batch", batch_size=self.batch_size)
                ids = chunk + ids
                continue
            self._record(answers, {o: want[o] for o in chunk}, {o: rows_of[o] for o in chunk}, done)
        return done

    def _send(self, metas: Mapping[int, Meta], *, single: bool, done: MetaPass) -> list[BatchAnswer]:
        """Write; every order's outcome, or raise when the whole request failed (after recording what it means)."""
        ids = sorted(metas)
        with self.engine.begin() as connection:
            store.start_writing(connection, ids)
        done.requests += 1
        try:
            if single:
                [order_id] = ids
                try:
                    self.shop.update_order_meta(order_id, metas[order_id])
                    return [BatchAnswer(order_id)]
                except PermanentError as exc:
                    if exc.status == 413:
                        raise
                    return [BatchAnswer(order_id, exc)]  # this one order's refusal, as a batch item's
            return self.shop.update_orders_meta(metas)
        except TransientError as exc:
            if not exc.outcome_unknown:
                with self.engine.begin() as connection:
                    store.stop_writing(connection, ids)
            metrics.SHOP_META_WRITES.labels(outcome="retry").inc(len(ids))
            raise  # the orders stay marked when the shop may have saved them: the next pass reads them first
        except (PermanentError, AccountRefused) as exc:
            # Refused: the shop saved none of it. Refused keys are no order's fault: the loop waits for the shop.
            with self.engine.begin() as connection:
                store.stop_writing(connection, ids)
            if exc.status == 413:
                raise BatchTooLarge(_limit_of(exc, len(ids))) from None
            raise

    def _record(self, answers: Sequence[BatchAnswer], want: Mapping[int, Meta], rows_of: Mapping[int, list[int]],
                done: MetaPass) -> None:
        """One transaction for what a request came to; the change rows of the orders done are forgotten."""
        settled: dict[int, Settled] = {}
        gone: list[int] = []
        again: list[int] = []
        unkeyed: list[int] = []  # refused with the keys: no failure of theirs, written once the shop takes the keys
        refused_key: ExternalError | None = None
        answered = {a.order_id: a for a in answers}
        for order_id in sorted(want):
            answer = answered.get(order_id)
            with bound_ids(order_id=order_id):
                if answer is None:
                    again.append(order_id)  # the shop's answer left it out: read it back next pass
                    log.warning("the shop's batch answer says nothing of the order")
                    continue
                if answer.error is None:
                    settled[order_id] = _settled(want[order_id])
                    continue
                fate = retry.outcome_of(answer.error)
                if order_gone(answer.error):
                    gone.append(order_id)
                    log.warning("order meta not written: the shop has no such order", status=answer.error.status)
                elif isinstance(fate, retry.Paused):
                    refused_key = answer.error
                    unkeyed.append(order_id)
                elif isinstance(fate, retry.RetryLater):
                    again.append(order_id)
                    log.warning("order meta not written, tried again next pass", error=answer.error.reason[:300],
                                status=answer.error.status)
                else:
                    settled[order_id] = _settled(want[order_id], error=answer.error.reason)
                    log.error("the shop refused the order meta", error=answer.error.reason[:300],
                              status=answer.error.status)
        with self.engine.begin() as connection:
            store.settle(connection, settled)
            store.mark_gone(connection, gone)
            if answers:  # an item the answer named and failed was not saved: nothing to read back for it
                store.stop_writing(connection, [o for o in (*again, *unkeyed) if o in answered])
            store.forget(connection, [row for o in (*settled, *gone) for row in rows_of[o]])
        ok = [o for o, s in settled.items() if s.error is None]
        done.written += len(ok)
        done.written_ids += ok
        done.refused += len(settled) - len(ok)
        done.gone += len(gone)
        done.retry += len(again)
        for outcome, count in (("written", len(ok)), ("refused", len(settled) - len(ok)), ("gone", len(gone)),
                               ("retry", len(again))):
            if count:
                metrics.SHOP_META_WRITES.labels(outcome=outcome).inc(count)
        if refused_key is not None:
            raise refused_key

    def _read_back(self, order_ids: Iterable[int], done: MetaPass) -> dict[int, Meta | None]:
        """What the shop's meta says now, for orders whose last write was not recorded (100 ids a request);
        None for an order the shop did not list."""
        found: dict[int, Meta | None] = {}
        ids = sorted(order_ids)
        for start in range(0, len(ids), BATCH_LIMIT):
            chunk = ids[start:start + BATCH_LIMIT]
            try:
                orders = self.shop.get_orders(chunk, self.statuses.current())
            except PermanentError as exc:
                if exc.status == 400:
                    self.statuses.forget()  # a status list the shop no longer takes: asked again next time
                raise
            done.requests += 1
            for order in orders:
                meta = {m.get("key"): m.get("value") for m in order.get("meta_data") or [] if isinstance(m, dict)}
                found[int(order["id"])] = {key: str(meta.get(key) or "") for key in (STATUS_META, SUPPLIER_ORDER_META)}
            done.read_back += len(chunk)
        # An order the listing left out is written as if nothing were known: the write says if it is gone.
        return {order_id: found.get(order_id) for order_id in ids}


class BatchTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


def _limit_of(exc: ExternalError, sent: int) -> int:
    """The shop's batch limit from its 413 ("Unable to accept more than 50 items..."), else half of what was sent."""
    match = _LIMIT_IN_413.search(exc.reason)
    limit = int(match.group(1)) if match else sent // 2
    return max(1, min(limit, sent - 1 if sent > 1 else 1))


def _as_meta(written: Written) -> Meta:
    return {STATUS_META: written.sync_status, SUPPLIER_ORDER_META: written.supplier_order}


def _settled(meta: Meta, error: str | None = None) -> Settled:
    return Settled(meta[STATUS_META], meta[SUPPLIER_ORDER_META], error)
