"""crmcore: the kept ABC window spend also keeps each customer's first
purchase in and after the window, indexed, so moving the window by a day finds
the few customers an edge passes as index ranges instead of scanning every
kept row; the window row keeps ``customer_stats``' row count and sums it was
computed from, so a run over unchanged figures skips the changed-customer pass.

The kept figures are a cache: both tables are rebuilt empty (on upgrade and on
downgrade) and the next ABC run computes every customer once.

Revision ID: crmcore_0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "crmcore_0004"
down_revision = "crmcore_0003"
branch_labels = None
depends_on = None

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.drop_table("analytics_windows")
    op.drop_table("customer_window_spend")
    op.create_table(
        "customer_window_spend",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("spend_cents", sa.BigInteger(), nullable=False),
        sa.Column("first_in_window", sa.DateTime(), nullable=True),
        sa.Column("next_after_window", sa.DateTime(), nullable=True),
        sa.Column("seen_tx_count", sa.Integer(), nullable=False),
        sa.Column("seen_spend_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_window_spend_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_window_spend")),
    )
    op.create_index(
        "ix_customer_window_spend_first_in_window", "customer_window_spend", ["first_in_window"]
    )
    op.create_index(
        "ix_customer_window_spend_next_after_window",
        "customer_window_spend",
        ["next_after_window"],
        sqlite_where=sa.text("next_after_window IS NOT NULL"),
        postgresql_where=sa.text("next_after_window IS NOT NULL"),
    )
    op.create_table(
        "analytics_windows",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=False),
        sa.Column("end_at", sa.DateTime(), nullable=False),
        sa.Column("stats_rows", sa.BigInteger(), nullable=False),
        sa.Column("stats_tx", sa.BigInteger(), nullable=False),
        sa.Column("stats_spend", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_analytics_windows")),
    )


def downgrade() -> None:
    # back to the tables as crmcore_0002 created them
    op.drop_table("analytics_windows")
    op.drop_table("customer_window_spend")
    op.create_table(
        "customer_window_spend",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("spend_cents", sa.BigInteger(), nullable=False),
        sa.Column("seen_tx_count", sa.Integer(), nullable=False),
        sa.Column("seen_spend_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_window_spend_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_window_spend")),
    )
    op.create_table(
        "analytics_windows",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=False),
        sa.Column("end_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_analytics_windows")),
    )
