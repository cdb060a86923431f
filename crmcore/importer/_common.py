"""What both imports share: the summary, the rejects file, value parsers, the
staging-table plumbing per dialect, and the hook fallback rule.

Longer than most modules: the pieces both importers share stay in one place, so the two
never parse a value differently."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, TypeVar

import attrs

from crmcore.errors import AccessDenied, ValidationError
from crmcore.files import private_output
from crmcore.parse import clean_text, parse_datetime, parse_money
from crmcore.storage._driver import dialect_name, driver_connection

MAX_ERRORS = 1000  # errors kept in the summary; every rejected row is still counted
DEFAULT_BATCH = 50_000


class ImportFailed(ValidationError):
    """All-or-nothing import with invalid rows: nothing was written."""

    def __init__(self, summary: dict[str, Any]) -> None:
        n = summary["rejected"]
        first = summary["errors"][0] if summary["errors"] else {"line": "?", "message": "?"}
        super().__init__(
            f"{n} invalid row{'s' if n != 1 else ''}, nothing imported (first: line {first['line']}: "
            f"{first['message']}); fix them or use --skip-invalid"
        )
        self.summary = summary


class Summary:
    """Counts and line-numbered errors of one import; JSON-able via :meth:`as_dict`."""

    def __init__(self, kind: str, path: str) -> None:
        self.kind = kind
        self.path = path
        self.rows = 0
        self.imported = 0
        self.rejected = 0
        self.duplicates = 0
        self.matched = 0
        self.batches = 0
        self.errors: list[dict[str, Any]] = []
        self.started = time.perf_counter()
        self.first_id: int | None = None
        self.last_id: int | None = None

    def error(self, line: int, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"line": line, "message": message})

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "file": self.path,
            "rows": self.rows,
            "imported": self.imported,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
        }
        if self.kind == "customers":
            out["matched"] = self.matched
        out["batches"] = self.batches
        out["first_id"] = self.first_id
        out["last_id"] = self.last_id
        out["seconds"] = round(time.perf_counter() - self.started, 3)
        out["errors"] = sorted(self.errors, key=lambda e: e["line"])
        if self.rejected > len(self.errors):
            out["errors_truncated"] = True
        return out


class Rejects:
    """The rejects file: every refused row with its line number and reason.

    CSV input gives CSV (``line,error`` then the original columns); JSON lines
    give JSON lines ``{"line", "error", "record"}``. Made by :func:`rejects_file`,
    which writes it privately and atomically; without a path it writes nothing.
    """

    def __init__(self, fh: IO[str] | None, fmt: str, columns: Sequence[str]) -> None:
        self.fmt = fmt
        self.columns = list(columns)
        self.fh = fh
        if fh is not None and fmt == "csv":
            self.writer = csv.writer(fh)
            self.writer.writerow(["line", "error", *self.columns])

    def write(self, line: int, message: str, fields: Sequence[Any]) -> None:
        if self.fh is None:
            return
        if self.fmt == "csv":
            self.writer.writerow([line, message, *fields])
        else:
            record: Any = (
                dict(zip(self.columns, fields, strict=False))
                if len(fields) == len(self.columns)
                else (fields[0] if fields else None)
            )
            self.fh.write(
                json.dumps({"line": line, "error": message, "record": record}, ensure_ascii=False)
                + "\n"
            )


def _same_path(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_rejects_path(crm: Any, rejects: str, input_path: str) -> None:
    """Refuse a rejects path that names the input file or the database (or its
    journal files): writing it would destroy what is being read."""
    if _same_path(rejects, input_path):
        raise ValidationError(
            f"--rejects {rejects}: is the input file; give the rejects a file of their own"
        )
    url = crm.engine.url
    database = url.database if url.get_backend_name() == "sqlite" else None
    if database and database != ":memory:":
        for suffix in ("", "-wal", "-shm", "-journal"):
            if _same_path(rejects, database + suffix):
                raise ValidationError(
                    f"--rejects {rejects}: is the database file; give the rejects a file of their own"
                )


@contextlib.contextmanager
def rejects_file(
    crm: Any,
    rejects: str | None,
    input_path: str,
    fmt: str,
    columns: Sequence[str],
    *,
    replace: bool = False,
) -> Iterator[Rejects]:
    """The rejects file of one import, written to a private temporary file next
    to ``rejects`` and renamed to it when the block ends normally: an
    interrupted or failed import leaves no rejects file and never truncates an
    existing file. An existing ``rejects`` is refused unless ``replace``.
    Call it after the permission check."""
    if not rejects:
        yield Rejects(None, fmt, columns)
        return
    check_rejects_path(crm, rejects, input_path)
    with (
        private_output(
            rejects, "rejects file", replace=replace, hint=" or pass --force to replace it"
        ) as temp,
        temp.open("w", encoding="utf-8", newline="") as fh,
    ):
        yield Rejects(fh, fmt, columns)


# -- values ---------------------------------------------------------------------------
def parse_amount(text: str) -> int | str:
    """Decimal yuan text -> integer cents, exactly (:func:`crmcore.parse.parse_money`;
    refunds may be negative); the error message otherwise."""
    try:
        return parse_money(text, field="amount", allow_negative=True)
    except ValidationError as e:
        return str(e)


def parse_time(text: str) -> tuple[str, dt.datetime | None] | str:
    """An ISO date or date-time (:func:`crmcore.parse.parse_datetime`) -> the
    exact text SQLAlchemy stores on SQLite ('YYYY-MM-DD HH:MM:SS.ffffff') and the
    datetime when it had to be computed; the error message otherwise."""
    s = text.strip()
    try:
        d = parse_datetime(s, field="occurred_at")
    except ValidationError as e:
        return str(e)
    n = len(s)
    if n == 19 and s[4] == "-" and s[7] == "-" and s[13] == ":" and s[16] == ":":
        return s[:10] + " " + s[11:] + ".000000", None
    if n == 10 and s[4] == "-" and s[7] == "-":
        return s + " 00:00:00.000000", None
    return d.isoformat(" ", "microseconds"), d


def iso(value: dt.datetime) -> str:
    """A datetime as SQLAlchemy's DateTime stores it on SQLite."""
    return value.isoformat(" ", "microseconds")


def clean(value: str | None, what: str, max_len: int, *, required: bool = False) -> str | None:
    """Stripped text or None (:func:`crmcore.parse.clean_text`)."""
    return clean_text(value, field=what, max_len=max_len, required=required)


# -- access, dialect and hooks ----------------------------------------------------------
def require_import(crm: Any) -> None:
    p = crm.db.principal
    if not p.unrestricted:
        raise AccessDenied(
            f"{p.key} may not import: imports need an unrestricted principal (admin)"
        )
    crm.db.require_write()


def driver(crm: Any) -> Any:
    """The DBAPI connection of the open transaction."""
    return driver_connection(crm.db)


def copy_text(value: Any) -> str:
    """One value in PostgreSQL COPY text format."""
    if value is None:
        return "\\N"
    s = str(value)
    if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return s


def copy_payload(rows: Sequence[Sequence[Any]]) -> str:
    """``rows`` as one PostgreSQL COPY text payload (tab-separated, one line each).

    Built apart from the COPY so an importer's reader thread can build it while
    the database is busy with the previous batch."""
    return "".join("\t".join([copy_text(v) for v in row]) + "\n" for row in rows)


def copy_rows(
    crm: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]] | str
) -> None:
    """COPY ``rows`` (tuples, or a ``copy_payload`` already built) into ``table``
    (PostgreSQL)."""
    cur = driver(crm).cursor()
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
        if isinstance(rows, str):
            cp.write(rows)
        else:
            for at in range(0, len(rows), 5000):  # bounded text however many rows
                cp.write(copy_payload(rows[at : at + 5000]))
    cur.close()


def bulk_load(
    crm: Any,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    payload: str | None = None,
) -> None:
    """Load plain tuples into a staging table: executemany (SQLite) or COPY
    (PostgreSQL, of ``payload`` when the reader built it already)."""
    if not rows:
        return
    if dialect_name(crm.db) == "sqlite":
        marks = ",".join("?" * len(columns))
        driver(crm).executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
        )
    else:
        copy_rows(crm, table, columns, payload if payload is not None else rows)


def singular_caller(crm: Any, singular: str, batch: str) -> Callable[..., Any] | None:
    """The hook caller for plugins that implement ``singular`` but not ``batch``
    (they are called once per row on bulk paths); None when there are none."""
    plugins = crm.plugins
    batch_impls = set(plugins.implementers(batch))
    single = plugins.implementers(singular)
    only = [n for n in single if n not in batch_impls]
    if not only:
        return None
    pm = plugins.pm
    remove = [pm.get_plugin(n) for n in single if n not in only]
    return pm.subset_hook_caller(singular, remove_plugins=[p for p in remove if p is not None])


def has_impl(crm: Any, hook: str) -> bool:
    return bool(crm.plugins.implementers(hook))


def drop_lines(crm: Any, table: str, lines: Sequence[int]) -> None:
    if not lines:
        return
    if dialect_name(crm.db) == "sqlite":
        driver(crm).executemany(f"DELETE FROM {table} WHERE line = ?", [(n,) for n in lines])
    else:
        cur = driver(crm).cursor()
        cur.execute(f"DELETE FROM {table} WHERE line = ANY(%s)", (list(lines),))
        cur.close()


def query(crm: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run driver-level SQL (``?`` placeholders; rewritten for psycopg) and fetch all."""
    return crm.db.driver_query(sql, params)


def analyze_if_stale(crm: Any, table: str) -> None:
    """ANALYZE ``table`` (PostgreSQL) when a tenth of it changed since its last
    statistics: a bulk load right after another one (or after creating the
    table) would otherwise be planned for the old, often empty, table."""
    row = query(
        crm,
        "SELECT n_live_tup, n_mod_since_analyze FROM pg_stat_user_tables "
        "WHERE relid = to_regclass(?)",
        (table,),
    )
    if row and row[0][1] > max(row[0][0], 0) // 10 + 1000:
        query(crm, f"ANALYZE {table}")


T = TypeVar("T")


@attrs.define
class Parsed:
    """One batch as the reader thread validated it: rows read, in-file
    duplicates, rejected lines ``(line, message, fields)``, the good rows and,
    for PostgreSQL, the good rows as a COPY payload (``copy_payload``)."""

    rows: int = 0
    duplicates: int = 0
    rejects: list[tuple[int, str, Any]] = attrs.Factory(list)
    batch: list[tuple[Any, ...]] = attrs.Factory(list)
    raw: dict[int, Any] = attrs.Factory(dict)
    payload: str | None = None


def prefetch(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield ``items``, produced by a background thread up to ``depth`` ahead.

    An import alternates Python work (reading, validating a batch) with
    database work (loading it), and both database drivers release the GIL
    while the database works: produced ahead, the next batch is parsed while
    the database loads this one. An error in the producer is raised here; if
    the consumer stops early the producer stops at its next batch."""
    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("done", None))
        except BaseException as e:  # handed to the consumer, raised there
            put(("error", e))

    worker = threading.Thread(target=produce, name="crm-import-reader", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        worker.join()


class BatchImport:
    """What every importer holds while it streams a file in batches."""

    def __init__(
        self,
        crm: Any,
        reader: Any,
        summary: Summary,
        rejects: Rejects,
        skip_invalid: bool,
        batch_size: int,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.crm = crm
        self.reader = reader
        self.summary = summary
        self.rejects = rejects
        self.skip_invalid = skip_invalid
        self.batch_size = batch_size
        self.progress = progress
        self.dialect = dialect_name(crm.db)
