"""a supplier order whose shop order was given up after sending: since when, and who handled it

Revision ID: 0013_sent_orders_handled
Revises: 0012_waiting_orders
Create Date: 2026-12-08 10:00:00

`cancelled_in_shop` says a person must act at the supplier; until now nothing
said since when, nor that a person had. `cancelled_in_shop_at` is set by a
trigger the moment the flag is set, by whichever writer sets it (a
cancellation, a trash, a refund); `handled_at`, `handled_by` and
`handled_note` are written by `rewix-sync orders handled`. A handled supplier
order no longer needs attention: the partial index of the "needs attention"
filter (services/admin/order_filters.py, _ATTENTION) leaves it out, word for
word as the filter does.
"""
from alembic import op
import sqlalchemy as sa

revision = "0013_sent_orders_handled"
down_revision = "0012_waiting_orders"
branch_labels = None
depends_on = None

OLD_SUPPLIER_ATTENTION = "cancelled_in_shop OR last_error IS NOT NULL OR (final AND status <> 3)"
SUPPLIER_ATTENTION = "handled_at IS NULL AND (cancelled_in_shop OR last_error IS NOT NULL OR (final AND status <> 3))"


def upgrade() -> None:
    op.add_column("supplier_orders", sa.Column("cancelled_in_shop_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("supplier_orders", sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("supplier_orders", sa.Column("handled_by", sa.Text(), nullable=True))
    op.add_column("supplier_orders", sa.Column("handled_note", sa.Text(), nullable=True))
    # Those flagged before this column existed: their last change is the best "since" known.
    op.execute("UPDATE supplier_orders SET cancelled_in_shop_at = updated_at WHERE cancelled_in_shop")
    op.execute("""
        CREATE FUNCTION note_cancelled_in_shop_at() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.cancelled_in_shop_at := now();
            RETURN NEW;
        END
        $$
    """)
    op.execute("""
        CREATE TRIGGER cancelled_in_shop_at BEFORE INSERT OR UPDATE OF cancelled_in_shop ON supplier_orders
        FOR EACH ROW WHEN (NEW.cancelled_in_shop AND NEW.cancelled_in_shop_at IS NULL)
        EXECUTE FUNCTION note_cancelled_in_shop_at()
    """)
    op.drop_index("ix_supplier_orders_attention", table_name="supplier_orders")
    op.create_index("ix_supplier_orders_attention", "supplier_orders", ["shop_order_id"],
                    postgresql_where=sa.text(SUPPLIER_ATTENTION))


def downgrade() -> None:
    op.drop_index("ix_supplier_orders_attention", table_name="supplier_orders")
    op.create_index("ix_supplier_orders_attention", "supplier_orders", ["shop_order_id"],
                    postgresql_where=sa.text(OLD_SUPPLIER_ATTENTION))
    op.execute("DROP TRIGGER cancelled_in_shop_at ON supplier_orders")
    op.execute("DROP FUNCTION note_cancelled_in_shop_at()")
    for column in ("handled_note", "handled_by", "handled_at", "cancelled_in_shop_at"):
        op.drop_column("supplier_orders", column)
