"""the shop's webhooks as the webhook check saw them: last seen active, re-activations

Revision ID: 0005_shop_webhooks
Revises: 0004_product_lookup_version
Create Date: 2026-12-01 20:35:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0005_shop_webhooks"
down_revision = "0004_product_lookup_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shop_webhooks",
        sa.Column("webhook_id", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("delivery_url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_active_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reactivated_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_reactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_found_status", sa.String(length=20), nullable=True),
        sa.Column("last_off_since", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("webhook_id"),
    )


def downgrade() -> None:
    op.drop_table("shop_webhooks")
