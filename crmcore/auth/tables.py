"""The sign-in tables (migration ``crmcore_0010_web_auth``), in the core's metadata.

All five are ``internal``: a restricted principal can neither read nor write
them through ``crm.db`` (not even another member's token hashes or sessions).
Only :mod:`crmcore.auth` and :mod:`crmcore.web` write them, after
their own checks, and they write the audit rows themselves so that no hash of
a secret reaches the audit trail.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer, String, Table, Text

from crmcore.schema import Id, metadata

web_credentials = Table(
    "web_credentials",
    metadata,
    Column("staff_id", Id, ForeignKey("staff.id"), primary_key=True),
    Column("password_hash", String(256), nullable=False),
    Column("updated_at", DateTime, nullable=False),
    info={"crm_kind": "internal"},
)

web_tokens = Table(
    "web_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("staff_id", Id, ForeignKey("staff.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scopes", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime),
    Column("last_used_at", DateTime),
    Column("revoked_at", DateTime),
    info={"crm_kind": "internal"},
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("staff_id", Id, ForeignKey("staff.id"), nullable=False, index=True),
    Column("session_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("ended_at", DateTime),
    Column("address", String(64), info={"pii": True}),  # the client address: personal data
    info={"crm_kind": "internal"},
)

web_login_failures = Table(
    "web_login_failures",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # "staff:<key>" or "address:<client address>"
    Column("subject", String(200), nullable=False),
    Column("at", DateTime, nullable=False),
    Index("ix_web_login_failures_subject_at", "subject", "at"),
    info={"crm_kind": "internal"},
)

web_idempotency = Table(
    "web_idempotency",
    metadata,
    # the SHA-256 of the credential that sent the request and of its key
    Column("caller", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer),  # NULL while the first request is being answered
    Column("headers", JSON),
    Column("body", Text),
    Column("created_at", DateTime, nullable=False),
    info={"crm_kind": "internal"},
)

AUTH_TABLES = (web_credentials, web_tokens, web_sessions, web_login_failures, web_idempotency)
