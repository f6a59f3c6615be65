"""a version number that moves whenever the product map or the catalog changes

Revision ID: 0004_product_lookup_version
Revises: 0003_go_live
Create Date: 2026-12-01 20:20:00

ingest keeps the resolution of order lines to supplier models in memory
(shared/products/lookup.py) and reads this number in the statement it runs
for every order anyway: a product-map import, a catalog refresh or a manual
edit moves it, and the next order event sees the change. Statement-level
triggers catch every writer, TRUNCATE included; a sequence is never reset
by a TRUNCATE of the tables, so the number only grows.
"""
from alembic import op

revision = "0004_product_lookup_version"
down_revision = "0003_go_live"
branch_labels = None
depends_on = None

TABLES = ("product_map", "catalog_models")


def upgrade() -> None:
    op.execute("CREATE SEQUENCE product_lookup_version")
    op.execute(
        """
        CREATE FUNCTION bump_product_lookup_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM nextval('product_lookup_version');
            RETURN NULL;
        END $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION bump_product_lookup_version()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_truncated AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION bump_product_lookup_version()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_truncated ON {table}")
        op.execute(f"DROP TRIGGER {table}_changed ON {table}")
    op.execute("DROP FUNCTION bump_product_lookup_version()")
    op.execute("DROP SEQUENCE product_lookup_version")
