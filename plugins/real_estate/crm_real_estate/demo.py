"""``crm demo``: a project with owners, teams and a repair request through revisit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from . import places
from . import requests as req
from .jobs import buyer_followups


def load(crm: Any, command_prefix: str = "crm") -> str:
    """A project with owners, two maintenance teams, a closed and an open request; hints
    start with ``command_prefix`` (the command that reaches the demo database)."""
    day = dt.datetime
    crm.staff.add("re-wang", "Wang Qiang", roles=["rep"], team="maintenance", supervisor="li")
    crm.staff.add("re-sun", "Sun Li", roles=["rep"], team="maintenance", supervisor="li")
    places.add_project(crm, "JD", "Jade Garden 翡翠花园", city="Hangzhou")
    places.add_building(crm, "JD", "A1", name="Building 1")
    places.add_unit(crm, "JD/A1", "1201", handover_at=day(2024, 7, 1))
    places.add_unit(crm, "JD/A1", "1202", handover_at=day(2023, 5, 20))
    places.add_unit(crm, "JD/A1", "1502", handover_at=day(2026, 7, 10))
    places.add_owner(crm, "JD/A1/1201", "C-1001", role="owner", since=day(2024, 6, 1))
    places.add_owner(crm, "JD/A1/1201", "C-1002", role="co-owner", since=day(2024, 6, 1))
    buyer = crm.customers.add("Zhou Min", phone="139 0000 7777", owner="chen", external_id="RE-2001")
    places.add_owner(crm, "JD/A1/1502", buyer, role="owner", since=day(2026, 3, 1), sales="chen")
    places.add_team(crm, "PLB", "plumbing and waterproofing", leader="re-wang")
    places.cover(crm, "PLB", "plumbing")
    places.cover(crm, "PLB", "waterproofing")
    places.add_team(crm, "ELE", "electrical", leader="re-sun")
    places.cover(crm, "ELE", "electrical")

    leak = req.open_request(
        crm,
        "C-1001",
        category="plumbing",
        channel="phone",
        unit="JD/A1/1201",
        text="kitchen drain pipe leaking under the sink",
        urgency="normal",
        at=day(2026, 6, 14, 18, 30),
    )
    req.start(crm, leak["id"], note="plumber on site")
    req.complete(crm, leak["id"], note="drain joint replaced")
    done = req.revisit(crm, leak["id"], satisfaction=5, fixed=True, note="dry for a day, happy")
    socket = req.open_request(
        crm,
        "C-1002",
        category="electrical",
        channel="online",
        unit="JD/A1/1201",
        text="bedroom socket sparks when a plug goes in",
        urgency="emergency",
    )
    follow = buyer_followups(crm, crm.now())
    return "\n".join(
        [
            "project JD Jade Garden: building A1, units 1201 (owner Wu Fang C-1001, "
            "co-owner Wu Lei C-1002), 1202, 1502 (buyer Zhou Min RE-2001, "
            "handover 2026-07-10, sales chen)",
            "teams: PLB (plumbing, waterproofing; leader re-wang), ELE (electrical; leader re-sun)",
            f"request {done['id']} (ticket {done['ticket_id']}): plumbing leak at JD/A1/1201 "
            f"by phone -> team {done['team']} -> completed -> revisit {done['satisfaction']}/5 -> "
            f"{done['state']}",
            f"  {done['warranty_reason']}",
            f"request {socket['id']}: emergency electrical at JD/A1/1201 online, team "
            f"{socket['team']}, due {socket['deadline_at']:%Y-%m-%d %H:%M}",
            f"  {socket['warranty_reason']}",
            f"buyer follow-ups: {follow['followups']} reminder(s) for sales staff",
            f"try:    {command_prefix} real-estate request list",
            f"        {command_prefix} real-estate report compliance",
            f"        {command_prefix} real-estate warranty check --category waterproofing "
            "--unit JD/A1/1202",
        ]
    )
