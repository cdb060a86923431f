"""crmcore: the outbox records when each delivery attempt began.

A message is marked ``sending`` (its attempt counted, the time recorded) in a
committed transaction before its channel is called, and ``sent`` or back to
``queued``/``failed`` afterwards; a message a crash left in ``sending`` is
retried with the same idempotency key by the next ``crm outbox send``.

Revision ID: crmcore_0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "crmcore_0006"
down_revision = "crmcore_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("attempted_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    # a message caught mid-delivery is queued again: the old sender knows no 'sending'
    op.execute("UPDATE messages SET status = 'queued' WHERE status = 'sending'")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("attempted_at")
