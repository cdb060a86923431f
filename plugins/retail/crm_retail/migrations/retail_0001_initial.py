"""retail: the initial retail schema.

Every table and index is spelt out here rather than taken from the
plugin's declared tables, so this revision means the same thing however
they change later: each later change is a revision of its own.

Revision ID: retail_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "retail_0001"
down_revision = None
branch_labels = ("retail",)
depends_on = "crmcore_0001"

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# the tables in the order they are created (referenced before referencing)
TABLES = (
    "retail_callbacks",
    "retail_dm_reports",
    "retail_fuel_profiles",
    "retail_member_day_benefits",
    "retail_members",
    "retail_points",
    "retail_service_plans",
    "retail_surveys",
    "retail_waitlist",
    "retail_survey_answers",
    "retail_survey_invites",
)


def upgrade() -> None:
    op.create_table(
        "retail_callbacks",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("staff_id", ID, nullable=True),
        sa.Column("flagged_at", sa.DateTime(), nullable=False),
        sa.Column("last_purchase_at", sa.DateTime(), nullable=False),
        sa.Column("average_interval_days", sa.Float(), nullable=False),
        sa.Column("days_since", sa.Float(), nullable=False),
        sa.Column("reminder_id", ID, nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("outcome_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_retail_callbacks_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_retail_callbacks_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retail_callbacks")),
        sa.UniqueConstraint("key", name=op.f("uq_retail_callbacks_key")),
    )
    op.create_index(
        op.f("ix_retail_callbacks_customer_id"), "retail_callbacks", ["customer_id"], unique=False
    )
    op.create_table(
        "retail_dm_reports",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("promotion", sa.String(length=100), nullable=False),
        sa.Column("poster_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("till_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by", ID, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reward_points", sa.BigInteger(), nullable=False),
        sa.Column("reward_key", sa.String(length=320), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_retail_dm_reports_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["staff.id"], name=op.f("fk_retail_dm_reports_decided_by_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retail_dm_reports")),
        sa.UniqueConstraint("reward_key", name=op.f("uq_retail_dm_reports_reward_key")),
    )
    op.create_index(
        op.f("ix_retail_dm_reports_customer_id"), "retail_dm_reports", ["customer_id"], unique=False
    )
    op.create_table(
        "retail_fuel_profiles",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("plate", sa.String(length=16), nullable=True),
        sa.Column("car_model", sa.String(length=100), nullable=True),
        sa.Column("station", sa.String(length=100), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("step1_at", sa.DateTime(), nullable=False),
        sa.Column("step2_at", sa.DateTime(), nullable=True),
        sa.Column("step3_at", sa.DateTime(), nullable=True),
        sa.Column("employer", sa.String(length=200), nullable=True),
        sa.Column("consent_at", sa.DateTime(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_retail_fuel_profiles_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retail_fuel_profiles")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_retail_fuel_profiles_customer_id")),
        sa.UniqueConstraint("plate", name=op.f("uq_retail_fuel_profiles_plate")),
    )
    op.create_table(
        "retail_member_day_benefits",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("transaction_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("discount_cents", sa.BigInteger(), nullable=False),
        sa.Column("extra_points", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_retail_member_day_benefits_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_retail_member_day_benefits_transaction_id_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retail_member_day_benefits")),
        sa.UniqueConstraint(
            "transaction_id", name=op.f("uq_retail_member_day_benefits_transaction_id")
        ),
    )
    op.create_index(
        op.f("ix_retail_member_day_benefits_customer_id"),
        "retail_member_day_benefits",
        ["customer_id"],
        unique=False,
    )
    op.create_table(
        "retail_members",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("member_no", sa.String(length=32), nullable=False),
        sa.Column("joined_at", sa.DateTime(), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("tier_since", sa.DateTime(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(), nullable=False),
        sa.Column("points_balance", sa.BigInteger(), nullable=False),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_retail_members_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retail_members")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_retail_members_customer_id")),
        sa.UniqueConstraint("member_no", name=op.f("uq_retail_members_member_no")),
    )
    op.create_table(
        "retail_points",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_retail_points_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retail_points")),
        sa.UniqueConstraint("ref", name=op.f("uq_retail_points_ref")),
    )
    op.create_index(
        op.f("ix_retail_points_customer_id"), "retail_points", ["customer_id"], unique=False
    )
    op.create_index(
        "ix_retail_points_lots", "retail_points", ["customer_id", "remaining", "at"], unique=False
    )
    op.create_table(
        "retail_service_plans",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("account_manager_id", ID, nullable=True),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_manager_id"],
            ["staff.id"],
            name=op.f("fk_retail_service_plans_account_manager_id_staff"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_retail_service_plans_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retail_service_plans")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_retail_service_plans_customer_id")),
    )
    op.create_table(
        "retail_surveys",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("recent_days", sa.Integer(), nullable=False),
        sa.Column("buyers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retail_surveys")),
        sa.UniqueConstraint("name", name=op.f("uq_retail_surveys_name")),
    )
    op.create_table(
        "retail_waitlist",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("item", sa.String(length=200), nullable=False),
        sa.Column("item_key", sa.String(length=200), nullable=False),
        sa.Column("offer", sa.String(length=200), nullable=True),
        sa.Column("contact_phone", sa.String(length=32), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("notified_at", sa.DateTime(), nullable=True),
        sa.Column("message_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_retail_waitlist_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retail_waitlist")),
    )
    op.create_index(
        op.f("ix_retail_waitlist_customer_id"), "retail_waitlist", ["customer_id"], unique=False
    )
    op.create_index(
        "ix_retail_waitlist_item",
        "retail_waitlist",
        ["item_key", "status", "requested_at"],
        unique=False,
    )
    op.create_table(
        "retail_survey_answers",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("survey_id", ID, nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("expected", sa.Integer(), nullable=False),
        sa.Column("perceived", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("interaction_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_retail_survey_answers_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["retail_surveys.id"],
            name=op.f("fk_retail_survey_answers_survey_id_retail_surveys"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retail_survey_answers")),
    )
    op.create_index(
        op.f("ix_retail_survey_answers_customer_id"),
        "retail_survey_answers",
        ["customer_id"],
        unique=False,
    )
    op.create_table(
        "retail_survey_invites",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("survey_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("invited_at", sa.DateTime(), nullable=False),
        sa.Column("message_id", ID, nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_retail_survey_invites_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["retail_surveys.id"],
            name=op.f("fk_retail_survey_invites_survey_id_retail_surveys"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retail_survey_invites")),
        sa.UniqueConstraint("survey_id", "customer_id", name="uq_retail_survey_invites_pair"),
    )
    op.create_index(
        op.f("ix_retail_survey_invites_customer_id"),
        "retail_survey_invites",
        ["customer_id"],
        unique=False,
    )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
