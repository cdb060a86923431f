"""The plugin's own tables (SQLAlchemy Core, on a MetaData of its own).

Every table with a ``customer_id`` column is customer data: the core's query
layer filters it by the acting principal and merge moves it. Agents are staff
ids in columns named ``agent_id`` (never ``staff_id``: the query layer would
let a departed member of staff keep reading rows with their own ``staff_id``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

from crmcore.schema import NAMING, Id, customers, staff

metadata = MetaData(naming_convention=NAMING)

policies = Table(
    "insurance_policies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("policy_no", String(64), nullable=False, unique=True),
    # the policyholder (投保人): owns, pays, is served by the agent
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False),
    # the insured person (被保险人); NULL means the policyholder
    Column("insured_customer_id", Id, ForeignKey(customers.c.id)),
    Column("product_line", String(32), nullable=False),
    Column("product_name", String(200), nullable=False, default=""),
    Column("term", String(8), nullable=False),  # long | short
    Column("sum_at_risk_cents", BigInteger, nullable=False, default=0),
    Column("premium_cents", BigInteger, nullable=False, default=0),  # annualised premium
    Column("status", String(16), nullable=False, default="active"),
    Column("start_at", DateTime, nullable=False),
    Column("paid_to", DateTime),  # premiums paid up to: the next renewal premium is due then
    Column("payment_end", DateTime),  # last premium due (缴费满期)
    Column("maturity", DateTime),  # the contract ends (合同满期)
    Column("agent_id", Id, ForeignKey(staff.c.id)),  # serving agent; kept when the agent departs
    Column("created_at", DateTime, nullable=False),
    Column("data", JSON, nullable=False, default=dict),
    Index("ix_insurance_policies_customer_id", "customer_id"),
    Index("ix_insurance_policies_insured_customer_id", "insured_customer_id"),
    Index("ix_insurance_policies_agent_id", "agent_id"),
    Index("ix_insurance_policies_paid_to", "paid_to"),
    Index("ix_insurance_policies_payment_end", "payment_end"),
    Index("ix_insurance_policies_maturity", "maturity"),
)

# Benefits (给付) and claims (理赔) paid on a policy.
payouts = Table(
    "insurance_payouts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("policy_id", Id, ForeignKey("insurance_policies.id"), nullable=False, index=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # benefit | claim
    Column("amount_cents", BigInteger, nullable=False),
    Column("paid_at", DateTime, nullable=False, index=True),
    Column("note", Text, nullable=False, default=""),
)

visits = Table(
    "insurance_visits",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False),
    Column("agent_id", Id, ForeignKey(staff.c.id), nullable=False),
    Column("visited_at", DateTime, nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False, default="pending"),  # pending | verified
    Column("interaction_id", Id),
    # the verifying reply
    Column("reply_id", Id),
    Column("reply_at", DateTime),
    Column("reply_phone", String(64), info={"pii": "phone"}),
    Column("reply_text", Text),
    Column("score", SmallInteger),
    Column("created_at", DateTime, nullable=False),
    Index("ix_insurance_visits_customer_at", "customer_id", "visited_at"),
    Index("ix_insurance_visits_agent_at", "agent_id", "visited_at"),
)

# Every inbound SMS the plugin considered a visit reply, verified or not.
replies = Table(
    "insurance_sms_replies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("inbound_message_id", Id, nullable=False, unique=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), index=True),  # NULL: unknown number
    Column("from_address", String(64), nullable=False, info={"pii": "phone"}),
    Column("text", Text, nullable=False),
    Column("received_at", DateTime, nullable=False, index=True),
    Column("matched", Boolean, nullable=False, default=False),
    Column("visit_id", Id, ForeignKey("insurance_visits.id")),
    Column(
        "reason", String(32), nullable=False
    ),  # verified | unknown_number | no_visit | late | duplicate
    Column("detail", Text, nullable=False, default=""),
    Column("score", SmallInteger),
)

TABLES = (policies, payouts, visits, replies)
