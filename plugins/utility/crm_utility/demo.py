"""``crm demo``: a large industrial customer with a week of 15-minute readings and advice,
a residential fault repair past its deadline, equipment and an overdue bill."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from crm_utility import accounts, advice, arrears, equipment, readings, tickets

METER = "HRB-10K-0001"
STAFF = "sunhao"


def _load_kw(at: dt.datetime) -> tuple[float, float]:
    """A steel rolling mill: two production peaks, a low night, a quieter Saturday."""
    h = at.hour + at.minute / 60
    base = 260.0
    if 8 <= h < 11.5:
        kw = 1080.0
    elif 18 <= h < 22.5:
        kw = 1040.0
    elif 7 <= h < 23:
        kw = 620.0
    else:
        kw = base
    kw *= 0.8 if at.weekday() == 5 else 1.0
    kw += 25 * math.sin(at.hour * 1.7 + at.minute / 7 + at.day)  # deterministic wobble
    return kw, kw * 0.62  # kW and kvar: power factor about 0.85


def _week_csv(first: dt.date, days: int) -> str:
    lines = ["meter_no,at,kwh,kvarh"]
    t = dt.datetime.combine(first, dt.time())
    end = t + dt.timedelta(days=days)
    while t < end:
        kw, kvar = _load_kw(t)
        lines.append(f"{METER},{t:%Y-%m-%d %H:%M},{kw / 4:.3f},{kvar / 4:.3f}")
        t += dt.timedelta(minutes=15)
    return "\n".join(lines) + "\n"


def load(crm: Any, command_prefix: str = "crm") -> str:
    """A key industrial customer with a week of readings and advice, a fault repair; hints
    start with ``command_prefix`` (the command that reaches the demo database)."""
    now = crm.now()
    today = now.date()
    from crmcore import NotFound

    try:
        crm.staff.get(STAFF)
    except NotFound:
        crm.staff.add(STAFF, "Sun Hao", roles=["rep"], team="key-accounts", supervisor="li")
    mill = crm.customers.add(
        "Harbin Northern Steel Rolling Co.",
        kind="organisation",
        phone="0451 8800 1234",
        owner=STAFF,
        external_id="U-9001",
    )
    accounts.add_point(
        crm,
        mill,
        meter_no=METER,
        address="18 Xingfu Road, Daoli District, Harbin",
        voltage_level="10kV",
        customer_class="large_industrial",
        area="urban",
        contracted_kva=1250,
    )
    week = today - dt.timedelta(days=7)
    imported = readings.import_readings(crm, _week_csv(week, 7), source="hrb-mill-week.csv")
    advised = advice.advise_job(crm, now)
    stats = readings.days_stats(crm, METER, week, today - dt.timedelta(days=1))
    equipment.add_device(
        crm,
        mill,
        name="main transformer T1",
        kind="transformer",
        rating="1250 kVA 10/0.4 kV",
        meter_no=METER,
        installed_on=dt.date(2019, 4, 1),
        next_due=today + dt.timedelta(days=10),
    )
    equipment.add_device(
        crm,
        mill,
        name="10 kV switchgear",
        kind="switchgear",
        rating="630 A 10 kV",
        meter_no=METER,
        installed_on=dt.date(2019, 4, 1),
        next_due=today + dt.timedelta(days=90),
    )
    equipment.reminders_job(crm, now)
    arrears.add_bill(
        crm,
        mill,
        bill_no="HRB-2026-04-9001",
        period="2026-04",
        amount_cents=48_615_000,
        issued_on=dt.date(2026, 5, 6),
        due_on=today - dt.timedelta(days=20),
        meter_no=METER,
    )
    arrears.dunning_job(crm, now)

    # a rural household's fault repair that nobody answered in time
    accounts.add_point(
        crm,
        "C-1001",
        meter_no="HRB-R-220-0042",
        address="Qianjin Village 3-12, Acheng",
        voltage_level="220V",
        customer_class="residential",
        area="rural",
    )
    t = tickets.open_service_ticket(
        crm,
        "C-1001",
        "no power since 06:50, neighbours too",
        type="fault_repair",
        meter_no="HRB-R-220-0042",
        owner="zhang",
        channel="hotline",
        at=now - dt.timedelta(hours=2),
    )
    esc = tickets.escalate(crm, now)

    last = stats[-1]
    lines = [
        f"large industrial customer U-9001 {mill.name} (key customer, meter {METER}, 10 kV, 1250 kVA):",
        f"  {imported['stored']} readings imported (15-minute, {week} .. {today - dt.timedelta(days=1)})",
    ]
    lines += [
        f"  {s['day']}  peak {s['peak_kw']:,.0f} kW  valley {s['valley_kw']:,.0f} kW  load factor "
        f"{s['load_factor']:.2f}  peak/valley {s['peak_valley_ratio']:.1f}  PF {s['power_factor']:.2f}"
        for s in stats
    ]
    lines.append(f"  advice for {advised['day']}:")
    lines += [
        f"    - {a['rule']}: {a['summary'].split(': ', 1)[1]}"
        for a in advice.list_advice(crm, mill)
        if a["day"] == advised["day"]
    ]
    lines.append(
        f"  bill HRB-2026-04-9001: 486,150.00 yuan, 20 days overdue -> dunning step 1 taken "
        f"(payment reminder SMS); next: {arrears.show_bill(crm, 'HRB-2026-04-9001')['next_step']['name']}"
    )
    lines.append("  transformer T1 inspection due in 10 days: reminder for sunhao")
    lines.append(
        f"fault repair ticket {t['ticket_id']} for C-1001 (rural): response due "
        f"{t['response_due']:%H:%M}, on site due {t['on_site_due']:%H:%M}; "
        f"{esc['escalated']} escalation(s) recorded ("
        + ", ".join(f"{e['deadline']} level {e['level']} -> {e['to']}" for e in esc["escalations"])
        + ")"
    )
    lines += [
        f"try:    {command_prefix} utility day {METER} {last['day']}",
        f"        {command_prefix} utility export {METER} {last['day']} --format svg --out curve.svg",
        f"        {command_prefix} timeline U-9001",
    ]
    return "\n".join(lines)
