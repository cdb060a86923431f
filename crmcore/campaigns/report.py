"""A campaign's effect: purchases of the reached against the held-out customers
in the N days after their occurrence, and the uplift in spend per customer with
a 95% confidence interval (difference of means, Welch's unequal variances; the
t quantile from scipy when installed, else the normal 1.96)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
from sqlalchemy import and_, func, select

from crmcore.errors import NotFound, ValidationError
from crmcore.schema import campaign_recipients, campaigns, transactions

MAX_DAYS = 366


def welch(reached: np.ndarray, held: np.ndarray) -> dict[str, Any]:
    """Difference of means (reached - held) and its 95% interval; the interval
    is None with fewer than two customers in a group."""
    n1, n0 = len(reached), len(held)
    if n1 == 0 or n0 == 0:
        return {"difference": None, "ci95": None, "df": None, "method": "welch"}
    diff = float(reached.mean() - held.mean())
    if n1 < 2 or n0 < 2:
        return {"difference": diff, "ci95": None, "df": None, "method": "welch"}
    a, b = float(reached.var(ddof=1)) / n1, float(held.var(ddof=1)) / n0
    se = math.sqrt(a + b)
    if se == 0:
        return {"difference": diff, "ci95": [diff, diff], "df": None, "method": "welch"}
    df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n0 - 1))
    try:
        from scipy.stats import t

        crit, method = float(t.ppf(0.975, df)), "welch-t"
    except ImportError:
        crit, method = 1.959963984540054, "welch-normal"
    return {
        "difference": diff,
        "ci95": [diff - crit * se, diff + crit * se],
        "df": df,
        "method": method,
    }


def _group(values: np.ndarray, counts: np.ndarray) -> dict[str, Any]:
    return {
        "customers": int(len(values)),
        "purchasers": int((counts > 0).sum()),
        "purchases": int(counts.sum()),
        "spend_cents": int(values.sum()),
        "mean_spend_cents": float(values.mean()) if len(values) else None,
    }


def campaign_report(
    crm: Any, name: str, *, occurrence: str | None = None, days: int = 30
) -> dict[str, Any]:
    """Purchases (count, spend) in the ``days`` days after each customer was
    selected, for the reached (messaged) and the held-out customers the
    principal may see, and the uplift of spend per customer. ``occurrence``
    defaults to the campaign's latest."""
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValidationError(f"campaign report: --days {days!r}; expected 1 to {MAX_DAYS}")
    with crm.transaction(write=False) as db:
        row = db.execute(select(campaigns).where(campaigns.c.name == name)).first()
        if row is None:
            raise NotFound(f"campaign {name!r} not found; see `crm campaign list`")
        rc = campaign_recipients.c
        if occurrence is None:
            occurrence = db.execute(
                select(func.max(rc.occurrence)).where(rc.campaign_id == row.id)
            ).scalar()
            if occurrence is None:
                raise NotFound(f"campaign {name!r} has not run yet")
        # the runs of the occurrence (a re-run selects the members added since):
        # few moments, each with its own window
        starts = (
            db.execute(
                select(rc.at)
                .where(rc.campaign_id == row.id, rc.occurrence == occurrence)
                .distinct()
            )
            .scalars()
            .all()
        )
        per_customer = []
        for start in starts:
            window = and_(
                transactions.c.customer_id == rc.customer_id,
                transactions.c.kind == "purchase",
                transactions.c.occurred_at >= start,
                transactions.c.occurred_at < start + dt.timedelta(days=days),
            )
            per_customer += db.execute(
                select(
                    rc.customer_id,
                    rc.holdout,
                    func.count(transactions.c.id).label("n"),
                    func.coalesce(func.sum(transactions.c.amount_cents), 0).label("spend"),
                )
                .select_from(campaign_recipients.outerjoin(transactions, window))
                .where(
                    rc.campaign_id == row.id,
                    rc.occurrence == occurrence,
                    rc.at == start,
                    (rc.holdout.is_(True)) | (rc.message_id.is_not(None)),
                )
                .group_by(rc.customer_id, rc.holdout)
            ).all()
    held = [r for r in per_customer if r.holdout]
    reached = [r for r in per_customer if not r.holdout]
    spend_r = np.array([r.spend for r in reached], dtype=float)
    spend_h = np.array([r.spend for r in held], dtype=float)
    count_r = np.array([r.n for r in reached], dtype=float)
    count_h = np.array([r.n for r in held], dtype=float)
    return {
        "campaign": name,
        "occurrence": occurrence,
        "days": days,
        "reached": _group(spend_r, count_r),
        "holdout": _group(spend_h, count_h),
        "uplift_spend_cents": welch(spend_r, spend_h),
    }
