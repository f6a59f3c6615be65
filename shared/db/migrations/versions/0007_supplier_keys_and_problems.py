"""the key each paid order is sent under, frozen before the first request; problems told to the shop owner

Revision ID: 0007_supplier_keys_and_problems
Revises: 0006_order_versions
Create Date: 2026-12-01 21:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0007_supplier_keys_and_problems"
down_revision = "0006_order_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No foreign key on purpose: the key is written in a transaction of its own
    # while the convergence transaction may hold the shop order's row.
    op.create_table(
        "supplier_keys",
        sa.Column("shop_order_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("chosen_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("first_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("shop_order_id"),
        sa.UniqueConstraint("key", name="uq_supplier_keys_key"),
    )
    op.create_table(
        "order_problems",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("line_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("note_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clear_note", sa.Text(), nullable=True),
        sa.Column("clear_note_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_order_problems_open", "order_problems", ["order_id", "kind", "line_id"], unique=True,
        postgresql_where=sa.text("cleared_at IS NULL"),
    )
    op.create_index("ix_order_problems_order", "order_problems", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_order_problems_order", table_name="order_problems")
    op.drop_index("uq_order_problems_open", table_name="order_problems")
    op.drop_table("order_problems")
    op.drop_table("supplier_keys")
