"""Backups: SQLite through its online backup API, PostgreSQL through pg_dump.

Both run outside any CRM transaction. A SQLite backup is consistent even while
other processes write (the backup API copies a snapshot page by page). Restoring
replaces the database's content with the backup's.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import Engine, make_url

from crmcore.errors import CRMError, ValidationError


def _sqlite_path(engine: Engine) -> str:
    path = make_url(str(engine.url)).database
    if not path or path == ":memory:":
        raise ValidationError("an in-memory SQLite database cannot be backed up")
    return path


def _pg_url(engine: Engine) -> str:
    url = make_url(engine.url.render_as_string(hide_password=False)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _pg_schema_args(engine: Engine) -> list[str]:
    """``--schema X`` when the URL pins a search_path (one CRM per schema)."""
    options = str(engine.url.query.get("options", ""))
    match = re.search(r"search_path=([A-Za-z_][A-Za-z0-9_]*)", options)
    return ["--schema", match.group(1)] if match else []


def backup(engine: Engine, target: str | Path) -> dict[str, object]:
    """Write a backup of the database to ``target`` (a new file)."""
    target = Path(target)
    if target.exists():
        raise ValidationError(f"{target}: already exists; choose a new file for the backup")
    if not target.parent.exists():
        raise ValidationError(f"{target.parent}: directory does not exist")
    if engine.dialect.name == "sqlite":
        src = sqlite3.connect(_sqlite_path(engine))
        dst = sqlite3.connect(str(target))
        try:
            with dst:
                src.backup(dst)
        finally:
            dst.close()
            src.close()
        return {"backend": "sqlite", "path": str(target), "bytes": target.stat().st_size}
    if engine.dialect.name == "postgresql":
        _need("pg_dump")
        run = subprocess.run(
            [
                "pg_dump",
                "--format=custom",
                "--no-owner",
                *_pg_schema_args(engine),
                "--file",
                str(target),
                _pg_url(engine),
            ],
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            raise CRMError(
                f"pg_dump failed: {run.stderr.strip().splitlines()[-1] if run.stderr else run.returncode}"
            )
        return {"backend": "postgresql", "path": str(target), "bytes": target.stat().st_size}
    raise CRMError(f"backups of {engine.dialect.name} databases are not supported")


def restore(engine: Engine, source: str | Path) -> dict[str, object]:
    """Replace the database's content with the backup in ``source``."""
    source = Path(source)
    if not source.is_file():
        raise ValidationError(f"{source}: backup file not found")
    if engine.dialect.name == "sqlite":
        try:
            src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()
            ok = src.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise ValidationError(f"{source}: not a SQLite backup ({e})") from None
        if ok != "ok":
            src.close()
            raise ValidationError(f"{source}: the backup is damaged ({ok})")
        engine.dispose()
        dst = sqlite3.connect(_sqlite_path(engine), timeout=10)
        try:
            with dst:
                src.backup(dst)
        finally:
            dst.close()
            src.close()
        return {"backend": "sqlite", "restored_from": str(source)}
    if engine.dialect.name == "postgresql":
        _need("pg_restore")
        engine.dispose()
        run = subprocess.run(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "--dbname",
                _pg_url(engine),
                str(source),
            ],
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            last = (
                run.stderr.strip().splitlines()[-1] if run.stderr.strip() else str(run.returncode)
            )
            raise CRMError(f"pg_restore failed: {last}")
        return {"backend": "postgresql", "restored_from": str(source)}
    raise CRMError(f"restores of {engine.dialect.name} databases are not supported")


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        raise CRMError(
            f"{tool} not found: install the PostgreSQL client tools (e.g. apt install postgresql-client)"
        )
