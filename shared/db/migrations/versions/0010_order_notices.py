"""notices the shop owner reads once on a shop order (a field shortened, an order sent late, a wait)

Revision ID: 0010_order_notices
Revises: 0009_reservation_changes
Create Date: 2026-12-06 23:40:00

Unlike a problem (order_problems), a notice never clears: it says a thing
that happened, once per order and kind, whoever asks for it again.
"""
from alembic import op
import sqlalchemy as sa

revision = "0010_order_notices"
down_revision = "0009_reservation_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_notices",
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("order_id", "kind"),
    )
    op.create_index("ix_order_notices_due", "order_notices", ["created_at"], postgresql_where=sa.text("sent_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_order_notices_due", table_name="order_notices")
    op.drop_table("order_notices")
