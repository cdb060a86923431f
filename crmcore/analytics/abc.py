"""ABC (Pareto) classification by cumulative share of spend: A makes the top 70 %, B the
next 20 %, C the rest (the shares are parameters)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from crmcore.analytics import _columns, _sql
from crmcore.errors import ValidationError
from crmcore.schema import customer_window_spend
from crmcore.storage._driver import connection

BASIS = 10_000  # cut-offs in basis points keep the comparison in integers


def stats_fingerprint(query: _sql.Query) -> tuple[int, int, int]:
    """customer_stats' row count, purchase count and spend: every write through
    the service adds to the purchase count and a merge removes a row, so while
    these are unchanged no customer's figures can have changed."""
    ((rows, tx, spend),) = query(
        "SELECT COUNT(*), COALESCE(SUM(tx_count), 0), "
        "COALESCE(CAST(SUM(spend_cents) AS BIGINT), 0) FROM customer_stats",
        (),
    )
    return int(rows), int(tx), int(spend)


def window_spend(
    crm: Any,
    start: dt.datetime,
    end: dt.datetime,
    *,
    full: bool = False,
    fingerprint: Callable[[], tuple[int, int, int]] | None = None,
) -> tuple[Any, Any]:
    """Spend per customer in ``(start, end]`` as numpy arrays (ids, cents) of the
    customers with positive spend there, set-based and incremental.

    ``customer_window_spend`` keeps each customer's spend in the window of the
    last run next to the ``customer_stats`` figures (count, total) it was
    computed from. This run
    1. when the window moved forward, shifts the kept figures by the
       transactions between the old and the new edges, reading only the
       customers with purchases there (one index range per edge, see ``_shift``);
    2. recomputes the customers whose figures changed since, or that are new
       (skipped when ``customer_stats``' row count and sums are those of the
       last run: every write through the service adds to the purchase count
       and a merge removes a row, so nothing can have changed):
       from ``customer_stats`` when their whole history is inside or outside
       the window, else from their own transactions in the window;
    so a re-run over an unchanged base reads no transactions at all. Without a
    usable earlier window (first run, a window that moved back or does not
    overlap the last one) every customer is recomputed, still from
    ``customer_stats`` where it has the answer. Writes that bypass the service and
    change a transaction without changing its customer's count or total are not
    seen: ``crm analytics abc --full`` (``full=True``) recomputes everything.
    ``fingerprint`` gives ``stats_fingerprint`` when the caller started reading
    it already (``SideReads``).
    """
    d = _sql.dialect(crm)
    s, e = _sql.bind_time(crm, start), _sql.bind_time(crm, end)
    old = _sql.fetch(
        crm,
        "SELECT start_at, end_at, stats_rows, stats_tx, stats_spend FROM analytics_windows "
        "WHERE name = 'abc'",
    )
    everyone = full or not old
    if not everyone:
        os_, oe = (_as_datetime(v) for v in old[0][:2])
        if (os_, oe) != (start, end):
            if os_ <= start < oe <= end:  # moved forward, still overlapping
                # the start edge first: first_in_window still describes the old window
                _shift(crm, os_, start, start, end, edge="start")  # drop (old, new start]
                _shift(crm, oe, end, start, end, edge="end")  # add (old, new end]
            else:  # back, or no overlap: recomputing is cheaper than shifting
                everyone = True
    stats = fingerprint() if fingerprint is not None else stats_fingerprint(crm.db.driver_query)
    unchanged = bool(old) and tuple(int(v) for v in old[0][2:]) == stats
    if unchanged and not everyone:
        which = None
    elif everyone:
        which = "WHERE 1 = 1"  # SQLite needs a WHERE before an upsert's ON CONFLICT
    else:
        which = (
            "WHERE w.customer_id IS NULL OR w.seen_tx_count <> c.tx_count "
            "OR w.seen_spend_cents <> c.spend_cents"
        )
    in_window = (
        "(SELECT COALESCE(CAST(SUM(t.amount_cents) AS BIGINT), 0) FROM transactions t "
        "WHERE t.customer_id = c.customer_id AND t.occurred_at > ? AND t.occurred_at <= ?)"
    )
    first_in = (
        "(SELECT MIN(t.occurred_at) FROM transactions t "
        "WHERE t.customer_id = c.customer_id AND t.occurred_at > ? AND t.occurred_at <= ?)"
    )
    after = (
        "(SELECT MIN(t.occurred_at) FROM transactions t "
        "WHERE t.customer_id = c.customer_id AND t.occurred_at > ?)"
    )
    if full:  # from the transactions alone, trusting no aggregate
        spend, first, nxt = in_window, first_in, after
        params: tuple[Any, ...] = (s, e, s, e, e)
    else:  # whole history outside or inside the window: customer_stats has the answer
        spend = (
            "CASE WHEN c.last_at <= ? OR c.first_at > ? THEN 0 "
            f"WHEN c.first_at > ? AND c.last_at <= ? THEN c.spend_cents ELSE {in_window} END"
        )
        first = (
            "CASE WHEN c.last_at <= ? OR c.first_at > ? THEN NULL "
            f"WHEN c.first_at > ? THEN c.first_at ELSE {first_in} END"
        )
        nxt = f"CASE WHEN c.last_at <= ? THEN NULL ELSE {after} END"
        params = (s, e, s, e, s, e, s, e, s, s, e, e, e)
    if which is not None:
        # everyone: the table is emptied and its indexes built once after the
        # rows are in (a sort) rather than entry by entry at random places
        rebuild = list(customer_window_spend.indexes) if everyone else []
        for index in rebuild:
            index.drop(bind=connection(crm.db))
        if everyone:
            _sql.fetch(crm, "DELETE FROM customer_window_spend")
        _sql.fetch(
            crm,
            f"""
            INSERT INTO customer_window_spend (customer_id, spend_cents, first_in_window,
                next_after_window, seen_tx_count, seen_spend_cents)
            SELECT c.customer_id, {spend}, {first}, {nxt}, c.tx_count, c.spend_cents
            FROM customer_stats c
            LEFT JOIN customer_window_spend w ON w.customer_id = c.customer_id
            {which}
            ON CONFLICT (customer_id) DO UPDATE SET spend_cents = excluded.spend_cents,
                first_in_window = excluded.first_in_window,
                next_after_window = excluded.next_after_window,
                seen_tx_count = excluded.seen_tx_count, seen_spend_cents = excluded.seen_spend_cents""",
            params,
        )
        for index in rebuild:
            index.create(bind=connection(crm.db))
    _sql.fetch(
        crm,
        "INSERT INTO analytics_windows (name, start_at, end_at, stats_rows, stats_tx, "
        "stats_spend) VALUES ('abc', ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
        "start_at = excluded.start_at, end_at = excluded.end_at, "
        "stats_rows = excluded.stats_rows, stats_tx = excluded.stats_tx, "
        "stats_spend = excluded.stats_spend",
        (s, e, *stats),
    )
    return tuple(
        _columns.fetch_columns(
            crm,
            d,
            "SELECT customer_id, spend_cents FROM customer_window_spend WHERE spend_cents > 0",
            "ii",
        )
    )


def _shift(
    crm: Any,
    old: dt.datetime,
    new: dt.datetime,
    start: dt.datetime,
    end: dt.datetime,
    *,
    edge: str,
) -> None:
    """Move one window edge forward from ``old`` to ``new``: the start edge
    subtracts the spend in ``(old, new]`` from the kept figures, the end edge
    adds it; both renew the first purchase in the new window ``(start, end]``,
    the end edge also the first purchase after it. The customers concerned are
    an index range of the kept figures alone (a day's buyers for a day's move):
    for the start edge those whose first purchase in the kept window is at or
    before the new start, for the end edge those whose first purchase after
    the kept window is at or before the new end."""
    if old == new:
        return
    a, b = _sql.bind_time(crm, old), _sql.bind_time(crm, new)
    s, e = _sql.bind_time(crm, start), _sql.bind_time(crm, end)
    after_params: tuple[Any, ...]
    if edge == "start":
        # next_after_window stays: it describes the old end, which the end edge
        # (moved next) starts from
        k, column, after, after_params = -1, "first_in_window", "", ()
    else:
        k, column, after_params = 1, "next_after_window", (e,)
        after = (
            ", next_after_window = (SELECT MIN(t.occurred_at) FROM transactions t "
            "WHERE t.customer_id = customer_window_spend.customer_id AND t.occurred_at > ?)"
        )
    _sql.fetch(
        crm,
        f"""
        UPDATE customer_window_spend SET
            spend_cents = spend_cents + {k} * (
                SELECT COALESCE(CAST(SUM(t.amount_cents) AS BIGINT), 0) FROM transactions t
                WHERE t.customer_id = customer_window_spend.customer_id
                  AND t.occurred_at > ? AND t.occurred_at <= ?),
            first_in_window = (
                SELECT MIN(t.occurred_at) FROM transactions t
                WHERE t.customer_id = customer_window_spend.customer_id
                  AND t.occurred_at > ? AND t.occurred_at <= ?){after}
        WHERE {column} IS NOT NULL AND {column} <= ?""",
        (a, b, s, e, *after_params, b),
    )


def _as_datetime(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


CLASSES = ("A", "B", "C")


def _stored_classes(query: _sql.Query, d: str) -> tuple[Any, Any]:
    """The stored ``abc`` labels as (ids, class indexes), see ``old_label_values``."""
    import numpy as np

    form = np.zeros(0, dtype=np.int8)
    return _sql.old_label_values(None, d, "abc", form, CLASSES, query)


def classify(ids: Any, spend: Any, a_share: float, b_share: float) -> Any:
    """Classes as indexes into ``CLASSES`` (0 = A) for customers with positive
    spend: ranked by spend (ties by id), A while the spend ranked above is under
    ``a_share`` of the total, B while under ``a_share + b_share``, else C.

    No ranking of customers is built: the class boundaries are found in the
    sorted spend values (a plain value sort is an order of magnitude faster
    than a stable argsort), every customer is classed by comparing its spend
    with the values at the boundaries, and only the customers tied at a
    boundary value are ranked, by id."""
    import numpy as np

    n = len(spend)
    out = np.full(n, 2, dtype=np.int8)
    if n == 0:
        return out
    desc = np.sort(spend)[::-1]
    before = np.cumsum(desc) - desc  # spend ranked above each rank
    total = int(desc.sum())
    a, ab = round(a_share * BASIS), round((a_share + b_share) * BASIS)
    n_a = int(np.count_nonzero(before * BASIS < total * a))  # ranks [0, n_a) are A
    n_ab = int(np.count_nonzero(before * BASIS < total * ab))  # ranks [n_a, n_ab) are B
    out[spend > (desc[n_ab - 1] if n_ab else desc[0] + 1)] = 1
    out[spend > (desc[n_a - 1] if n_a else desc[0] + 1)] = 0
    for rank in {n_a - 1, n_ab - 1} - {-1}:  # the value ties a boundary splits
        value = desc[rank]
        tied = np.flatnonzero(spend == value)
        tied = tied[np.argsort(ids[tied], kind="stable")]
        ranks = int(np.count_nonzero(desc > value)) + np.arange(len(tied))
        out[tied] = np.where(ranks < n_a, 0, np.where(ranks < n_ab, 1, 2))
    return out


def abc(
    crm: Any,
    *,
    as_of: dt.datetime | None = None,
    window_days: int = 365,
    cutoffs: tuple[float, float] = (0.70, 0.20),
    store: bool = True,
    full: bool = False,
) -> dict[str, Any]:
    """Classify every customer A/B/C by spend in the ``window_days`` up to ``as_of``.

    Customers are ranked by spend (ties by id); a customer is A while the spend
    of those ranked above them is under ``cutoffs[0]`` of the total, B while
    under ``cutoffs[0] + cutoffs[1]``, else C. Customers with no spend in the
    window are C. Label ``abc`` holds the class (written where it changed).
    Returns per class the customer count, spend and spend share, and per
    customer the class (``"customers"``: a read-only mapping ``{id: "A"}``).
    The window spend is kept between runs (``window_spend``); ``full`` recomputes
    it from every transaction.
    """
    import numpy as np

    a_share, b_share = cutoffs
    if not (0 < a_share < 1 and 0 <= b_share < 1 and a_share + b_share <= 1):
        raise ValidationError(f"ABC cut-offs {cutoffs}: expected 0 < A < 1, 0 <= B, A + B <= 1")
    if window_days < 1:
        raise ValidationError("window_days must be at least 1")
    with _sql.run_transaction(crm, "abc") as owned, _sql.SideReads(crm, owned=owned) as side:
        _sql.require_unrestricted(crm, "ABC classification")
        end = as_of or crm.now()
        start = end - dt.timedelta(days=window_days)
        # read on the side while the kept spend is brought up to date
        stats = side.submit(stats_fingerprint)
        stored = side.submit(_stored_classes, _sql.dialect(crm)) if store else None
        ids, spend = window_spend(crm, start, end, full=full, fingerprint=stats)
        cls = classify(ids, spend, a_share, b_share)
        # everyone else (no spend in the window, or no purchase ever) is C
        everyone = _sql.live_customer_ids(crm)
        per = np.full(len(everyone), 2, dtype=np.int8)
        if len(everyone):
            top = int(max(everyone[-1], ids.max() if len(ids) else 0))
            if top <= 4 * len(everyone) + 1024:  # dense ids: a table by id, no search
                at = np.full(top + 1, -1, dtype=np.int64)  # customer id -> index in everyone
                at[everyone] = np.arange(len(everyone))
                pos = at[ids]
                live = pos >= 0
            else:
                pos = np.minimum(np.searchsorted(everyone, ids), len(everyone) - 1)
                live = everyone[pos] == ids
            per[pos[live]] = cls[live]
        total = int(spend.sum()) or 1
        classes: dict[str, dict[str, Any]] = {}
        for code, k in enumerate(CLASSES):
            mask = cls == code
            s = int(spend[mask].sum())
            n = int((per == code).sum())
            classes[k] = {"customers": n, "spend_cents": s, "spend_share": round(s / total, 6)}
        summary: dict[str, Any] = {
            "as_of": end.isoformat(),
            "window_days": window_days,
            "cutoffs": {"A": a_share, "B": b_share},
            "classes": classes,
        }
        if store:
            assert stored is not None  # submitted above whenever labels are stored
            summary["labels"] = _sql.store_label_arrays(
                crm, "abc", everyone, per, end, categories=CLASSES, old=stored()
            )
            _sql.record_run(crm, "abc", end, summary)
        crm.hook.crm_analytics_computed(crm=crm, name="abc", as_of=end, summary=summary)
        letters = np.array(CLASSES, dtype=object)[per]
        return summary | {"customers": _columns.ArrayMapping(everyone, letters)}
