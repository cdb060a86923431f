"""utility: service points, readings, advice, service tickets, escalations,
devices, inspections, bills, payments, dunning steps.

Every table and index is spelt out here rather than taken from the
plugin's declared tables, so this revision means the same thing however
they change later: each later change is a revision of its own.

Revision ID: utility_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "utility_0001"
down_revision = None
branch_labels = ("utility",)
depends_on = "crmcore_0001"

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# the tables in the order they are created (referenced before referencing)
TABLES = (
    "utility_escalations",
    "utility_service_points",
    "utility_advice",
    "utility_bills",
    "utility_devices",
    "utility_readings",
    "utility_service_tickets",
    "utility_dunning_steps",
    "utility_inspections",
    "utility_payments",
)


def upgrade() -> None:
    op.create_table(
        "utility_escalations",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("deadline", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("to_staff_id", ID, nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_utility_escalations_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_utility_escalations_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["to_staff_id"], ["staff.id"], name=op.f("fk_utility_escalations_to_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_utility_escalations")),
        sa.UniqueConstraint("ticket_id", "deadline", "level", name="uq_utility_escalations_level"),
    )
    op.create_index(
        op.f("ix_utility_escalations_customer_id"),
        "utility_escalations",
        ["customer_id"],
        unique=False,
    )
    op.create_table(
        "utility_service_points",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("meter_no", sa.String(length=64), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("voltage_level", sa.String(length=16), nullable=False),
        sa.Column("customer_class", sa.String(length=32), nullable=False),
        sa.Column("area", sa.String(length=16), nullable=False),
        sa.Column("contracted_kva", sa.Integer(), nullable=True),
        sa.Column("key_override", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_utility_service_points_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_utility_service_points")),
        sa.UniqueConstraint("meter_no", name=op.f("uq_utility_service_points_meter_no")),
    )
    op.create_index(
        op.f("ix_utility_service_points_customer_id"),
        "utility_service_points",
        ["customer_id"],
        unique=False,
    )
    op.create_table(
        "utility_advice",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("service_point_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("saving_cents", sa.BigInteger(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_utility_advice_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["service_point_id"],
            ["utility_service_points.id"],
            name=op.f("fk_utility_advice_service_point_id_utility_service_points"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_utility_advice")),
        sa.UniqueConstraint(
            "service_point_id", "day", "rule", name="uq_utility_advice_point_day_rule"
        ),
    )
    op.create_index(
        op.f("ix_utility_advice_customer_id"), "utility_advice", ["customer_id"], unique=False
    )
    op.create_table(
        "utility_bills",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("service_point_id", ID, nullable=True),
        sa.Column("bill_no", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid_cents", sa.BigInteger(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("settled_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_utility_bills_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["service_point_id"],
            ["utility_service_points.id"],
            name=op.f("fk_utility_bills_service_point_id_utility_service_points"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_utility_bills")),
        sa.UniqueConstraint("bill_no", name=op.f("uq_utility_bills_bill_no")),
    )
    op.create_index(
        op.f("ix_utility_bills_customer_id"), "utility_bills", ["customer_id"], unique=False
    )
    op.create_index(
        "ix_utility_bills_status_due", "utility_bills", ["status", "due_on"], unique=False
    )
    op.create_table(
        "utility_devices",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("service_point_id", ID, nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("rating", sa.String(length=64), nullable=False),
        sa.Column("installed_on", sa.Date(), nullable=True),
        sa.Column("interval_days", sa.Integer(), nullable=False),
        sa.Column("next_due", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_utility_devices_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["service_point_id"],
            ["utility_service_points.id"],
            name=op.f("fk_utility_devices_service_point_id_utility_service_points"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_utility_devices")),
    )
    op.create_index(
        op.f("ix_utility_devices_customer_id"), "utility_devices", ["customer_id"], unique=False
    )
    op.create_index("ix_utility_devices_next_due", "utility_devices", ["next_due"], unique=False)
    op.create_table(
        "utility_readings",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("service_point_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("interval_min", sa.Integer(), nullable=False),
        sa.Column("wh", sa.BigInteger(), nullable=False),
        sa.Column("varh", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_utility_readings_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["service_point_id"],
            ["utility_service_points.id"],
            name=op.f("fk_utility_readings_service_point_id_utility_service_points"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_utility_readings")),
        sa.UniqueConstraint("service_point_id", "at", name="uq_utility_readings_point_at"),
    )
    op.create_index(
        op.f("ix_utility_readings_customer_id"), "utility_readings", ["customer_id"], unique=False
    )
    op.create_table(
        "utility_service_tickets",
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("service_point_id", ID, nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("area", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("response_due", sa.DateTime(), nullable=False),
        sa.Column("on_site_due", sa.DateTime(), nullable=True),
        sa.Column("responded_at", sa.DateTime(), nullable=True),
        sa.Column("on_site_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_utility_service_tickets_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["service_point_id"],
            ["utility_service_points.id"],
            name=op.f("fk_utility_service_tickets_service_point_id_utility_service_points"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_utility_service_tickets_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_utility_service_tickets")),
    )
    op.create_index(
        op.f("ix_utility_service_tickets_customer_id"),
        "utility_service_tickets",
        ["customer_id"],
        unique=False,
    )
    op.create_index(
        "ix_utility_service_tickets_type_opened",
        "utility_service_tickets",
        ["type", "opened_at"],
        unique=False,
    )
    op.create_table(
        "utility_dunning_steps",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("bill_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("by_staff_id", ID, nullable=True),
        sa.Column("message_id", ID, nullable=True),
        sa.Column("disconnect_on", sa.Date(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["bill_id"],
            ["utility_bills.id"],
            name=op.f("fk_utility_dunning_steps_bill_id_utility_bills"),
        ),
        sa.ForeignKeyConstraint(
            ["by_staff_id"], ["staff.id"], name=op.f("fk_utility_dunning_steps_by_staff_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_utility_dunning_steps_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_utility_dunning_steps")),
        sa.UniqueConstraint("bill_id", "step", name="uq_utility_dunning_steps_bill_step"),
    )
    op.create_index(
        op.f("ix_utility_dunning_steps_customer_id"),
        "utility_dunning_steps",
        ["customer_id"],
        unique=False,
    )
    op.create_table(
        "utility_inspections",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("device_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("by_staff_id", ID, nullable=True),
        sa.Column("next_due", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["by_staff_id"], ["staff.id"], name=op.f("fk_utility_inspections_by_staff_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_utility_inspections_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["utility_devices.id"],
            name=op.f("fk_utility_inspections_device_id_utility_devices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_utility_inspections")),
    )
    op.create_index(
        op.f("ix_utility_inspections_customer_id"),
        "utility_inspections",
        ["customer_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_utility_inspections_device_id"), "utility_inspections", ["device_id"], unique=False
    )
    op.create_table(
        "utility_payments",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("bill_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["bill_id"],
            ["utility_bills.id"],
            name=op.f("fk_utility_payments_bill_id_utility_bills"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_utility_payments_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_utility_payments")),
        sa.UniqueConstraint("reference", name=op.f("uq_utility_payments_reference")),
    )
    op.create_index(
        op.f("ix_utility_payments_bill_id"), "utility_payments", ["bill_id"], unique=False
    )
    op.create_index(
        op.f("ix_utility_payments_customer_id"), "utility_payments", ["customer_id"], unique=False
    )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
