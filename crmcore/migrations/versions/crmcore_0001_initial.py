"""crmcore: the initial core schema.

Revision ID: crmcore_0001
"""

from __future__ import annotations

from alembic import op

from crmcore.migrate import create_tables
from crmcore.schema import metadata

revision = "crmcore_0001"
down_revision = None
branch_labels = ("crmcore",)
depends_on = None


LATER = {"customer_window_spend", "analytics_windows"}  # created by crmcore_0002


def upgrade() -> None:
    create_tables(op, [t for t in metadata.sorted_tables if t.name not in LATER])


def downgrade() -> None:
    for table in reversed(metadata.sorted_tables):
        if table.name not in LATER:
            op.drop_table(table.name)
