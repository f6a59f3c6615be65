"""Writes the private order notes that tell the shop owner of a supplier problem, of its end, and notices.

supplier_sync opens and clears the problems (services/supplier_sync/problems.py,
stored in order_problems by shared/orders/problems.py); this loop writes each
note once: the problem's row stays locked (FOR UPDATE SKIP LOCKED, so another
status_poller skips it) from before the note is written until it is marked
told, and a note already on the order (a crash after writing it) is not
written again. Notices (shared/orders/notices.py), things that happened that
the owner reads once, are written the same way. While the shop refuses the
REST keys the loop waits for it (key_pause.py) and every note stays due.
"""
from __future__ import annotations

import threading

from sqlalchemy.orm import Session

from shared.clients.shop import WooCommerceClient
from shared.db import get_engine
from shared.failures.errors import PermanentError
from shared.observability.logging import bound_ids, get_logger
from shared.orders.notices import claim_due_notice, mark_sent
from shared.orders.problems import claim_due_note, mark_told
from services.status_poller.shop_updates import has_note
from services.status_poller.loop import run_loop

log = get_logger(__name__)

LOOP = "status_poller.problem_notes"
# How soon a problem reaches the shop; few are due, and an idle pass is one query.
INTERVAL_SECONDS = 2.0
# Notes written in one pass at the most, so a backlog does not starve the loop's heartbeat.
MAX_PER_PASS = 50


class ProblemNotes:
    def __init__(self, database_url: str, shop: WooCommerceClient, interval: float = INTERVAL_SECONDS) -> None:
        self.engine = get_engine(database_url)
        self.shop = shop
        self.interval = float(interval)

    def run(self, stop: threading.Event) -> None:
        log.info("problem notes started", interval=self.interval)
        def one_pass() -> float:
            self.run_once()
            return self.interval

        run_loop(stop, loop=LOOP, label="problem notes pass", max_silence=self.interval + 120.0, run_pass=one_pass, shop=self.shop)
        log.info("problem notes stopped")

    def run_once(self) -> int:
        """Write the notes due (up to MAX_PER_PASS of problems, then of notices); returns how many were written."""
        written = 0
        for _ in range(MAX_PER_PASS):
            with Session(self.engine) as session, session.begin():
                due = claim_due_note(session)
                if due is None:
                    break
                with bound_ids(order_id=due.order_id):
                    written += self._write(due.order_id, due.text)
                    log.info("problem note written" if not due.clearing else "problem cleared, note written",
                             problem_id=due.problem_id)
                    mark_told(session, due)
        for _ in range(MAX_PER_PASS):
            with Session(self.engine) as session, session.begin():
                notice = claim_due_notice(session)
                if notice is None:
                    break
                with bound_ids(order_id=notice.order_id):
                    written += self._write(notice.order_id, notice.text)
                    log.info("notice written", kind=notice.kind)
                    mark_sent(session, notice)
        return written

    def _write(self, order_id: int, text: str) -> int:
        """Write a private note once (1), or nothing (0) when it is there already or the order is gone.

        Written already (a crash between writing and marking)? Then it is only
        marked. Any other failure is raised: the row stays due for the next pass.
        """
        try:
            if has_note(self.shop.list_notes(order_id), text):
                return 0
            self.shop.add_note(order_id, text)
            return 1
        except PermanentError as exc:
            if exc.status not in (404, 410):
                raise  # any other refusal: the note waits for the next pass (refused keys are no PermanentError)
            # The shop no longer has this order: the note cannot be written, ever.
            log.warning("note not written: the shop has no such order", status=exc.status, error=exc.reason[:200])
            return 0
