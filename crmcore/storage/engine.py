"""Engine set-up: the connection URL, SQLite's pragmas and transaction mode,
PostgreSQL's pool, and the one-line error for a driver's operational error.

The CRM opens one engine per configured database (:func:`make_engine`); every
operation then checks out one connection from its pool for one transaction.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

from crmcore.errors import CRMError, RetryableError

SQLITE_BUSY_MS = 10_000
SQLITE_SYNCHRONOUS = ("full", "normal", "off")  # [crm] sqlite_synchronous; "full" is the default

BUSY_MESSAGE = "the database is busy (another process is writing); retry the operation"


def database_error(orig: BaseException | None) -> CRMError:
    """The one-line CRM error for a driver's operational error: a lock or busy
    timeout, a serialization failure or a deadlock is a :class:`RetryableError`."""
    text = str(orig).lower()
    if any(word in text for word in ("locked", "busy", "could not serialize", "deadlock")):
        return RetryableError(BUSY_MESSAGE)
    first = (str(orig).splitlines() or [type(orig).__name__])[0]
    return CRMError(f"database error: {first}")


def make_engine(url: str, *, sqlite_synchronous: str = "full") -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys, a busy timeout,
    ``BEGIN IMMEDIATE`` for write transactions (no lock-upgrade deadlocks) and
    ``PRAGMA synchronous`` = ``sqlite_synchronous``: ``full`` (default) syncs the
    WAL at every commit, so a committed transaction survives a power loss;
    ``normal`` may lose the last commits on power loss (never on a crash of the
    process); ``off`` leaves syncing to the OS."""
    if sqlite_synchronous not in SQLITE_SYNCHRONOUS:
        raise ValueError(
            f"sqlite_synchronous: expected one of {list(SQLITE_SYNCHRONOUS)}, "
            f"got {sqlite_synchronous!r}"
        )
    from crmcore import dburl

    parsed = dburl.check(url)  # one clear line for a mistyped URL or a missing driver
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_MS / 1000})

        @event.listens_for(engine, "do_connect")
        def _private_file(*_args: Any) -> None:
            # on the first connection, not at engine creation: a command that
            # refuses to run (a missing file, a bad config) creates nothing
            _create_private_sqlite_file(parsed.database)

        dburl.explain_connect_failures(engine)
        sync = sqlite_synchronous.upper()

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # straight on the driver: BEGIN is two statements of every operation.
            # A write lock held beyond the busy timeout fails here, outside
            # SQLAlchemy's error wrapping: report it as the retryable error.
            driver: Any = conn.connection.dbapi_connection  # sqlite3's, with execute()
            try:
                driver.execute("BEGIN IMMEDIATE" if conn.info.get("crm_write") else "BEGIN")
            except sqlite3.OperationalError as e:
                raise database_error(e) from None

        return engine
    engine = create_engine(parsed, pool_pre_ping=True, connect_args=dburl.connect_args(parsed))
    dburl.explain_connect_failures(engine)
    return engine


def _create_private_sqlite_file(path: str | None) -> None:
    """A new SQLite database file is created 0600 (its journal files inherit
    the mode): it holds personal data. A missing directory is left to SQLite's
    own error on the first connection."""
    from crmcore.files import create_private

    if path and path != ":memory:" and not path.startswith("file:"):
        with contextlib.suppress(OSError):
            create_private(path)
