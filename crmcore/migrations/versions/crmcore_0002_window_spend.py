"""crmcore: the kept per-customer window spend of the ABC analysis, and a
covering index for reading a label's values over the whole base, and one for
listing the live (not merged) customers.

Revision ID: crmcore_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "crmcore_0002"
down_revision = "crmcore_0001"
branch_labels = None
depends_on = None

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
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

    op.drop_index("ix_customer_labels_name_value", table_name="customer_labels")
    op.create_index(
        "ix_customer_labels_name_value_customer",
        "customer_labels",
        ["name", "value", "customer_id"],
    )
    op.create_index("ix_customers_merged_into_id", "customers", ["merged_into_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_customers_merged_into_id", table_name="customers")
    op.drop_index("ix_customer_labels_name_value_customer", table_name="customer_labels")
    op.create_index("ix_customer_labels_name_value", "customer_labels", ["name", "value"])
    op.drop_table("analytics_windows")
    op.drop_table("customer_window_spend")
