"""real_estate: the plugin's initial schema.

Revision ID: real_estate_0001
"""

from __future__ import annotations

from alembic import op
from crm_real_estate.tables import TABLES

from crmcore.migrate import create_tables

revision = "real_estate_0001"
down_revision = None
branch_labels = ("real_estate",)
depends_on = "crmcore_0001"


def upgrade() -> None:
    create_tables(op, TABLES)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table.name)
