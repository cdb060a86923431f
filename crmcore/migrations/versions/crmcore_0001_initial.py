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


def upgrade() -> None:
    create_tables(op, metadata.sorted_tables)


def downgrade() -> None:
    for table in reversed(metadata.sorted_tables):
        op.drop_table(table.name)
