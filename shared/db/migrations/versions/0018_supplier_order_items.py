"""what each dropshipping order was sent with, per stock_id

Revision ID: 0018_supplier_order_items
Revises: 0017_shop_order_meta
Create Date: 2026-12-07 01:30:00

A shop order refunded (or edited down) after it was sent wants fewer units
than the supplier will ship: a person must change the supplier's order. The
units sent are kept with the supplier order so that a later, smaller state
can be told from the one sent. NULL for orders sent before: they are judged
by their status only.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018_supplier_order_items"
down_revision = "0017_shop_order_meta"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("supplier_orders", sa.Column("items", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("supplier_orders", "items")
