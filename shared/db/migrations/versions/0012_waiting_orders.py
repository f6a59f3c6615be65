"""open orders waiting for a product map, the shop's own products, and the sends that follow a mapping

Revision ID: 0012_waiting_orders
Revises: 0011_refused_sources
Create Date: 2026-12-07 10:00:00

An open order with lines that matched no supplier model used to be forgotten:
mapping the product afterwards never picked it up. ingest now remembers it
(waiting_orders), in the statement it runs for every order event anyway, and
status_poller sends it down the normal path once a mapping makes a line
match. A product the owner marks as the shop's own (own_products) is never
the supplier's by its SKU and never makes an order wait; a mark moves the
product lookup version, like the product map and the catalog, so ingest
resolves its lines again. A paid order sent after such a wait is noted once
on the shop order when it is sent (mapping_pickups holds it until then).
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012_waiting_orders"
down_revision = "0011_refused_sources"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "own_products",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=True),
        sa.Column("variation_id", sa.BigInteger(), nullable=True),
        sa.Column("sku", sa.String(length=200), nullable=True),
        sa.Column("marked_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("product_id", "variation_id", "sku", name="uq_own_products_mark",
                            postgresql_nulls_not_distinct=True),
        sa.CheckConstraint("(product_id IS NULL) <> (sku IS NULL)", name="ck_own_products_one_kind"),
        sa.CheckConstraint("variation_id IS NULL OR product_id IS NOT NULL", name="ck_own_products_variation"),
    )
    op.create_index("ix_own_products_sku", "own_products", ["sku"], postgresql_where=sa.text("sku IS NOT NULL"))
    # The function and sequence of 0004_product_lookup_version: a mark changes what a line resolves to.
    op.execute(
        "CREATE TRIGGER own_products_changed AFTER INSERT OR UPDATE OR DELETE ON own_products "
        "FOR EACH STATEMENT EXECUTE FUNCTION bump_product_lookup_version()"
    )
    op.execute(
        "CREATE TRIGGER own_products_truncated AFTER TRUNCATE ON own_products "
        "FOR EACH STATEMENT EXECUTE FUNCTION bump_product_lookup_version()"
    )
    op.create_table(
        "waiting_orders",
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.String(length=100), server_default="", nullable=False),
        sa.Column("status", sa.String(length=50), nullable=False),
        sa.Column("date_modified_gmt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("lookup_version", sa.BigInteger(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_table(
        "mapping_pickups",
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("picked_up_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )


def downgrade() -> None:
    op.drop_table("mapping_pickups")
    op.drop_table("waiting_orders")
    op.execute("DROP TRIGGER own_products_truncated ON own_products")
    op.execute("DROP TRIGGER own_products_changed ON own_products")
    op.drop_index("ix_own_products_sku", table_name="own_products")
    op.drop_table("own_products")
