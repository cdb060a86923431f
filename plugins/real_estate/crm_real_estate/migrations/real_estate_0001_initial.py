"""real_estate: the plugin's initial schema.

Every table and index is spelt out here rather than taken from the
plugin's declared tables, so this revision means the same thing however
they change later: each later change is a revision of its own.

Revision ID: real_estate_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "real_estate_0001"
down_revision = None
branch_labels = ("real_estate",)
depends_on = "crmcore_0001"

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# the tables in the order they are created (referenced before referencing)
TABLES = (
    "real_estate_projects",
    "real_estate_teams",
    "real_estate_buildings",
    "real_estate_incidents",
    "real_estate_team_coverage",
    "real_estate_units",
    "real_estate_requests",
    "real_estate_unit_owners",
    "real_estate_incident_requests",
    "real_estate_revisits",
)


def upgrade() -> None:
    op.create_table(
        "real_estate_projects",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("design_life_years", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_real_estate_projects")),
        sa.UniqueConstraint("code", name=op.f("uq_real_estate_projects_code")),
    )
    op.create_table(
        "real_estate_teams",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("leader_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["leader_id"], ["staff.id"], name=op.f("fk_real_estate_teams_leader_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_real_estate_teams")),
        sa.UniqueConstraint("code", name=op.f("uq_real_estate_teams_code")),
    )
    op.create_table(
        "real_estate_buildings",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("handover_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["real_estate_projects.id"],
            name=op.f("fk_real_estate_buildings_project_id_real_estate_projects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_real_estate_buildings")),
        sa.UniqueConstraint("project_id", "code", name="uq_real_estate_buildings_project_code"),
    )
    op.create_table(
        "real_estate_incidents",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("building_id", ID, nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("open_key", sa.String(length=80), nullable=True),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["building_id"],
            ["real_estate_buildings.id"],
            name=op.f("fk_real_estate_incidents_building_id_real_estate_buildings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_real_estate_incidents")),
        sa.UniqueConstraint("open_key", name=op.f("uq_real_estate_incidents_open_key")),
    )
    op.create_table(
        "real_estate_team_coverage",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("team_id", ID, nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("building_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["building_id"],
            ["real_estate_buildings.id"],
            name=op.f("fk_real_estate_team_coverage_building_id_real_estate_buildings"),
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["real_estate_teams.id"],
            name=op.f("fk_real_estate_team_coverage_team_id_real_estate_teams"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_real_estate_team_coverage")),
    )
    op.create_index(
        "ix_real_estate_team_coverage_category",
        "real_estate_team_coverage",
        ["category", "building_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_real_estate_team_coverage_team_id"),
        "real_estate_team_coverage",
        ["team_id"],
        unique=False,
    )
    op.create_table(
        "real_estate_units",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("building_id", ID, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("handover_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["building_id"],
            ["real_estate_buildings.id"],
            name=op.f("fk_real_estate_units_building_id_real_estate_buildings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_real_estate_units")),
        sa.UniqueConstraint("building_id", "code", name="uq_real_estate_units_building_code"),
    )
    op.create_table(
        "real_estate_requests",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("unit_id", ID, nullable=True),
        sa.Column("building_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.Column("warranty", sa.String(length=8), nullable=False),
        sa.Column("warranty_reason", sa.Text(), nullable=False),
        sa.Column("warranty_until", sa.DateTime(), nullable=True),
        sa.Column("warranty_overridden", sa.Boolean(), nullable=False),
        sa.Column("team_id", ID, nullable=True),
        sa.Column("dispatched_at", sa.DateTime(), nullable=True),
        sa.Column("deadline_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("escalated_at", sa.DateTime(), nullable=True),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["building_id"],
            ["real_estate_buildings.id"],
            name=op.f("fk_real_estate_requests_building_id_real_estate_buildings"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_real_estate_requests_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["real_estate_teams.id"],
            name=op.f("fk_real_estate_requests_team_id_real_estate_teams"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_real_estate_requests_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["real_estate_units.id"],
            name=op.f("fk_real_estate_requests_unit_id_real_estate_units"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_real_estate_requests")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_real_estate_requests_ticket_id")),
    )
    op.create_index(
        "ix_real_estate_requests_cluster",
        "real_estate_requests",
        ["building_id", "category", "reported_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_real_estate_requests_customer_id"),
        "real_estate_requests",
        ["customer_id"],
        unique=False,
    )
    op.create_index(
        "ix_real_estate_requests_state",
        "real_estate_requests",
        ["state", "deadline_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_real_estate_requests_team_id"), "real_estate_requests", ["team_id"], unique=False
    )
    op.create_table(
        "real_estate_unit_owners",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("unit_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_real_estate_unit_owners_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["real_estate_units.id"],
            name=op.f("fk_real_estate_unit_owners_unit_id_real_estate_units"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_real_estate_unit_owners")),
    )
    op.create_index(
        op.f("ix_real_estate_unit_owners_customer_id"),
        "real_estate_unit_owners",
        ["customer_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_real_estate_unit_owners_unit_id"),
        "real_estate_unit_owners",
        ["unit_id"],
        unique=False,
    )
    op.create_table(
        "real_estate_incident_requests",
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("linked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["real_estate_incidents.id"],
            name=op.f("fk_real_estate_incident_requests_incident_id_real_estate_incidents"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["real_estate_requests.id"],
            name=op.f("fk_real_estate_incident_requests_request_id_real_estate_requests"),
        ),
        sa.PrimaryKeyConstraint(
            "incident_id", "request_id", name=op.f("pk_real_estate_incident_requests")
        ),
        sa.UniqueConstraint("request_id", name="uq_real_estate_incident_requests_request"),
    )
    op.create_table(
        "real_estate_revisits",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("team_id", ID, nullable=True),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("satisfaction", sa.Integer(), nullable=False),
        sa.Column("fixed", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("by_staff_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["by_staff_id"], ["staff.id"], name=op.f("fk_real_estate_revisits_by_staff_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_real_estate_revisits_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["real_estate_requests.id"],
            name=op.f("fk_real_estate_revisits_request_id_real_estate_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["real_estate_teams.id"],
            name=op.f("fk_real_estate_revisits_team_id_real_estate_teams"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_real_estate_revisits")),
        sa.UniqueConstraint("request_id", "round", name="uq_real_estate_revisits_request_round"),
    )
    op.create_index(
        op.f("ix_real_estate_revisits_customer_id"),
        "real_estate_revisits",
        ["customer_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_real_estate_revisits_request_id"),
        "real_estate_revisits",
        ["request_id"],
        unique=False,
    )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
