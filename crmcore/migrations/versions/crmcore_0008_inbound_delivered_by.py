"""crmcore: every inbound message records who or what delivered it (the staff
key of whoever ran ``crm sms receive``, or the gateway's channel name).
Messages stored before this revision keep NULL: their deliverer was not kept.

Revision ID: crmcore_0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "crmcore_0008"
down_revision = "crmcore_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("inbound_messages", sa.Column("delivered_by", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_column("delivered_by")
