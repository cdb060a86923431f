"""``crm import transactions``: stream a file of purchases into ``transactions``.

Per batch (default 50,000 rows): one tight Python pass validates and
serialises each row to a plain tuple; the tuples go into a temporary staging
table (sqlite3 ``executemany`` / PostgreSQL ``COPY``); unknown customers and
transaction ids already stored are found with one set-based query each; one
``INSERT ... SELECT`` writes the good rows; ``customer_stats`` is upserted from
the new id range; one audit row and one ``crm_transaction_recorded_batch``
call follow. Nothing runs per row in SQL or in hooks, except the documented
fallback for plugins that implement only the singular hooks.

On PostgreSQL ``customer_stats`` is upserted once, after the last batch, from
the id ranges the import wrote, unless a plugin implements a hook whose
contract is that the aggregates are already updated (the batch hook, or the
singular hook it falls back to): then, as on SQLite, per batch before the
hook, so a hook sees the same ``customer_stats`` on both backends. Updating the same stats
rows batch after batch inside one transaction leaves a version per batch that
every later upsert has to walk, and fires the foreign-key check on every update
of a row this transaction wrote, so the per-batch cost grew with the import.
The import transaction also gets a larger ``work_mem`` and fresh planner
statistics (``customers`` when stale, ``transactions`` whenever the import has
doubled it), so the plans of later batches stay right as the table grows.

Longer than most modules: the streaming import is one pipeline whose stages share its
batch state.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import attrs
from sqlalchemy import select

from crmcore.entities import Transaction, TransactionBatch
from crmcore.errors import Conflict, ValidationError
from crmcore.importer import _common as c
from crmcore.importer._read import Reader
from crmcore.schema import import_fingerprints, transactions
from crmcore.storage._driver import connection, dialect_name

REQUIRED = ("customer_external_id", "occurred_at", "amount")
OPTIONAL = ("external_id", "channel", "kind")
KINDS = ("purchase", "refund")
STAGE = "crm_import_tx"
STAGE_COLS = ("line", "cext", "at", "cents", "channel", "ext", "kind")
PG_WORK_MEM = "256MB"
# Rows without a transaction id are fingerprinted in batches of this many rows of
# the file (whatever --batch-size is), so a re-import is recognised batch by batch.
FINGERPRINT_ROWS = 1000
SHOWN_RANGES = 5  # repeated line ranges named in the refusal

# A refund lowers the spend; the count and first/last times are of purchases only
# (for a customer whose only rows here are refunds, of those rows, so a new stats
# row is complete; an existing row keeps its purchase times).
_STATS_SQL = """
INSERT INTO customer_stats (customer_id, first_at, last_at, tx_count, spend_cents)
SELECT customer_id,
       COALESCE(MIN(CASE WHEN kind = 'purchase' THEN occurred_at END), MIN(occurred_at)),
       COALESCE(MAX(CASE WHEN kind = 'purchase' THEN occurred_at END), MAX(occurred_at)),
       COUNT(CASE WHEN kind = 'purchase' THEN 1 END), SUM(amount_cents)
FROM transactions WHERE id BETWEEN ? AND ? GROUP BY customer_id
ON CONFLICT (customer_id) DO UPDATE SET
  first_at = CASE WHEN excluded.tx_count > 0
                  THEN {least}(customer_stats.first_at, excluded.first_at)
                  ELSE customer_stats.first_at END,
  last_at = CASE WHEN excluded.tx_count > 0
                 THEN {greatest}(customer_stats.last_at, excluded.last_at)
                 ELSE customer_stats.last_at END,
  tx_count = customer_stats.tx_count + excluded.tx_count,
  spend_cents = customer_stats.spend_cents + excluded.spend_cents"""


class AlreadyImported(Conflict):
    """Rows without transaction ids whose content an earlier import (or an
    earlier part of the same file) already holds: refused, nothing written."""


@attrs.define
class _TxParsed(c.Parsed):
    """A parsed batch plus the content fingerprints completed while reading it:
    ``(digest, first line, last line, rows)`` per fingerprint batch, and the
    whole file's at the end of the file; ``refunds`` counts its refund rows."""

    fingerprints: list[tuple[str, int, int, int]] = attrs.Factory(list)
    file_fingerprint: tuple[str, int, int, int] | None = None
    refunds: int = 0


def _check_kind(kind: str | None, cents: int) -> str:
    """The row's kind (default purchase), or an error message: a negative
    amount must be marked as a refund, a refund must be negative."""
    kind = (kind or "").strip().lower() or "purchase"
    if kind not in KINDS:
        return f"kind {kind[:20]!r}: expected purchase or refund"
    if kind == "purchase" and cents < 0:
        return f"amount {cents / 100:.2f} is negative: mark a refund with kind=refund"
    if kind == "refund" and cents >= 0:
        return f"refund amount {cents / 100:.2f}: a refund's amount is negative (e.g. -12.34)"
    return kind


def _create_stage(crm: Any) -> None:
    if dialect_name(crm.db) == "sqlite":
        c.driver(crm).execute(f"DROP TABLE IF EXISTS temp.{STAGE}")
        c.driver(crm).execute(
            f"CREATE TEMP TABLE {STAGE} (line INTEGER PRIMARY KEY, cext TEXT NOT NULL, "
            "at TEXT NOT NULL, cents INTEGER NOT NULL, channel TEXT, ext TEXT, kind TEXT NOT NULL)"
        )
    else:
        c.query(crm, f"DROP TABLE IF EXISTS pg_temp.{STAGE}")
        c.query(
            crm,
            f"CREATE TEMP TABLE {STAGE} (line BIGINT PRIMARY KEY, cext TEXT NOT NULL, "
            "at TIMESTAMP NOT NULL, cents BIGINT NOT NULL, channel TEXT, ext TEXT, "
            "kind TEXT NOT NULL) ON COMMIT DROP",
        )
        c.query(crm, "LOCK TABLE transactions IN EXCLUSIVE MODE")  # contiguous id ranges per batch
        c.query(crm, f"SET LOCAL work_mem = '{PG_WORK_MEM}'")  # sorts/hashes of a batch in memory
        c.query(crm, "SET LOCAL jit = off")  # compiling the same statements batch after batch
        c.analyze_if_stale(crm, "customers")


def _drop_stage(crm: Any) -> None:
    if dialect_name(crm.db) == "sqlite":
        c.driver(crm).execute(f"DROP TABLE IF EXISTS temp.{STAGE}")


def import_transactions(
    crm: Any,
    path: str,
    *,
    fmt: str | None = None,
    skip_invalid: bool = False,
    rejects: str | None = None,
    replace_rejects: bool = False,
    batch_size: int = c.DEFAULT_BATCH,
    progress: Callable[[int], None] | None = None,
    stream: Any = None,
    allow_duplicates: bool = False,
) -> dict[str, Any]:
    """Import transactions from ``path`` (CSV or JSON lines); return the summary.

    Columns: ``customer_external_id, occurred_at, amount`` (decimal text, e.g.
    ``12.34``), optional ``external_id``, ``channel`` and ``kind`` (``purchase``,
    the default, or ``refund``: a negative amount must be a refund, a refund
    must be negative and its customer must have a purchase). A transaction id
    that is already stored (or earlier in the file) with the same customer,
    time and amount is a duplicate: skipped and counted, never imported twice;
    with different values it is an error.

    Rows without a transaction id cannot be told apart that way: their content
    is fingerprinted, for the whole file and per batch of
    :data:`FINGERPRINT_ROWS` rows, and the fingerprints are stored. A file (or
    a batch of one) whose fingerprint is already stored, or that repeats an
    earlier batch of the same file, raises :class:`AlreadyImported` naming the
    line ranges, and nothing is written, unless ``allow_duplicates``.

    Default all-or-nothing: any invalid row raises :class:`ImportFailed` and
    nothing is written. ``skip_invalid`` imports the good rows and writes the
    bad ones to ``rejects`` (a new file, or an existing one replaced with
    ``replace_rejects``; never the input or the database; it appears complete
    when the file has been read, or not at all).
    """
    if batch_size < 1:
        raise ValidationError("batch size must be at least 1")
    reader = Reader(path, fmt, stream=stream)
    summary = c.Summary("transactions", path)
    try:
        reader.read_header(set(REQUIRED + OPTIONAL), REQUIRED, scalar=REQUIRED + OPTIONAL)
        with crm.transaction(command=f"import transactions {path}"):
            c.require_import(crm)
            with c.rejects_file(
                crm, rejects, path, reader.fmt, reader.columns, replace=replace_rejects
            ) as out:
                job = _TxImport(crm, reader, summary, out, skip_invalid, batch_size, progress)
                job.allow_duplicates = allow_duplicates
                job.run()
            if summary.rejected and not skip_invalid:
                summary.imported = 0
                summary.first_id = summary.last_id = None
                raise c.ImportFailed(summary.as_dict())
    finally:
        reader.close()
    return summary.as_dict()


class _TxImport(c.BatchImport):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        crm = self.crm
        self.validate_hook = c.has_impl(crm, "crm_validate_transaction")
        self.batch_hook = c.has_impl(crm, "crm_transaction_recorded_batch")
        self.single = c.singular_caller(
            crm, "crm_transaction_recorded", "crm_transaction_recorded_batch"
        )
        least, greatest = ("MIN", "MAX") if self.dialect == "sqlite" else ("LEAST", "GREATEST")
        self.stats_sql = _STATS_SQL.format(least=least, greatest=greatest)
        # PostgreSQL: customer_stats once at the end unless a hook reads them per
        # batch (see the module docstring)
        self.defer_stats = self.dialect != "sqlite" and self.single is None and not self.batch_hook
        self.ranges: list[list[int]] = []  # id ranges written, when the stats are deferred
        self.next_analyze = 0
        self.seq: str | None = None
        self.allow_duplicates = False
        self.fingerprints: list[tuple[str, str, int, int, int]] = []  # (scope, digest, ...)
        self.seen_digests: dict[str, tuple[int, int]] = {}  # batch digest -> its lines
        self.repeated: list[tuple[int, int, str]] = []  # (first, last line, where seen)

    def _plan_stats(self) -> None:
        """PostgreSQL: ANALYZE ``transactions`` each time this import has doubled
        it (from 100,000 rows on), so later batches and hooks get plans for the
        table as it is now, not as it was at the start."""
        imported = self.summary.imported
        if self.next_analyze == 0:
            start = c.query(
                self.crm, "SELECT reltuples FROM pg_class WHERE oid = 'transactions'::regclass"
            )
            self.next_analyze = max(int(start[0][0]) if start else 0, 100_000)
        if imported >= self.next_analyze:
            c.query(self.crm, "ANALYZE transactions")
            self.next_analyze = 2 * imported + self.next_analyze

    def finish(self) -> None:
        """PostgreSQL, deferred stats: one upsert of ``customer_stats`` from every
        id range the import wrote."""
        if not self.ranges:
            return
        values = ", ".join(f"({int(lo)}, {int(hi)})" for lo, hi in self.ranges)
        # in customer order: the upsert and the FK checks of new rows walk their pages in order
        sql = self.stats_sql.replace(
            "FROM transactions WHERE id BETWEEN ? AND ? GROUP BY customer_id",
            f"FROM transactions t JOIN (VALUES {values}) r (lo, hi) ON t.id BETWEEN r.lo AND r.hi "
            "GROUP BY customer_id ORDER BY customer_id",
        )
        c.query(self.crm, sql)
        self.ranges = []

    def reject(self, line: int, message: str, fields: list[Any]) -> None:
        self.summary.error(line, message)
        self.rejects.write(line, message, fields)

    def run(self) -> None:
        _create_stage(self.crm)
        summary = self.summary
        # parsing the next batch (Python) overlaps the database's work on this one
        for part in c.prefetch(self._parse()):
            summary.rows += part.rows
            summary.duplicates += part.duplicates
            for line, message, fields in part.rejects:
                self.reject(line, message, fields)
            self._check_fingerprints(part)
            if part.batch and not self.repeated:
                self.flush(part.batch, part.raw, part.payload, part.refunds)
        self._refuse_repeated()
        self.finish()
        self._store_fingerprints()
        _drop_stage(self.crm)

    # -- content fingerprints of rows without transaction ids ---------------------
    def _stored(self, scope: str, digests: list[str]) -> dict[str, tuple[str, Any]]:
        """Stored fingerprints among ``digests``: digest -> (file, imported at)."""
        fp = import_fingerprints.c
        rows = connection(self.crm.db).execute(
            select(fp.digest, fp.file, fp.imported_at)
            .where(fp.kind == "transactions", fp.scope == scope, fp.digest.in_(digests))
            .order_by(fp.id)
        )
        found: dict[str, tuple[str, Any]] = {}
        for digest, file, at in rows:
            found.setdefault(digest, (file, at))
        return found

    def _check_fingerprints(self, part: _TxParsed) -> None:
        """Note the batches of ``part`` whose content is already stored or
        repeats an earlier batch of this file (refused at the end)."""
        if self.allow_duplicates:
            self.fingerprints += [("batch", *f) for f in part.fingerprints]
            if part.file_fingerprint is not None:
                self.fingerprints.append(("file", *part.file_fingerprint))
            return
        if part.fingerprints:
            stored = self._stored("batch", [f[0] for f in part.fingerprints])
            for digest, first, last, rows in part.fingerprints:
                earlier = self.seen_digests.get(digest)
                if digest in stored:
                    file, at = stored[digest]
                    self.repeated.append((first, last, f"{file} ({at:%Y-%m-%d %H:%M})"))
                elif earlier is not None:
                    self.repeated.append((first, last, f"lines {earlier[0]}-{earlier[1]}"))
                else:
                    self.seen_digests[digest] = (first, last)
                    self.fingerprints.append(("batch", digest, first, last, rows))
        if part.file_fingerprint is not None:
            digest, first, last, rows = part.file_fingerprint
            stored = self._stored("file", [digest])
            if digest in stored and not self.repeated:  # (a batch always repeats too)
                file, at = stored[digest]
                self.repeated.append((first, last, f"{file} ({at:%Y-%m-%d %H:%M})"))
            self.fingerprints.append(("file", digest, first, last, rows))

    def _refuse_repeated(self) -> None:
        if not self.repeated:
            return
        ranges = ", ".join(f"{a}-{b}" for a, b, _ in self.repeated[:SHOWN_RANGES])
        more = len(self.repeated) - SHOWN_RANGES
        where = sorted({w for _, _, w in self.repeated})
        raise AlreadyImported(
            f"{self.summary.path}: rows without a transaction id on lines {ranges}"
            + (f" and {more} more batches" if more > 0 else "")
            + f" repeat what was already imported ({'; '.join(where[:3])}); nothing imported. "
            "Import only the new rows, or use --allow-duplicates if they are new purchases"
        )

    def _store_fingerprints(self) -> None:
        if not self.fingerprints or (self.summary.rejected and not self.skip_invalid):
            return
        now = self.crm.now()
        file = self.summary.path[-500:]
        connection(self.crm.db).execute(
            import_fingerprints.insert(),
            [
                {
                    "kind": "transactions",
                    "scope": scope,
                    "digest": digest,
                    "first_line": first,
                    "last_line": last,
                    "rows": rows,
                    "file": file,
                    "imported_at": now,
                }
                for scope, digest, first, last, rows in self.fingerprints
            ],
        )

    def _parse(self) -> Iterator[_TxParsed]:
        """Read and validate the file, one :class:`Parsed` per batch. Runs in the
        prefetch thread: it touches only the reader, never the database or the
        summary (the consumer applies each part's counts and rejects in order)."""
        cols = self.reader.columns
        i_c, i_t, i_a = (
            cols.index("customer_external_id"),
            cols.index("occurred_at"),
            cols.index("amount"),
        )
        i_e = cols.index("external_id") if "external_id" in cols else -1
        i_ch = cols.index("channel") if "channel" in cols else -1
        i_k = cols.index("kind") if "kind" in cols else -1
        parse_time, parse_amount = c.parse_time, c.parse_amount
        part = _TxParsed()
        batch, raw, rejects = part.batch, part.raw, part.rejects
        seen: dict[str, tuple[int, str, str, int]] = {}  # ext id -> (line, customer, at, cents)
        # the content of rows without a transaction id, per fingerprint batch and file
        block: list[str] = []
        block_first = block_last = 0
        file_hash = hashlib.sha256()
        file_first = file_last = file_rows = row_no = 0

        def close_block(last_line: int) -> None:
            nonlocal block, file_rows
            if block:
                data = "".join(block).encode("utf-8")
                file_hash.update(data)
                digest = hashlib.sha256(data).hexdigest()
                part.fingerprints.append((digest, block_first, last_line, len(block)))
                file_rows += len(block)
            block = []

        for line, f, err in self.reader.rows():
            part.rows += 1
            if row_no % FINGERPRINT_ROWS == 0:
                if row_no:
                    close_block(block_last)
                block_first = line
            row_no += 1
            block_last = line
            if err is not None:
                rejects.append((line, err, f))
                continue
            cext, at_text, amount = f[i_c], f[i_t], f[i_a]
            if not cext or not cext.strip():
                rejects.append((line, "customer_external_id: required", f))
                continue
            if at_text is None or amount is None:
                what = "occurred_at" if at_text is None else "amount"
                rejects.append((line, f"{what}: required", f))
                continue
            at = parse_time(at_text)
            if isinstance(at, str):
                rejects.append((line, at, f))
                continue
            cents = parse_amount(amount)
            if isinstance(cents, str):
                rejects.append((line, cents, f))
                continue
            kind = _check_kind(f[i_k] if i_k >= 0 else None, cents)
            if kind not in KINDS:
                rejects.append((line, kind, f))
                continue
            cext = cext.strip()
            ext = f[i_e] if i_e >= 0 else None
            channel = f[i_ch] if i_ch >= 0 else None
            if ext is not None:
                ext = ext.strip() or None
                if ext is not None:
                    if len(ext) > 128:
                        rejects.append((line, "external_id: longer than 128 characters", f))
                        continue
                    first = seen.get(ext)
                    if first is not None:
                        if first[1:] == (cext, at[0], cents):
                            part.duplicates += 1
                        else:
                            message = (
                                f"transaction id {ext!r} repeats line {first[0]} "
                                "with a different customer, time or amount"
                            )
                            rejects.append((line, message, f))
                        continue
                    seen[ext] = (line, cext, at[0], cents)
            if channel is not None:
                channel = channel.strip() or None
                if channel is not None and len(channel) > 32:
                    rejects.append((line, "channel: longer than 32 characters", f))
                    continue
            batch.append((line, cext, at[0], cents, channel, ext, kind))
            raw[line] = f
            if kind == "refund":
                part.refunds += 1
            if ext is None:
                block.append(f"{cext}\x1f{at[0]}\x1f{cents}\x1f{channel or ''}\x1f{kind}\n")
                file_first = file_first or line
                file_last = line
            if len(batch) >= self.batch_size:
                yield self._ready(part)
                part = _TxParsed()
                batch, raw, rejects = part.batch, part.raw, part.rejects
                seen = {}
        if row_no:
            close_block(block_last)
        if file_rows:
            part.file_fingerprint = (file_hash.hexdigest(), file_first, file_last, file_rows)
        yield self._ready(part)

    def _ready(self, part: _TxParsed) -> _TxParsed:
        """PostgreSQL: the batch's COPY payload, built here in the reader thread."""
        if self.dialect != "sqlite" and part.batch:
            part.payload = c.copy_payload(part.batch)
        return part

    def flush(
        self,
        batch: list[tuple[Any, ...]],
        raw: dict[int, list[Any]],
        payload: str | None = None,
        refunds: int = 0,
    ) -> None:
        """Load one batch: stage it, insert what is valid with one statement, then
        look for the reasons only if fewer rows went in than were staged."""
        crm, summary = self.crm, self.summary
        summary.batches += 1
        if self.progress is not None:
            self.progress(self.reader.bytes_read)
        if self.dialect == "sqlite":
            c.driver(crm).execute(f"DELETE FROM {STAGE}")
        else:
            c.query(crm, f"TRUNCATE {STAGE}")
        c.bulk_load(crm, STAGE, STAGE_COLS, batch, payload)
        if self.dialect != "sqlite" and summary.batches == 1:
            # the planner's column statistics of the staging table survive TRUNCATE,
            # and its size is read from the table itself: one batch is enough
            c.query(crm, f"ANALYZE {STAGE}")
        failed = summary.rejected and not self.skip_invalid
        bad: list[int] = []
        if self.validate_hook:
            bad = self._validate(set(), raw)
            failed = summary.rejected and not self.skip_invalid
        if failed:  # all-or-nothing and something is wrong: keep reporting, write nothing
            self._explain(raw, None)
            return
        if refunds:
            bad += self._refunds_without_purchase(raw)
            if summary.rejected and not self.skip_invalid:
                self._explain(raw, None)
                return
        c.drop_lines(crm, STAGE, bad)
        staged = len(batch) - len(bad)
        insert = f"""
            INSERT INTO transactions
                (external_id, customer_id, occurred_at, amount_cents, channel, kind)
            SELECT s.ext, k.id, s.at, s.cents, s.channel, s.kind
            FROM {STAGE} s CROSS JOIN customers k WHERE k.external_id = s.cext ORDER BY s.line
            ON CONFLICT (external_id) DO NOTHING"""
        if self.dialect == "sqlite":
            conn = c.driver(crm)
            before = conn.execute("SELECT COALESCE(MAX(id), 0) FROM transactions").fetchone()[0]
            n = conn.execute(insert).rowcount
            first, last = before + 1, before + n
        else:
            first, last, n, customer_ids = self._insert_pg(insert)
        if n < staged:  # unknown customers or stored transaction ids: find which lines
            self._explain(raw, first if n else None)
        if not n:
            return
        summary.imported += n
        summary.first_id = first if summary.first_id is None else summary.first_id
        summary.last_id = last
        if self.defer_stats:
            if self.ranges and self.ranges[-1][1] + 1 == first:
                self.ranges[-1][1] = last
            else:
                self.ranges.append([first, last])
            touched = customer_ids
            self._plan_stats()
        else:
            stats = self.stats_sql + (" RETURNING customer_id" if self.batch_hook else "")
            touched = [r[0] for r in c.query(crm, stats, (first, last))]
        crm.db.audit(
            "transactions",
            None,
            "import",
            None,
            {"rows": n, "first_id": first, "last_id": last, "file": summary.path},
            customer_id=None,
        )
        if self.batch_hook:
            ids = tuple(sorted(touched))
            batch_ = TransactionBatch(first_id=first, last_id=last, count=n, customer_ids=ids)
            crm.hook.crm_transaction_recorded_batch(crm=crm, batch=batch_)
        if self.single is not None:
            rows = connection(crm.db).execute(
                select(transactions)
                .where(transactions.c.id.between(first, last))
                .order_by(transactions.c.id)
            )
            for r in rows.all():
                self.single(
                    crm=crm,
                    transaction=Transaction(
                        id=r.id,
                        customer_id=r.customer_id,
                        occurred_at=r.occurred_at,
                        amount_cents=r.amount_cents,
                        channel=r.channel,
                        external_id=r.external_id,
                        kind=r.kind,
                    ),
                )

    def _insert_pg(self, insert: str) -> tuple[int | None, int | None, int, list[int]]:
        """PostgreSQL: the batch's new rows get ids in file order from a block of
        the sequence, but are written in customer order: the inserts into the
        (customer, time) index and the foreign-key checks then walk the index
        and ``customers`` in order, a quarter faster than in file order. Safe
        under the EXCLUSIVE lock: any other insert (and its ``nextval``) waits
        until this import commits, and duplicates within the batch were
        dropped while reading. Stored ids are skipped with a LATERAL ... LIMIT 1
        probe of the unique index per row: as NOT EXISTS the planner hashes every
        stored external id once the table is large (a full scan per batch).
        The customers written are returned by the insert itself (for the batch
        hook), not read back from the new rows."""
        crm = self.crm
        touched = "array_agg(DISTINCT customer_id)" if self.batch_hook else "NULL"
        if self.seq is None:
            self.seq = c.query(crm, "SELECT pg_get_serial_sequence('transactions', 'id')")[0][0]
        if not self.seq:  # no sequence behind the id (not the crmcore schema): ids as they come
            lo, hi, n, ids = c.query(
                crm,
                f"WITH ins AS ({insert} RETURNING id, customer_id) "
                f"SELECT MIN(id), MAX(id), COUNT(*), {touched} FROM ins",
            )[0]
            return lo, hi, n, ids or []
        base = c.query(crm, "SELECT nextval(?::regclass)", (self.seq,))[0][0]
        n, ids = c.query(
            crm,
            f"""
            WITH ins AS (
                INSERT INTO transactions
                    (id, external_id, customer_id, occurred_at, amount_cents, channel, kind)
                SELECT * FROM (
                    SELECT {int(base) - 1} + row_number() OVER (ORDER BY s.line) AS id,
                           s.ext, k.id AS customer_id, s.at, s.cents, s.channel, s.kind
                    FROM {STAGE} s CROSS JOIN customers k
                    LEFT JOIN LATERAL (
                        SELECT 1 AS hit FROM transactions t WHERE t.external_id = s.ext LIMIT 1
                    ) d ON true
                    WHERE k.external_id = s.cext AND d.hit IS NULL
                ) x ORDER BY x.customer_id, x.id
                RETURNING customer_id)
            SELECT COUNT(*), {touched} FROM ins""",
        )[0]
        c.query(crm, "SELECT setval(?::regclass, ?, false)", (self.seq, base + n))
        return (base, base + n - 1, n, ids or []) if n else (None, None, 0, [])

    def _explain(self, raw: dict[int, list[Any]], first: int | None) -> None:
        """Reject (or count as duplicates) the staged rows that were not inserted:
        unknown customers, and transaction ids stored before this batch (``first``
        is the first id this batch inserted, None if it inserted nothing)."""
        crm, summary = self.crm, self.summary
        unknown: set[int] = set()
        for line, cext in c.query(
            crm,
            f"""
                SELECT s.line, s.cext FROM {STAGE} s
                WHERE NOT EXISTS (SELECT 1 FROM customers k WHERE k.external_id = s.cext)
                ORDER BY s.line""",
        ):
            self.reject(
                line, f"unknown customer {cext!r} (no customer has this external id)", raw[line]
            )
            unknown.add(line)
        older = "" if first is None else f" AND t.id < {int(first)}"
        for line, ext, same in c.query(
            crm,
            f"""
                SELECT s.line, s.ext, CASE WHEN t.customer_id = k.id AND t.occurred_at = s.at
                                            AND t.amount_cents = s.cents THEN 1 ELSE 0 END
                FROM {STAGE} s CROSS JOIN transactions t
                LEFT JOIN customers k ON k.external_id = s.cext
                WHERE s.ext IS NOT NULL AND t.external_id = s.ext{older} ORDER BY s.line""",
        ):
            if line in unknown:
                continue
            if same:
                summary.duplicates += 1
            else:
                self.reject(
                    line,
                    f"transaction id {ext!r} is already recorded with a different "
                    "customer, time or amount",
                    raw[line],
                )

    def _refunds_without_purchase(self, raw: dict[int, list[Any]]) -> list[int]:
        """Reject the staged refunds of customers with no purchase, stored or in
        this batch: there is nothing to refund (one set-based query)."""
        lines = []
        for (line,) in c.query(
            self.crm,
            f"""
            SELECT s.line FROM {STAGE} s JOIN customers k ON k.external_id = s.cext
            WHERE s.kind = 'refund'
              AND NOT EXISTS (SELECT 1 FROM transactions t
                              WHERE t.customer_id = k.id AND t.kind = 'purchase')
              AND NOT EXISTS (SELECT 1 FROM {STAGE} p
                              WHERE p.cext = s.cext AND p.kind = 'purchase')
            ORDER BY s.line""",
        ):
            self.reject(line, "refund: the customer has no purchase to refund", raw[line])
            lines.append(line)
        return lines

    def _validate(self, skip: set[int], raw: dict[int, list[Any]]) -> list[int]:
        """Plugins' ``crm_validate_transaction``, per row (only when a plugin implements it)."""
        crm = self.crm
        bad: list[int] = []
        rows = c.query(
            crm,
            f"""
            SELECT s.line, k.id, s.at, s.cents, s.channel, s.ext, s.kind
            FROM {STAGE} s CROSS JOIN customers k WHERE k.external_id = s.cext ORDER BY s.line""",
        )
        _fromiso = dt.datetime.fromisoformat  # the stored text, read back
        for line, cid, at, cents, channel, ext, kind in rows:
            if line in skip:
                continue
            draft = Transaction(
                id=None,
                customer_id=cid,
                occurred_at=_fromiso(at) if isinstance(at, str) else at,
                amount_cents=cents,
                channel=channel,
                external_id=ext,
                kind=kind,
            )
            try:
                crm.hook.crm_validate_transaction(crm=crm, transaction=draft)
            except ValidationError as e:
                self.reject(line, str(e), raw[line])
                bad.append(line)
        return bad
