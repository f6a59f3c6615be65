"""The orders an operator asks for, a page at a time: filters and a search done by PostgreSQL.

A shop with a year of orders has tens of thousands of them; the page and
`rewix-sync orders` show one page (newest first) and only then read the
details of those rows (views.orders). Filters:

- needs attention: an error on the order or a line, a line short, failed or
  dead-lettered, or a supplier order that failed, was cancelled at the
  supplier or was cancelled in the shop after it was sent, until a person
  records it handled (`rewix-sync orders handled`);
- shop status: the order's WooCommerce status;
- sync state: the order's most urgent line state, as the tables show it;
- search: the shop's order number (or the order id), whole or its beginning.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.clients.rewix import DISPATCHED
from shared.orders.vocabulary import LINE_STATES_BY_URGENCY, LINE_STATES_NEEDING_ATTENTION

PER_PAGE = 50
# The line states in the order views.most_urgent ranks them (most urgent first).
SYNC_STATES = tuple(str(s) for s in LINE_STATES_BY_URGENCY)
SEARCH_MAX = 100


def _rank(column: str) -> str:
    return f"CASE {column} " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(SYNC_STATES)) + " ELSE -1 END"


_NEEDING_ATTENTION = ", ".join(f"'{s}'" for s in sorted(LINE_STATES_NEEDING_ATTENTION))
# Each part a plain scan of one table, combined by UNION: far cheaper than OR-ed
# correlated subqueries over every order.
_ATTENTION = f"""o.id IN (
    SELECT id FROM shop_orders WHERE last_error IS NOT NULL
    UNION SELECT order_id FROM order_lines
          WHERE NOT removed AND (sync_status IN ({_NEEDING_ATTENTION}) OR sync_error IS NOT NULL)
    UNION SELECT shop_order_id FROM supplier_orders
          WHERE handled_at IS NULL
            AND (cancelled_in_shop OR last_error IS NOT NULL OR (final AND status <> {int(DISPATCHED)}))
)"""
# The order has a line in the state, and none in a more urgent one (views.most_urgent).
_SYNC_STATE = f"""o.id IN (SELECT order_id FROM order_lines WHERE NOT removed AND sync_status = :sync_state)
    AND NOT EXISTS (SELECT 1 FROM order_lines m WHERE m.order_id = o.id AND NOT m.removed
                    AND {_rank("m.sync_status")} < :sync_rank)"""


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
        # Every recorded order had supplier lines (ingest publishes nothing for one that never had):
        # one whose lines are all gone still shows, with none left.
        clauses = ["TRUE"]
        params: dict[str, Any] = {}
        if self.attention:
            clauses.append(_ATTENTION)
        if self.shop_status:
            clauses.append("o.status = :shop_status")
            params["shop_status"] = self.shop_status
        if self.sync_state:
            clauses.append(_SYNC_STATE)
            params.update(sync_state=self.sync_state, sync_rank=SYNC_STATES.index(self.sync_state))
        if self.search:
            # The number whole or its beginning; LIKE's own characters in it are taken literally.
            escaped = self.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("(o.number LIKE :search_prefix OR CAST(o.id AS text) = :search)")
            params.update(search=self.search, search_prefix=escaped + "%")
        return " AND ".join(clauses), params


def order_ids(session: Session, order_filter: OrderFilter, *, limit: int | None, offset: int = 0) -> list[int]:
    """The ids of the matching orders, newest first (highest WooCommerce id first: the primary key, backwards)."""
    where, params = order_filter.where()
    sql = f"SELECT o.id FROM shop_orders o WHERE {where} ORDER BY o.id DESC"
    if limit is not None:
        sql += " LIMIT :limit OFFSET :offset"
        params.update(limit=int(limit), offset=int(offset))
    return [row[0] for row in session.execute(text(sql), params)]


def count(session: Session, order_filter: OrderFilter) -> int:
    where, params = order_filter.where()
    return int(session.execute(text(f"SELECT count(*) FROM shop_orders o WHERE {where}"), params).scalar_one())


# WooCommerce's own order statuses, for the filter's choices (a plugin's own status can still be
# asked for by name: `rewix-sync orders --shop-status`, or `?shop_status=` on the page).
SHOP_STATUSES = ("pending", "on-hold", "processing", "completed", "cancelled", "refunded", "failed", "trash",
                 "checkout-draft")


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
