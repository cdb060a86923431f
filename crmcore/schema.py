"""The core's tables (SQLAlchemy Core). Plugins may read them and join to them;
they write through the CRM service so hooks, access control and audit apply.

Money is integer cents. Times are naive local datetimes (see docs/architecture.md).
A table that reaches ``customers`` through its foreign keys (or has a
``customer_id`` column) is customer data; ``info={"crm_kind": ...}`` declares the
kind of the others and ``crm_guarded`` / ``crm_locking`` the columns that decide
access (see :mod:`crmcore.scope`).
``info={"pii": KIND}`` marks a column personal: masked for principals without
the ``pii`` permission (see crmcore.masking).

``live_customers`` is the selectable of the customers a listing shows: not
merged into another customer and not forgotten. List, count and report
customers from it (``select(live_customers.c.id, live_customers.c.name)``, or
``.join(live_customers, live_customers.c.id == mine.c.customer_id)``), so a
merged twin or an erased person never shows up by accident.

Longer than most modules: every core table is declared here, so the whole schema reads
in one place.
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
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
    text,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# BIGINT on PostgreSQL, INTEGER (rowid alias) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

staff = Table(
    "staff",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("roles", JSON, nullable=False, default=list),
    Column("team", String(64)),
    Column("supervisor_id", Id, ForeignKey("staff.id")),
    Column("active", Boolean, nullable=False, default=True),
    Column("departed_at", DateTime),
    info={"crm_kind": "access"},
)

customers = Table(
    "customers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("external_id", String(128)),
    Column("name", String(300), nullable=False),
    Column("kind", String(32), nullable=False, default="person"),
    Column("phone", String(32), info={"pii": "phone"}),
    Column("email", String(254), info={"pii": "email"}),
    Column("consent_sms", Boolean, nullable=False, default=True),
    Column("consent_email", Boolean, nullable=False, default=True),
    Column("owner_id", Id, ForeignKey("staff.id")),
    Column("stage", String(32), nullable=False),
    Column("attributes", JSON, nullable=False, default=dict),
    Column("merged_into_id", Id, ForeignKey("customers.id")),
    Column("forgotten_at", DateTime),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_customers_phone", "phone"),
    Index("ix_customers_email", "email"),
    Index("ix_customers_owner_id", "owner_id"),
    # the live customers (merged_into_id IS NULL) read from the index alone
    Index("ix_customers_merged_into_id", "merged_into_id", "id"),
    # an import resolves external ids to ids from the index alone (PostgreSQL;
    # a SQLite index always carries the rowid, which is ``id``)
    UniqueConstraint("external_id", name="uq_customers_external_id", postgresql_include=["id"]),
)

# the forgotten customers, read from a small index range (analytics leave them out)
Index("ix_customers_forgotten_at", customers.c.forgotten_at)

# The customers a listing shows (see the module docstring): its columns are
# those of ``customers``. Reading one customer by id still goes through
# ``customers`` (a merged id is followed to the customer it was merged into).
# The access filter scopes it like ``customers``.
live_customers = (
    select(customers)
    .where(customers.c.merged_into_id.is_(None), customers.c.forgotten_at.is_(None))
    .subquery("live_customers")
)

contact_points = Table(
    "contact_points",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("value", String(254), nullable=False, info={"pii": "contact"}),
    Column("consent", Boolean, nullable=False, default=True),
    UniqueConstraint("customer_id", "kind", "value", name="uq_contact_points_value"),
    Index("ix_contact_points_kind_value", "kind", "value"),
)

stage_changes = Table(
    "stage_changes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("from_stage", String(32)),
    Column("to_stage", String(32), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("at", DateTime, nullable=False),
    Column("by_staff_id", Id, ForeignKey("staff.id")),
)

relationships = Table(
    "relationships",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("from_customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("to_customer_id", Id, ForeignKey("customers.id"), index=True),
    Column("to_staff_id", Id, ForeignKey("staff.id"), index=True),
    Column("since", DateTime),
    Column("until", DateTime),
    Column("active", Boolean, nullable=False, default=True),
    Column("note", Text),
    info={"crm_locking": ("to_staff_id",)},
)

interactions = Table(
    "interactions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("text", Text, nullable=False, default=""),
    Column("at", DateTime, nullable=False),
    Column("staff_id", Id, ForeignKey("staff.id")),
    Column("channel", String(32)),
    Column("data", JSON, nullable=False, default=dict),
    Column("source", String(64), nullable=False, default="core"),
    Index("ix_interactions_customer_at", "customer_id", "at"),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("external_id", String(128), unique=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False),
    Column("occurred_at", DateTime, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("channel", String(32)),
    # "purchase" or "refund" (a negative amount); a refund reduces spend but is no visit
    Column("kind", String(16), nullable=False, default="purchase", server_default="purchase"),
    # covering index: per-customer history and analytics read only the index
    Index("ix_transactions_customer_at", "customer_id", "occurred_at", "amount_cents"),
    # the few refunds by time: analytics as of a past date find the customers whose
    # aggregates already count a later refund
    Index(
        "ix_transactions_refund_at",
        "occurred_at",
        "customer_id",
        sqlite_where=text("kind = 'refund'"),
        postgresql_where=text("kind = 'refund'"),
    ),
)

# What each import of transactions without transaction ids read: a digest of
# the whole file's rows and of each batch of them (with its line range), so
# the same content is refused the next time instead of counted twice.
import_fingerprints = Table(
    "import_fingerprints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),  # what was imported: "transactions"
    Column("scope", String(8), nullable=False),  # "file" or "batch"
    Column("digest", String(64), nullable=False),
    Column("first_line", Integer, nullable=False),
    Column("last_line", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("file", String(500), nullable=False),
    Column("imported_at", DateTime, nullable=False),
    Index("ix_import_fingerprints_digest", "kind", "digest"),
)

customer_stats = Table(
    "customer_stats",
    metadata,
    Column("customer_id", Id, ForeignKey("customers.id"), primary_key=True),
    Column("first_at", DateTime, nullable=False),
    Column("last_at", DateTime, nullable=False),
    Column("tx_count", Integer, nullable=False),
    Column("spend_cents", BigInteger, nullable=False),
    info={"crm_derived": True},  # recomputed from transactions (refresh_stats)
)

# The spend of each customer in the window of the last ABC run, with the
# customer_stats figures it was computed from: a later run recomputes only the
# customers whose figures changed since (and shifts the rest by the window's
# moved edges), instead of rescanning every transaction.
customer_window_spend = Table(
    "customer_window_spend",
    metadata,
    Column("customer_id", Id, ForeignKey("customers.id"), primary_key=True),
    Column("spend_cents", BigInteger, nullable=False),
    Column("first_in_window", DateTime),  # the first purchase in that window, if any
    Column("next_after_window", DateTime),  # the first purchase after the window, if any
    Column("seen_tx_count", Integer, nullable=False),
    Column("seen_spend_cents", BigInteger, nullable=False),
    # the customers a moving window edge passes, found as index ranges
    Index("ix_customer_window_spend_first_in_window", "first_in_window"),
    Index(
        "ix_customer_window_spend_next_after_window",
        "next_after_window",
        sqlite_where=text("next_after_window IS NOT NULL"),
        postgresql_where=text("next_after_window IS NOT NULL"),
    ),
    info={"crm_derived": True},  # a cache of the ABC analysis
)

# Which window customer_window_spend holds, per analysis (one row: "abc"), and
# customer_stats' row count and sums when it was computed.
analytics_windows = Table(
    "analytics_windows",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("start_at", DateTime, nullable=False),
    Column("end_at", DateTime, nullable=False),
    Column("stats_rows", BigInteger, nullable=False),
    Column("stats_tx", BigInteger, nullable=False),
    Column("stats_spend", BigInteger, nullable=False),
    info={"crm_kind": "internal", "crm_derived": True},
)

customer_labels = Table(
    "customer_labels",
    metadata,
    Column("customer_id", Id, ForeignKey("customers.id"), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", String(64), nullable=False),
    Column("source", String(64), nullable=False, default="core"),
    Column("as_of", DateTime, nullable=False),
    # covering: "who has label X = V" and "every value of label X" read only the index
    Index("ix_customer_labels_name_value_customer", "name", "value", "customer_id"),
    info={"crm_derived": True},  # classifications the analytics and plugins recompute
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("workflow", String(64), nullable=False),
    Column("state", String(32), nullable=False),
    Column("subject", Text, nullable=False),
    Column("owner_id", Id, ForeignKey("staff.id"), index=True),
    Column("due_at", DateTime),
    Column("opened_at", DateTime, nullable=False),
    Column("closed_at", DateTime),
    Column("data", JSON, nullable=False, default=dict),
    Column("source", String(64), nullable=False, default="core"),
    info={"crm_guarded": ("customer_id", "owner_id")},
)

ticket_events = Table(
    "ticket_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("from_state", String(32)),
    Column("to_state", String(32), nullable=False),
    Column("owner_id", Id, ForeignKey("staff.id")),
    Column("due_at", DateTime),
    Column("at", DateTime, nullable=False),
    Column("note", Text),
    Column("by_staff_id", Id, ForeignKey("staff.id")),
)

reminders = Table(
    "reminders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("staff_id", Id, ForeignKey("staff.id"), index=True),
    Column("customer_id", Id, ForeignKey("customers.id"), index=True),
    Column("due_at", DateTime, nullable=False),
    Column("text", Text, nullable=False),
    Column("done_at", DateTime),
    Column("key", String(200), unique=True),
    Column("source", String(64), nullable=False, default="core"),
    # a recurring reminder: "30d" (days) or "1m" (months); done, the next is made
    Column("repeat_every", String(16)),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey("customers.id"), index=True),
    Column("channel", String(32), nullable=False),
    Column("to_address", String(254), info={"pii": "contact"}),
    Column("template", String(64)),
    Column("body", Text, nullable=False),
    # event data, or a template's values (a gateway sending by template id needs them): personal
    Column("payload", JSON, info={"pii": True}),
    # one per message, stable across retries: the channel's correlation id
    Column("idempotency_key", String(200), nullable=False, unique=True),
    # queued -> sending -> sent | failed; a failed attempt below the limit goes
    # back to queued, and a message left in sending by a crash is retried
    Column("status", String(16), nullable=False, default="queued"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_at", DateTime, nullable=False),
    Column("attempted_at", DateTime),  # when the last delivery attempt began
    Column("sent_at", DateTime),
    Column("source", String(64), nullable=False, default="core"),
    # marketing | transactional: the messaging rules (quiet hours, caps) apply to marketing
    Column("purpose", String(16), nullable=False, default="transactional"),
    Column("not_before", DateTime),  # held (quiet hours) until this local time
    # the gateway's own id and what its delivery receipt said (see crmcore.channels)
    Column("provider_id", String(128)),
    Column("delivery_status", String(16)),  # delivered | failed, from the receipt
    Column("provider_error", String(200)),
    Column("delivered_at", DateTime),
    # the worker's lease (crmcore.ops.worker): who holds a message in sending, and until
    # when; an expired lease is claimable again. A failed attempt waits for next_attempt_at.
    Column("claimed_by", String(128)),
    Column("lease_until", DateTime),
    Column("next_attempt_at", DateTime),
    Index("ix_messages_status", "status"),
    Index("ix_messages_provider_id", "provider_id"),
)

# Each receipt or reply a gateway pushed, by the gateway's own id: a push
# repeated by the gateway is recognised and not applied twice.
gateway_events = Table(
    "gateway_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # receipt | reply
    Column("gateway_id", String(128), nullable=False),
    Column("received_at", DateTime, nullable=False),
    UniqueConstraint("channel", "kind", "gateway_id", name="uq_gateway_events_channel_kind_id"),
    info={"crm_kind": "internal"},
)

inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel", String(32), nullable=False),
    Column("from_address", String(64), nullable=False, info={"pii": "phone"}),
    Column("text", Text, nullable=False),
    Column("received_at", DateTime, nullable=False),
    Column("routed", JSON, nullable=False, default=list),
    # who or what handed the message in: a staff key (CLI) or a gateway's channel name
    Column("delivered_by", String(64)),
    info={"crm_kind": "internal"},
)

timeline_entries = Table(
    "timeline_entries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("source", String(64), nullable=False),
    Column("summary", Text, nullable=False),
    Column("data", JSON, nullable=False, default=dict),
    Index("ix_timeline_entries_customer_at", "customer_id", "at"),
)

# A timeline page reads each stream of one customer newest first and stops at
# the page's size: these indexes give every stream that order without a sort.
Index("ix_stage_changes_customer_at", stage_changes.c.customer_id, stage_changes.c.at)
Index("ix_ticket_events_ticket_at", ticket_events.c.ticket_id, ticket_events.c.at)
Index("ix_messages_customer_created", messages.c.customer_id, messages.c.created_at)

# Append-only and hash-chained (see crmcore.audit): each row's values_digest
# covers its before/after values and values_salt, row_hash covers its fields, values_digest and
# prev_hash (the row_hash of the row before it). Database triggers (crmcore_0005)
# refuse updates and deletes except the redaction of a forgotten customer's
# values: on PostgreSQL under the transaction-local setting crm.audit_redaction,
# on SQLite while the redaction's own uncommitted row is in audit_redaction.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("staff_id", Id),
    Column("command", String(200)),
    Column("entity", String(64), nullable=False),
    Column("entity_id", String(64)),
    Column("customer_id", Id, index=True),
    Column("action", String(32), nullable=False),
    Column("before", JSON),
    Column("after", JSON),
    Column("values_salt", String(32)),
    Column("values_digest", String(64)),
    Column("prev_hash", String(64)),
    Column("row_hash", String(64)),
    info={"crm_kind": "internal"},
)

# Empty except inside the transaction of a redaction on SQLite (see audit_log).
audit_redaction = Table(
    "audit_redaction",
    metadata,
    Column("id", Integer, primary_key=True),
    info={"crm_kind": "internal"},
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job", String(128), nullable=False),
    Column("as_of", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=False),
    Column("summary", JSON, nullable=False, default=dict),
    info={"crm_kind": "internal"},
)

# One row per (job, tick): claimed before the run, so each tick runs once however
# many schedulers there are (crmcore.ops.scheduler). Times here are UTC.
job_ticks = Table(
    "job_ticks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job", String(128), nullable=False),
    Column("tick_at", DateTime, nullable=False),  # UTC
    # running -> ok | retry -> running ... | failed; skipped: missed, catch-up 'skip'
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_by", String(128)),
    Column("lease_until", DateTime),  # UTC
    Column("next_attempt_at", DateTime),  # UTC
    Column("started_at", DateTime),  # UTC
    Column("finished_at", DateTime),  # UTC
    Column("duration_ms", Integer),
    Column("summary", JSON),
    Column("error", Text),
    UniqueConstraint("job", "tick_at", name="uq_job_ticks_job_tick"),
    Index("ix_job_ticks_status", "status", "next_attempt_at"),
    info={"crm_kind": "internal"},
)

# The console inbox: what a member of staff is told (a reminder due, a ticket
# past its step's due time), once per (subject, due time, member).
staff_notifications = Table(
    "staff_notifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("staff_id", Id, ForeignKey("staff.id"), nullable=False),
    Column("about", String(32), nullable=False),  # "reminder" or "ticket"
    Column("about_id", Id, nullable=False),
    Column("due_at", DateTime, nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("link", String(500)),
    Column("channel", String(32), nullable=False, default="inbox"),  # where it was sent
    Column("created_at", DateTime, nullable=False),
    Column("read_at", DateTime),
    Column("key", String(200), nullable=False, unique=True),
    Index("ix_staff_notifications_staff", "staff_id", "read_at"),
    Index("ix_staff_notifications_about", "about", "about_id", "due_at", "staff_id"),
    info={"crm_kind": "internal"},
)

# Where a member of staff wants to be told (no row: the console inbox).
staff_channels = Table(
    "staff_channels",
    metadata,
    Column("staff_id", Id, ForeignKey("staff.id"), primary_key=True),
    Column("channel", String(32), nullable=False),
    Column("address", String(254), info={"pii": "contact"}),
    info={"crm_kind": "internal"},
)

# the sign-in tables of the HTTP API (defined in crmcore.auth.tables), in this metadata
from crmcore.auth.tables import (  # noqa: E402, F401
    web_credentials,
    web_idempotency,
    web_login_failures,
    web_sessions,
    web_tokens,
)

# who is told of which events over HTTP (crm webhook add); the signing secret is
# never stored: ``secret_env`` names the sender's environment variable holding it
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("url", String(254), nullable=False),
    Column("events", JSON, nullable=False, default=list),
    Column("secret_env", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(64)),
    info={"crm_kind": "configuration"},
)

# Search (crmcore.search): one row per searchable key of a live customer (name,
# external id, phone, e-mail, contact points, pinyin initials), ``term`` lower-cased.
# Database triggers (crmcore_0013) keep the rows in step with every write of
# customers and contact_points, in the writing transaction (a bulk import's
# set-based insert included); the pinyin initials come from ``search_pinyin``. On PostgreSQL the first index
# is a pg_trgm GIN index (fragments), the second a pattern index (prefixes); on
# SQLite both are B-trees and the FTS5 trigram table ``search_fts`` (not declared
# here: a virtual table) indexes fragments. ``for_customer_id`` is not named
# ``customer_id``: a merge does not carry these rows over, the triggers rebuild them.
search_terms = Table(
    "search_terms",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("for_customer_id", Id, ForeignKey("customers.id"), nullable=False),
    Column("origin", String(16), nullable=False),  # customer | contact | pinyin
    Column("kind", String(32), nullable=False),  # name, external_id, phone, email, ...
    Column("term", String(300), nullable=False, info={"pii": "contact"}),
    Index(
        "ix_search_terms_term",
        "term",
        postgresql_using="gin",
        postgresql_ops={"term": "gin_trgm_ops"},
    ),
    Index(
        "ix_search_terms_term_customer",
        "term",
        "for_customer_id",
        postgresql_ops={"term": "text_pattern_ops"},
    ),
    Index("ix_search_terms_for_customer_id", "for_customer_id", "origin"),
)

# The initial letter(s) of each Chinese character's first pinyin reading, for
# the triggers that index a name's pinyin initials; filled from the optional
# pypinyin package (empty without it: no pinyin matches).
search_pinyin = Table(
    "search_pinyin",
    metadata,
    Column("ch", String(1), primary_key=True),
    Column("initial", String(8), nullable=False),
    info={"crm_kind": "internal"},
)

# Segments (crmcore.segments): a saved, named filter; ``conditions`` is the
# validated JSON document the segment's one statement is compiled from.
segments = Table(
    "segments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("conditions", JSON, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(64)),
    info={"crm_kind": "record"},
)

# Campaigns (crmcore.campaigns): a segment, a template, a channel and a schedule.
campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("segment_id", Id, ForeignKey("segments.id"), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("template", Text, nullable=False),
    Column("schedule", JSON, nullable=False),  # {"kind": "once"|"yearly"|"birthday", ...}
    Column("holdout_percent", Integer, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False),
    info={"crm_kind": "configuration"},
)

# Who each occurrence of a campaign selected: reached (``message_id`` set, or
# NULL when consent stopped it at enqueue) or held out (never messaged). One row
# per (campaign, customer, occurrence): a re-run selects only the rest.
campaign_recipients = Table(
    "campaign_recipients",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("campaign_id", Id, ForeignKey("campaigns.id"), nullable=False),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False),
    Column("occurrence", String(32), nullable=False),
    Column("holdout", Boolean, nullable=False),
    Column("message_id", Id, ForeignKey("messages.id")),
    Column("at", DateTime, nullable=False),
    # not unique: a merge carries a twin's rows over (the outbox's idempotency
    # key is what sends each message once)
    Index("ix_campaign_recipients_occurrence", "campaign_id", "occurrence", "customer_id"),
    Index("ix_campaign_recipients_customer_id", "customer_id"),
)

# Why a lost customer left (an exit survey's answer), counted by the loss report.
exit_reasons = Table(
    "exit_reasons",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("at", DateTime, nullable=False),
    Column("by_staff_id", Id, ForeignKey("staff.id")),
    Index("ix_exit_reasons_customer_id", "customer_id"),
    Index("ix_exit_reasons_at", "at"),
)

# One follow-up playbook started for a customer: its steps are reminders keyed
# "playbook:<run id>:<step>"; a response of the customer cancels the open ones.
playbook_runs = Table(
    "playbook_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False),
    Column("playbook", String(64), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("trigger", String(100), nullable=False),  # "explicit" or "stage:<stage>"
    Column("staff_id", Id, ForeignKey("staff.id")),
    Column("cancelled_at", DateTime),
    Column("cancel_reason", Text),
    Index("ix_playbook_runs_customer_id", "customer_id", "cancelled_at"),
)

CORE_TABLES = tuple(metadata.tables)
