"""crmcore: sign-in for the HTTP API: staff passwords, personal access tokens,
browser sessions, login failures (for lockout) and idempotency records.

Revision ID: crmcore_0010_web_auth
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "crmcore_0010_web_auth"
down_revision = "crmcore_0008"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_credentials",
        sa.Column("staff_id", Id, nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name="fk_web_credentials_staff_id_staff"
        ),
        sa.PrimaryKeyConstraint("staff_id", name="pk_web_credentials"),
    )
    op.create_table(
        "web_tokens",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("staff_id", Id, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name="fk_web_tokens_staff_id_staff"),
        sa.PrimaryKeyConstraint("id", name="pk_web_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_web_tokens_token_hash"),
    )
    op.create_index("ix_web_tokens_staff_id", "web_tokens", ["staff_id"])
    op.create_table(
        "web_sessions",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("staff_id", Id, nullable=False),
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name="fk_web_sessions_staff_id_staff"),
        sa.PrimaryKeyConstraint("id", name="pk_web_sessions"),
        sa.UniqueConstraint("session_hash", name="uq_web_sessions_session_hash"),
    )
    op.create_index("ix_web_sessions_staff_id", "web_sessions", ["staff_id"])
    op.create_table(
        "web_login_failures",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_web_login_failures"),
    )
    op.create_index("ix_web_login_failures_subject_at", "web_login_failures", ["subject", "at"])
    op.create_table(
        "web_idempotency",
        sa.Column("caller", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("caller", "key", name="pk_web_idempotency"),
    )


def downgrade() -> None:
    op.drop_table("web_idempotency")
    op.drop_index("ix_web_login_failures_subject_at", table_name="web_login_failures")
    op.drop_table("web_login_failures")
    op.drop_index("ix_web_sessions_staff_id", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ix_web_tokens_staff_id", table_name="web_tokens")
    op.drop_table("web_tokens")
    op.drop_table("web_credentials")
