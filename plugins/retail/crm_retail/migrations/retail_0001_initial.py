"""retail: the initial retail schema.

Revision ID: retail_0001
"""

from __future__ import annotations

from alembic import op
from crm_retail.tables import TABLES

from crmcore.migrate import create_tables

revision = "retail_0001"
down_revision = None
branch_labels = ("retail",)
depends_on = "crmcore_0001"


def upgrade() -> None:
    create_tables(op, TABLES)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table.name)
