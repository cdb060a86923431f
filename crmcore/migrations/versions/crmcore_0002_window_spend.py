"""crmcore: the kept per-customer window spend of the ABC analysis, and a
covering index for reading a label's values over the whole base, and one for
listing the live (not merged) customers.

Revision ID: crmcore_0002
"""

from __future__ import annotations

from alembic import op

from crmcore.migrate import create_tables
from crmcore.schema import analytics_windows, customer_window_spend

revision = "crmcore_0002"
down_revision = "crmcore_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tables(op, [customer_window_spend, analytics_windows])
    op.execute("DROP INDEX IF EXISTS ix_customer_labels_name_value")
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_customer_labels_name_value_customer "
        "ON customer_labels (name, value, customer_id)"
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_customers_merged_into_id ON customers (merged_into_id, id)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_customers_merged_into_id")
    op.execute("DROP INDEX IF EXISTS ix_customer_labels_name_value_customer")
    op.execute("CREATE INDEX ix_customer_labels_name_value ON customer_labels (name, value)")
    op.drop_table("analytics_windows")
    op.drop_table("customer_window_spend")
