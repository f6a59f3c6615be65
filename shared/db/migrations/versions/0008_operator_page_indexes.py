"""indexes for the operator page: the open orders by status, and the orders needing attention

Revision ID: 0008_operator_page_indexes
Revises: 0007_supplier_keys_and_problems
Create Date: 2026-12-01 23:10:00

With a year of orders the page's reservations (the lines of the few hundred
open orders) and its "needs attention" filter scanned every order, line and
supplier order. The partial indexes' predicates are the filter's parts
(services/admin/order_filters.py, _ATTENTION) word for word: PostgreSQL uses
a partial index only for a query whose condition implies its predicate, and
tests/integration/test_admin_query_plans.py checks that it still does.
"""
from alembic import op
import sqlalchemy as sa

revision = "0008_operator_page_indexes"
down_revision = "0007_supplier_keys_and_problems"
branch_labels = None
depends_on = None

ORDER_ATTENTION = "last_error IS NOT NULL"
LINE_ATTENTION = "NOT removed AND (sync_status IN ('dead_lettered', 'failed', 'short') OR sync_error IS NOT NULL)"
SUPPLIER_ATTENTION = "cancelled_in_shop OR last_error IS NOT NULL OR (final AND status <> 3)"


def upgrade() -> None:
    op.create_index("ix_shop_orders_status", "shop_orders", ["status"])
    op.create_index("ix_shop_orders_attention", "shop_orders", ["id"], postgresql_where=sa.text(ORDER_ATTENTION))
    op.create_index("ix_order_lines_attention", "order_lines", ["order_id"], postgresql_where=sa.text(LINE_ATTENTION))
    op.create_index("ix_supplier_orders_attention", "supplier_orders", ["shop_order_id"],
                    postgresql_where=sa.text(SUPPLIER_ATTENTION))


def downgrade() -> None:
    op.drop_index("ix_supplier_orders_attention", table_name="supplier_orders")
    op.drop_index("ix_order_lines_attention", table_name="order_lines")
    op.drop_index("ix_shop_orders_attention", table_name="shop_orders")
    op.drop_index("ix_shop_orders_status", table_name="shop_orders")
