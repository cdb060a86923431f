"""Shared helpers for the utility plugin's tests (not fixtures: plain functions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from crm_utility import accounts

DAY = dt.date(2026, 1, 4)  # the day before the fixture clock (2026-01-05 09:00)


def staff(crm) -> None:
    """boss <- li (supervisor) <- zhang, chen (reps); team north."""
    crm.staff.add("boss", "Boss Wang", roles=["supervisor"], team="north")
    crm.staff.add("li", "Li Na", roles=["supervisor"], team="north", supervisor="boss")
    crm.staff.add("zhang", "Zhang Wei", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("chen", "Chen Jie", roles=["rep"], team="south", supervisor="li")


def mill(
    crm,
    *,
    meter: str = "M1",
    owner: str | None = None,
    kva: int | None = 1000,
    cls: str = "large_industrial",
    area: str = "urban",
    ext: str = "U-1",
):
    c = crm.customers.add(
        "Northern Steel", kind="organisation", phone="13900001111", external_id=ext, owner=owner
    )
    accounts.add_point(
        crm,
        c,
        meter_no=meter,
        address="1 Mill Road",
        voltage_level="10kV",
        customer_class=cls,
        area=area,
        contracted_kva=kva,
    )
    return c


def csv_text(
    meter: str | None,
    day: dt.date,
    kw: Callable[[dt.datetime], float],
    *,
    step: int = 15,
    pf_kvar: Callable[[dt.datetime], float] | None = None,
    days: int = 1,
) -> str:
    head = (["meter_no"] if meter else []) + ["at", "kwh"] + (["kvarh"] if pf_kvar else [])
    lines = [",".join(head)]
    t = dt.datetime.combine(day, dt.time())
    end = t + dt.timedelta(days=days)
    while t < end:
        row = ([meter] if meter else []) + [
            t.strftime("%Y-%m-%d %H:%M"),
            f"{kw(t) * step / 60:.3f}",
        ]
        if pf_kvar:
            row.append(f"{pf_kvar(t) * step / 60:.3f}")
        lines.append(",".join(row))
        t += dt.timedelta(minutes=step)
    return "\n".join(lines) + "\n"


def two_level(t: dt.datetime) -> float:
    """400 kW from 08:00 to 11:00 (peak tariff hours), 100 kW otherwise."""
    return 400.0 if 8 <= t.hour < 11 else 100.0
