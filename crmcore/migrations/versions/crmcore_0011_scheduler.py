"""crmcore: the scheduler's tick records, the worker's leases on outbox
messages, and the staff's console inbox.

- ``job_ticks``: one row per (job, tick time, UTC), claimed before the run, so a
  tick runs once across restarts and several schedulers;
- ``messages`` gains ``claimed_by``, ``lease_until`` and ``next_attempt_at``; a
  message that used all its attempts is now ``dead`` (was ``failed``);
- ``staff_notifications`` (the console inbox) and ``staff_channels`` (where a
  member of staff wants to be told).

Revision ID: crmcore_0011_scheduler
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "crmcore_0011_scheduler"
down_revision = "crmcore_0010_web_auth"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "job_ticks",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("job", sa.String(128), nullable=False),
        sa.Column("tick_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_ticks")),
        sa.UniqueConstraint("job", "tick_at", name="uq_job_ticks_job_tick"),
    )
    op.create_index("ix_job_ticks_status", "job_ticks", ["status", "next_attempt_at"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE messages SET status = 'dead' WHERE status = 'failed'")
    op.create_table(
        "staff_notifications",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("staff_id", ID, nullable=False),
        sa.Column("about", sa.String(32), nullable=False),
        sa.Column("about_id", ID, nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(500), nullable=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_staff_notifications_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_notifications")),
        sa.UniqueConstraint("key", name=op.f("uq_staff_notifications_key")),
    )
    op.create_index("ix_staff_notifications_staff", "staff_notifications", ["staff_id", "read_at"])
    op.create_index(
        "ix_staff_notifications_about",
        "staff_notifications",
        ["about", "about_id", "due_at", "staff_id"],
    )
    op.create_table(
        "staff_channels",
        sa.Column("staff_id", ID, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("address", sa.String(254), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_staff_channels_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("staff_id", name=op.f("pk_staff_channels")),
    )


def downgrade() -> None:
    op.drop_table("staff_channels")
    op.drop_index("ix_staff_notifications_about", table_name="staff_notifications")
    op.drop_index("ix_staff_notifications_staff", table_name="staff_notifications")
    op.drop_table("staff_notifications")
    # the old sender knows neither 'dead' nor leases
    op.execute("UPDATE messages SET status = 'failed' WHERE status = 'dead'")
    op.execute("UPDATE messages SET status = 'queued' WHERE status = 'sending'")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("next_attempt_at")
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
    op.drop_index("ix_job_ticks_status", table_name="job_ticks")
    op.drop_table("job_ticks")
