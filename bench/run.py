"""crmcore benchmark: generate data with a fixed seed, then measure crmcore
against raw baselines in the same run and print medians and ratios.

    python bench/run.py                         # 1M customers / 10M transactions, SQLite
    python bench/run.py --scale small           # 20k / 200k, a quick look
    python bench/run.py --backend postgresql --pg-url postgresql://postgres@127.0.0.1:5432/test
    python bench/run.py --write-results         # also write bench/RESULTS.md

See bench/README.md. Nothing here is a test; tests/test_bench_smoke.py runs
the tiny scale once to keep this script working.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCALES = {
    "tiny": (1_000, 10_000),
    "small": (20_000, 200_000),
    "medium": (100_000, 1_000_000),
    "full": (1_000_000, 10_000_000),
}
SEED = 20260105
START = dt.datetime(2023, 1, 1)
DAYS = 3 * 365
AS_OF = dt.datetime(2026, 1, 1)
PLUGINS = ("retail", "utility", "insurance", "real_estate")
PG_SCHEMAS = ("crmbench_crm", "crmbench_raw")


# -- data --------------------------------------------------------------------------------
def generate(workdir: Path, n_customers: int, n_tx: int) -> tuple[Path, Path]:
    """customers.csv and transactions.csv, Pareto-distributed spend, fixed seed."""
    import numpy as np

    workdir.mkdir(parents=True, exist_ok=True)
    cpath = workdir / f"customers-{n_customers}.csv"
    tpath = workdir / f"transactions-{n_customers}-{n_tx}.csv"
    if cpath.exists() and tpath.exists():
        return cpath, tpath
    rng = np.random.default_rng(SEED)
    with open(cpath, "w", encoding="utf-8", newline="") as f:
        f.write("external_id,name,phone,email\n")
        for lo in range(0, n_customers, 100_000):
            hi = min(n_customers, lo + 100_000)
            f.write("".join(f"C{i},Customer {i},138{i:08d},\n" for i in range(lo, hi)))
    # Pareto activity: the top 20 % of customers make most of the purchases.
    weight = rng.pareto(1.2, n_customers) + 1.0
    weight /= weight.sum()
    chunk = 1_000_000
    with open(tpath, "w", encoding="utf-8", newline="") as f:
        f.write("customer_external_id,occurred_at,amount,external_id\n")
        for lo in range(0, n_tx, chunk):
            k = min(chunk, n_tx - lo)
            cust = rng.choice(n_customers, size=k, p=weight)
            secs = rng.integers(0, DAYS * 86400, size=k)
            cents = np.maximum(100, rng.lognormal(8.0, 0.9, size=k).astype(np.int64))
            base = START.timestamp()
            lines = []
            for j, (c, s, a) in enumerate(
                zip(cust.tolist(), secs.tolist(), cents.tolist(), strict=True)
            ):
                when = dt.datetime.fromtimestamp(base + s).strftime("%Y-%m-%d %H:%M:%S")
                lines.append(f"C{c},{when},{a // 100}.{a % 100:02d},T{lo + j}\n")
            f.write("".join(lines))
    return cpath, tpath


# -- helpers -------------------------------------------------------------------------------
def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, out


def paired_medians(
    ours: Callable[[], Any], theirs: Callable[[], Any], repeat: int
) -> tuple[float, float]:
    """Median times of ``ours`` and ``theirs`` measured in alternation, so drift
    on a shared machine (another job, the CPU's clock, the page cache) falls on
    both sides alike instead of on whichever ran second."""
    o: list[float] = []
    t: list[float] = []
    for _ in range(repeat):
        for fn, times in ((ours, o), (theirs, t)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(o), statistics.median(t)


def child(args: list[str]) -> dict[str, Any]:
    """Run ``bench/run.py _child ...`` in a fresh process; its JSON result."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "_child", *args],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def maxrss_mb() -> float:
    """Peak resident memory of this process since its exec.

    ``ru_maxrss`` survives fork+exec on Linux, so a child would report its
    parent's peak; VmHWM belongs to the new address space."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def enabled_plugins() -> list[str]:
    from crmcore import config as config_mod
    from crmcore import plugins as plugins_mod

    ok = []
    for name in PLUGINS:
        if name not in plugins_mod.installed():
            continue
        try:
            plugins_mod.build(
                config_mod.from_dict({"crm": {"database": "sqlite://", "plugins": ok + [name]}})
            )
            ok.append(name)
        except Exception as e:  # a plugin still being written: bench without it, and say so
            print(f"  (plugin {name} not usable: {type(e).__name__}: {e})", file=sys.stderr)
    return ok


def make_crm(url: str, plugins: list[str]) -> Any:
    from crmcore import CRM
    from crmcore.access import SYSTEM
    from crmcore.clock import FixedClock
    from crmcore.config import from_dict

    return CRM(
        from_dict({"crm": {"database": url, "plugins": plugins}}),
        clock=FixedClock(AS_OF),
        principal=SYSTEM,
        command="bench",
    )


def pg_url(base: str, schema: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def reset_pg_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')


# -- children (fresh processes: time and peak memory of one import) --------------------
def child_main(argv: list[str]) -> None:
    what = argv[0]
    if what == "crm-import":
        url, kind, path, plugins = argv[1], argv[2], argv[3], [p for p in argv[4].split(",") if p]
        from crmcore.importer import import_customers, import_transactions

        crm = make_crm(url, plugins)
        fn = import_customers if kind == "customers" else import_transactions
        t = time.perf_counter()
        summary = fn(crm, path)
        secs = time.perf_counter() - t
        summary.pop("errors", None)
        print(json.dumps({"seconds": secs, "maxrss_mb": maxrss_mb(), "summary": summary}))
    elif what == "raw-sqlite":
        db, path = argv[1], argv[2]
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        t = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        sql = (
            "INSERT INTO transactions (external_id, customer_id, occurred_at, amount_cents) "
            "VALUES (?, (SELECT id FROM customers WHERE external_id = ?), ?, ?)"
        )
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            next(reader)
            batch: list[tuple[Any, ...]] = []
            for c, at, amount, ext in reader:
                batch.append((ext, c, at, int(amount.replace(".", ""))))
                if len(batch) >= 50_000:
                    conn.executemany(sql, batch)
                    batch = []
            conn.executemany(sql, batch)
        conn.execute("COMMIT")
        print(json.dumps({"seconds": time.perf_counter() - t, "maxrss_mb": maxrss_mb()}))
    elif what == "raw-pg":
        import psycopg

        url, path = argv[1], argv[2]
        t = time.perf_counter()
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE raw_stage (cext text, at timestamp, amount numeric, ext text)"
            )
            with (
                open(path, "rb") as f,
                cur.copy("COPY raw_stage FROM STDIN (FORMAT csv, HEADER true)") as cp,
            ):
                while data := f.read(1 << 20):
                    cp.write(data)
            cur.execute("""INSERT INTO transactions (external_id, customer_id, occurred_at, amount_cents)
                           SELECT s.ext, c.id, s.at, (s.amount * 100)::bigint
                           FROM raw_stage s JOIN customers c ON c.external_id = s.cext""")
            conn.commit()
        print(json.dumps({"seconds": time.perf_counter() - t, "maxrss_mb": maxrss_mb()}))
    else:
        raise SystemExit(f"unknown child {what}")


# -- the benchmark -------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.workdir = Path(args.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)

    def add(
        self,
        backend: str,
        what: str,
        ours: float,
        base: float | None,
        baseline: str,
        target: str,
        extra: str = "",
    ) -> None:
        ratio = ours / base if base else None
        row = {
            "backend": backend,
            "what": what,
            "crmcore_s": ours,
            "baseline_s": base,
            "baseline": baseline,
            "ratio": ratio,
            "target": target,
            "extra": extra,
        }
        row["met"] = _met(ratio, target)
        self.rows.append(row)
        r = f"{ratio:.2f}" if ratio is not None else "-"
        b = f"{base:.4g}" if base is not None else "-"
        print(
            f"  {what:<44} ours {ours:>9.4g} s  baseline {b:>9} s  ratio {r:>6}  "
            f"target {target:<8} {row['met']}  {extra}",
            flush=True,
        )

    # -- import ------------------------------------------------------------------------
    def run_backend(self, backend: str, cpath: Path, tpath: Path, plugins: list[str]) -> None:
        a = self.args
        print(f"\n== {backend} ==", flush=True)
        if a.reuse_import:
            url = (
                f"sqlite:///{self.workdir / 'bench-crm.db'}"
                if backend == "sqlite"
                else pg_url(a.pg_url, "crmbench_crm")
            )
            up = make_crm(url, plugins)
            up.admin.upgrade()  # a database imported by an earlier crmcore may lack a migration
            up.engine.dispose()
            print("  reusing the database imported by an earlier run (no import rows)", flush=True)
            self.notes.append(f"{backend}: database imported by an earlier run, reused")
            self.after_import(backend, url, plugins)
            return
        if backend == "sqlite":
            crm_url_of = lambda: f"sqlite:///{self.workdir / 'bench-crm.db'}"  # noqa: E731
            template = self.workdir / "bench-template.db"
            for p in self.workdir.glob("bench-*.db*"):
                p.unlink()
            crm = make_crm(f"sqlite:///{template}", plugins)
            crm.admin.upgrade()
            crm.engine.dispose()
            res = child(
                ["crm-import", f"sqlite:///{template}", "customers", str(cpath), ",".join(plugins)]
            )
            print(
                f"  customers imported: {res['summary']['imported']} in {res['seconds']:.1f} s "
                f"(peak {res['maxrss_mb']:.0f} MB)",
                flush=True,
            )
            self.notes.append(
                f"{backend}: {res['summary']['imported']} customers imported through "
                f"`crm import customers` in {res['seconds']:.1f} s, peak {res['maxrss_mb']:.0f} MB"
            )
            ours_t, raw_t, mem_o, mem_r = [], [], [], []
            for _ in range(a.import_repeat):
                raw_db = self.workdir / "bench-raw.db"
                shutil.copy(template, raw_db)
                r = child(["raw-sqlite", str(raw_db), str(tpath)])
                raw_t.append(r["seconds"])
                mem_r.append(r["maxrss_mb"])
                raw_db.unlink()
                shutil.copy(template, self.workdir / "bench-crm.db")
                o = child(
                    ["crm-import", crm_url_of(), "transactions", str(tpath), ",".join(plugins)]
                )
                ours_t.append(o["seconds"])
                mem_o.append(o["maxrss_mb"])
            url = crm_url_of()
        else:
            base = a.pg_url
            urls = {s: pg_url(base, s) for s in PG_SCHEMAS}
            ours_t, raw_t, mem_o, mem_r = [], [], [], []
            for s in PG_SCHEMAS:
                reset_pg_schema(base, s)
                crm = make_crm(urls[s], plugins)
                crm.admin.upgrade()
                crm.engine.dispose()
                res = child(["crm-import", urls[s], "customers", str(cpath), ",".join(plugins)])
            print(
                f"  customers imported: {res['summary']['imported']} in {res['seconds']:.1f} s",
                flush=True,
            )
            self.notes.append(
                f"{backend}: {res['summary']['imported']} customers imported through "
                f"`crm import customers` in {res['seconds']:.1f} s, peak {res['maxrss_mb']:.0f} MB"
            )
            import psycopg

            for _ in range(a.import_repeat):
                for s in PG_SCHEMAS:
                    with psycopg.connect(urls[s], autocommit=True) as conn:
                        conn.execute(
                            "TRUNCATE transactions, customer_stats RESTART IDENTITY CASCADE"
                        )
                        conn.execute("DELETE FROM audit_log WHERE entity = 'transactions'")
                r = child(["raw-pg", urls["crmbench_raw"], str(tpath)])
                raw_t.append(r["seconds"])
                mem_r.append(r["maxrss_mb"])
                o = child(
                    [
                        "crm-import",
                        urls["crmbench_crm"],
                        "transactions",
                        str(tpath),
                        ",".join(plugins),
                    ]
                )
                ours_t.append(o["seconds"])
                mem_o.append(o["maxrss_mb"])
            with psycopg.connect(urls["crmbench_crm"], autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
            url = urls["crmbench_crm"]
        n_tx = o["summary"]["imported"]
        limit = 2.5 if backend == "sqlite" else 2.0
        self.add(
            backend,
            f"import {n_tx:,} transactions",
            statistics.median(ours_t),
            statistics.median(raw_t),
            "raw csv.reader->executemany"
            if backend == "sqlite"
            else "raw COPY->staging->INSERT SELECT",
            f"<= {limit}",
            f"{n_tx / statistics.median(ours_t):,.0f} tx/s; runs {len(ours_t)}",
        )
        self.add(
            backend,
            "import peak memory (MB)",
            max(mem_o),
            max(mem_r),
            "raw pipeline",
            "< 300",
            "ratio column: MB vs raw",
        )
        self.rows[-1]["met"] = "yes" if max(mem_o) < 300 else "NO"
        if self.args.only == "import":
            return
        self.after_import(backend, url, plugins)

    def after_import(self, backend: str, url: str, plugins: list[str]) -> None:
        bare = make_crm(url, [])  # analytics alone: plugins' crm_analytics_computed work excluded
        self.analytics(backend, bare)
        bare.engine.dispose()
        crm = make_crm(url, plugins)
        self.point(backend, crm)
        crm.engine.dispose()

    # -- analytics -----------------------------------------------------------------------
    def analytics(self, backend: str, crm: Any) -> None:
        from crmcore import analytics

        a = self.args
        d = "sqlite" if backend == "sqlite" else "postgresql"
        raw = raw_runner(crm)
        end = AS_OF
        start = end - dt.timedelta(days=365)
        t = time.perf_counter()
        first = analytics.abc(crm, as_of=end)
        first_t = time.perf_counter() - t
        ours, _, res = median_time(lambda: analytics.abc(crm, as_of=end), a.repeat)
        base, _, rows = median_time(lambda: raw(abc_sql(), {"start": start, "end": end}), a.repeat)
        theirs = {int(r[0]): r[2] for r in rows}

        def same_as_theirs(result: dict[str, Any]) -> bool:
            got = dict(result["customers"].items())
            return theirs == {k: v for k, v in got.items() if k in theirs} and all(
                v == "C" for k, v in got.items() if k not in theirs
            )

        target = ">= 5x" if d == "sqlite" else "<= 1"
        self.add(
            backend,
            "ABC re-run (kept window spend)",
            ours,
            base,
            "window-function SQL",
            target,
            f"first run {first_t:.2f} s (computes every customer's window spend, writes "
            f"{first['labels']['changed']} labels); same classes: {same_as_theirs(res)}",
        )
        # the nightly case: the window moves on by a day (only the edges are read)
        day = dt.timedelta(days=1)
        nxt, _, _ = median_time(lambda: analytics.abc(crm, as_of=end + day), 1)
        analytics.abc(crm, as_of=end)  # back, for the full recompute below
        self.add(
            backend,
            "ABC next day (window moved 1 day)",
            nxt,
            base,
            "window-function SQL",
            target,
            "kept spend shifted by the two one-day edges; labels stored",
        )
        full, _, res_f = median_time(lambda: analytics.abc(crm, as_of=end, full=True), 1)
        self.add(
            backend,
            "ABC from scratch (full=True)",
            full,
            base,
            "window-function SQL",
            "-",
            f"every customer recomputed; same classes: {same_as_theirs(res_f)}",
        )
        t = time.perf_counter()
        analytics.rfm(crm, as_of=end)
        first_t = time.perf_counter() - t
        ours, _, res = median_time(lambda: analytics.rfm(crm, as_of=end), a.repeat)
        base, _, rows = median_time(lambda: raw(rfm_sql(d), {"end": end}), a.repeat)
        same = all(
            res["customers"][int(r[0])]["r"] == r[1]
            and res["customers"][int(r[0])]["f"] == r[2]
            and res["customers"][int(r[0])]["m"] == r[3]
            for r in rows
        )
        self.add(
            backend,
            "RFM",
            ours,
            base,
            "window-function SQL",
            ">= 5x" if d == "sqlite" else "<= 1",
            f"first run {first_t:.2f} s; same scores: {same}",
        )
        t = time.perf_counter()
        analytics.overdue(crm, as_of=end)
        first_t = time.perf_counter() - t
        ours, _, res = median_time(lambda: analytics.overdue(crm, as_of=end), a.repeat)
        base, _, rows = median_time(
            lambda: raw(overdue_sql(d), {"end": end, "grace": 3, "min_n": 3}), a.repeat
        )
        same = sorted(int(r[0]) for r in rows) == [c["customer_id"] for c in res["customers"]]
        self.add(
            backend,
            "overdue",
            ours,
            base,
            "aggregate SQL over transactions",
            ">= 5x" if d == "sqlite" else "<= 1",
            f"first run {first_t:.2f} s; {res['count']} overdue; same customers: {same}",
        )
        self.bgnbd(backend, crm)

    def bgnbd(self, backend: str, crm: Any) -> None:
        from crmcore.analytics import bgnbd
        from crmcore.analytics.clv import summary_data

        t = time.perf_counter()
        with crm.transaction(write=False):
            data = summary_data(crm, dt.datetime(2025, 6, 30), "week")
        summary_t = time.perf_counter() - t
        keep = data["T"] > 0
        x, tx, T = data["x"][keep], data["t_x"][keep], data["T"][keep]

        def ours() -> dict[str, Any]:
            (ux, utx, uT), _, w = bgnbd.compress(x, tx, T)
            return bgnbd.fit_bgnbd(ux, utx, uT, weights=w)

        o, _, params = median_time(ours, self.args.repeat)
        try:
            from lifetimes import BetaGeoFitter
        except ImportError:
            self.notes.append("lifetimes is not installed: BG/NBD compared with nothing")
            self.add(
                backend,
                f"BG/NBD fit ({len(x):,} customers)",
                o,
                None,
                "lifetimes (missing)",
                "faster",
            )
            return

        def theirs() -> dict[str, float]:
            f = BetaGeoFitter()
            f.fit(x, tx, T)
            return {k: float(v) for k, v in f.params_.items()}

        b, _, lp = median_time(theirs, self.args.lifetimes_repeat)
        same = all(_sig3(params[k]) == _sig3(lp[k]) for k in ("r", "alpha", "a", "b"))
        ps = ", ".join(f"{k}={params[k]:.4g}/{lp[k]:.4g}" for k in ("r", "alpha", "a", "b"))
        self.add(
            backend,
            f"BG/NBD fit ({len(x):,} customers)",
            o,
            b,
            "lifetimes BetaGeoFitter",
            "faster",
            f"same to 3 s.f.: {same} ({ps}); summary SQL {summary_t:.2f} s",
        )

    # -- the paths users take: the card and a single write --------------------------------
    def point(self, backend: str, crm: Any) -> None:
        import paths

        n, a = self.args.customers, self.args
        paths.card_rows(self, backend, crm, n, a.reads)
        paths.cli_card_row(self, backend, crm, n, a.reads)
        paths.write_rows(self, backend, crm, n, a.writes)

    # -- report ---------------------------------------------------------------------------
    def report(self, command: str, plugins: list[str]) -> str:
        a = self.args
        lines = [
            "# Benchmark results",
            "",
            f"Command: `{command}`  ",
            f"Run: {dt.datetime.now():%Y-%m-%d %H:%M}; scale {a.customers:,} customers / {a.transactions:,} "
            f"transactions (seed {SEED}); medians of {a.repeat} (imports: {a.import_repeat} run(s)).  ",
            f"Plugins enabled: {', '.join(plugins) or '(none installed)'}.",
            "",
            "## Machine",
            "",
            *[f"- {k}: {v}" for k, v in machine_facts(a).items()],
            "",
            "## Results",
            "",
            "| backend | what | crmcore (s) | baseline (s) | baseline | ratio | target | met | notes |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
            base = f"{r['baseline_s']:.4g}" if r["baseline_s"] is not None else "-"
            lines.append(
                f"| {r['backend']} | {r['what']} | {r['crmcore_s']:.4g} | {base} | {r['baseline']} | "
                f"{ratio} | {r['target']} | {r['met']} | {r['extra']} |"
            )
        lines += [
            "",
            "Ratio = crmcore time / baseline time (for '>= 5x' the ratio must be <= 0.2). "
            "Peak memory: maximum resident set of the importing process, MB.",
            "",
        ]
        if self.notes:
            lines += ["## Notes", "", *[f"- {n}" for n in self.notes], ""]
        return "\n".join(lines)


def _met(ratio: float | None, target: str) -> str:
    if ratio is None:
        return "-"
    if target.startswith("<= "):
        return "yes" if ratio <= float(target[3:]) else "NO"
    if target.startswith(">= ") and target.endswith("x"):
        return "yes" if ratio <= 1 / float(target[3:-1]) else "NO"
    if target == "faster":
        return "yes" if ratio < 1 else "NO"
    return "-"


def _sig3(v: float) -> str:
    return f"{v:.3g}"


def raw_runner(crm: Any) -> Callable[[str, dict[str, Any]], list[Any]]:
    """Run hand-written SQL directly on the database (its own connection)."""
    from sqlalchemy import text

    def run(sql: str, params: dict[str, Any]) -> list[Any]:
        p = {
            k: (
                v.isoformat(" ", "microseconds")
                if isinstance(v, dt.datetime) and crm.engine.dialect.name == "sqlite"
                else v
            )
            for k, v in params.items()
        }
        with crm.engine.connect() as conn:
            return list(conn.execute(text(sql), p).all())

    return run


def abc_sql() -> str:
    return """
        WITH spend AS (
            SELECT customer_id, SUM(amount_cents) AS s FROM transactions
            WHERE occurred_at > :start AND occurred_at <= :end
            GROUP BY customer_id HAVING SUM(amount_cents) > 0),
        ranked AS (
            SELECT customer_id, s,
                   COALESCE(SUM(s) OVER (ORDER BY s DESC, customer_id
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before,
                   SUM(s) OVER () AS total
            FROM spend)
        SELECT customer_id, s,
               CASE WHEN before * 10000 < total * 7000 THEN 'A'
                    WHEN before * 10000 < total * 9000 THEN 'B' ELSE 'C' END AS cls
        FROM ranked"""


def rfm_sql(d: str) -> str:
    days = (
        "julianday(:end) - julianday(MAX(occurred_at))"
        if d == "sqlite"
        else "EXTRACT(EPOCH FROM (CAST(:end AS timestamp) - MAX(occurred_at))) / 86400.0"
    )
    return f"""
        WITH agg AS (
            SELECT customer_id, {days} AS recency, COUNT(*) AS n, SUM(amount_cents) AS spend
            FROM transactions WHERE occurred_at <= :end GROUP BY customer_id),
        ranked AS (
            SELECT customer_id, RANK() OVER (ORDER BY recency DESC) AS rr,
                   RANK() OVER (ORDER BY n) AS fr, RANK() OVER (ORDER BY spend) AS mr,
                   COUNT(*) OVER () AS total FROM agg)
        SELECT customer_id, 1 + (5 * (rr - 1)) / total, 1 + (5 * (fr - 1)) / total,
               1 + (5 * (mr - 1)) / total FROM ranked"""


def overdue_sql(d: str) -> str:
    if d == "sqlite":
        span = "(julianday(MAX(occurred_at)) - julianday(MIN(occurred_at)))"
        since = "(julianday(:end) - julianday(MAX(occurred_at)))"
    else:
        span = "(EXTRACT(EPOCH FROM (MAX(occurred_at) - MIN(occurred_at))) / 86400.0)"
        since = "(EXTRACT(EPOCH FROM (CAST(:end AS timestamp) - MAX(occurred_at))) / 86400.0)"
    return f"""
        SELECT customer_id, COUNT(*) AS n, MAX(occurred_at) AS last_at,
               {span} / (COUNT(*) - 1) AS avg_gap, {since} AS since_last
        FROM transactions WHERE occurred_at <= :end
        GROUP BY customer_id
        HAVING COUNT(*) >= :min_n AND {since} > {span} / (COUNT(*) - 1) + :grace"""


def machine_facts(a: argparse.Namespace) -> dict[str, str]:
    facts = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        facts["memory"] = f"{int(mem) // 1024:,} MB"
    except OSError:
        pass
    import numpy
    import sqlalchemy

    facts["sqlalchemy"] = sqlalchemy.__version__
    facts["numpy"] = numpy.__version__
    if "postgresql" in a.backend_list:
        try:
            import psycopg

            with psycopg.connect(a.pg_url) as conn:
                facts["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
        except Exception as e:  # noqa: BLE001
            facts["postgresql"] = f"unreachable ({e})"
    facts["disk"] = disk_of(a.workdir)
    facts["commit"] = commit_of(HERE.parent)
    return facts


def commit_of(checkout: Path) -> str:
    """The commit the bench measures (``+ local changes`` when the tree differs from it)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=checkout,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head} + local changes" if dirty else head or "unknown"


def disk_of(workdir: str) -> str:
    """The file system the bench's databases live on (from /proc/mounts), as read."""
    try:
        target = Path(workdir).resolve()
        best = ("", "?", "?")
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, kind = line.split()[:3]
            if str(target).startswith(mount.rstrip("/") + "/") or str(target) == mount:
                if len(mount) > len(best[0]):
                    best = (mount, device, kind)
        return f"{best[2]} ({best[1]} on {best[0]})"
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        child_main(argv[1:])
        return 0
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--scale", default="full", help=f"one of {sorted(SCALES)} or CUSTOMERS:TRANSACTIONS"
    )
    ap.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql", "both"])
    ap.add_argument(
        "--pg-url",
        default=os.environ.get(
            "CRM_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    ap.add_argument("--workdir", default=str(HERE / "_data"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--import-repeat", type=int, default=None, help="default: 3, 1 at 10M")
    ap.add_argument("--lifetimes-repeat", type=int, default=None, help="default: --repeat, 1 at 1M")
    ap.add_argument("--reads", type=int, default=2000)
    ap.add_argument("--writes", type=int, default=300)
    ap.add_argument("--only", choices=["import"], help="stop after the import rows")
    ap.add_argument(
        "--reuse-import",
        action="store_true",
        help="skip data generation and import: measure on the database the last run imported",
    )
    ap.add_argument("--write-results", action="store_true", help="write bench/RESULTS.md")
    ap.add_argument("--results", default=str(HERE / "RESULTS.md"))
    a = ap.parse_args(argv)
    if a.scale in SCALES:
        a.customers, a.transactions = SCALES[a.scale]
    else:
        c, t = a.scale.split(":")
        a.customers, a.transactions = int(c), int(t)
    big = a.transactions >= 5_000_000
    a.import_repeat = a.import_repeat or (1 if big else 3)
    a.lifetimes_repeat = a.lifetimes_repeat or (1 if big else a.repeat)
    a.backend_list = ["sqlite", "postgresql"] if a.backend == "both" else [a.backend]
    command = "python bench/run.py " + " ".join(argv)
    print(f"scale: {a.customers:,} customers / {a.transactions:,} transactions", flush=True)
    t = time.perf_counter()
    cpath, tpath = generate(Path(a.workdir), a.customers, a.transactions)
    print(
        f"data: {tpath} ({tpath.stat().st_size / 1e6:.0f} MB, {time.perf_counter() - t:.0f} s)",
        flush=True,
    )
    plugins = enabled_plugins()
    print(f"plugins: {', '.join(plugins) or '(none)'}", flush=True)
    bench = Bench(a)
    missing = [p for p in PLUGINS if p not in plugins]
    if missing:
        bench.notes.append(
            f"plugins not installed/usable at run time, benched without: {', '.join(missing)}"
        )
    for backend in a.backend_list:
        bench.run_backend(backend, cpath, tpath, plugins)
    text = bench.report(command, plugins)
    if a.write_results:
        Path(a.results).write_text(text, encoding="utf-8")
        print(f"\nwrote {a.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
