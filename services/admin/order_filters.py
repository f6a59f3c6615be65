"""The orders an operator asks for, a page at a time: filters and a search done by PostgreSQL.

A shop with a year of orders has tens of thousands of them; the page and
`rewix-sync orders` show one page (newest first) and only then read the
details of those rows (views.orders). Filters:

- needs attention: an error on the order or a line, a line short, failed or
  dead-lettered, or a supplier order that failed, was cancelled at the
  supplier or was cancelled in the shop after it was sent;
- shop status: the order's WooCommerce status;
- sync state: the order's most urgent line state, as the tables show it;
- search: the shop's order number (or the order id), whole or its beginning.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.rewix import DISPATCHED

PER_PAGE = 50
# The line states in the order views.most_urgent ranks them (most urgent first).
SYNC_STATES = ("dead_lettered", "failed", "short", "pending", "locked", "sent", "released")
SEARCH_MAX = 100

_RANK = "CASE l.sync_status " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(SYNC_STATES)) + " ELSE -1 END"

_ATTENTION = f"""(
    o.last_error IS NOT NULL
    OR EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id AND NOT l.removed
               AND (l.sync_status IN ('dead_lettered', 'failed', 'short') OR l.sync_error IS NOT NULL))
    OR EXISTS (SELECT 1 FROM supplier_orders s WHERE s.shop_order_id = o.id
               AND (s.cancelled_in_shop OR s.last_error IS NOT NULL OR (s.final AND s.status <> {int(DISPATCHED)})))
)"""


@dataclass(frozen=True)
class OrderFilter:
    attention: bool = False
    shop_status: str | None = None
    sync_state: str | None = None
    search: str | None = None

    @classmethod
    def from_values(cls, *, attention: Any = False, shop_status: str | None = None, sync_state: str | None = None,
                    search: str | None = None) -> "OrderFilter":
        """From a form or the command line: blanks are no filter; an unknown sync state is refused."""
        state = (sync_state or "").strip() or None
        if state is not None and state not in SYNC_STATES:
            raise ValueError(f"unknown sync state {state!r}: one of {', '.join(SYNC_STATES)}")
        query = (search or "").strip().lstrip("#")[:SEARCH_MAX] or None
        return cls(bool(attention), (shop_status or "").strip()[:50] or None, state, query)

    @property
    def active(self) -> bool:
        return bool(self.attention or self.shop_status or self.sync_state or self.search)

    def where(self) -> tuple[str, dict[str, Any]]:
        clauses = ["EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id)"]
        params: dict[str, Any] = {}
        if self.attention:
            clauses.append(_ATTENTION)
        if self.shop_status:
            clauses.append("o.status = :shop_status")
            params["shop_status"] = self.shop_status
        if self.sync_state:
            clauses.append(f"(SELECT min({_RANK}) FROM order_lines l WHERE l.order_id = o.id AND NOT l.removed)"
                           " = :sync_rank")
            params["sync_rank"] = SYNC_STATES.index(self.sync_state)
        if self.search:
            # The number whole or its beginning; LIKE's own characters in it are taken literally.
            escaped = self.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("(o.number LIKE :search_prefix OR CAST(o.id AS text) = :search)")
            params.update(search=self.search, search_prefix=escaped + "%")
        return " AND ".join(clauses), params


def order_ids(session: Session, order_filter: OrderFilter, *, limit: int | None, offset: int = 0) -> list[int]:
    """The ids of the matching orders, newest first (highest WooCommerce id first)."""
    where, params = order_filter.where()
    sql = f"SELECT o.id FROM shop_orders o WHERE {where} ORDER BY o.id DESC"
    if limit is not None:
        sql += " LIMIT :limit OFFSET :offset"
        params.update(limit=int(limit), offset=int(offset))
    return [row[0] for row in session.execute(text(sql), params)]


def count(session: Session, order_filter: OrderFilter) -> int:
    where, params = order_filter.where()
    return int(session.execute(text(f"SELECT count(*) FROM shop_orders o WHERE {where}"), params).scalar_one())


def shop_statuses(session: Session) -> list[str]:
    """The shop statuses the orders have, for the filter's choices."""
    return [row[0] for row in session.execute(text("SELECT DISTINCT status FROM shop_orders ORDER BY status"))]


@dataclass(frozen=True)
class OrdersPage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    per_page: int


def page_of_orders(session: Session, order_filter: OrderFilter, page: int, *, wc_url: str | None,
                   storage: str = "posts", per_page: int = PER_PAGE) -> OrdersPage:
    """One page (from 1) of the matching orders with their details; a page past the end shows the last."""
    from services.admin import views

    total = count(session, order_filter)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    ids = order_ids(session, order_filter, limit=per_page, offset=(page - 1) * per_page)
    rows = views.orders(session, wc_url, storage=storage, order_ids=ids)
    return OrdersPage(rows, total, page, pages, per_page)
