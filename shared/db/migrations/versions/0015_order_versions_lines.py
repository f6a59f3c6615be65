"""order_versions says whether an order ever had a supplier line; known_orders goes

Revision ID: 0015_order_versions_lines
Revises: 0013_sent_orders_handled
Create Date: 2026-12-07 00:30:00

ingest read "has this order ever had a supplier line" from known_orders in
the statement that also inserted into it. Two deliveries of a new order at
the same instant could then both be dropped: the newer one's snapshot did not
see the older one's insert ("no supplier line") while the older one saw the
newer one's date ("older than a state already seen"). Kept in the
order_versions row instead, the flag is read and written by one upsert of one
row, which waits for a concurrent writer and sees what it committed.
A delete (which carries no date) writes the row too, so the date may be NULL.
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_order_versions_lines"
down_revision = "0013_sent_orders_handled"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("order_versions", sa.Column("had_supplier_line", sa.Boolean(), nullable=False,
                                              server_default=sa.false()))
    op.alter_column("order_versions", "latest_modified_gmt", nullable=True)
    op.execute("""
        INSERT INTO order_versions (order_id, latest_modified_gmt, had_supplier_line)
        SELECT order_id, NULL, true FROM known_orders
        ON CONFLICT (order_id) DO UPDATE SET had_supplier_line = true
    """)
    op.drop_table("known_orders")


def downgrade() -> None:
    op.create_table(
        "known_orders",
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.execute("INSERT INTO known_orders (order_id) SELECT order_id FROM order_versions WHERE had_supplier_line")
    op.execute("DELETE FROM order_versions WHERE latest_modified_gmt IS NULL")
    op.alter_column("order_versions", "latest_modified_gmt", nullable=False)
    op.drop_column("order_versions", "had_supplier_line")
