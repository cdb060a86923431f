"""Storage: the engine, the query layer, the access filter and the audit trail.

- :mod:`.engine` — the engine for a database URL (SQLite pragmas and
  transaction mode, PostgreSQL pool) and the one-line error of a driver failure.
- :mod:`.query` — :class:`~crmcore.storage.query.DB`, the one query layer core
  and plugins share: every statement scoped, checked and audited.
- :mod:`.scope` — the access filter: the tables' kinds and the rewriting of a
  statement to the customers the principal may see; :mod:`.shapes` — the
  statement shapes it can scope.
- :mod:`.audit` — the hash-chained, append-only audit trail.
- ``_writes`` and ``_driver`` — the write path of the query layer and the
  driver-level bulk paths; the core's own, never a plugin's.

``crmcore.db``, ``crmcore.scope`` and ``crmcore.audit`` re-export the public
names of these modules under their earlier names.
"""
