"""Orphan customers after an agent departs (issue rule 5)."""

from __future__ import annotations

import pytest
from _insurance_world import PLUGINS, add_policy, world
from crm_insurance import orphans, policies, visits

from crmcore import AccessDenied, Conflict, ValidationError

pytestmark = pytest.mark.crm(plugins=PLUGINS)


def _setup(crm):
    w = world(crm)
    crm.staff.add("zhou", "Zhou Min", roles=["rep"], team="north", supervisor="li")
    w["sun"] = crm.customers.add("Sun Li", phone="137 0000 3333", owner="zhou", external_id="C-3")
    w["qian"] = crm.customers.add("Qian Yu", phone="137 0000 4444", owner="zhou", external_id="C-4")
    add_policy(crm, w["sun"], "L-1", agent="zhou")
    add_policy(crm, w["sun"], "A-1", agent="zhou", product_line="accident", term="short")
    add_policy(crm, w["qian"], "L-2", agent="zhou")
    add_policy(crm, w["qian"], "L-3", agent="zhang")  # still served by zhang: not an orphan
    add_policy(crm, w["fang"], "L-4", agent="zhang")
    return w


def test_customers_whose_agents_all_departed_become_orphans(crm):
    w = _setup(crm)
    assert orphans.list_orphans(crm) == []
    crm.staff.leave("zhou")  # handed over to the supervisor li
    [o] = orphans.list_orphans(crm)
    assert o["customer_id"] == w["sun"].id and o["policies"] == 2
    assert o["departed_agents"] == ["zhou"] and o["team"] == "north"
    assert o["current_owner"] == "li" and o["orphan_since"] == crm.now()
    # policies keep the departed agent
    assert {p["agent"] for p in policies.list_policies(crm, customer=w["sun"])} == {"zhou"}
    assert any(e.kind == "insurance.orphan" for e in crm.records.timeline(w["sun"]))
    assert not any(e.kind == "insurance.orphan" for e in crm.records.timeline(w["qian"]))


def test_departed_agent_loses_access_at_once(crm):
    w = _setup(crm)
    visits.record_visit(crm.as_("zhou"), w["sun"])
    assert len(policies.list_policies(crm.as_("zhou"))) == 4  # his customers' policies
    crm.staff.leave("zhou")
    gone = crm.as_("zhou")
    for call in (
        lambda: policies.list_policies(gone),
        lambda: visits.list_visits(gone),
        lambda: orphans.list_orphans(gone),
        lambda: policies.profile(gone, w["sun"]),
        lambda: visits.record_visit(gone, w["sun"]),
    ):
        with pytest.raises(AccessDenied, match="departed"):
            call()
    with pytest.raises(AccessDenied):
        gone.customers.get(w["sun"])


def test_reassign_defaults_to_the_least_loaded_active_agent_in_the_team(crm):
    w = _setup(crm)
    crm.customers.add("Extra", phone="137 0000 5555", owner="chen")  # chen 2, zhang 1... plus
    crm.customers.add("Extra 2", phone="137 0000 6666", owner="zhang")  # zhang 2 = chen 2
    crm.customers.add("Extra 3", phone="137 0000 7777", owner="zhang")  # zhang 3 > chen 2
    crm.staff.leave("zhou")
    [done] = orphans.reassign(crm, ["C-3"])
    assert done["to"] == "chen" and done["policies"] == 2 and done["from"] == ["zhou"]
    assert orphans.list_orphans(crm) == []
    assert {p["agent"] for p in policies.list_policies(crm, customer=w["sun"])} == {"chen"}
    assert crm.customers.get(w["sun"]).owner_id == crm.staff.get("chen").id
    [rem] = crm.tickets.due_reminders(staff="chen", at=done["first_visit_due"])
    assert rem.customer_id == w["sun"].id and "First visit" in rem.text
    assert rem.due_at == crm.now().replace(day=12)  # first_visit_due_days = 7
    # the new agent can see and serve the customer
    assert len(policies.list_policies(crm.as_("chen"), customer=w["sun"])) == 2


def test_reassign_all_spreads_over_the_team_and_to_a_named_agent(crm):
    _setup(crm)
    crm.staff.leave("zhang", handover_to="li")  # now Qian Yu's agents zhou+zhang may both go
    crm.staff.leave("zhou", handover_to="li")
    assert {o["name"] for o in orphans.list_orphans(crm)} == {"Sun Li", "Qian Yu", "Wu Fang"}
    done = orphans.reassign(crm, all_=True)
    assert {r["to"] for r in done} == {"chen"}  # the only active rep left in team north
    assert orphans.list_orphans(crm) == []
    crm.staff.leave("chen", handover_to="li")
    done = orphans.reassign(crm, ["C-1"], to="wang")
    assert done[0]["to"] == "wang"


def test_refusals_write_nothing(crm):
    w = _setup(crm)
    crm.staff.leave("zhou")
    with pytest.raises(Conflict, match="not an orphan"):
        orphans.reassign(crm, ["C-3", "C-4"])  # C-3 is, C-4 is not: nothing at all happens
    assert {p["agent"] for p in policies.list_policies(crm, customer=w["sun"])} == {"zhou"}
    assert crm.tickets.due_reminders(staff="chen", at=crm.now().replace(year=2027)) == []
    with pytest.raises(ValidationError, match="has departed"):
        orphans.reassign(crm, ["C-3"], to="zhou")
    with pytest.raises(ValidationError, match="agent roles"):
        orphans.reassign(crm, ["C-3"], to="li")
    with pytest.raises(ValidationError, match="--all"):
        orphans.reassign(crm, [])
    with pytest.raises(AccessDenied, match="team or company scope"):
        orphans.reassign(crm.as_("zhang"), ["C-3"])
    crm.staff.leave("zhang", handover_to="li")
    crm.staff.leave("chen", handover_to="li")
    with pytest.raises(ValidationError, match="no active agent in team 'north'"):
        orphans.reassign(crm, ["C-3"])
    assert len(orphans.list_orphans(crm)) == 3


def test_supervisor_can_list_and_reassign_in_their_team(crm):
    w = _setup(crm)
    crm.staff.leave("zhou")
    assert [o["name"] for o in orphans.list_orphans(crm.as_("li"))] == ["Sun Li"]
    assert orphans.list_orphans(crm.as_("wang")) == []
    [done] = orphans.reassign(crm.as_("li"), ["C-3"], to="zhang")
    assert done["to"] == "zhang" and w["sun"].id == done["customer_id"]
