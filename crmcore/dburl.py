"""Database URLs: what a user may write, what it means, and why it does not connect.

``[crm] database``, ``--db`` and ``CRM_DATABASE_URL`` accept ``sqlite:///PATH``
(``sqlite://`` for a throwaway database in memory) and
``postgresql://USER@HOST[:PORT]/DB`` (``postgres://`` is read the same way; both
use the psycopg 3 driver). Everything else is refused with one line that says
what was expected, before any file or connection is made. A failed connection
is reported as one line naming the database (host:port, or the file), not as a
driver traceback.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError

from crmcore.errors import ConfigError, MissingExtra

SUPPORTED = "sqlite:///PATH or postgresql://USER@HOST/DB"
# PostgreSQL: how long to wait for a server that does not answer (seconds);
# a ``connect_timeout`` in the URL's query wins.
CONNECT_TIMEOUT_S = 5
_POSTGRES_SCHEMES = {"postgres", "postgresql", "postgres+psycopg", "postgresql+psycopg"}
_SQLITE_SCHEMES = {"sqlite", "sqlite+pysqlite"}


def _shown(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def parse(url: str, *, where: str = "database") -> URL:
    """The SQLAlchemy URL for ``url`` (the driver made explicit), or a ConfigError
    naming ``where`` and what was expected."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(
            f"{where}: {url!r} is not a database URL; expected a URL such as "
            "sqlite:///crm.db or postgresql://user@host/db"
        )
    scheme = url.split("://", 1)[0].lower()
    if scheme in _POSTGRES_SCHEMES:
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    elif scheme.startswith(("postgres+", "postgresql+")):
        raise ConfigError(
            f"{where}: driver {scheme.split('+', 1)[1]!r} is not supported; write "
            "postgresql://USER@HOST/DB (crmcore uses psycopg 3)"
        )
    elif scheme not in _SQLITE_SCHEMES:
        raise ConfigError(
            f"{where}: unsupported database {scheme!r} in {_shown(url)!r}; supported: {SUPPORTED}"
        )
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as e:
        raise ConfigError(f"{where}: {_shown(url)!r} is not a valid database URL ({e})") from None
    if parsed.get_backend_name() == "postgresql" and not parsed.database:
        raise ConfigError(
            f"{where}: {_shown(url)!r} names no database; expected postgresql://USER@HOST/DB"
        )
    return parsed


def sqlite_path(url: str | URL) -> Path | None:
    """The file of a SQLite URL (``None`` for other backends and in-memory ones)."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "sqlite":
        return None
    name = parsed.database or ""
    if name in ("", ":memory:") or name.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return Path(name)


def resolve_sqlite(url: str, base: Path) -> str:
    """``url`` with a relative SQLite path made absolute against ``base`` (the
    directory of the config file that names it); any other URL unchanged."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # refused with a clear message by parse()
    path = sqlite_path(parsed)
    if path is None or path.is_absolute():
        return url
    query = url[url.index("?") :] if "?" in url else ""
    return f"{parsed.drivername}:///{(base / path).resolve()}{query}"


def check(url: str, *, where: str | None = None) -> URL:
    """:func:`parse` plus what can be known without connecting: the PostgreSQL
    driver is installed; a SQLite file's directory exists and the path is not a
    directory. ``where`` prefixes the message (default: the URL itself)."""
    where = where or f"database {_shown(url)}"
    parsed = parse(url, where=where)
    if parsed.get_backend_name() == "postgresql":
        try:
            importlib.import_module("psycopg")
        except ImportError:
            raise MissingExtra(
                f"{where}: PostgreSQL needs the psycopg driver: install crmcore[postgres]"
            ) from None
    path = sqlite_path(parsed)
    if path is not None:
        if path.is_dir():
            raise ConfigError(f"{where}: {str(path)!r} is a directory, not a database file")
        if not path.parent.is_dir():
            raise ConfigError(
                f"{where}: directory {str(path.parent)!r} of the database does not exist"
            )
    return parsed


def connect_args(parsed: URL) -> dict[str, Any]:
    """Driver arguments: a connect timeout for PostgreSQL unless the URL sets one."""
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        return {"connect_timeout": CONNECT_TIMEOUT_S}
    return {}


def explain_connect_failures(engine: Engine) -> None:
    """Make a failed connection a one-line :class:`ConfigError`: the server at
    host:port that did not answer or refused, or the SQLite file that is not a
    database."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        target = f"{url.host or 'localhost'}:{url.port or 5432}"

        @event.listens_for(engine, "do_connect")
        def _connect_postgres(dialect: Dialect, _rec: Any, cargs: Any, cparams: Any) -> Any:
            try:
                return dialect.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError as e:
                reason = _reason(str(e))
                raise ConfigError(
                    f"cannot connect to PostgreSQL at {target} (database {url.database!r}): {reason}"
                ) from None

        return
    path = sqlite_path(url)
    if path is None:
        return

    @event.listens_for(engine, "do_connect")
    def _connect_sqlite(dialect: Dialect, _rec: Any, cargs: Any, cparams: Any) -> Any:
        dbapi = dialect.loaded_dbapi
        try:
            conn = dialect.connect(*cargs, **cparams)
        except dbapi.OperationalError as e:
            raise ConfigError(f"cannot open the SQLite database {str(path)!r}: {e}") from None
        try:
            conn.execute("PRAGMA schema_version").fetchall()  # reads the file's header
        except dbapi.DatabaseError:
            conn.close()
            raise ConfigError(
                f"{str(path)!r} is not a SQLite database; point [crm] database (or --db) "
                "at a crm database, or at a new file to create with `crm init`"
            ) from None
        return conn


def _reason(text: str) -> str:
    """The cause in a libpq message, without the address it repeats and the hint
    lines after it: 'Connection refused', 'database "x" does not exist', ..."""
    first = text.strip().splitlines()[0] if text.strip() else text
    return first.rsplit("failed: ", 1)[-1].replace("FATAL:  ", "").strip() or first
