"""Predicted reorder: BG/NBD (+ Gamma-Gamma) over the purchase history up to a date."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crmcore.analytics import _sql, bgnbd
from crmcore.errors import ValidationError

UNITS = {"day": 1, "week": 7}


def _day(d: str, expr: str) -> str:
    """SQL for the integer day number of a timestamp (same origin within a dialect)."""
    if d == "sqlite":
        return f"CAST(julianday({expr}) + 0.5 AS INTEGER)"
    return f"(CAST({expr} AS DATE) - DATE '1970-01-01')"


def summary_data(crm: Any, until: dt.datetime, unit: str = "week") -> dict[str, Any]:
    """Per customer with a purchase on or before the day ``until`` (refunds are not
    purchases and are left out of the model): ``x`` repeat
    purchases counted per distinct day (as in the paper), ``t_x`` and ``T`` in
    ``unit`` from the first purchase day, and ``m`` the average spend (cents)
    per repeat purchase day. One set-based query; numpy arrays."""
    import numpy as np

    if unit not in UNITS:
        raise ValidationError(f"time unit {unit!r}: expected one of {sorted(UNITS)}")
    d = _sql.dialect(crm)
    end_excl = dt.datetime.combine(until.date(), dt.time()) + dt.timedelta(days=1)
    day = _day(d, "occurred_at")
    rows = _sql.fetch(
        crm,
        f"""
        WITH days AS (
            SELECT customer_id, {day} AS d, SUM(amount_cents) AS s FROM transactions
            WHERE occurred_at < ? AND kind = 'purchase' GROUP BY customer_id, {day}),
        firsts AS (SELECT customer_id, d, s, MIN(d) OVER (PARTITION BY customer_id) AS d0 FROM days)
        SELECT customer_id, COUNT(*) - 1, MIN(d), MAX(d), CAST(SUM(s) AS BIGINT),
               CAST(SUM(CASE WHEN d = d0 THEN s ELSE 0 END) AS BIGINT)
        FROM firsts GROUP BY customer_id ORDER BY customer_id""",
        (_sql.bind_time(crm, end_excl),),
    )
    ids, x, first, last, spend, first_spend = (np.asarray(c) for c in _sql.columns(rows, 6))
    end_day = _sql.fetch(crm, f"SELECT {_day(d, '?')}", (_sql.bind_time(crm, until),))[0][0]
    u = UNITS[unit]
    x = x.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(x > 0, (spend.astype(np.float64) - first_spend) / np.maximum(x, 1), 0.0)
    return {
        "ids": ids.astype(np.int64),
        "x": x,
        "t_x": (last - first) / u,
        "T": (int(end_day) - first.astype(np.float64)) / u,
        "m": m,
    }


def _require_finite(results: dict[str, Any], ids: Any) -> None:
    """Refuse model results that are not finite numbers (a degenerate fit): they
    would be stored as ``nan`` labels and break every JSON reader."""
    import numpy as np

    for what, values in results.items():
        if values is None:
            continue
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValidationError(
                f"BG/NBD: the fit gives no finite {what} for {int(bad.sum())} of {len(ids)} "
                f"customers (first: customer {int(ids[bad][0])}); the data is degenerate for "
                "the model, nothing stored"
            )


def clv(
    crm: Any,
    *,
    until: dt.datetime | None = None,
    time_unit: str = "week",
    horizon: float = 52,
    risk_below: float = 0.5,
    store: bool = True,
    spend_model: bool = True,
) -> dict[str, Any]:
    """Fit BG/NBD by maximum likelihood on purchases up to ``until`` (default
    now) and report r, alpha, a, b; per customer the probability of being alive
    and the expected purchases in the next ``horizon`` time units; with
    ``spend_model`` also the Gamma-Gamma spend per purchase and the expected
    spend over the horizon. Repeat customers with P(alive) < ``risk_below``
    are the "should have reordered by now" list. Labels ``p_alive`` and
    ``expected_purchases`` (3 decimals) are stored.
    """
    np = bgnbd._np()  # without scipy: one line naming the extra, before any work

    if horizon <= 0:
        raise ValidationError("horizon must be positive")
    with _sql.run_transaction(crm, "clv"):
        _sql.require_unrestricted(crm, "the BG/NBD model")
        end = until or crm.now()
        data = summary_data(crm, end, time_unit)
        x, t_x, T = data["x"], data["t_x"], data["T"]
        (ux, utx, uT), inverse, counts = bgnbd.compress(x, t_x, T)
        params = bgnbd.fit_bgnbd(ux, utx, uT, weights=counts)
        alive = bgnbd.p_alive(params, ux, utx, uT)[inverse]
        expected = bgnbd.expected_purchases(params, horizon, ux, utx, uT)[inverse]
        ids = data["ids"]
        summary: dict[str, Any] = {
            "until": end.isoformat(),
            "time_unit": time_unit,
            "horizon": horizon,
            "model": "BG/NBD (Fader, Hardie & Lee 2005)",
            "params": {k: params[k] for k in ("r", "alpha", "a", "b")},
            "log_likelihood": params["log_likelihood"],
            "customers_fitted": len(ids),
            "expected_purchases_total": round(float(expected.sum()), 3),
        }
        spend = None
        if spend_model and bool(((x > 0) & (data["m"] > 0)).any()):
            gg = bgnbd.fit_gamma_gamma(x, data["m"])
            summary["spend_params"] = {k: gg[k] for k in ("p", "q", "v")}
            spend = bgnbd.expected_spend(gg, x, data["m"])
        _require_finite(
            {"P(alive)": alive, "expected purchases": expected, "expected spend": spend}, ids
        )
        risk = (x > 0) & (alive < risk_below)
        summary["at_risk"] = int(risk.sum())
        summary["risk_below"] = risk_below
        if store:
            ilist = ids.tolist()
            summary["labels"] = {
                "p_alive": _sql.store_labels(
                    crm,
                    "p_alive",
                    dict(zip(ilist, np.char.mod("%.3f", alive).tolist(), strict=True)),
                    end,
                ),
                "expected_purchases": _sql.store_labels(
                    crm,
                    "expected_purchases",
                    dict(zip(ilist, np.char.mod("%.3f", expected).tolist(), strict=True)),
                    end,
                ),
            }
            _sql.record_run(crm, "clv", end, summary)
        crm.hook.crm_analytics_computed(crm=crm, name="clv", as_of=end, summary=summary)
        cols = [
            ids.tolist(),
            x.astype(np.int64).tolist(),
            np.round(alive, 6).tolist(),
            np.round(expected, 6).tolist(),
        ]
        spend_l = np.round(spend, 2).tolist() if spend is not None else [None] * len(ids)
        exp_spend = (
            np.round(spend * expected, 2).tolist() if spend is not None else [None] * len(ids)
        )
        per = {
            cid: {
                "repeat_purchases": k,
                "p_alive": p,
                "expected_purchases": e,
                "expected_spend_per_purchase_cents": s,
                "expected_spend_cents": es,
            }
            for cid, k, p, e, s, es in zip(*cols, spend_l, exp_spend, strict=True)
        }
        at_risk = sorted((int(c) for c in ids[risk]), key=lambda c: per[c]["p_alive"])
        return summary | {"customers": per, "at_risk_customers": at_risk}
