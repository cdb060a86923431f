"""crmcore: the audit trail becomes append-only and tamper-evident.

Adds ``values_salt``, ``values_digest``, ``prev_hash`` and ``row_hash`` to
``audit_log``,
chains the rows already there (in id order), and installs the triggers that
refuse updates and deletes of audit rows (and, on PostgreSQL, TRUNCATE). The
one update they let through is the redaction of a forgotten customer's values:
on PostgreSQL while the transaction-local setting ``crm.audit_redaction`` is
``on``, on SQLite while the redaction's own uncommitted row is in the new
table ``audit_redaction``; in both cases only as "values replaced by
``{"redacted": true}`` and their salt erased, everything else unchanged".

Revision ID: crmcore_0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crmcore.storage.audit import backfill

revision = "crmcore_0005"
down_revision = "crmcore_0004"
branch_labels = None
depends_on = None

COLUMNS = {"values_salt": 32, "values_digest": 64, "prev_hash": 64, "row_hash": 64}
HASH_COLUMNS = ("values_digest", "prev_hash", "row_hash")
# every column but the recorded values and their salt: a redaction keeps them
KEPT = (
    "id",
    "at",
    "staff_id",
    "command",
    "entity",
    "entity_id",
    "customer_id",
    "action",
    *HASH_COLUMNS,
)
REDACTED_JSON = '{"redacted": true}'
REFUSED_UPDATE = (
    "audit_log is append-only: only the redaction of a forgotten customer "
    "may change recorded values"
)

PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION crm_audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF current_setting('crm.audit_redaction', true) = 'on'
           AND ({", ".join(f'NEW."{c}"' for c in KEPT)})
               IS NOT DISTINCT FROM ({", ".join(f'OLD."{c}"' for c in KEPT)})
           AND NEW.values_salt IS NULL
           AND NEW."before"::jsonb = '{REDACTED_JSON}'::jsonb
           AND NEW."after"::jsonb = '{REDACTED_JSON}'::jsonb
        THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION '{REFUSED_UPDATE}' USING ERRCODE = 'restrict_violation';
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$
"""
PG_TRIGGERS = (
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION crm_audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION crm_audit_log_append_only()",
)

_CHANGED = " OR ".join(f'NEW."{c}" IS NOT OLD."{c}"' for c in KEPT)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN "
    "SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be deleted'); END",
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "WHEN NOT EXISTS (SELECT 1 FROM audit_redaction) "
    f"OR {_CHANGED} OR NEW.values_salt IS NOT NULL "
    f"""OR json(NEW."before") IS NOT json('{REDACTED_JSON}') """
    f"""OR json(NEW."after") IS NOT json('{REDACTED_JSON}') """
    f"BEGIN SELECT RAISE(ABORT, '{REFUSED_UPDATE}'); END",
)


def upgrade() -> None:
    bind = op.get_bind()
    for name, length in COLUMNS.items():
        op.add_column("audit_log", sa.Column(name, sa.String(length), nullable=True))
    # the redaction's marker (used on SQLite; declared on every backend)
    op.create_table(
        "audit_redaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_redaction")),
    )
    backfill(bind)
    if bind.dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for trigger in PG_TRIGGERS:
            op.execute(trigger)
    elif bind.dialect.name == "sqlite":
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION crm_audit_log_append_only()")
    elif bind.dialect.name == "sqlite":
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("DROP TRIGGER audit_log_no_delete")
    op.drop_table("audit_redaction")
    with op.batch_alter_table("audit_log") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
