"""insurance: policies, payouts, visits and SMS replies.

Every table and index is spelt out here rather than taken from the
plugin's declared tables, so this revision means the same thing however
they change later: each later change is a revision of its own.

Revision ID: insurance_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "insurance_0001"
down_revision = None
branch_labels = ("insurance",)
depends_on = "crmcore_0001"

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# the tables in the order they are created (referenced before referencing)
TABLES = ("insurance_policies", "insurance_visits", "insurance_payouts", "insurance_sms_replies")


def upgrade() -> None:
    op.create_table(
        "insurance_policies",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("policy_no", sa.String(length=64), nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("insured_customer_id", ID, nullable=True),
        sa.Column("product_line", sa.String(length=32), nullable=False),
        sa.Column("product_name", sa.String(length=200), nullable=False),
        sa.Column("term", sa.String(length=8), nullable=False),
        sa.Column("sum_at_risk_cents", sa.BigInteger(), nullable=False),
        sa.Column("premium_cents", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=False),
        sa.Column("paid_to", sa.DateTime(), nullable=True),
        sa.Column("payment_end", sa.DateTime(), nullable=True),
        sa.Column("maturity", sa.DateTime(), nullable=True),
        sa.Column("agent_id", ID, nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["staff.id"], name=op.f("fk_insurance_policies_agent_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_insurance_policies_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["insured_customer_id"],
            ["customers.id"],
            name=op.f("fk_insurance_policies_insured_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insurance_policies")),
        sa.UniqueConstraint("policy_no", name=op.f("uq_insurance_policies_policy_no")),
    )
    op.create_index(
        "ix_insurance_policies_agent_id", "insurance_policies", ["agent_id"], unique=False
    )
    op.create_index(
        "ix_insurance_policies_customer_id", "insurance_policies", ["customer_id"], unique=False
    )
    op.create_index(
        "ix_insurance_policies_insured_customer_id",
        "insurance_policies",
        ["insured_customer_id"],
        unique=False,
    )
    op.create_index(
        "ix_insurance_policies_maturity", "insurance_policies", ["maturity"], unique=False
    )
    op.create_index(
        "ix_insurance_policies_paid_to", "insurance_policies", ["paid_to"], unique=False
    )
    op.create_index(
        "ix_insurance_policies_payment_end", "insurance_policies", ["payment_end"], unique=False
    )
    op.create_table(
        "insurance_visits",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("visited_at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("interaction_id", ID, nullable=True),
        sa.Column("reply_id", ID, nullable=True),
        sa.Column("reply_at", sa.DateTime(), nullable=True),
        sa.Column("reply_phone", sa.String(length=64), nullable=True),
        sa.Column("reply_text", sa.Text(), nullable=True),
        sa.Column("score", sa.SmallInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["staff.id"], name=op.f("fk_insurance_visits_agent_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_insurance_visits_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insurance_visits")),
    )
    op.create_index(
        "ix_insurance_visits_agent_at", "insurance_visits", ["agent_id", "visited_at"], unique=False
    )
    op.create_index(
        "ix_insurance_visits_customer_at",
        "insurance_visits",
        ["customer_id", "visited_at"],
        unique=False,
    )
    op.create_table(
        "insurance_payouts",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("policy_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_insurance_payouts_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["insurance_policies.id"],
            name=op.f("fk_insurance_payouts_policy_id_insurance_policies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insurance_payouts")),
    )
    op.create_index(
        op.f("ix_insurance_payouts_customer_id"), "insurance_payouts", ["customer_id"], unique=False
    )
    op.create_index(
        op.f("ix_insurance_payouts_paid_at"), "insurance_payouts", ["paid_at"], unique=False
    )
    op.create_index(
        op.f("ix_insurance_payouts_policy_id"), "insurance_payouts", ["policy_id"], unique=False
    )
    op.create_table(
        "insurance_sms_replies",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("inbound_message_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("from_address", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("matched", sa.Boolean(), nullable=False),
        sa.Column("visit_id", ID, nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_insurance_sms_replies_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["insurance_visits.id"],
            name=op.f("fk_insurance_sms_replies_visit_id_insurance_visits"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insurance_sms_replies")),
        sa.UniqueConstraint(
            "inbound_message_id", name=op.f("uq_insurance_sms_replies_inbound_message_id")
        ),
    )
    op.create_index(
        op.f("ix_insurance_sms_replies_customer_id"),
        "insurance_sms_replies",
        ["customer_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_insurance_sms_replies_received_at"),
        "insurance_sms_replies",
        ["received_at"],
        unique=False,
    )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
