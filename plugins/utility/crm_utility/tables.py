"""The utility plugin's own tables (SQLAlchemy Core).

Every table that holds a customer's data carries ``customer_id``: the core's query
layer then filters it by the acting principal, and merge moves it. Money is integer
cents; energy is integer Wh / varh (exact sums on every backend).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from crmcore.schema import NAMING, Id, customers, staff, tickets

metadata = MetaData(naming_convention=NAMING)

service_points = Table(
    "utility_service_points",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, index=True),
    Column("meter_no", String(64), nullable=False, unique=True),
    Column("address", Text, nullable=False, info={"pii": True}),
    Column("voltage_level", String(16), nullable=False),
    Column("customer_class", String(32), nullable=False),
    Column("area", String(16), nullable=False),
    Column("contracted_kva", Integer),
    Column("key_override", Boolean),  # None: by rules; True/False: set by hand
    Column("created_at", DateTime, nullable=False),
)

readings = Table(
    "utility_readings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("service_point_id", Id, ForeignKey("utility_service_points.id"), nullable=False),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, index=True),
    Column("at", DateTime, nullable=False),  # start of the interval
    Column("interval_min", Integer, nullable=False),
    Column("wh", BigInteger, nullable=False),
    Column("varh", BigInteger),
    UniqueConstraint("service_point_id", "at", name="uq_utility_readings_point_at"),
)

advice = Table(
    "utility_advice",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, index=True),
    Column("service_point_id", Id, ForeignKey("utility_service_points.id"), nullable=False),
    Column("day", Date, nullable=False),
    Column("rule", String(32), nullable=False),
    Column("summary", Text, nullable=False),
    Column("saving_cents", BigInteger),  # estimated saving per month (30 days), if any
    Column("data", JSON, nullable=False, default=dict),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("service_point_id", "day", "rule", name="uq_utility_advice_point_day_rule"),
)

service_tickets = Table(
    "utility_service_tickets",
    metadata,
    Column("ticket_id", Id, ForeignKey(tickets.c.id), primary_key=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, index=True),
    Column("service_point_id", Id, ForeignKey("utility_service_points.id")),
    Column("type", String(32), nullable=False),
    Column("area", String(16), nullable=False),
    Column("opened_at", DateTime, nullable=False),
    Column("response_due", DateTime, nullable=False),
    Column("on_site_due", DateTime),  # None: no on-site visit for this type
    Column("responded_at", DateTime),
    Column("on_site_at", DateTime),
    Column("resolved_at", DateTime),
    Column("closed_at", DateTime),
    Index("ix_utility_service_tickets_type_opened", "type", "opened_at"),
)

escalations = Table(
    "utility_escalations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ticket_id", Id, ForeignKey(tickets.c.id), nullable=False),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, index=True),
    Column("deadline", String(16), nullable=False),  # response | on_site
    Column("level", Integer, nullable=False),
    Column("due_at", DateTime, nullable=False),
    Column("to_staff_id", Id, ForeignKey(staff.c.id)),
    Column("at", DateTime, nullable=False),
    UniqueConstraint("ticket_id", "deadline", "level", name="uq_utility_escalations_level"),
)

devices = Table(
    "utility_devices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, index=True),
    Column("service_point_id", Id, ForeignKey("utility_service_points.id")),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("rating", String(64), nullable=False),
    Column("installed_on", Date),
    Column("interval_days", Integer, nullable=False),
    Column("next_due", Date, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index("ix_utility_devices_next_due", "next_due"),
)

inspections = Table(
    "utility_inspections",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("device_id", Id, ForeignKey("utility_devices.id"), nullable=False, index=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, index=True),
    Column("at", DateTime, nullable=False),
    Column("result", String(16), nullable=False),  # ok | defect
    Column("notes", Text, nullable=False, default=""),
    Column("by_staff_id", Id, ForeignKey(staff.c.id)),
    Column("next_due", Date, nullable=False),
)

bills = Table(
    "utility_bills",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, index=True),
    Column("service_point_id", Id, ForeignKey("utility_service_points.id")),
    Column("bill_no", String(64), nullable=False, unique=True),
    Column("period", String(16), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("paid_cents", BigInteger, nullable=False, default=0),
    Column("issued_on", Date, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("status", String(16), nullable=False, default="open"),  # open | paid
    Column("settled_at", DateTime),
    Column("created_at", DateTime, nullable=False),
    Index("ix_utility_bills_status_due", "status", "due_on"),
)

payments = Table(
    "utility_payments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("bill_id", Id, ForeignKey("utility_bills.id"), nullable=False, index=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, index=True),
    Column("amount_cents", BigInteger, nullable=False),
    Column("at", DateTime, nullable=False),
    Column("reference", String(128), unique=True),
)

dunning_steps = Table(
    "utility_dunning_steps",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("bill_id", Id, ForeignKey("utility_bills.id"), nullable=False),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, index=True),
    Column("step", Integer, nullable=False),  # 1-based position on the ladder
    Column("name", String(64), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("by_staff_id", Id, ForeignKey(staff.c.id)),
    Column("message_id", Id),
    Column("disconnect_on", Date),  # the disconnection proposal only
    Column("note", Text, nullable=False, default=""),
    Column("withdrawn_at", DateTime),  # the bill was paid in full after this step
    UniqueConstraint("bill_id", "step", name="uq_utility_dunning_steps_bill_step"),
)

TABLES = (
    service_points,
    readings,
    advice,
    service_tickets,
    escalations,
    devices,
    inspections,
    bills,
    payments,
    dunning_steps,
)
