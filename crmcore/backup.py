"""Backups: SQLite through its online backup API, PostgreSQL through pg_dump.

Both run outside any CRM transaction. A SQLite backup is consistent even while
other processes write (the backup API copies a snapshot page by page). A backup
file is written privately (mode 0600) under a temporary name and renamed when
complete; it never overwrites a file and never follows a symbolic link.

Restoring replaces the database's content with the backup's, after checking
that the backup is a crmcore database this installation knows: the core's
tables, schema versions (Alembic revisions) that are known here and not newer,
and, for SQLite, an intact file (``PRAGMA quick_check``). The previous content
is kept aside until the restored database has been checked, and put back if
anything fails. ``pg_dump`` and ``pg_restore`` get the password through the
environment (``PGPASSWORD``), never on their command line.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, Engine, make_url

from crmcore.errors import CRMError, ValidationError
from crmcore.files import private_output

# Tables every crmcore database has had since its first schema version.
REQUIRED_TABLES = ("alembic_version", "staff", "customers", "transactions", "audit_log")


def _sqlite_path(engine: Engine) -> str:
    path = make_url(str(engine.url)).database
    if not path or path == ":memory:":
        raise ValidationError("an in-memory SQLite database cannot be backed up")
    return path


def _pg_connection(engine: Engine) -> tuple[str, dict[str, str]]:
    """The libpq URL without its password, and the environment that carries it."""
    url = make_url(engine.url.render_as_string(hide_password=False)).set(drivername="postgresql")
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
        url = URL.create(
            url.drivername,
            username=url.username,
            host=url.host,
            port=url.port,
            database=url.database,
            query=url.query,
        )
    return url.render_as_string(hide_password=False), env


def _pg_schema_args(engine: Engine) -> list[str]:
    """``--schema X`` when the URL pins a search_path (one CRM per schema)."""
    options = str(engine.url.query.get("options", ""))
    match = re.search(r"search_path=([A-Za-z_][A-Za-z0-9_]*)", options)
    return ["--schema", match.group(1)] if match else []


def _pg_run(tool: str, args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    _need(tool)
    return subprocess.run([tool, *args], capture_output=True, text=True, env=dict(env))


def _last_line(run: subprocess.CompletedProcess[str]) -> str:
    text = (run.stderr or "").strip()
    return text.splitlines()[-1] if text else f"exit status {run.returncode}"


def backup(engine: Engine, target: str | Path) -> dict[str, object]:
    """Write a backup of the database to ``target`` (a new file, mode 0600)."""
    target = Path(target)
    if engine.dialect.name == "sqlite":
        source = _sqlite_path(engine)
        with private_output(target, "backup") as temp:
            _copy_sqlite(source, str(temp))
        return {"backend": "sqlite", "path": str(target), "bytes": target.stat().st_size}
    if engine.dialect.name == "postgresql":
        url, env = _pg_connection(engine)
        with private_output(target, "backup") as temp:
            run = _pg_run(
                "pg_dump",
                [
                    "--format=custom",
                    "--no-owner",
                    *_pg_schema_args(engine),
                    "--file",
                    str(temp),
                    url,
                ],
                env,
            )
            if run.returncode != 0:
                raise CRMError(f"pg_dump failed: {_last_line(run)}")
        return {"backend": "postgresql", "path": str(target), "bytes": target.stat().st_size}
    raise CRMError(f"backups of {engine.dialect.name} databases are not supported")


def _read_only(path: str | Path) -> str:
    """The URI that opens a SQLite file read-only (any character in its name)."""
    return Path(path).absolute().as_uri() + "?mode=ro"


def _copy_sqlite(source: str, target: str) -> None:
    """Copy one SQLite database into another with the online backup API."""
    src = sqlite3.connect(_read_only(source), uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            with dst:
                src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


# -- schema versions ------------------------------------------------------------------
def _known_revisions(version_dirs: Iterable[str] | None) -> dict[str, bool]:
    """Every schema revision this installation knows (core and installed
    plugins), mapped to whether it is the newest of its branch."""
    from alembic.script import ScriptDirectory

    from crmcore.migrate import CORE_VERSIONS, _alembic_config

    if version_dirs is None:
        from crmcore.services.admin import installed_version_dirs

        version_dirs = installed_version_dirs().values()
    cfg = _alembic_config(None, [str(CORE_VERSIONS), *sorted(set(version_dirs))])
    script = ScriptDirectory.from_config(cfg)
    heads = set(script.get_heads())
    return {rev.revision: rev.revision in heads for rev in script.walk_revisions()}


def _check_versions(source: Path, versions: list[str], known: Mapping[str, bool]) -> bool:
    """Refuse versions this installation does not know; True if all are current."""
    if not versions:
        raise ValidationError(f"{source}: not a crmcore backup (no schema version recorded)")
    unknown = sorted(v for v in versions if v not in known)
    if unknown:
        raise ValidationError(
            f"{source}: schema version {', '.join(unknown)} is unknown here (a newer crmcore or "
            "a plugin that is not installed); restore it with the version that wrote it"
        )
    return all(known[v] for v in versions)


def _inspect_sqlite(source: Path) -> tuple[list[str], dict[str, int]]:
    """Versions and row counts of a SQLite file that must be an intact crmcore database."""
    try:
        con = sqlite3.connect(_read_only(source), uri=True)
    except sqlite3.Error as e:
        raise ValidationError(f"{source}: cannot open the backup ({e})") from None
    try:
        try:
            tables = {
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            ok = con.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise ValidationError(f"{source}: not a SQLite backup ({e})") from None
        if ok != "ok":
            raise ValidationError(f"{source}: the backup is damaged ({ok})")
        missing = [t for t in REQUIRED_TABLES if t not in tables]
        if missing:
            raise ValidationError(
                f"{source}: not a crmcore backup (missing tables: {', '.join(missing)})"
            )
        versions = [r[0] for r in con.execute("SELECT version_num FROM alembic_version")]
        counts = {
            t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])
            for t in ("customers", "transactions")
        }
    finally:
        con.close()
    return versions, counts


def inspect_backup(
    engine: Engine, source: str | Path, *, version_dirs: Iterable[str] | None = None
) -> dict[str, Any]:
    """Check that ``source`` is a backup this database can be restored from and
    say what it holds: schema versions, customer and transaction counts (SQLite;
    None for a pg_dump archive, counted after the restore), and whether its
    schema is current. ``version_dirs`` are the plugins' migration folders
    (default: every installed plugin's). Raises :class:`ValidationError` for
    anything that is not such a backup."""
    source = Path(source)
    if not source.is_file():
        raise ValidationError(f"{source}: backup file not found")
    if source.stat().st_size == 0:
        raise ValidationError(f"{source}: the backup file is empty")
    known = _known_revisions(version_dirs)
    counts: dict[str, int | None] = {"customers": None, "transactions": None}
    if engine.dialect.name == "sqlite":
        database = _sqlite_path(engine)
        if os.path.exists(database) and os.path.samefile(database, source):
            raise ValidationError(f"{source}: is the database itself; give a backup file")
        versions, found = _inspect_sqlite(source)
        counts.update(found)
    elif engine.dialect.name == "postgresql":
        versions = _inspect_pg_archive(engine, source)
    else:
        raise CRMError(f"restores of {engine.dialect.name} databases are not supported")
    current = _check_versions(source, versions, known)
    return {
        "backend": engine.dialect.name,
        "restored_from": str(source),
        "versions": sorted(versions),
        **counts,
        "schema_current": current,
        "note": "" if current else "the backup's schema is older: run 'crm db upgrade'",
    }


def restore(
    engine: Engine, source: str | Path, *, version_dirs: Iterable[str] | None = None
) -> dict[str, Any]:
    """Replace the database's content with the backup in ``source``, after
    :func:`inspect_backup` accepted it; returns what it restored. A failure
    leaves the previous content in place."""
    info = inspect_backup(engine, source, version_dirs=version_dirs)
    source = Path(source)
    if engine.dialect.name == "sqlite":
        _restore_sqlite(engine, source, info["versions"])
    else:
        info.update(_restore_postgresql(engine, source))
    return info


def _restore_sqlite(engine: Engine, source: Path, versions: list[str]) -> None:
    database = _sqlite_path(engine)
    engine.dispose()
    fd, aside = tempfile.mkstemp(
        dir=os.path.dirname(os.path.abspath(database)),
        prefix=f".{os.path.basename(database)}.",
        suffix=".before-restore",
    )
    os.close(fd)  # mkstemp creates it 0600: it holds the previous content
    kept = False
    try:
        _copy_sqlite(database, aside)
        try:
            _copy_sqlite(str(source), database)
            restored, _ = _inspect_sqlite(Path(database))
            if sorted(restored) != sorted(versions):
                raise CRMError("the restored database does not carry the backup's versions")
        except (CRMError, sqlite3.Error, OSError) as e:
            try:
                _copy_sqlite(aside, database)
            except (sqlite3.Error, OSError):
                kept = True
                raise CRMError(
                    f"restore failed ({e}); putting the previous database back failed too: "
                    f"it is kept in {aside}"
                ) from None
            raise CRMError(f"restore failed ({e}); the previous database was put back") from None
    finally:
        if not kept:
            for suffix in ("", "-wal", "-shm"):
                Path(aside + suffix).unlink(missing_ok=True)


def _inspect_pg_archive(engine: Engine, source: Path) -> list[str]:
    """The schema versions in a pg_dump archive that holds the core's tables."""
    _, env = _pg_connection(engine)
    listing = _pg_run("pg_restore", ["--list", str(source)], env)
    if listing.returncode != 0:
        raise ValidationError(f"{source}: not a pg_dump backup ({_last_line(listing)})")
    missing = [t for t in REQUIRED_TABLES if not re.search(rf"TABLE DATA \S+ {t} ", listing.stdout)]
    if missing:
        raise ValidationError(
            f"{source}: not a crmcore backup (missing tables: {', '.join(missing)})"
        )
    data = _pg_run(
        "pg_restore", ["--data-only", "--table=alembic_version", "--file=-", str(source)], env
    )
    if data.returncode != 0:
        raise ValidationError(f"{source}: cannot read its schema versions ({_last_line(data)})")
    return _copy_rows(data.stdout, "alembic_version")


def _restore_postgresql(engine: Engine, source: Path) -> dict[str, int]:
    """pg_restore in one transaction (a failure leaves the previous content
    exactly as it was); the restored customer and transaction counts."""
    url, env = _pg_connection(engine)
    engine.dispose()
    run = _pg_run(
        "pg_restore",
        [
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            "--dbname",
            url,
            str(source),
        ],
        env,
    )
    if run.returncode != 0:
        raise CRMError(f"pg_restore failed: {_last_line(run)}; the previous database is unchanged")
    with engine.connect() as conn:
        return {
            table: int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())
            for table in ("customers", "transactions")
        }


def _copy_rows(sql: str, table: str) -> list[str]:
    """First column of each row of ``table``'s COPY block in a pg_restore script."""
    rows: list[str] = []
    inside = False
    for line in sql.splitlines():
        if not inside:
            inside = bool(re.match(rf"COPY (\S+\.)?{table} ", line))
            continue
        if line == "\\.":
            break
        rows.append(line.split("\t", 1)[0])
    return rows


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        raise CRMError(
            f"{tool} not found: install the PostgreSQL client tools (e.g. apt install postgresql-client)"
        )
