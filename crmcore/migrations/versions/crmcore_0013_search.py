"""crmcore: customer search, saved segments and campaigns.

``search_terms`` holds one row per searchable key of each live customer; the
triggers installed here keep the rows of the ``customers`` and
``contact_points`` columns in step with every insert, update and delete, in the
writing transaction (a bulk import's set-based insert included). Existing
customers are indexed by one INSERT ... SELECT. On SQLite an FTS5 trigram table
(``search_fts``, external content) indexes every term for fragment search; on
PostgreSQL the ``pg_trgm`` extension's GIN operator class does.

Revision ID: crmcore_0013
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "crmcore_0013"
down_revision = "crmcore_0012_channels"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# the keys of a customer's own row: (kind, SQL expression of the NEW row)
OWN_KEYS = (
    ("name", "lower(NEW.name)"),
    ("external_id", "lower(NEW.external_id)"),
    ("phone", "NEW.phone"),
    ("email", "lower(NEW.email)"),
)
LIVE = "NEW.merged_into_id IS NULL AND NEW.forgotten_at IS NULL"
_CHANGED = " OR ".join(
    f"NEW.{c} IS DISTINCT FROM OLD.{c}"
    for c in ("name", "external_id", "phone", "email", "merged_into_id", "forgotten_at")
)


# the pinyin initials of the first PINYIN_CHARS characters of NEW.name
PINYIN_CHARS = 8
# (a name's length bounds the lookups: a two-character name makes two)
PINYIN = " || ".join(
    f"CASE WHEN length(NEW.name) >= {i} THEN coalesce((SELECT initial FROM search_pinyin "
    f"WHERE ch = substr(NEW.name, {i}, 1)), '') ELSE '' END"
    for i in range(1, PINYIN_CHARS + 1)
)


def _own_inserts() -> str:
    """The statements indexing NEW's own keys and pinyin initials (when live)."""
    own = " ".join(
        "INSERT INTO search_terms (for_customer_id, origin, kind, term) "
        f"SELECT NEW.id, 'customer', '{kind}', {expr} WHERE {expr} IS NOT NULL AND {LIVE};"
        for kind, expr in OWN_KEYS
    )
    return (
        f"{own} INSERT INTO search_terms (for_customer_id, origin, kind, term) "
        f"SELECT NEW.id, 'pinyin', 'pinyin', p FROM (SELECT {PINYIN} AS p) AS initials "
        f"WHERE p <> '' AND {LIVE};"
    )


CONTACT_INSERT = (
    "INSERT INTO search_terms (for_customer_id, origin, kind, term) "
    "VALUES (NEW.customer_id, 'contact', NEW.kind, lower(NEW.value));"
)
CONTACT_DELETE = (
    "DELETE FROM search_terms WHERE for_customer_id = OLD.customer_id "
    "AND origin = 'contact' AND kind = OLD.kind AND term = lower(OLD.value);"
)
# on a change of name, keys, merge or erasure: the customer's own keys (and its
# pinyin, which the core's hook writes again) are rebuilt; a customer no longer
# live loses every row
OWN_DELETE = (
    "DELETE FROM search_terms WHERE for_customer_id = OLD.id AND "
    "(origin IN ('customer', 'pinyin') OR NEW.merged_into_id IS NOT NULL "
    "OR NEW.forgotten_at IS NOT NULL);"
)

SQLITE_STATEMENTS = (
    "CREATE VIRTUAL TABLE search_fts USING fts5("
    "term, content='search_terms', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER search_terms_ai AFTER INSERT ON search_terms BEGIN "
    "INSERT INTO search_fts (rowid, term) VALUES (NEW.id, NEW.term); END",
    "CREATE TRIGGER search_terms_ad AFTER DELETE ON search_terms BEGIN "
    "INSERT INTO search_fts (search_fts, rowid, term) VALUES ('delete', OLD.id, OLD.term); END",
    "CREATE TRIGGER search_terms_au AFTER UPDATE ON search_terms BEGIN "
    "INSERT INTO search_fts (search_fts, rowid, term) VALUES ('delete', OLD.id, OLD.term); "
    "INSERT INTO search_fts (rowid, term) VALUES (NEW.id, NEW.term); END",
    f"CREATE TRIGGER search_customers_ai AFTER INSERT ON customers BEGIN {_own_inserts()} END",
    "CREATE TRIGGER search_customers_au AFTER UPDATE ON customers "
    f"WHEN {_CHANGED.replace('IS DISTINCT FROM', 'IS NOT')} BEGIN {OWN_DELETE} {_own_inserts()} END",
    "CREATE TRIGGER search_customers_ad AFTER DELETE ON customers BEGIN "
    "DELETE FROM search_terms WHERE for_customer_id = OLD.id; END",
    f"CREATE TRIGGER search_contacts_ai AFTER INSERT ON contact_points BEGIN {CONTACT_INSERT} END",
    f"CREATE TRIGGER search_contacts_ad AFTER DELETE ON contact_points BEGIN {CONTACT_DELETE} END",
    "CREATE TRIGGER search_contacts_au AFTER UPDATE ON contact_points BEGIN "
    f"{CONTACT_DELETE} {CONTACT_INSERT} END",
)
SQLITE_DROPS = (
    "DROP TRIGGER search_contacts_au",
    "DROP TRIGGER search_contacts_ad",
    "DROP TRIGGER search_contacts_ai",
    "DROP TRIGGER search_customers_ad",
    "DROP TRIGGER search_customers_au",
    "DROP TRIGGER search_customers_ai",
    "DROP TRIGGER search_terms_au",
    "DROP TRIGGER search_terms_ad",
    "DROP TRIGGER search_terms_ai",
    "DROP TABLE search_fts",
)

PG_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION crm_search_customers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM search_terms WHERE for_customer_id = OLD.id;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF NOT ({_CHANGED}) THEN
            RETURN NULL;
        END IF;
        {OWN_DELETE}
    END IF;
    {_own_inserts()}
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION crm_search_contacts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        {CONTACT_DELETE}
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        {CONTACT_INSERT}
    END IF;
    RETURN NULL;
END
$$;
"""
PG_TRIGGERS = (
    "CREATE TRIGGER search_customers AFTER INSERT OR UPDATE OR DELETE ON customers "
    "FOR EACH ROW EXECUTE FUNCTION crm_search_customers()",
    "CREATE TRIGGER search_contacts AFTER INSERT OR UPDATE OR DELETE ON contact_points "
    "FOR EACH ROW EXECUTE FUNCTION crm_search_contacts()",
)


def _pg_trgm_schema(bind: sa.engine.Connection) -> str:
    """The schema holding pg_trgm, created if missing: in ``public`` when there
    is one (so dropping one CRM's schema never drops the extension of others).
    ``CREATE EXTENSION IF NOT EXISTS`` is not safe against a concurrent creation
    (two databases upgraded at once on one server): an advisory lock held to the
    end of this transaction makes the second wait and then find it."""
    bind.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('crmcore.pg_trgm'))"))
    found = bind.execute(
        sa.text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
            "ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
        )
    ).scalar()
    if found is not None:
        return str(found)
    has_public = bind.execute(
        sa.text("SELECT 1 FROM pg_namespace WHERE nspname = 'public'")
    ).scalar()
    schema = (
        "public" if has_public else str(bind.execute(sa.text("SELECT current_schema()")).scalar())
    )
    op.execute(f'CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA "{schema}"')
    return schema


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "search_terms",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("for_customer_id", Id, nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("term", sa.String(300), nullable=False),
        sa.ForeignKeyConstraint(
            ["for_customer_id"],
            ["customers.id"],
            name=op.f("fk_search_terms_for_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_terms")),
    )
    if bind.dialect.name == "postgresql":
        trgm = _pg_trgm_schema(bind)
        op.execute(
            "CREATE INDEX ix_search_terms_term ON search_terms "
            f'USING gin (term "{trgm}".gin_trgm_ops)'
        )
        op.execute(
            "CREATE INDEX ix_search_terms_term_customer ON search_terms "
            "(term text_pattern_ops, for_customer_id)"
        )
    else:
        op.create_index("ix_search_terms_term", "search_terms", ["term"])
        op.create_index(
            "ix_search_terms_term_customer", "search_terms", ["term", "for_customer_id"]
        )
    op.create_index(
        "ix_search_terms_for_customer_id", "search_terms", ["for_customer_id", "origin"]
    )
    op.create_table(
        "search_pinyin",
        sa.Column("ch", sa.String(1), nullable=False),
        sa.Column("initial", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("ch", name=op.f("pk_search_pinyin")),
    )
    op.create_table(
        "segments",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_segments_name")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("segment_id", Id, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("holdout_percent", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segments.id"], name=op.f("fk_campaigns_segment_id_segments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )
    op.create_table(
        "campaign_recipients",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("campaign_id", Id, nullable=False),
        sa.Column("customer_id", Id, nullable=False),
        sa.Column("occurrence", sa.String(32), nullable=False),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("message_id", Id, nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_recipients_campaign_id_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_campaign_recipients_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_campaign_recipients_message_id_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_recipients")),
    )
    op.create_index(
        "ix_campaign_recipients_occurrence",
        "campaign_recipients",
        ["campaign_id", "occurrence", "customer_id"],
    )
    op.create_index("ix_campaign_recipients_customer_id", "campaign_recipients", ["customer_id"])
    if bind.dialect.name == "postgresql":
        op.execute(PG_FUNCTIONS)
        for trigger in PG_TRIGGERS:
            op.execute(trigger)
    elif bind.dialect.name == "sqlite":
        for statement in SQLITE_STATEMENTS:
            op.execute(statement)
    fill_pinyin(bind)
    backfill()


def fill_pinyin(bind: sa.engine.Connection) -> None:
    """The initial of the first pinyin reading of every CJK unified ideograph,
    when the optional pypinyin package is installed (``crm search reindex``
    fills it later otherwise)."""
    try:
        from pypinyin.pinyin_dict import pinyin_dict
    except ImportError:
        return
    rows = [
        {"ch": chr(code), "initial": unicodedata.normalize("NFD", readings)[0].lower()}
        for code, readings in pinyin_dict.items()
        if 0x4E00 <= code <= 0x9FFF and readings
    ]
    table = sa.table("search_pinyin", sa.column("ch"), sa.column("initial"))
    op.bulk_insert(table, [r for r in rows if r["initial"].isascii() and r["initial"].isalpha()])


def backfill() -> None:
    """Index the customers already stored: their own keys, pinyin initials and
    contact points, one set-based statement each."""
    for kind, expr in OWN_KEYS:
        column = expr.replace("NEW.", "c.")
        op.execute(
            "INSERT INTO search_terms (for_customer_id, origin, kind, term) "
            f"SELECT c.id, 'customer', '{kind}', {column} FROM customers c "
            f"WHERE {column} IS NOT NULL AND c.merged_into_id IS NULL AND c.forgotten_at IS NULL"
        )
    initials = PINYIN.replace("NEW.", "c.")
    op.execute(
        "INSERT INTO search_terms (for_customer_id, origin, kind, term) "
        f"SELECT id, 'pinyin', 'pinyin', p FROM (SELECT c.id, {initials} AS p FROM customers c "
        "WHERE c.merged_into_id IS NULL AND c.forgotten_at IS NULL) AS initials WHERE p <> ''"
    )
    op.execute(
        "INSERT INTO search_terms (for_customer_id, origin, kind, term) "
        "SELECT p.customer_id, 'contact', p.kind, lower(p.value) FROM contact_points p "
        "JOIN customers c ON c.id = p.customer_id "
        "WHERE c.merged_into_id IS NULL AND c.forgotten_at IS NULL"
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER search_contacts ON contact_points")
        op.execute("DROP TRIGGER search_customers ON customers")
        op.execute("DROP FUNCTION crm_search_contacts()")
        op.execute("DROP FUNCTION crm_search_customers()")
    elif bind.dialect.name == "sqlite":
        for statement in SQLITE_DROPS:
            op.execute(statement)
    op.drop_table("campaign_recipients")
    op.drop_table("campaigns")
    op.drop_table("segments")
    op.drop_table("search_pinyin")
    op.drop_table("search_terms")
