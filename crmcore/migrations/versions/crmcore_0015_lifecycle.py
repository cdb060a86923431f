"""crmcore: lifecycle monitoring and follow-ups: exit reasons of lost
customers, follow-up playbook runs, and recurring reminders
(``reminders.repeat_every``; existing reminders keep NULL: they do not repeat).

Revision ID: crmcore_0015_lifecycle
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "crmcore_0015_lifecycle"
down_revision = "crmcore_0014_webhooks"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("reminders", sa.Column("repeat_every", sa.String(16), nullable=True))
    op.create_table(
        "exit_reasons",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("customer_id", Id, nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("by_staff_id", Id, nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_exit_reasons_customer_id_customers"
        ),
        sa.ForeignKeyConstraint(
            ["by_staff_id"], ["staff.id"], name="fk_exit_reasons_by_staff_id_staff"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_exit_reasons"),
    )
    op.create_index("ix_exit_reasons_customer_id", "exit_reasons", ["customer_id"])
    op.create_index("ix_exit_reasons_at", "exit_reasons", ["at"])
    op.create_table(
        "playbook_runs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("customer_id", Id, nullable=False),
        sa.Column("playbook", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("trigger", sa.String(100), nullable=False),
        sa.Column("staff_id", Id, nullable=True),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_playbook_runs_customer_id_customers"
        ),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name="fk_playbook_runs_staff_id_staff"),
        sa.PrimaryKeyConstraint("id", name="pk_playbook_runs"),
    )
    op.create_index(
        "ix_playbook_runs_customer_id", "playbook_runs", ["customer_id", "cancelled_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_playbook_runs_customer_id", table_name="playbook_runs")
    op.drop_table("playbook_runs")
    op.drop_index("ix_exit_reasons_at", table_name="exit_reasons")
    op.drop_index("ix_exit_reasons_customer_id", table_name="exit_reasons")
    op.drop_table("exit_reasons")
    with op.batch_alter_table("reminders") as batch:
        batch.drop_column("repeat_every")
