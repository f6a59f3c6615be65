"""the supplier's request budget, shared by every process that calls it

Revision ID: 0019_supplier_request_budget
Revises: 0018_supplier_order_items
Create Date: 2026-12-07 03:20:00

One row: the next free request slot, in seconds on the database's clock
(shared/clients/rewix/budget.py). 0 means the supplier has not been called yet.
"""
import sqlalchemy as sa
from alembic import op

revision = "0019_supplier_request_budget"
down_revision = "0018_supplier_order_items"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "supplier_request_budget",
        sa.Column("id", sa.SmallInteger(), primary_key=True),
        sa.Column("next_free", sa.Float(precision=53), nullable=False, server_default="0"),
        sa.CheckConstraint("id = 1", name="supplier_request_budget_one_row"),
    )
    op.execute("INSERT INTO supplier_request_budget (id, next_free) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("supplier_request_budget")
