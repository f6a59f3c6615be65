"""signed webhook deliveries refused because they came from another site than the shop's, by source

Revision ID: 0011_refused_sources
Revises: 0010_order_notices
Create Date: 2026-12-07 00:10:00

One row per X-WC-Webhook-Source ingest refused (a staging copy of the shop,
a second address not configured): how many, first and last time, so that
`rewix-sync status` names it. Ingest writes a row at most once a minute per
source and process, adding up what it refused meanwhile.
"""
from alembic import op
import sqlalchemy as sa

revision = "0011_refused_sources"
down_revision = "0010_order_notices"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refused_sources",
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("refused_count", sa.BigInteger(), nullable=False),
        sa.Column("first_refused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_refused_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )


def downgrade() -> None:
    op.drop_table("refused_sources")
