"""Energy-saving and value-added advice from a key customer's daily load curve.

Rules (thresholds in ``[plugins.utility.advice]``, prices in ``tariffs``):

- ``peak_shift``: peak-valley ratio >= ``peak_valley_ratio_min`` -> move
  ``shiftable_share`` of the energy used in peak hours to valley hours; the
  saving is that energy times (peak - valley price), per day and per month.
- ``power_factor``: daily power factor < ``min_power_factor`` -> reactive power
  compensation proposal, sized to bring the average load to the minimum.
- ``overload``: peak apparent power > ``overload_ratio`` x contracted capacity ->
  capacity upgrade proposal to the smallest standard size loaded at most 80 %.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from sqlalchemy import select

from crm_utility.accounts import get_point, is_key_customer, key_point_rows
from crm_utility.config import cfg
from crm_utility.readings import day_stats, reading_days
from crm_utility.tables import advice
from crmcore import ValidationError
from crmcore.parse import format_money

STANDARD_KVA = (
    50,
    80,
    100,
    125,
    160,
    200,
    250,
    315,
    400,
    500,
    630,
    800,
    1000,
    1250,
    1600,
    2000,
    2500,
    3150,
    4000,
    5000,
    6300,
    8000,
    10000,
    12500,
    16000,
    20000,
    25000,
    31500,
)


def rules(crm: Any, stats: dict[str, Any], point: Any) -> list[dict[str, Any]]:
    """The advice a day's statistics call for (not stored)."""
    a, t = cfg(crm)["advice"], cfg(crm)["tariffs"]
    out: list[dict[str, Any]] = []
    ratio = stats["peak_valley_ratio"]
    peak_kwh = stats["band_kwh"]["peak"]
    spread = t["peak_cents_per_kwh"] - t["valley_cents_per_kwh"]
    if ratio is not None and ratio >= a["peak_valley_ratio_min"] and peak_kwh > 0 and spread > 0:
        shift = peak_kwh * a["shiftable_share"]
        per_day = round(shift * spread)
        per_month = per_day * a["days_per_month"]
        out.append(
            {
                "rule": "peak_shift",
                "saving_cents": per_month,
                "summary": (
                    f"peak-valley ratio {ratio:.1f} (peak {stats['peak_kw']:,.0f} kW at "
                    f"{stats['peak_at']:%H:%M}, valley {stats['valley_kw']:,.0f} kW): shifting "
                    f"{a['shiftable_share']:.0%} of peak-hour use ({shift:,.1f} kWh a day) to valley hours "
                    f"saves about ¥{format_money(per_day)} a day, ¥{format_money(per_month)} a month"
                ),
                "data": {
                    "peak_valley_ratio": ratio,
                    "shift_kwh_per_day": round(shift, 3),
                    "saving_cents_per_day": per_day,
                    "peak_cents_per_kwh": t["peak_cents_per_kwh"],
                    "valley_cents_per_kwh": t["valley_cents_per_kwh"],
                },
            }
        )
    pf = stats["power_factor"]
    if pf is not None and pf < a["min_power_factor"]:
        target = a["min_power_factor"]
        avg = stats["average_kw"]
        kvar = avg * (math.tan(math.acos(pf)) - math.tan(math.acos(target)))
        out.append(
            {
                "rule": "power_factor",
                "saving_cents": None,
                "summary": (
                    f"power factor {pf:.2f} is below {target:.2f}: upgrade proposal — install about "
                    f"{math.ceil(kvar):,} kvar of reactive power compensation (capacitor bank)"
                ),
                "data": {
                    "power_factor": pf,
                    "target": target,
                    "compensation_kvar": math.ceil(kvar),
                },
            }
        )
    contracted = point.contracted_kva
    if contracted:
        peak_kva = stats["peak_kw"] / (pf if pf else 1.0)
        if peak_kva > contracted * a["overload_ratio"]:
            proposed = next((s for s in STANDARD_KVA if s * 0.8 >= peak_kva), None)
            size = f"{proposed:,} kVA" if proposed else "a larger supply (above standard sizes)"
            out.append(
                {
                    "rule": "overload",
                    "saving_cents": None,
                    "summary": (
                        f"peak demand {peak_kva:,.0f} kVA exceeds {a['overload_ratio']:.0%} of the contracted "
                        f"{contracted:,} kVA: upgrade proposal — raise the capacity to {size}"
                    ),
                    "data": {
                        "peak_kva": round(peak_kva, 1),
                        "contracted_kva": contracted,
                        "proposed_kva": proposed,
                    },
                }
            )
    return out


def _store(crm: Any, point: Any, day: dt.date, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    have = {
        r.rule
        for r in crm.db.execute(
            select(advice.c.rule).where(advice.c.service_point_id == point.id, advice.c.day == day)
        )
    }
    new = []
    for item in found:
        if item["rule"] in have:
            continue
        crm.db.execute(
            advice.insert().values(
                customer_id=point.customer_id,
                service_point_id=point.id,
                day=day,
                rule=item["rule"],
                summary=f"{point.meter_no} {day.isoformat()}: {item['summary']}",
                saving_cents=item["saving_cents"],
                data=item["data"],
                created_at=crm.now(),
            )
        )
        new.append(item)
    return new


def advise(crm: Any, meter_no: str, day: dt.date) -> dict[str, Any]:
    """Apply the rules to one key customer's service point and day; store new
    advice (one per rule, point and day) and return everything stored for it."""
    with crm.transaction(command="utility advise"):
        point = get_point(crm, meter_no)
        if not is_key_customer(crm, point.customer_id):
            raise ValidationError(
                f"meter {point.meter_no}: advice is a value-added service for key customers; "
                f"customer {point.customer_id} is not one (class {point.customer_class})"
            )
        stats = day_stats(crm, meter_no, day, point=point)
        if not stats["complete"]:
            raise ValidationError(
                f"meter {point.meter_no} has {stats['readings']} of {stats['expected']} readings on "
                f"{day.isoformat()}; advice needs a complete day"
            )
        new = _store(crm, point, day, rules(crm, stats, point))
        return {
            "meter_no": point.meter_no,
            "day": day.isoformat(),
            "new": len(new),
            "advice": list_advice(crm, point=point, day=day),
        }


def list_advice(
    crm: Any, customer: Any = None, *, point: Any = None, day: dt.date | None = None
) -> list[dict]:
    with crm.transaction(write=False):
        stmt = select(advice).order_by(advice.c.day, advice.c.id)
        if customer is not None:
            stmt = stmt.where(advice.c.customer_id == crm.customers.get(customer).id)
        if point is not None:
            stmt = stmt.where(advice.c.service_point_id == point.id)
        if day is not None:
            stmt = stmt.where(advice.c.day == day)
        return [
            {
                "id": r.id,
                "customer_id": r.customer_id,
                "service_point_id": r.service_point_id,
                "day": r.day.isoformat(),
                "rule": r.rule,
                "summary": r.summary,
                "saving_cents": r.saving_cents,
                "data": dict(r.data or {}),
            }
            for r in crm.db.execute(stmt)
        ]


def advise_job(crm: Any, at: dt.datetime) -> dict[str, Any]:
    """The ``utility.advise`` job: yesterday's complete curves of every key
    customer's service points (one query for the readings)."""
    day = (at - dt.timedelta(days=1)).date()
    points = {p.id: p for p in key_point_rows(crm)}
    if not points:
        return {"day": day.isoformat(), "points": 0, "advice": 0}
    by_point = reading_days(crm, list(points), day)
    created, skipped = 0, []
    for pid, rows in sorted(by_point.items()):
        point = points[pid]
        stats = day_stats(crm, point.meter_no, day, rows=rows, point=point)
        if not stats["complete"]:
            skipped.append(point.meter_no)
            continue
        created += len(_store(crm, point, day, rules(crm, stats, point)))
    return {
        "day": day.isoformat(),
        "points": len(by_point),
        "advice": created,
        "incomplete": skipped,
    }
