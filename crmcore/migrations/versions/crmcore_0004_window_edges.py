"""crmcore: the kept ABC window spend also keeps each customer's first
purchase after the window, and indexes it and the first purchase in the
window, so moving the window by a day finds the few customers an edge passes
as index ranges instead of scanning every kept row.

The kept figures are a cache: the tables are rebuilt empty and the next ABC
run computes every customer once.

Revision ID: crmcore_0004
"""

from __future__ import annotations

from alembic import op

from crmcore.migrate import create_tables
from crmcore.schema import analytics_windows, customer_window_spend

revision = "crmcore_0004"
down_revision = "crmcore_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP TABLE IF EXISTS customer_window_spend")
    op.execute("DROP TABLE IF EXISTS analytics_windows")
    create_tables(op, [customer_window_spend, analytics_windows])


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_customer_window_spend_next_after_window")
    op.execute("DROP INDEX IF EXISTS ix_customer_window_spend_first_in_window")
    op.execute("DELETE FROM analytics_windows")  # the next run recomputes every customer
    with op.batch_alter_table("customer_window_spend") as batch:
        batch.drop_column("next_after_window")
