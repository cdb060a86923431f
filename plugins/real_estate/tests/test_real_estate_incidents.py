"""Owner-rights incidents: N requests of one category in one building within a window."""

from __future__ import annotations

import datetime as dt

import pytest
from crm_real_estate import places
from crm_real_estate import requests as req
from crm_real_estate.tables import incidents
from real_estate_helpers import count, estate, leak

from crmcore import NotFound, TransitionError, ValidationError

CFG = {
    "plugins": {
        "real_estate": {
            "incident": {"threshold": 3, "window_days": 2},
            "management_staff": ["boss"],
        }
    }
}
pytestmark = pytest.mark.crm(plugins=["real_estate"], config=CFG)


def _owners(crm, n):
    """n more owners in building A1, units 2001.."""
    with crm.transaction():
        for i in range(n):
            code = f"{2001 + i}"
            places.add_unit(crm, "JD/A1", code, handover_at=dt.datetime(2024, 7, 1))
            c = crm.customers.add(f"Owner {i}", external_id=f"O-{i}", owner="zhang")
            places.add_owner(crm, f"JD/A1/{code}", c, role="owner", since=dt.datetime(2024, 7, 1))


def _file(crm, i, category="waterproofing", **kw):
    return leak(
        crm,
        customer=f"O-{i}",
        unit=f"JD/A1/{2001 + i}",
        category=category,
        text="water through the external wall",
        **kw,
    )


def test_threshold_raises_one_incident_with_all_linked_requests(crm, crm_clock, crm_outbox):
    estate(crm)
    _owners(crm, 5)
    first = [_file(crm, i)["id"] for i in range(2)]
    assert req.list_incidents(crm) == []
    crm_clock.advance(hours=30)
    third = _file(crm, 2)
    inc = req.list_incidents(crm)
    assert len(inc) == 1 and third["incident_id"] == inc[0]["id"]
    assert inc[0]["requests"] == [*first, third["id"]]
    assert (inc[0]["building"], inc[0]["category"], inc[0]["status"]) == (
        "JD/A1",
        "waterproofing",
        "open",
    )
    rem = crm.tickets.due_reminders(staff="boss")
    assert (
        len(rem) == 1
        and "owner-rights incident 1: 3 waterproofing requests in JD/A1" in rem[0].text
    )
    events = [m for m in crm.messages.outbox(status="queued") if m.channel == "event"]
    assert [m.body for m in events] == ["real_estate.incident_opened"]
    # later requests join the open incident, no second incident
    fourth = _file(crm, 3)
    fifth = _file(crm, 4)
    inc = req.list_incidents(crm)
    assert len(inc) == 1 and inc[0]["requests"][-2:] == [fourth["id"], fifth["id"]]
    assert count(crm, incidents) == 1


def test_window_other_buildings_and_categories_do_not_count(crm, crm_clock):
    estate(crm)
    _owners(crm, 3)
    _file(crm, 0)
    _file(crm, 1, category="plumbing")  # another category
    leak(crm, customer="C-3", unit="JD/A2/0101", category="waterproofing")  # another building
    crm_clock.advance(days=2, hours=1)  # the first is out of the 2-day window now
    _file(crm, 2)
    _file(crm, 1)
    assert req.list_incidents(crm) == []


def test_closed_incident_needs_a_fresh_cluster(crm, crm_clock):
    estate(crm)
    _owners(crm, 6)
    for i in range(3):
        _file(crm, i)
    with pytest.raises(ValidationError, match="needs a --note"):
        req.close_incident(crm, 1, "")
    closed = req.close_incident(crm, 1, "sealed the west wall; owners informed")
    assert closed["status"] == "closed"
    with pytest.raises(TransitionError, match="already closed"):
        req.close_incident(crm, 1, "again")
    with pytest.raises(NotFound, match="incident 9 not found"):
        req.get_incident(crm, 9)
    _file(crm, 3)
    _file(crm, 4)
    assert len(req.list_incidents(crm)) == 1  # the closed cluster's requests do not count again
    _file(crm, 5)
    inc = req.list_incidents(crm, open_only=True)
    assert len(inc) == 1 and inc[0]["id"] == 2 and inc[0]["request_count"] == 3


def test_cluster_counts_requests_of_every_rep(crm):
    """A rep sees only their customers, but an incident is a fact about the building."""
    estate(crm)
    _owners(crm, 2)  # both zhang's
    leak(crm, customer="C-2", unit="JD/A1/1202", category="waterproofing")  # chen's customer
    zhang = crm.as_("zhang")
    _file(zhang, 0)
    _file(zhang, 1)
    inc = req.get_incident(zhang, 1)
    assert inc["request_count"] == 3
    assert len(inc["details"]) == 2  # zhang sees only his customers' requests


@pytest.mark.crm(plugins=["real_estate"])
def test_default_threshold_is_five_in_seven_days(crm, crm_clock):
    estate(crm)
    _owners(crm, 5)
    for i in range(4):
        _file(crm, i)
        crm_clock.advance(days=1)
    assert req.list_incidents(crm) == []
    crm_clock.advance(days=2, hours=23)  # the first is 6 days 23 h old: still in
    _file(crm, 4)
    assert req.list_incidents(crm)[0]["request_count"] == 5
