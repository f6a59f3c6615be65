"""the sync status written on shop orders: what was last written, and a log of the orders whose status may have changed

Revision ID: 0017_shop_order_meta
Revises: 0016_catalog_prices
Create Date: 2026-12-07 12:00:00

status_poller writes each shop order's `rewix_sync_status` and
`rewix_supplier_order` meta when they change (services/status_poller/shop_watch/sync_meta.py).
`shop_order_meta` remembers what was last written per order, so a value is
written once. `shop_meta_changes` says which orders to look at: a row trigger
on every table the status is computed from (shared/orders/sync_facts.py) appends the
order's id when a column the status reads changes (an update of any other
column, a poll's timestamps or a line's version, fires nothing: the triggers'
WHEN). Appending never waits on another writer; the loop deletes the rows it
has handled by id, so a change committed while it worked is seen next time.
Finding what changed costs one index scan of a small table, however many
orders there are.

Orders not finished when this runs (open, waiting, held, or sent and not
final) are put in the log once, so they get their meta; an order finished
before gets it when it next changes.
"""
import sqlalchemy as sa
from alembic import op

revision = "0017_shop_order_meta"
down_revision = "0016_catalog_prices"
branch_labels = None
depends_on = None

# table -> (the column naming the shop order, the columns the sync status reads or None for every update)
WATCHED = {
    "shop_orders": ("id", ("status", "deleted")),
    "order_lines": ("order_id", ("sync_status", "sync_error", "removed", "stock_id", "quantity")),
    "supplier_orders": ("shop_order_id", ("status", "supplier_order_id", "cancelled_in_shop")),
    "send_holds": ("order_id", ()),
    "waiting_orders": ("order_id", ("lines",)),
}


def upgrade() -> None:
    op.create_table(
        "shop_order_meta",
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("sync_status", sa.Text(), nullable=False, server_default=""),
        sa.Column("supplier_order", sa.Text(), nullable=False, server_default=""),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("writing", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("gone", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("settled_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_table(
        "shop_meta_changes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("""
        CREATE FUNCTION note_shop_meta_change() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            changed record;
            changed_order bigint;
        BEGIN
            IF TG_OP = 'DELETE' THEN changed := OLD; ELSE changed := NEW; END IF;
            IF TG_ARGV[0] = 'id' THEN changed_order := changed.id;
            ELSIF TG_ARGV[0] = 'shop_order_id' THEN changed_order := changed.shop_order_id;
            ELSE changed_order := changed.order_id;
            END IF;
            INSERT INTO shop_meta_changes (order_id) VALUES (changed_order);
            RETURN NULL;
        END
        $$
    """)
    for table, (key, columns) in WATCHED.items():
        op.execute(f"""
            CREATE TRIGGER shop_meta_change AFTER INSERT OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION note_shop_meta_change('{key}')
        """)
        if columns:
            old = ", ".join(f"OLD.{c}" for c in columns)
            new = ", ".join(f"NEW.{c}" for c in columns)
            op.execute(f"""
                CREATE TRIGGER shop_meta_change_update AFTER UPDATE ON {table}
                FOR EACH ROW WHEN (ROW({old}) IS DISTINCT FROM ROW({new}))
                EXECUTE FUNCTION note_shop_meta_change('{key}')
            """)
    op.execute("""
        INSERT INTO shop_meta_changes (order_id)
        SELECT o.id FROM shop_orders o LEFT JOIN supplier_orders s ON s.shop_order_id = o.id
        WHERE (NOT o.deleted AND o.status IN ('pending', 'on-hold', 'processing'))
           OR (s.id IS NOT NULL AND (NOT s.final OR s.cancelled_in_shop))
        UNION SELECT order_id FROM waiting_orders
        UNION SELECT order_id FROM send_holds
        ORDER BY 1
    """)


def downgrade() -> None:
    for table, (_key, columns) in WATCHED.items():
        op.execute(f"DROP TRIGGER shop_meta_change ON {table}")
        if columns:
            op.execute(f"DROP TRIGGER shop_meta_change_update ON {table}")
    op.execute("DROP FUNCTION note_shop_meta_change()")
    op.drop_table("shop_meta_changes")
    op.drop_table("shop_order_meta")
