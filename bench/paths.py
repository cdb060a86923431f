"""The paths users take: the customer card and a single write, as the people who
use them (a rep, a supervisor, an admin given by staff key, the command line),
each against a raw baseline that does the same work in the same run.

The raw card reads what crmcore's card reads (the customer with its kept
figures, its labels, its last 50 purchases) under the same visibility rule,
written out in SQL: a rep sees the customers they own, are linked to by an
active relationship, or hold an open ticket of; a supervisor the same for every
member of their team. The raw write does what a write through the service does:
the purchase, the customer's kept figures (upsert) and the audit row chained to
the previous one, in one transaction at the same durability.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import sqlite3
import statistics
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

REPS_PER_TEAM = 10
CUSTOMERS_PER_REP = 5000

VISIBLE_OWN = """(c.owner_id = :me
    OR EXISTS (SELECT 1 FROM relationships r WHERE r.from_customer_id = c.id
               AND r.active AND r.to_staff_id = :me)
    OR EXISTS (SELECT 1 FROM tickets t WHERE t.customer_id = c.id
               AND t.closed_at IS NULL AND t.owner_id = :me))"""
VISIBLE_TEAM = """(EXISTS (SELECT 1 FROM staff s WHERE s.id = c.owner_id AND s.team = :team)
    OR EXISTS (SELECT 1 FROM relationships r JOIN staff s ON s.id = r.to_staff_id
               WHERE r.from_customer_id = c.id AND r.active AND s.team = :team)
    OR EXISTS (SELECT 1 FROM tickets t JOIN staff s ON s.id = t.owner_id
               WHERE t.customer_id = c.id AND t.closed_at IS NULL AND s.team = :team))"""
CARD_CUSTOMER = """SELECT c.*, s.first_at, s.last_at, s.tx_count, s.spend_cents
    FROM customers c LEFT JOIN customer_stats s ON s.customer_id = c.id
    WHERE {key} AND c.merged_into_id IS NULL AND {visible}"""
CARD_LABELS = "SELECT name, value FROM customer_labels WHERE customer_id = :cid ORDER BY name"
CARD_RECENT = (
    "SELECT id, occurred_at, amount_cents, channel FROM transactions "
    "WHERE customer_id = :cid ORDER BY occurred_at DESC LIMIT 50"
)


def timed_pairs(
    ours: Callable[[], Any], theirs: Callable[[], Any], rounds: int
) -> tuple[list[float], list[float]]:
    """Times of ``ours`` and ``theirs`` in alternation (drift falls on both alike)."""
    o: list[float] = []
    t: list[float] = []
    for _ in range(rounds):
        for fn, times in ((ours, o), (theirs, t)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return o, t


def spread(times: list[float], per: int) -> str:
    """``median (min-max)`` per operation, in microseconds."""
    us = [x / per * 1e6 for x in times]
    return f"median {statistics.median(us):,.0f} us (min {min(us):,.0f}, max {max(us):,.0f})"


# -- the people ------------------------------------------------------------------------------
def staff_and_owners(crm: Any, n_customers: int) -> dict[str, Any]:
    """Reps in teams, a supervisor, an admin; every customer owned by a rep.

    Set up once (untimed): the staff through the service, the owners by one
    UPDATE (a bench's data, like the imported rows)."""
    from crmcore.errors import CRMError

    reps = max(REPS_PER_TEAM, n_customers // CUSTOMERS_PER_REP)
    try:
        first = crm.staff.get("rep0")
    except CRMError:
        first = None
    if first is None:
        for i in range(reps):
            crm.staff.add(f"rep{i}", f"Rep {i}", roles=("rep",), team=f"t{i // REPS_PER_TEAM}")
        crm.staff.add("sup0", "Supervisor 0", roles=("supervisor",), team="t0")
        crm.staff.add("admin1", "Admin 1", roles=("admin",))
        first = crm.staff.get("rep0")
        with crm.engine.begin() as conn:  # bench data: owners assigned in one statement
            conn.execute(
                sa.text("UPDATE customers SET owner_id = :first + (id % :reps)"),
                {"first": first.id, "reps": reps},
            )
    return {"reps": reps, "rep0": first.id}


def rep0_customers(crm: Any, rep0: int, count: int) -> list[int]:
    """Customer numbers (``C<i>``, phone ``138<i>``) of customers rep0 owns, spread
    over the base (every n-th one, by id)."""
    with crm.engine.connect() as conn:
        owned = [
            r[0]
            for r in conn.exec_driver_sql(
                f"SELECT external_id FROM customers WHERE owner_id = {int(rep0)} "  # noqa: S608
                "AND merged_into_id IS NULL ORDER BY id"
            )
        ]
    step = max(1, len(owned) // max(count, 1))
    return [int(x[1:]) for x in owned[::step][:count]]


# -- raw card ----------------------------------------------------------------------------
class RawCard:
    """The card in raw SQL on the driver (sqlite3 or psycopg), one transaction each."""

    def __init__(self, backend: str, url: str) -> None:
        self.backend = backend
        if backend == "sqlite":
            self.conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        else:
            import psycopg

            self.conn = psycopg.connect(_plain_pg_url(url))

    def _sql(self, text: str) -> str:
        if self.backend == "sqlite":
            return text
        import re

        return re.sub(r":(\w+)", r"%(\1)s", text)

    def card(self, key: str, params: dict[str, Any], visible: str) -> Any:
        sql = self._sql(CARD_CUSTOMER.format(key=key, visible=visible))
        if self.backend == "sqlite":
            self.conn.execute("BEGIN")
        try:
            row = self.conn.execute(sql, params).fetchone()
            cid = row[0]
            labels = self.conn.execute(self._sql(CARD_LABELS), {"cid": cid}).fetchall()
            recent = self.conn.execute(self._sql(CARD_RECENT), {"cid": cid}).fetchall()
        finally:
            if self.backend == "sqlite":
                self.conn.execute("COMMIT")
            else:
                self.conn.rollback()
        return row, labels, recent

    def close(self) -> None:
        self.conn.close()


def _plain_pg_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://")


# -- raw write ---------------------------------------------------------------------------
class RawWrite:
    """A purchase, the kept figures and a chained audit row, on sqlite3."""

    def __init__(self, path: str, synchronous: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute(f"PRAGMA synchronous={synchronous}")

    def write(self, cid: int, cents: int, at: str, external_id: str | None) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        if external_id is not None:
            c.execute("SELECT id FROM transactions WHERE external_id = ?", (external_id,))
        cur = c.execute(
            "INSERT INTO transactions (customer_id, occurred_at, amount_cents, external_id, kind) "
            "VALUES (?, ?, ?, ?, 'purchase')",
            (cid, at, cents, external_id),
        )
        c.execute(
            "INSERT INTO customer_stats (customer_id, first_at, last_at, tx_count, spend_cents) "
            "VALUES (?, ?, ?, 1, ?) ON CONFLICT (customer_id) DO UPDATE SET "
            "first_at = MIN(first_at, excluded.first_at), last_at = MAX(last_at, excluded.last_at), "
            "tx_count = tx_count + 1, spend_cents = spend_cents + excluded.spend_cents",
            (cid, at, at, cents),
        )
        after = json.dumps({"customer_id": cid, "amount_cents": cents, "occurred_at": at})
        salt = secrets.token_hex(16)
        digest = hashlib.sha256(f"{salt}{after}".encode()).hexdigest()
        prev = c.execute("SELECT row_hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
        prev_hash = prev[0] if prev else ""
        row_hash = hashlib.sha256(f"{prev_hash}{digest}{cur.lastrowid}".encode()).hexdigest()
        c.execute(
            "INSERT INTO audit_log (at, staff_id, command, entity, entity_id, customer_id, "
            "action, after, values_salt, values_digest, prev_hash, row_hash) "
            "VALUES (?, NULL, 'bench', 'transactions', ?, ?, 'insert', ?, ?, ?, ?, ?)",
            (at, str(cur.lastrowid), cid, after, salt, digest, prev_hash, row_hash),
        )
        c.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


# -- the rows ----------------------------------------------------------------------------
def card_rows(bench: Any, backend: str, crm: Any, n_customers: int, reads: int) -> None:
    """The card as each kind of user, against the raw card under the same rule."""
    people = staff_and_owners(crm, n_customers)
    numbers = rep0_customers(crm, people["rep0"], reads)
    phones = [f"138{i:08d}" for i in numbers]
    rep = crm.as_("rep0")
    sup = crm.as_("sup0")
    admin = crm.as_("admin1")
    ids = [rep.records.till_lookup(p)["customer"].id for p in phones]
    raw = RawCard(backend, crm.config.database)
    me = {"me": people["rep0"]}
    team = {"team": "t0"}
    phone_key = "c.phone = :phone"
    id_key = "c.id = :cid"
    rounds = max(bench.args.repeat, 5)

    def row(what: str, ours: Callable[[], Any], theirs: Callable[[], Any], target: str) -> None:
        ours()
        theirs()  # one untimed pass each: both sides read warm pages
        o, t = timed_pairs(ours, theirs, rounds)
        bench.add(
            backend,
            what,
            statistics.median(o) / len(phones),
            statistics.median(t) / len(phones),
            f"raw {'sqlite3' if backend == 'sqlite' else 'psycopg'}, same rule, one transaction",
            target,
            f"ours {spread(o, len(phones))}; raw {spread(t, len(phones))}; {rounds} rounds",
        )

    def raw_by_phone(visible: str, params: dict[str, Any]) -> Callable[[], None]:
        def run() -> None:
            for p in phones:
                raw.card(phone_key, {**params, "phone": "+86" + p}, visible)

        return run

    def raw_by_id(visible: str, params: dict[str, Any]) -> Callable[[], None]:
        def run() -> None:
            for cid in ids:
                raw.card(id_key, {**params, "cid": cid}, visible)

        return run

    row(
        "card as a rep, by phone (till)",
        lambda: [rep.records.till_lookup(p) for p in phones],
        raw_by_phone(VISIBLE_OWN, me),
        "<= 3",
    )
    row(
        "card as a rep, by id (live classification)",
        lambda: [rep.records.card(cid) for cid in ids],
        raw_by_id(VISIBLE_OWN, me),
        "<= 5",
    )
    row(
        "card as a supervisor, by phone",
        lambda: [sup.records.till_lookup(p) for p in phones],
        raw_by_phone(VISIBLE_TEAM, team),
        "<= 3",
    )
    row(
        "card as admin given by staff key, by phone",
        lambda: [admin.records.till_lookup(p) for p in phones],
        raw_by_phone("TRUE" if backend != "sqlite" else "1", {}),
        "<= 3",
    )
    raw.close()


def cli_card_row(bench: Any, backend: str, crm: Any, n_customers: int, reads: int) -> None:
    """``crm customer till PHONE --json`` as a rep, in-process (no interpreter start-up)."""
    from click.testing import CliRunner

    from crmcore.cli import cli
    from crmcore.cli._app import AppContext

    people = staff_and_owners(crm, n_customers)
    phones = [f"138{i:08d}" for i in rep0_customers(crm, people["rep0"], max(1, reads // 4))]
    runner = CliRunner()
    raw = RawCard(backend, crm.config.database)

    def ours() -> None:
        for p in phones:
            app = AppContext(config_path=None, database=None, principal="rep0", crm=crm)
            result = runner.invoke(cli, ["customer", "till", p, "--json"], obj=app)
            if result.exit_code != 0:
                raise RuntimeError(result.output)

    def theirs() -> None:
        for p in phones:
            raw.card("c.phone = :phone", {"me": people["rep0"], "phone": "+86" + p}, VISIBLE_OWN)

    ours()
    theirs()
    rounds = max(bench.args.repeat, 3)
    o, t = timed_pairs(ours, theirs, rounds)
    bench.add(
        backend,
        "card through the CLI as a rep (crm customer till --json)",
        statistics.median(o) / len(phones),
        statistics.median(t) / len(phones),
        "raw card, same rule (no JSON printing)",
        "-",
        f"ours {spread(o, len(phones))}; in-process CliRunner, JSON output included",
    )
    raw.close()


def write_rows(bench: Any, backend: str, crm: Any, n_customers: int, writes: int) -> None:
    """A single purchase through the service as a rep, at FULL and NORMAL, with and
    without an external id, for a plain customer and a retail member (SQLite)."""
    if backend != "sqlite":
        return
    from crmcore import CRM
    from crmcore.config import from_dict

    people = staff_and_owners(crm, n_customers)
    numbers = rep0_customers(crm, people["rep0"], 2)
    path = crm.config.database.removeprefix("sqlite:///")
    at = dt.datetime(2026, 1, 1)
    at_text = "2026-01-01 00:00:00.000000"
    rounds = max(bench.args.repeat, 5)
    serial = iter(range(10**9))
    member_id: int | None = None
    if "retail" in crm.config.enabled:
        from crm_retail.members import join

        from crmcore.errors import CRMError

        member_id = crm.customers.get(f"C{numbers[1]}").id
        try:
            join(crm, member_id)
        except CRMError:  # a member already (a re-used database)
            pass
    plain_id = crm.customers.get(f"C{numbers[0]}").id
    for sync in ("full", "normal"):
        cfg = from_dict(
            {
                "crm": {
                    "database": crm.config.database,
                    "plugins": crm.config.enabled,
                    "sqlite_synchronous": sync,
                }
            }
        )
        rep = CRM(cfg, clock=crm.clock, principal="rep0", command="bench")
        raw = RawWrite(path, sync.upper())
        cases = [("plain", plain_id, False), ("plain, external id", plain_id, True)]
        if member_id is not None:
            cases.append(("retail member", member_id, False))
        for label, cid, with_id in cases:

            def ours(cid: int = cid, with_id: bool = with_id, rep: Any = rep) -> None:
                for _ in range(writes):
                    ext = f"bench-o{next(serial)}" if with_id else None
                    rep.records.add_transaction(cid, 1234, occurred_at=at, external_id=ext)

            def theirs(cid: int = cid, with_id: bool = with_id, raw: RawWrite = raw) -> None:
                for _ in range(writes):
                    ext = f"bench-r{next(serial)}" if with_id else None
                    raw.write(cid, 1234, at_text, ext)

            ours()
            theirs()
            o, t = timed_pairs(ours, theirs, rounds)
            bench.add(
                backend,
                f"single write as a rep, {label}, synchronous={sync.upper()}",
                statistics.median(o) / writes,
                statistics.median(t) / writes,
                "raw insert + stats upsert + chained audit row, same durability",
                "<= 3",
                f"ours {spread(o, writes)}; raw {spread(t, writes)}",
            )
        raw.close()
        rep.engine.dispose()
