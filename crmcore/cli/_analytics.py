"""crm analytics abc|rfm|overdue|clv|stats."""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli._app import JSON_OPTION, cli, emit, parse_at, pass_crm
from crmcore.cli.params import Number, Whole


@cli.group()
def analytics() -> None:
    """Set-based analytics over the whole base.

    Results are stored as customer labels."""


@analytics.command("abc")
@click.option("--as-of", help="ISO date or date-time (default: now).")
@click.option("--window-days", default=365, show_default=True, type=Whole(1, 36_500))
@click.option(
    "--cutoffs",
    default="70/20/10",
    show_default=True,
    help="Per cent of spend for A/B/C, e.g. 80/15/5.",
)
@click.option(
    "--full",
    is_flag=True,
    help="Recompute every customer's window spend from the transactions "
    "(default: only customers whose purchases changed since the last run).",
)
@JSON_OPTION
@pass_crm
def abc_cmd(
    crm: Any, as_of: str | None, window_days: int, cutoffs: str, full: bool, as_json: bool
) -> None:
    """A/B/C classes by share of spend.

    Customers ranked by their cumulative share of spend in the window."""
    from crmcore.analytics import abc
    from crmcore.errors import ValidationError
    from crmcore.parse import parse_number

    if not isinstance(cutoffs, str) or cutoffs.count("/") not in (1, 2):
        raise ValidationError(f"--cutoffs {cutoffs!r}: expected A/B/C per cent, e.g. 70/20/10")
    parts = [parse_number(p, field="--cutoffs", min=0, max=100) for p in cutoffs.split("/")]
    if len(parts) not in (2, 3) or (len(parts) == 3 and abs(sum(parts) - 100) > 1e-9):
        raise ValidationError(f"--cutoffs {cutoffs!r}: expected three per cents adding up to 100")
    result = abc(
        crm,
        as_of=parse_at(as_of, "--as-of"),
        window_days=window_days,
        cutoffs=(parts[0] / 100, parts[1] / 100),
        full=full,
    )

    def human(r: dict[str, Any]) -> str:
        lines = [f"ABC as of {r['as_of']} ({r['window_days']} days)"]
        for k, v in r["classes"].items():
            lines.append(
                f"  {k}: {v['customers']:>9} customers  {v['spend_share'] * 100:6.2f}% of spend"
            )
        return "\n".join(lines)

    emit(result, as_json, human)


@analytics.command("rfm")
@click.option("--as-of", help="ISO date or date-time (default: now).")
@JSON_OPTION
@pass_crm
def rfm_cmd(crm: Any, as_of: str | None, as_json: bool) -> None:
    """Recency, frequency, monetary scores (1-5).

    Quintile scores per customer."""
    from crmcore.analytics import rfm

    result = rfm(crm, as_of=parse_at(as_of, "--as-of"))

    def human(r: dict[str, Any]) -> str:
        lines = [f"RFM as of {r['as_of']}: {r['customers_scored']} customers scored"]
        for k in ("r", "f", "m"):
            lines.append(
                f"  {k.upper()}: " + "  ".join(f"{s}:{n}" for s, n in r["scores"][k].items())
            )
        return "\n".join(lines)

    emit(result, as_json, human)


@analytics.command("overdue")
@click.option("--as-of", help="ISO date or date-time (default: now).")
@click.option("--grace-days", default=3.0, show_default=True, type=Number(0, 36_500))
@click.option("--min-purchases", default=3, show_default=True, type=Whole(2))
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=Whole(1),
    help="Customers listed in the text output (--json lists all).",
)
@JSON_OPTION
@pass_crm
def overdue_cmd(
    crm: Any, as_of: str | None, grace_days: float, min_purchases: int, limit: int, as_json: bool
) -> None:
    """Customers late for their next purchase.

    Customers past their own average purchase interval plus the grace."""
    from crmcore.analytics import overdue

    result = overdue(
        crm, as_of=parse_at(as_of, "--as-of"), grace_days=grace_days, min_purchases=min_purchases
    )

    def human(r: dict[str, Any]) -> str:
        from crmcore.cli.output import showing, table

        shown = r["customers"][:limit]
        lines = [f"{r['count']:,} overdue customers as of {r['as_of']}"]
        if shown:
            lines.append(
                table(
                    (
                        (
                            c["customer_id"],
                            c["days_overdue"],
                            round(c["average_interval_days"], 1),
                            c["last_purchase"],
                        )
                        for c in shown
                    ),
                    ("customer", "days overdue", "every (days)", "last purchase"),
                )
            )
            lines.append(showing(len(shown), r["count"], hint="--limit"))
        return "\n".join(lines)

    emit(result, as_json, human)


@analytics.command("clv")
@click.option("--until", required=True, help="End of the calibration period (ISO date).")
@click.option("--time-unit", type=click.Choice(["day", "week"]), default="week", show_default=True)
@click.option(
    "--horizon",
    default=52.0,
    show_default=True,
    type=Number(0.01, 10_000),
    help="Predict purchases in the next N time units.",
)
@click.option(
    "--risk-below",
    default=0.5,
    show_default=True,
    type=Number(0, 1),
    help="Repeat customers with P(alive) below this are listed as at risk.",
)
@JSON_OPTION
@pass_crm
def clv_cmd(
    crm: Any, until: str, time_unit: str, horizon: float, risk_below: float, as_json: bool
) -> None:
    """BG/NBD: P(alive) and expected purchases.

    Per customer, plus the Gamma-Gamma spend per purchase."""
    from crmcore.analytics import clv

    result = clv(
        crm,
        until=parse_at(until, "--until"),
        time_unit=time_unit,
        horizon=horizon,
        risk_below=risk_below,
    )

    def human(r: dict[str, Any]) -> str:
        p = r["params"]
        lines = [
            f"BG/NBD until {r['until']} ({r['customers_fitted']} customers, unit {r['time_unit']}): "
            f"r={p['r']:.4g} alpha={p['alpha']:.4g} a={p['a']:.4g} b={p['b']:.4g}"
        ]
        if "spend_params" in r:
            s = r["spend_params"]
            lines.append(f"Gamma-Gamma: p={s['p']:.4g} q={s['q']:.4g} v={s['v']:.4g}")
        lines.append(
            f"expected purchases in the next {r['horizon']:g} {r['time_unit']}s: "
            f"{r['expected_purchases_total']:.1f}; at risk (P(alive) < {r['risk_below']}): "
            f"{r['at_risk']}"
        )
        for cid in r["at_risk_customers"][:20]:
            lines.append(f"  {cid:>8}  P(alive)={r['customers'][cid]['p_alive']:.3f}")
        return "\n".join(lines)

    emit(result, as_json, human)


@analytics.command("stats")
@click.option(
    "--rebuild", is_flag=True, help="Recompute every customer's aggregates from transactions."
)
@JSON_OPTION
@pass_crm
def stats_cmd(crm: Any, rebuild: bool, as_json: bool) -> None:
    """The per-customer aggregates analytics read.

    First and last purchase, purchase count and spend per customer."""
    from sqlalchemy import func, select

    from crmcore.analytics._sql import require_unrestricted
    from crmcore.schema import customer_stats

    with crm.transaction(write=rebuild, command="analytics stats"):
        require_unrestricted(crm, "the aggregate rebuild")
        if rebuild:
            crm.customers.refresh_stats()
        n, tx = crm.db.first(
            select(func.count(), func.coalesce(func.sum(customer_stats.c.tx_count), 0))
        )
    emit(
        {"customers": int(n), "transactions": int(tx), "rebuilt": rebuild},
        as_json,
        lambda d: (
            f"{d['customers']} customers, {d['transactions']} transactions"
            + (" (rebuilt)" if rebuild else "")
        ),
    )


__all__ = ["analytics", "parse_at"]
