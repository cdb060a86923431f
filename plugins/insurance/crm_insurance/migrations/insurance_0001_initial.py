"""insurance: policies, payouts, visits and SMS replies.

Revision ID: insurance_0001
"""

from __future__ import annotations

from alembic import op
from crm_insurance.tables import TABLES

from crmcore.migrate import create_tables

revision = "insurance_0001"
down_revision = None
branch_labels = ("insurance",)
depends_on = "crmcore_0001"


def upgrade() -> None:
    create_tables(op, TABLES)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table.name)
