"""crmcore: webhook subscriptions (``crm webhook add``): the endpoint, the events it
is told of, and the name of the environment variable holding its signing secret.

Revision ID: crmcore_0014_webhooks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "crmcore_0014_webhooks"
down_revision = "crmcore_0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("url", sa.String(254), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret_env", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )


def downgrade() -> None:
    op.drop_table("webhook_subscriptions")
