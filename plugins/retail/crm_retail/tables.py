"""The retail plugin's own tables (SQLAlchemy Core). A ``customer_id`` column makes
a table customer data: the query layer filters it by the acting principal and a
merge moves it. ``info={"pii": ...}`` marks a personal column: masked for
principals without the ``pii`` permission (see crmcore.masking)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from crmcore.schema import NAMING, Id, customers, staff, transactions

metadata = MetaData(naming_convention=NAMING)


def _customer() -> Column:
    return Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, index=True)


members = Table(
    "retail_members",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, unique=True),
    Column("member_no", String(32), nullable=False, unique=True),
    Column("joined_at", DateTime, nullable=False),
    Column("tier", String(32), nullable=False),
    Column("tier_since", DateTime, nullable=False),
    Column("reviewed_at", DateTime, nullable=False),  # last downgrade review (or joining)
    Column("points_balance", BigInteger, nullable=False, default=0),
    Column("birthday", Date, info={"pii": True}),
)

# The points ledger: the balance is always the sum of ``delta``. Accrual and
# reward rows are lots with ``remaining`` (unredeemed, unexpired) points that
# redemption consumes and expiry clears, oldest first (FIFO).
points = Table(
    "retail_points",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _customer(),
    Column("at", DateTime, nullable=False),
    Column("delta", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # accrual | redeem | expire | reward
    Column("reason", Text, nullable=False, default=""),
    Column("ref", String(64), unique=True),  # tx:ID, dm:ID, expire:LOT: never twice
    Column("expires_at", DateTime),
    Column("remaining", BigInteger, nullable=False, default=0),
    Index("ix_retail_points_lots", "customer_id", "remaining", "at"),
)

member_day_benefits = Table(
    "retail_member_day_benefits",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _customer(),
    Column("transaction_id", Id, ForeignKey(transactions.c.id), nullable=False, unique=True),
    Column("day", Date, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("discount_cents", BigInteger, nullable=False),
    Column("extra_points", BigInteger, nullable=False),
)

service_plans = Table(
    "retail_service_plans",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, unique=True),
    Column("account_manager_id", Id, ForeignKey(staff.c.id)),
    Column("since", DateTime, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("ended_at", DateTime),
    Column("plan", Text, nullable=False, default=""),
)

dm_reports = Table(
    "retail_dm_reports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _customer(),
    Column("product", String(200), nullable=False),
    Column("promotion", String(100), nullable=False),
    Column("poster_price_cents", BigInteger, nullable=False),
    Column("till_price_cents", BigInteger, nullable=False),
    Column("reported_at", DateTime, nullable=False),
    Column("status", String(16), nullable=False),  # reported | verified | rejected
    Column("decided_at", DateTime),
    Column("decided_by", Id, ForeignKey(staff.c.id)),
    Column("note", Text),
    Column("reward_points", BigInteger, nullable=False, default=0),
    Column("reward_key", String(320), unique=True),  # promotion|product once rewarded
)

waitlist = Table(
    "retail_waitlist",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _customer(),
    Column("item", String(200), nullable=False),
    Column("item_key", String(200), nullable=False),
    Column("offer", String(200)),
    Column("contact_phone", String(32), info={"pii": "phone"}),
    Column("requested_at", DateTime, nullable=False),
    Column("status", String(16), nullable=False),  # waiting | notified | no_contact
    Column("notified_at", DateTime),
    Column("message_id", Id),
    Index("ix_retail_waitlist_item", "item_key", "status", "requested_at"),
)

surveys = Table(
    "retail_surveys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("at", DateTime, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("size", Integer, nullable=False),
    Column("recent_days", Integer, nullable=False),
    Column("buyers", Integer, nullable=False),
    info={"crm_kind": "record"},
)

survey_invites = Table(
    "retail_survey_invites",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("survey_id", Id, ForeignKey("retail_surveys.id"), nullable=False),
    _customer(),
    Column("invited_at", DateTime, nullable=False),
    Column("message_id", Id),
    Column("answered_at", DateTime),
    UniqueConstraint("survey_id", "customer_id", name="uq_retail_survey_invites_pair"),
)

survey_answers = Table(
    "retail_survey_answers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _customer(),
    Column("survey_id", Id, ForeignKey("retail_surveys.id")),
    Column("at", DateTime, nullable=False),
    Column("expected", Integer, nullable=False),
    Column("perceived", Integer, nullable=False),
    Column("comment", Text),
    Column("interaction_id", Id),
)

fuel_profiles = Table(
    "retail_fuel_profiles",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, unique=True),
    Column("plate", String(16), unique=True),
    Column("car_model", String(100)),
    Column("station", String(100)),
    Column("step", Integer, nullable=False),  # 1, 2 or 3: the steps done
    Column("step1_at", DateTime, nullable=False),
    Column("step2_at", DateTime),
    Column("step3_at", DateTime),
    Column("employer", String(200), info={"pii": True}),
    Column("consent_at", DateTime),
    Column("details", JSON, nullable=False, default=dict, info={"pii": True}),
)

callbacks = Table(
    "retail_callbacks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _customer(),
    Column("key", String(100), nullable=False, unique=True),
    Column("staff_id", Id, ForeignKey(staff.c.id)),
    Column("flagged_at", DateTime, nullable=False),
    Column("last_purchase_at", DateTime, nullable=False),
    Column("average_interval_days", Float, nullable=False),
    Column("days_since", Float, nullable=False),
    Column("reminder_id", Id),
    Column("outcome", Text),
    Column("outcome_at", DateTime),
)

TABLES = (
    members,
    points,
    member_day_benefits,
    service_plans,
    dm_reports,
    waitlist,
    surveys,
    survey_invites,
    survey_answers,
    fuel_profiles,
    callbacks,
)
