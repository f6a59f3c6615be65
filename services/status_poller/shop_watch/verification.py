"""The verification sweep: every order that holds units or waits to be sent, checked against the shop.

The catch-up only sees what the shop lists as modified; an order deleted for
good sends no webhook and is never listed again, and a catch-up watermark can
only be as good as the shop's clock. So every SHOP_VERIFY_INTERVAL_SECONDS one
status_poller replica (verification_store.claim_sweep) asks the shop for the
current state of every such order, 100 ids a request (`include=`, every
registered status plus `trash`, so a trashed order comes back as trashed).

It reads two steps deep, so a shop on a small host is not made to build
10,000 whole orders to say that nothing changed:

1. the versions: only `id,status,date_modified_gmt` of each order (`_fields=`),
   what the decision reads (which order; is it trashed; is it newer than the
   record); WooCommerce answers such a page in a few KB instead of ~200 KB;
2. the whole order, only for those that changed, 100 a request again
   (gathered across the sweep, so 40 changes spread over 10,000 orders cost
   one request, not 40): what goes down the webhook path is the whole order.

An id missing from either answer is asked for alone (GET /orders/{id}): a 404
means deleted, and the order is released; an order there in a status the list
did not name is taken as it is. An order the shop has trashed, or whose
`date_modified_gmt` is newer than the record's, goes down the webhook path
(OrderIntake), where the latest state wins as for any event. Requests are
spaced by a RequestBudget: 10,000 held orders cost about 100 requests and
under 1 MB read from the shop.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.clients.shop import WooCommerceClient
from shared.observability.health import HEALTH
from shared.observability.logging import bound_ids, get_logger
from shared.observability.metrics import VERIFICATION
from shared.orders.events import InvalidOrder
from shared.orders.intake import OrderIntake
from shared.shop_state.checks import PeriodicCheck
from services.status_poller.budget import RequestBudget, pace
from services.status_poller.shop_watch import verification_store as vstore
from services.status_poller.shop_watch.check_loop import run_check_loop
from services.status_poller.shop_watch.order_reader import ShopOrderReader, batches, newer_in_the_shop
from services.status_poller.shop_watch.shop_statuses import TRASH
from services.status_poller.shop_watch.verification_store import Recorded

log = get_logger(__name__)

BATCH = 100  # WooCommerce's per_page maximum
# What the first read asks of each order: which order (id) and what the decision reads of it.
VERSION_FIELDS = ("id", "status", "date_modified_gmt")
# Requests per second the sweep may spend on the shop at the most.
REQUESTS_PER_SECOND = 4.0
# The loop's name in /healthz.
LOOP = "status_poller.verification"


@dataclass(frozen=True)
class Sweep:
    checked: int = 0
    requests: int = 0
    deleted: int = 0
    trashed: int = 0
    updated: int = 0
    invalid: int = 0


class VerificationSweep(ShopOrderReader):
    def __init__(
        self,
        database_url: str,
        shop: WooCommerceClient,
        intake: OrderIntake,
        interval: float,
        *,
        budget: RequestBudget | None = None,
    ) -> None:
        super().__init__(database_url, shop, intake, interval)
        self.budget = budget or RequestBudget(REQUESTS_PER_SECOND)

    def run(self, stop: threading.Event) -> None:
        """Try to claim a sweep every few minutes; sweep when this replica got the claim."""
        log.info("shop verification started", interval=self.interval)
        check = PeriodicCheck(self.engine, VERIFICATION, self.interval)
        wake = min(60.0, max(1.0, self.interval / 4))

        def run_pass() -> float:
            if vstore.claim_sweep(self.engine, self.interval):
                done = self.sweep_once(stop)
                check.succeeded({"checked": done.checked, "requests": done.requests,
                                 "deleted": done.deleted, "trashed": done.trashed, "updated": done.updated})
            return wake

        def give_up_claim() -> None:
            try:
                vstore.give_up_claim(self.engine)
            except Exception:  # the database is what failed: the claim runs out by itself
                pass

        run_check_loop(stop, check, self.shop, loop=LOOP, label="shop verification",
                       max_silence=self.interval + 300.0, retry_first=5.0, retry_cap=min(300.0, self.interval),
                       run_pass=run_pass, after_failure=give_up_claim)
        log.info("shop verification stopped")

    def sweep_once(self, stop: threading.Event | None = None) -> Sweep:
        """One sweep over every order the records hold (no claim: `run` takes it)."""
        stop = stop or threading.Event()
        recorded = vstore.orders_to_verify(self.engine)
        # Spread the sweep's requests over the interval rather than bursting them.
        self.budget.set_demand(pace(self.budget.limit, -(-len(recorded) // BATCH), max(self.interval, 1.0) / 2))
        counts = {"requests": 0, "deleted": 0, "trashed": 0, "updated": 0, "invalid": 0}
        statuses: list[str] = []
        changed: list[Recorded] = []  # read whole, BATCH at a time
        for batch in batches(recorded, BATCH):
            if not statuses:
                statuses = self.statuses.current()
            if not self._request(stop, counts):
                break
            versions = _by_id(self.shop.get_orders([r.order_id for r in batch], statuses, fields=VERSION_FIELDS))
            for record in batch:
                version = versions.get(record.order_id)
                if version is None:
                    if not self._settle_missing(record, stop, counts):
                        break
                elif _changed(version, record):
                    changed.append(record)
            while len(changed) >= BATCH and not stop.is_set():
                self._read_whole(changed[:BATCH], statuses, stop, counts)
                del changed[:BATCH]
            HEALTH.beat(LOOP)
            if stop.is_set():
                break
        if changed and not stop.is_set():
            self._read_whole(changed, statuses, stop, counts)
        done = Sweep(checked=len(recorded), **counts)
        log.info("shop verification done", checked=done.checked, requests=done.requests, deleted=done.deleted,
                 trashed=done.trashed, updated=done.updated, invalid=done.invalid)
        return done

    def _read_whole(self, records: Sequence[Recorded], statuses: list[str], stop: threading.Event,
                    counts: dict[str, int]) -> None:
        """The whole orders of those whose version changed, submitted as their webhooks would be."""
        if not self._request(stop, counts):
            return
        found = _by_id(self.shop.get_orders([r.order_id for r in records], statuses))
        for record in records:
            order = found.get(record.order_id)
            if order is None:  # gone from the listing since its version was read
                if not self._settle_missing(record, stop, counts):
                    return
                continue
            with bound_ids(order_id=record.order_id):
                self._settle(order, record, counts)

    def _settle_missing(self, record: Recorded, stop: threading.Event, counts: dict[str, int]) -> bool:
        """An id the listing did not return: deleted for good (404), or in a status the list did not
        name, which is taken as it is. False when the sweep was stopped first."""
        if not self._request(stop, counts):
            return False
        with bound_ids(order_id=record.order_id):
            order = self.shop.find_order(record.order_id)
            if order is None:
                self._submit({"id": record.order_id}, "order.deleted", counts, "deleted")
            else:
                self._settle(order, record, counts)
        return True

    def _settle(self, order: dict[str, Any], record: Recorded, counts: dict[str, int]) -> None:
        if order.get("status") == TRASH:
            self._submit(order, "order.updated", counts, "trashed")
        elif newer_in_the_shop(order, record.date_modified_gmt):
            self._submit(order, "order.updated", counts, "updated")

    def _request(self, stop: threading.Event, counts: dict[str, int]) -> bool:
        if not self.budget.acquire(stop):
            return False
        counts["requests"] += 1
        return True

    def _submit(self, body: dict[str, Any], topic: str, counts: dict[str, int], outcome: str) -> None:
        try:
            self.intake.submit(body, topic, source="verification")
        except InvalidOrder as exc:
            counts["invalid"] += 1
            log.warning("verification skipped an order that is not valid", error=str(exc)[:300])
            return
        counts[outcome] += 1
        log.info("verification corrected an order", outcome=outcome, status=body.get("status"))


def _by_id(orders: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {int(o["id"]): o for o in orders if isinstance(o, dict) and "id" in o}


def _changed(version: dict[str, Any], record: Recorded) -> bool:
    """What the versions tell: the order is trashed, or newer in the shop than in the records."""
    return version.get("status") == TRASH or newer_in_the_shop(version, record.date_modified_gmt)
