"""crmcore: transactions get a ``kind`` (``purchase`` or ``refund``), and imports
keep a content fingerprint of each file and each batch of it, so a file without
transaction ids is not imported twice by mistake.

Stored rows with a negative amount were refunds recorded as purchases: they
become ``refund``. ``crm analytics stats --rebuild`` then recomputes the
per-customer aggregates, in which a refund reduces spend but is no purchase.
A partial index on the refunds' times lets analytics as of a past date find
the customers whose aggregates already count a later refund.

Revision ID: crmcore_0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "crmcore_0007"
down_revision = "crmcore_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(16), nullable=False, server_default="purchase")
        )
    op.execute("UPDATE transactions SET kind = 'refund' WHERE amount_cents < 0")
    op.create_index(
        "ix_transactions_refund_at",
        "transactions",
        ["occurred_at", "customer_id"],
        sqlite_where=sa.text("kind = 'refund'"),
        postgresql_where=sa.text("kind = 'refund'"),
    )
    op.create_table(
        "import_fingerprints",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("first_line", sa.Integer(), nullable=False),
        sa.Column("last_line", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("file", sa.String(500), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_fingerprints")),
    )
    op.create_index("ix_import_fingerprints_digest", "import_fingerprints", ["kind", "digest"])


def downgrade() -> None:
    op.drop_index("ix_import_fingerprints_digest", table_name="import_fingerprints")
    op.drop_index("ix_transactions_refund_at", table_name="transactions")
    op.drop_table("import_fingerprints")
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("kind")
