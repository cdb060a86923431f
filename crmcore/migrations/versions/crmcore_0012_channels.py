"""crmcore: message channels and messaging rules.

Each outbound message records its purpose (``marketing`` or ``transactional``;
earlier messages are transactional), the time it is held until (quiet hours),
and what its gateway reported: the gateway's id, the delivery status of its
receipt and the provider's error code. ``gateway_events`` keeps the id of each
receipt or reply a gateway pushed, so a repeated push is applied once.

Revision ID: crmcore_0012_channels
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "crmcore_0012_channels"
down_revision = "crmcore_0011_scheduler"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("purpose", sa.String(16), nullable=False, server_default="transactional")
        )
        batch.add_column(sa.Column("not_before", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("provider_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("delivery_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("provider_error", sa.String(200), nullable=True))
        batch.add_column(sa.Column("delivered_at", sa.DateTime(), nullable=True))
        batch.create_index("ix_messages_provider_id", ["provider_id"])
    op.create_table(
        "gateway_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("gateway_id", sa.String(128), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gateway_events"),
        sa.UniqueConstraint(
            "channel", "kind", "gateway_id", name="uq_gateway_events_channel_kind_id"
        ),
    )


def downgrade() -> None:
    op.drop_table("gateway_events")
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_provider_id")
        for column in (
            "delivered_at",
            "provider_error",
            "delivery_status",
            "provider_id",
            "not_before",
            "purpose",
        ):
            batch.drop_column(column)
