"""ABC (Pareto) classification by cumulative share of spend (seed 001 essay 1, 2.2)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crmcore.analytics import _sql
from crmcore.errors import ValidationError

BASIS = 10_000  # cut-offs in basis points keep the comparison in integers


def window_spend(crm: Any, start: dt.datetime, end: dt.datetime) -> tuple[Any, Any]:
    """Spend per customer in ``(start, end]`` as numpy arrays (ids, cents), set-based.

    Customers whose whole history lies in the window come from
    ``customer_stats``; those with purchases on both sides of an edge are summed
    from their own transactions in the window (a range of the covering index
    per customer); customers whose last purchase is before the window are not
    read at all.
    """
    import numpy as np

    s, e = _sql.bind_time(crm, start), _sql.bind_time(crm, end)
    rows = _sql.fetch(
        crm,
        """
        SELECT customer_id, spend_cents FROM customer_stats WHERE first_at > ? AND last_at <= ?
        UNION ALL
        SELECT customer_id, CAST(SUM(amount_cents) AS BIGINT) FROM transactions
        WHERE customer_id IN (SELECT customer_id FROM customer_stats
                              WHERE last_at > ? AND (first_at <= ? OR last_at > ?))
          AND occurred_at > ? AND occurred_at <= ?
        GROUP BY customer_id""",
        (s, e, s, s, e, s, e),
    )
    ids, spend = _sql.columns(rows, 2)
    return np.asarray(ids, dtype=np.int64), np.asarray(spend, dtype=np.int64)


def classify(ids: Any, spend: Any, a_share: float, b_share: float) -> Any:
    """Classes (array of 'A'/'B'/'C') for customers with positive spend: ranked by
    spend (ties by id), A while the spend ranked above is under ``a_share`` of
    the total, B while under ``a_share + b_share``, else C."""
    import numpy as np

    order = np.lexsort((ids, -spend))
    s = spend[order]
    before = np.cumsum(s) - s
    total = int(s.sum())
    a, ab = round(a_share * BASIS), round((a_share + b_share) * BASIS)
    cls_sorted = np.where(
        before * BASIS < total * a, "A", np.where(before * BASIS < total * ab, "B", "C")
    )
    out = np.empty(len(ids), dtype="<U1")
    out[order] = cls_sorted
    return out


def abc(
    crm: Any,
    *,
    as_of: dt.datetime | None = None,
    window_days: int = 365,
    cutoffs: tuple[float, float] = (0.70, 0.20),
    store: bool = True,
) -> dict[str, Any]:
    """Classify every customer A/B/C by spend in the ``window_days`` up to ``as_of``.

    Customers are ranked by spend (ties by id); a customer is A while the spend
    of those ranked above them is under ``cutoffs[0]`` of the total, B while
    under ``cutoffs[0] + cutoffs[1]``, else C. Customers with no spend in the
    window are C. Label ``abc`` holds the class (written where it changed).
    Returns per class the customer count, spend and spend share, and per
    customer the class (``"customers": {id: "A"}``).
    """
    a_share, b_share = cutoffs
    if not (0 < a_share < 1 and 0 <= b_share < 1 and a_share + b_share <= 1):
        raise ValidationError(f"ABC cut-offs {cutoffs}: expected 0 < A < 1, 0 <= B, A + B <= 1")
    if window_days < 1:
        raise ValidationError("window_days must be at least 1")
    with crm.transaction(command="analytics abc"):
        _sql.require_unrestricted(crm, "ABC classification")
        end = as_of or crm.now()
        start = end - dt.timedelta(days=window_days)
        ids, spend = window_spend(crm, start, end)
        keep = spend > 0
        ids, spend = ids[keep], spend[keep]
        cls = classify(ids, spend, a_share, b_share)
        classes: dict[str, dict[str, Any]] = {}
        total = int(spend.sum()) or 1
        per: dict[int, str] = dict(zip(ids.tolist(), cls.tolist(), strict=True))
        everyone = _sql.live_customer_ids(crm)
        for cid in everyone:
            if cid not in per:
                per[cid] = "C"
        for k in "ABC":
            mask = cls == k
            s = int(spend[mask].sum())
            n = int(mask.sum()) + (len(per) - len(ids) if k == "C" else 0)
            classes[k] = {"customers": n, "spend_cents": s, "spend_share": round(s / total, 6)}
        summary: dict[str, Any] = {
            "as_of": end.isoformat(),
            "window_days": window_days,
            "cutoffs": {"A": a_share, "B": b_share},
            "classes": classes,
        }
        if store:
            summary["labels"] = _sql.store_labels(crm, "abc", per, end)
            _sql.record_run(crm, "abc", end, summary)
        crm.hook.crm_analytics_computed(crm=crm, name="abc", as_of=end, summary=summary)
        return summary | {"customers": dict(sorted(per.items()))}
