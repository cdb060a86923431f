"""The audit trail under its earlier module name: the public names of
:mod:`crmcore.storage.audit`."""

from __future__ import annotations

from crmcore.storage.audit import (
    COMMAND_LENGTH,
    ENTITY_ID_LENGTH,
    GENESIS,
    PG_REDACTION_SETTING,
    PROTECTED_TABLES,
    REDACTED,
    SQLITE_REDACTION_MARKER,
    VERIFY_BATCH,
    ChainWriter,
    Entry,
    Verdict,
    backfill,
    canonical,
    dumps,
    jsonable,
    new_salt,
    redact_customer,
    row_hash,
    values_digest,
    verify,
)

__all__ = [
    "COMMAND_LENGTH",
    "ENTITY_ID_LENGTH",
    "GENESIS",
    "PG_REDACTION_SETTING",
    "PROTECTED_TABLES",
    "REDACTED",
    "SQLITE_REDACTION_MARKER",
    "VERIFY_BATCH",
    "ChainWriter",
    "Entry",
    "Verdict",
    "backfill",
    "canonical",
    "dumps",
    "jsonable",
    "new_salt",
    "redact_customer",
    "row_hash",
    "values_digest",
    "verify",
]
