"""ABC (Pareto) classification by cumulative share of spend (seed 001 essay 1, 2.2)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text

from crmcore.analytics._sql import require_unrestricted
from crmcore.errors import ValidationError

BASIS = 10_000  # cut-offs in basis points keep the comparison in integers


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
    window are C. Labels ``abc`` are replaced set-based.
    """
    a_share, b_share = cutoffs
    if not (0 < a_share < 1 and 0 <= b_share < 1 and a_share + b_share <= 1):
        raise ValidationError(f"ABC cut-offs {cutoffs}: expected 0 < A < 1, 0 <= B, A + B <= 1")
    if window_days < 1:
        raise ValidationError("window_days must be at least 1")
    with crm.transaction(command="analytics abc"):
        require_unrestricted(crm, "ABC classification")
        end = as_of or crm.now()
        start = end - dt.timedelta(days=window_days)
        params = {"start": start, "end": end, "a": round(a_share * BASIS),
                  "ab": round((a_share + b_share) * BASIS), "basis": BASIS, "now": end}
        classified = f"""
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
                   CASE WHEN before * :basis < total * :a THEN 'A'
                        WHEN before * :basis < total * :ab THEN 'B' ELSE 'C' END AS cls
            FROM ranked"""
        db = crm.db
        if store:
            db.execute(text("DELETE FROM customer_labels WHERE name = 'abc'"))
            db.execute(text(f"""
                INSERT INTO customer_labels (customer_id, name, value, source, as_of)
                SELECT customer_id, 'abc', cls, 'core', :now FROM ({classified}) AS c"""), params)
            db.execute(text("""
                INSERT INTO customer_labels (customer_id, name, value, source, as_of)
                SELECT id, 'abc', 'C', 'core', :now FROM customers
                WHERE merged_into_id IS NULL
                  AND id NOT IN (SELECT customer_id FROM customer_labels WHERE name = 'abc')"""),
                       {"now": end})
            per_class = db.all(text("""
                SELECT l.value AS cls, COUNT(*) AS n, COALESCE(SUM(sp.s), 0) AS spend
                FROM customer_labels l LEFT JOIN (
                    SELECT customer_id, SUM(amount_cents) AS s FROM transactions
                    WHERE occurred_at > :start AND occurred_at <= :end GROUP BY customer_id) sp
                  ON sp.customer_id = l.customer_id
                WHERE l.name = 'abc' GROUP BY l.value"""), params)
            customers = db.all(text("SELECT customer_id, value FROM customer_labels WHERE name = 'abc' "
                                    "ORDER BY customer_id"))
        else:
            rows = db.all(text(classified), params)
            agg: dict[str, list[int]] = {}
            for _, s, cls in rows:
                agg.setdefault(cls, [0, 0])
                agg[cls][0] += 1
                agg[cls][1] += int(s)
            per_class = [(k, v[0], v[1]) for k, v in agg.items()]
            customers = [(cid, cls) for cid, _, cls in rows]
        total = sum(int(r[2]) for r in per_class) or 1
        classes = {c: {"customers": 0, "spend_cents": 0, "spend_share": 0.0} for c in "ABC"}
        for cls, n, spend in per_class:
            classes[cls] = {"customers": int(n), "spend_cents": int(spend),
                            "spend_share": round(int(spend) / total, 6)}
        summary = {"as_of": end.isoformat(), "window_days": window_days,
                   "cutoffs": {"A": a_share, "B": b_share}, "classes": classes}
        crm.hook.crm_analytics_computed(crm=crm, name="abc", as_of=end, summary=summary)
        return summary | {"customers": {int(cid): cls for cid, cls in customers}}
