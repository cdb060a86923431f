"""crmcore: the unique index of customers' external ids carries the id
(PostgreSQL), so an import resolves a batch's external ids from the index
alone instead of hashing the whole customers table for every batch.
SQLite needs nothing: its indexes always carry the rowid (``id``).

Revision ID: crmcore_0003
"""

from __future__ import annotations

from alembic import op

revision = "crmcore_0003"
down_revision = "crmcore_0002"
branch_labels = None
depends_on = None


def _rebuild(include: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint("uq_customers_external_id", "customers", type_="unique")
    op.execute(
        f"ALTER TABLE customers ADD CONSTRAINT uq_customers_external_id UNIQUE (external_id){include}"
    )


def upgrade() -> None:
    _rebuild(" INCLUDE (id)")


def downgrade() -> None:
    _rebuild("")
