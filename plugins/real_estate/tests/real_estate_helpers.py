"""A small estate shared by the real-estate tests (not a conftest: names never clash)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crm_real_estate import places
from crm_real_estate import requests as req

HANDOVER = dt.datetime(2024, 7, 1)
OLD_HANDOVER = dt.datetime(2023, 5, 20)


def estate(crm: Any, *, teams: bool = True) -> dict[str, Any]:
    """Project JD: building A1 (units 1201, 1202), building A2 (unit 0101).

    Wu Fang (rep zhang's) owns A1/1201, Wu Lei (rep chen's) owns A1/1202 and
    rents A2/0101 out to Gao Min (zhang's). Team PLB (leader wang, supervisor
    li) covers plumbing and waterproofing everywhere; team A2P (leader sun)
    covers plumbing in A2 only. Manager "boss" is management.
    """
    with crm.transaction(command="test estate"):
        return _estate(crm, teams)


def _estate(crm: Any, teams: bool) -> dict[str, Any]:
    crm.staff.add("li", "Li Na", roles=["supervisor"], team="north")
    crm.staff.add("zhang", "Zhang Wei", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("chen", "Chen Jie", roles=["rep"], team="south")
    crm.staff.add("wang", "Wang Qiang", roles=["rep"], team="maint", supervisor="li")
    crm.staff.add("sun", "Sun Li", roles=["rep"], team="maint")
    crm.staff.add("boss", "Boss", roles=["admin"])
    fang = crm.customers.add("Wu Fang", phone="139 0000 1111", owner="zhang", external_id="C-1")
    lei = crm.customers.add("Wu Lei", phone="139 0000 2222", owner="chen", external_id="C-2")
    gao = crm.customers.add("Gao Min", phone="139 0000 3333", owner="zhang", external_id="C-3")
    places.add_project(crm, "JD", "Jade Garden", city="Hangzhou")
    places.add_building(crm, "JD", "A1")
    places.add_building(crm, "JD", "A2")
    places.add_unit(crm, "JD/A1", "1201", handover_at=HANDOVER)
    places.add_unit(crm, "JD/A1", "1202", handover_at=OLD_HANDOVER)
    places.add_unit(crm, "JD/A2", "0101", handover_at=HANDOVER)
    places.add_owner(crm, "JD/A1/1201", fang, role="owner", since=dt.datetime(2024, 6, 1))
    places.add_owner(crm, "JD/A1/1202", lei, role="owner", since=dt.datetime(2023, 5, 1))
    places.add_owner(crm, "JD/A2/0101", lei, role="owner", since=dt.datetime(2024, 6, 1))
    places.add_owner(crm, "JD/A2/0101", gao, role="tenant", since=dt.datetime(2025, 1, 1))
    if teams:
        places.add_team(crm, "PLB", "plumbing and waterproofing", leader="wang")
        places.cover(crm, "PLB", "plumbing")
        places.cover(crm, "PLB", "waterproofing")
        places.add_team(crm, "A2P", "A2 plumbing", leader="sun")
        places.cover(crm, "A2P", "plumbing", building="JD/A2")
    return {"fang": fang, "lei": lei, "gao": gao}


def leak(crm: Any, customer: Any = "C-1", unit: str = "JD/A1/1201", **kw: Any) -> dict[str, Any]:
    args = {"category": "plumbing", "channel": "phone", "text": "pipe leaking"} | kw
    return req.open_request(crm, customer, unit=unit, **args)


def count(crm: Any, table: Any) -> int:
    from sqlalchemy import func, select

    with crm.transaction(write=False):
        return crm.db.scalar(select(func.count()).select_from(table))
