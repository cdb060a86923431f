"""``crm demo``: a supermarket's members and a fuel station, through the public API.

The demo's clock stands at 2026-06-15 09:00; to give Wu Fang (C-1001) a year of
history, past purchases are recorded with the (fixed) clock moved to each
purchase's time and put back afterwards, so tier upgrades carry their real dates.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

from crm_retail import callbacks, dm, feedback, fuel, members, messaging, points, segments, waitlist
from crmcore import FixedClock


@contextlib.contextmanager
def _clock_at(crm: Any, when: dt.datetime) -> Iterator[None]:
    clock = crm.clock
    if not isinstance(clock, FixedClock):
        yield
        return
    saved = clock.at
    clock.set(when)
    try:
        yield
    finally:
        clock.set(saved)


def load(crm: Any, command_prefix: str = "crm") -> str:
    """Members with a year of purchases, points, greetings, a DM report, a fuel station;
    hints start with ``command_prefix`` (the command that reaches the demo database)."""
    now = crm.now()
    day = dt.timedelta(days=1)
    fang, lei = crm.customers.get("C-1001"), crm.customers.get("C-1002")
    zhang = crm.staff.get("zhang")

    joined = now - 287 * day  # 2025-09-01
    members.join(
        crm, fang, member_no="M20250901", birthday=dt.date(1980, now.month, now.day), at=joined
    )
    members.join(crm, lei, birthday=dt.date(2004, 2, 29), at=now - 40 * day)
    # a year of shopping: Wu Fang becomes silver, then gold
    for i, amount in enumerate(
        [68_000, 91_500, 120_000, 156_000, 88_000, 210_000, 175_000, 132_000, 99_000, 64_000]
    ):
        when = joined + dt.timedelta(days=28 * i + 3, hours=10)
        with _clock_at(crm, when):
            crm.records.add_transaction(
                fang, amount, occurred_at=when, channel="store", external_id=f"DEMO-R-{i:03d}"
            )
    wednesday = now - 5 * day  # 2026-06-10, member day (default: Wednesdays)
    crm.records.add_transaction(
        fang,
        45_800,
        occurred_at=wednesday.replace(hour=18),
        channel="store",
        external_id="DEMO-R-MD",
    )
    crm.records.add_transaction(
        lei, 12_350, occurred_at=now - 3 * day, channel="store", external_id="DEMO-R-LEI"
    )
    with _clock_at(crm, now - 26 * day):
        points.redeem(
            crm, fang, 500, reason="shopping voucher 5.00", ref="DEMO-VOUCHER-1", at=now - 26 * day
        )

    r = dm.report(
        crm,
        fang,
        product="Golden Dragon rice 5 kg",
        promotion="DM 2026-W24",
        poster_price="39.90",
        till_price="45.90",
        at=now - 2 * day,
    )
    dm.decide(crm, r["id"], verified=True, note="poster misprint confirmed by the floor manager")
    waitlist.add(crm, lei, item="Free-range eggs 30 pack", offer="special 19.90", at=now - 4 * day)
    restocked = waitlist.restock(crm, "free-range eggs 30 pack")
    greeting = messaging.run_birthdays(crm, now)
    feedback.answer(crm, fang, expected=8, perceived=9, comment="fast checkout, fresh produce")

    # the fuel station: three visits, then a regular who stopped coming
    fuel.visit1(
        crm,
        plate="豫A·D1234",
        car_model="Buick GL8",
        station="Puyang No. 3",
        staff_ref=zhang,
        at=now - 30 * day,
    )
    fuel.visit2(
        crm,
        "豫AD1234",
        name="Zhao Gang",
        employer="Puyang Logistics",
        consent=True,
        staff_ref=zhang,
        at=now - 23 * day,
    )
    p = fuel.visit3(
        crm,
        "豫AD1234",
        phone="137 0000 3333",
        details={"fuel": "95", "card": "yes"},
        staff_ref=zhang,
        at=now - 16 * day,
    )
    for i in range(4):
        crm.records.add_transaction(
            p["customer_id"],
            35_000,
            occurred_at=now - (33 - 7 * i) * day,
            channel="fuel",
            external_id=f"DEMO-F-{i}",
        )
    overdue = callbacks.run_overdue(crm, now)
    abc = segments.run_abc_service(crm, now)
    ratio = fuel.ratio_report(crm)

    info = members.member_info(crm, fang)
    return "\n".join(
        [
            f"members: Wu Fang {info['member_no']} tier {info['tier']} with "
            f"{info['points_balance']} points "
            f"(12-month spend {info['rolling_spend_cents'] / 100:,.2f}); Wu Lei standard",
            "member day: 2026-06-10 (a Wednesday) purchase earned x2 points and 5% off",
            f"birthday greetings queued today: {greeting['queued']} (Wu Fang)",
            f"DM price error verified: {r['product']} -> 200 points; restock of eggs notified "
            f"{len(restocked['notified'])} waiting customer",
            f"fuel: plate 豫AD1234 profiled in three visits (Zhao Gang), account manager zhang; "
            f"overdue regulars flagged: {overdue['overdue']}, call-back reminder for zhang",
            f"ABC: {abc['classes']['A']['customers']} A / {abc['classes']['B']['customers']} B / "
            f"{abc['classes']['C']['customers']} C; "
            f"1:15 rule: {len(ratio['under'])} employees under",
            f"try:    {command_prefix} retail member show C-1001",
            f"        {command_prefix} retail points show C-1001",
        ]
    )
