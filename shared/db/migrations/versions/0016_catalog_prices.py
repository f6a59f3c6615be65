"""catalog_models keeps each model's unit price and its currency

Revision ID: 0016_catalog_prices
Revises: 0015_order_versions_lines
Create Date: 2026-12-08 09:00:00

`rewix-sync pay` shows what each supplier order waiting for payment costs:
the sum of its items' unit prices (before VAT) times their quantities, from
the catalog export (docs/rewix-api.md §6). A model whose export gives no
price keeps NULL, and the amount of an order holding it is "unknown". The
next `catalog sync` fills the prices in (a full download, or the products
changed since the last one).
"""
import sqlalchemy as sa
from alembic import op

revision = "0016_catalog_prices"
down_revision = "0015_order_versions_lines"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("catalog_models", sa.Column("price", sa.Numeric(14, 4), nullable=True))
    op.add_column("catalog_models", sa.Column("currency", sa.String(length=3), server_default="", nullable=False))


def downgrade() -> None:
    op.drop_column("catalog_models", "currency")
    op.drop_column("catalog_models", "price")
