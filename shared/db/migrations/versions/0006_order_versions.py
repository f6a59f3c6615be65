"""the newest date_modified_gmt seen of every order, whatever its lines

Revision ID: 0006_order_versions
Revises: 0005_shop_webhooks
Create Date: 2026-12-01 20:40:00

Deliveries come in any order. ingest records, in the statement it runs for
every order event anyway, the newest `date_modified_gmt` it has seen of each
order, also of one without supplier lines, so an older event that arrives
after a newer one is refused there (shared/orders/intake.py): the newest state
wins even when it left the order with no supplier line.
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_order_versions"
down_revision = "0005_shop_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_versions",
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("latest_modified_gmt", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )


def downgrade() -> None:
    op.drop_table("order_versions")
