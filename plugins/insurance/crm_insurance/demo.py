"""``crm demo``: a small life insurer (clock fixed at 2026-06-15 09:00)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crm_insurance import opportunities, orphans, policies, settings, vip, visits


def _d(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def load(crm: Any, command_prefix: str = "crm") -> str:
    """Agents, policies, a claim, a verified and a spoofed visit; hints start with
    ``command_prefix`` (the command that reaches the demo database)."""
    now = crm.now()
    crm.staff.add("zhou", "Zhou Min", roles=["rep"], team="north", supervisor="li")
    fang, lei = crm.customers.get("C-1001"), crm.customers.get("C-1002")
    crm.customers.update(
        fang,
        attributes={
            "insurance.birth_date": "1975-03-08",
            "insurance.gender": "female",
            "insurance.points": 1200,
        },
    )
    crm.customers.update(
        lei, attributes={"insurance.birth_date": "2001-09-12", "insurance.gender": "male"}
    )
    sun = crm.customers.add(
        "Sun Li",
        phone="186 2200 7301",
        owner="zhou",
        external_id="C-2001",
        attributes={"insurance.birth_date": "1968-11-02", "insurance.gender": "male"},
    )
    policies.add_policy(
        crm,
        fang,
        "L-2015-0001",
        product_line="life",
        term="long",
        product_name="Whole life with bonus",
        sum_at_risk_cents=150_000_000,
        premium_cents=3_600_000,
        start_at=_d("2015-07-01"),
        paid_to=_d("2026-07-01"),
        payment_end=_d("2035-07-01"),
        maturity=_d("2055-07-01"),
        agent="zhang",
    )
    policies.add_policy(
        crm,
        fang,
        "CI-2020-0002",
        product_line="critical_illness",
        term="long",
        insured=lei,
        sum_at_risk_cents=50_000_000,
        premium_cents=800_000,
        start_at=_d("2020-06-20"),
        paid_to=_d("2026-06-20"),
        payment_end=_d("2040-06-20"),
        agent="zhang",
    )
    policies.add_policy(
        crm,
        lei,
        "A-2025-0003",
        product_line="accident",
        term="short",
        sum_at_risk_cents=20_000_000,
        premium_cents=30_000,
        start_at=_d("2025-07-01"),
        maturity=_d("2026-06-30"),
        agent="chen",
    )
    policies.add_policy(
        crm,
        sun,
        "L-2006-0004",
        product_line="life",
        term="long",
        sum_at_risk_cents=80_000_000,
        premium_cents=1_200_000,
        start_at=_d("2006-03-01"),
        paid_to=_d("2026-03-01"),
        payment_end=_d("2026-07-10"),
        maturity=_d("2046-03-01"),
        agent="zhou",
    )
    h = policies.add_policy(
        crm,
        sun,
        "H-2025-0005",
        product_line="health",
        term="short",
        sum_at_risk_cents=5_000_000,
        premium_cents=90_000,
        start_at=_d("2025-09-01"),
        maturity=_d("2026-08-31"),
        agent="zhou",
    )
    policies.record_payout(
        crm, h["id"], "claim", 320_000, paid_at=_d("2026-06-01"), note="outpatient surgery"
    )
    # the heart of the plugin: a visit, then the customer's own SMS verifies it
    v = visits.record_visit(
        crm,
        fang,
        agent="zhang",
        at=_d("2026-06-14T15:00"),
        note="policy check-up, needs analysis for the family",
    )
    ok = crm.messages.receive_sms("139-0000-1111", "非常满意，谢谢张经理！", at=_d("2026-06-14T18:20"))
    # a "reply" from a number on nobody's record never verifies (e.g. the agent's own phone)
    w = visits.record_visit(crm, lei, agent="chen", at=_d("2026-06-14T16:00"), note="renewal talk")
    spoof = crm.messages.receive_sms("+86 186 2200 7399", "非常满意", at=_d("2026-06-14T16:10"))
    left = crm.staff.leave("zhou")
    reminders = vip.remind(crm, now)
    opps = opportunities.opportunities(crm)
    horizon = settings.config(crm)["opportunity_horizon_days"]
    orph = orphans.list_orphans(crm)
    vips = vip.vip_list(crm)
    lines = [
        "agents zhang, chen (north) and zhou, who left today; 5 policies, 1 claim paid",
        f"visit {v['id']} (zhang -> Wu Fang): {'; '.join(ok['routed'])}",
        f"visit {w['id']} (chen -> Wu Lei): {'; '.join(spoof['routed'])}",
        "VIP: "
        + ", ".join(f"{x['name']} {x['grade']}" for x in vips)
        + f"; {reminders['created']} visit reminder(s) created",
        f"orphans: {', '.join(o['name'] for o in orph) or 'none'} (agent {left['staff']} left; "
        f"held by {left['handover_to']})",
        f"opportunities (turning points in the next {horizon} days, benefits and claims "
        f"paid in the last {horizon}):",
        *[
            f"  {o['date']:%Y-%m-%d} {o['kind']:<12} {o['policy_no']:<12} {o['customer']} "
            f"(agent {o['agent']}{'' if o['agent_active'] else ', departed'})"
            for o in opps
        ],
        f"try:    {command_prefix} insurance report",
        f"        {command_prefix} insurance opportunities",
        f"        {command_prefix} insurance orphans reassign --all",
    ]
    return "\n".join(lines)
