"""The plugin's own tables (SQLAlchemy Core), prefixed ``real_estate_``.

Tables with a ``customer_id`` column (unit owners, requests, revisits) are
customer data: the core's query layer filters them by the acting principal
and ``crm customer merge`` moves them.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
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


projects = Table(
    "real_estate_projects",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("code", String(32), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("city", String(100)),
    Column("design_life_years", Integer),  # NULL: the configured default
    Column("created_at", DateTime, nullable=False),
    info={"crm_kind": "configuration"},
)

buildings = Table(
    "real_estate_buildings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("project_id", Id, ForeignKey("real_estate_projects.id"), nullable=False),
    Column("code", String(32), nullable=False),
    Column("name", String(200)),
    # handover of the common parts; NULL: the building's earliest unit handover
    Column("handover_at", DateTime),
    UniqueConstraint("project_id", "code", name="uq_real_estate_buildings_project_code"),
    info={"crm_kind": "configuration"},
)

units = Table(
    "real_estate_units",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("building_id", Id, ForeignKey("real_estate_buildings.id"), nullable=False),
    Column("code", String(32), nullable=False),
    Column("handover_at", DateTime),  # NULL: not handed over yet
    UniqueConstraint("building_id", "code", name="uq_real_estate_units_building_code"),
    info={"crm_kind": "configuration"},
)

unit_owners = Table(
    "real_estate_unit_owners",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("unit_id", Id, ForeignKey("real_estate_units.id"), nullable=False, index=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, index=True),
    Column("role", String(16), nullable=False),  # owner | co-owner | tenant
    Column("since", DateTime, nullable=False),
    Column("until", DateTime),  # NULL: current
)

teams = Table(
    "real_estate_teams",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("code", String(32), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("leader_id", Id, ForeignKey(staff.c.id), nullable=False),
    info={"crm_kind": "configuration"},
)

team_coverage = Table(
    "real_estate_team_coverage",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("team_id", Id, ForeignKey("real_estate_teams.id"), nullable=False, index=True),
    Column("category", String(32), nullable=False),
    Column("building_id", Id, ForeignKey("real_estate_buildings.id")),  # NULL: every building
    Index("ix_real_estate_team_coverage_category", "category", "building_id"),
    info={"crm_kind": "configuration"},
)

requests = Table(
    "real_estate_requests",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ticket_id", Id, ForeignKey(tickets.c.id), nullable=False, unique=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, index=True),
    Column("unit_id", Id, ForeignKey("real_estate_units.id")),  # NULL: common parts
    Column("building_id", Id, ForeignKey("real_estate_buildings.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # repair | complaint
    Column("category", String(32), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("urgency", String(16), nullable=False),
    Column("description", Text, nullable=False),
    Column("state", String(32), nullable=False),  # mirrors the ticket's state
    Column("reported_at", DateTime, nullable=False),
    Column("warranty", String(8), nullable=False),  # in | out | n/a
    Column("warranty_reason", Text, nullable=False),
    Column("warranty_until", DateTime),
    Column("warranty_overridden", Boolean, nullable=False, default=False),
    Column("team_id", Id, ForeignKey("real_estate_teams.id"), index=True),
    Column("dispatched_at", DateTime),
    Column("deadline_at", DateTime, nullable=False),
    Column("started_at", DateTime),
    Column("completed_at", DateTime),
    Column("on_time", Boolean),  # set at completion: by the deadline and never reopened
    Column("escalation_level", Integer, nullable=False, default=0),
    Column("escalated_at", DateTime),
    Column("reopen_count", Integer, nullable=False, default=0),
    Column("satisfaction", Integer),  # the latest revisit's score
    Column("closed_at", DateTime),
    Index("ix_real_estate_requests_cluster", "building_id", "category", "reported_at"),
    Index("ix_real_estate_requests_state", "state", "deadline_at"),
)

revisits = Table(
    "real_estate_revisits",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("request_id", Id, ForeignKey("real_estate_requests.id"), nullable=False, index=True),
    Column("customer_id", Id, ForeignKey(customers.c.id), nullable=False, index=True),
    Column("team_id", Id, ForeignKey("real_estate_teams.id")),
    Column("round", Integer, nullable=False),  # the request's reopen count when revisited
    Column("at", DateTime, nullable=False),
    Column("satisfaction", Integer, nullable=False),
    Column("fixed", Boolean, nullable=False),
    Column("note", Text),
    Column("by_staff_id", Id, ForeignKey(staff.c.id)),
    UniqueConstraint("request_id", "round", name="uq_real_estate_revisits_request_round"),
)

incidents = Table(
    "real_estate_incidents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("building_id", Id, ForeignKey("real_estate_buildings.id"), nullable=False),
    Column("category", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # open | closed
    # "building:category" while open, NULL once closed: at most one open incident per cluster
    Column("open_key", String(80), unique=True),
    Column("opened_at", DateTime, nullable=False),
    Column("closed_at", DateTime),
    Column("note", Text),
    info={"crm_kind": "record"},
)

# An incident's membership is a fact about the building (a cluster counts every
# rep's requests): the links hold only ids and are shared working data; reading a
# request through them is still filtered by the request's customer.
incident_requests = Table(
    "real_estate_incident_requests",
    metadata,
    Column("incident_id", Id, ForeignKey("real_estate_incidents.id"), primary_key=True),
    Column("request_id", Id, ForeignKey("real_estate_requests.id"), primary_key=True),
    Column("linked_at", DateTime, nullable=False),
    UniqueConstraint("request_id", name="uq_real_estate_incident_requests_request"),
    info={"crm_kind": "record"},
)

TABLES = (
    projects,
    buildings,
    units,
    unit_owners,
    teams,
    team_coverage,
    requests,
    revisits,
    incidents,
    incident_requests,
)
