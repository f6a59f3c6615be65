"""a change marker for what the supplier must hold: a sequence every write to its tables moves on

Revision ID: 0009_reservation_changes
Revises: 0008_operator_page_indexes
Create Date: 2026-12-01 23:25:00

The operator page keeps the reservations table it built while nothing it is
built from has changed (shared/reservations/repository.py, `change_marker`).
A statement-level trigger on each of those tables takes the next value of
`reservation_changes`: once per statement, never waiting on another writer
(nextval is not transactional), so it costs the writers next to nothing.
"""
from alembic import op

revision = "0009_reservation_changes"
down_revision = "0008_operator_page_indexes"
branch_labels = None
depends_on = None

TABLES = ("order_lines", "shop_orders", "supplier_orders", "stock_locks")


def upgrade() -> None:
    op.execute("CREATE SEQUENCE reservation_changes")
    op.execute("""
        CREATE FUNCTION note_reservation_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM nextval('reservation_changes');
            RETURN NULL;
        END
        $$
    """)
    for table in TABLES:
        op.execute(f"""
            CREATE TRIGGER reservation_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION note_reservation_change()
        """)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER reservation_change ON {table}")
    op.execute("DROP FUNCTION note_reservation_change()")
    op.execute("DROP SEQUENCE reservation_changes")
