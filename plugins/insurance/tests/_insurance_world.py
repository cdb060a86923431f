"""Shared set-up for the insurance plugin's tests (not a conftest: names stay unique)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crm_insurance import policies

PLUGINS = ["insurance"]


def d(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def world(crm: Any) -> dict[str, Any]:
    """Supervisor li with reps zhang and chen (team north), rep wang (team south);
    Wu Fang (zhang's) and Wu Lei (chen's)."""
    crm.staff.add("li", "Li Na", roles=["supervisor"], team="north")
    crm.staff.add("zhang", "Zhang Wei", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("chen", "Chen Jie", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("wang", "Wang Fang", roles=["rep"], team="south")
    fang = crm.customers.add("Wu Fang", phone="139 0000 1111", owner="zhang", external_id="C-1")
    lei = crm.customers.add("Wu Lei", phone="139 0000 2222", owner="chen", external_id="C-2")
    return {"fang": fang, "lei": lei}


def add_policy(crm: Any, customer: Any, no: str, agent: str = "zhang", **kw: Any) -> dict:
    values: dict[str, Any] = {
        "product_line": "life",
        "term": "long",
        "sum_at_risk_cents": 10_000_000,
        "premium_cents": 500_000,
        "start_at": d("2020-01-01"),
        "agent": agent,
    }
    values.update(kw)
    return policies.add_policy(crm, customer, no, **values)
