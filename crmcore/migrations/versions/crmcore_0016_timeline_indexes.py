"""crmcore: indexes that give a customer's stage changes, ticket events and
messages in time order, so a timeline page reads only the rows it shows; and
one on ``customers.forgotten_at``, so analytics leave forgotten customers out
by reading a small index range.

Revision ID: crmcore_0016
"""

from __future__ import annotations

from alembic import op

revision = "crmcore_0016"
down_revision = "crmcore_0015_lifecycle"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_stage_changes_customer_at", "stage_changes", ["customer_id", "at"]),
    ("ix_ticket_events_ticket_at", "ticket_events", ["ticket_id", "at"]),
    ("ix_messages_customer_created", "messages", ["customer_id", "created_at"]),
    ("ix_customers_forgotten_at", "customers", ["forgotten_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
