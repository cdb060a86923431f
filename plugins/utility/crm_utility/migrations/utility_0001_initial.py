"""utility: service points, readings, advice, service tickets, escalations,
devices, inspections, bills, payments, dunning steps.

Revision ID: utility_0001
"""

from __future__ import annotations

from alembic import op
from crm_utility.tables import TABLES

from crmcore.migrate import create_tables

revision = "utility_0001"
down_revision = None
branch_labels = ("utility",)
depends_on = "crmcore_0001"


def upgrade() -> None:
    create_tables(op, TABLES)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table.name)
