"""catalog names and sizes, order lines that matched nothing, paid orders held from sending

Revision ID: 0003_go_live
Revises: 0002_admin_sessions
Create Date: 2026-12-01 20:15:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0003_go_live"
down_revision = "0002_admin_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("catalog_models", sa.Column("name", sa.String(length=300), server_default="", nullable=False))
    op.add_column("catalog_models", sa.Column("size", sa.String(length=100), server_default="", nullable=False))
    op.create_table(
        "unmatched_lines",
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("variation_id", sa.BigInteger(), nullable=False),
        sa.Column("sku", sa.String(length=200), server_default="", nullable=False),
        sa.Column("last_order_id", sa.BigInteger(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("product_id", "variation_id"),
    )
    op.create_table(
        "send_holds",
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )


def downgrade() -> None:
    op.drop_table("send_holds")
    op.drop_table("unmatched_lines")
    op.drop_column("catalog_models", "size")
    op.drop_column("catalog_models", "name")
