"""The 360 timeline: core and plugin entries merged in time order."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from crmcore import TimelineEntry, TimelineSource, hookimpl
from crmcore.schema import customers


class Visits:
    """A plugin stream: the customer's first visit, when they were registered."""

    @hookimpl
    def crm_timeline_sources(self):
        return [
            TimelineSource(
                name="visits.first",
                query=lambda cid: select(customers.c.id, customers.c.created_at.label("at")).where(
                    customers.c.id == cid
                ),
                entry=lambda r: TimelineEntry(
                    at=r.at, kind="visit", source="visits", summary="first visit to the store"
                ),
            )
        ]


def test_entries_of_every_source_are_merged_in_time_order(crm_factory, crm_clock):
    crm = crm_factory(plugins=["visits"], extra_plugins={"visits": Visits()})
    crm_clock.set(dt.datetime(2026, 1, 1, 8))
    c = crm.customers.add("Ann", phone="13800000001")
    crm.records.add_transaction(c, 1999, occurred_at=dt.datetime(2026, 1, 4, 10))
    crm.records.add_interaction(c, "call", "asked for a refund", at=dt.datetime(2026, 1, 2, 9))
    crm_clock.set(dt.datetime(2026, 1, 5, 9))
    t = crm.tickets.open(c, "broken kettle", at=dt.datetime(2026, 1, 2, 10))
    crm.tickets.move(t, "review")
    crm.records.add_timeline_entry(
        c, "tier", "upgraded to gold", at=dt.datetime(2026, 1, 4, 11), source="retail"
    )
    crm.messages.enqueue("sms", body="sorry about the kettle", customer=c)
    entries = crm.records.timeline(c)
    summaries = [(e.at, e.source, e.kind) for e in entries]
    assert summaries == sorted(summaries, key=lambda s: s[0])
    kinds = [e.kind for e in entries]
    # at the same time the core's streams come first (stage, ..., ticket, message)
    assert kinds == [
        "stage",
        "visit",
        "call",
        "ticket",
        "transaction",
        "tier",
        "ticket",
        "message.sms",
    ]
    assert entries[1].source == "visits" and entries[1].at == entries[0].at
    assert entries[4].summary == "purchase 19.99"


def test_timeline_json_shape(crm_cli, crm):
    c = crm.customers.add("Ann", external_id="A1")
    crm.records.add_interaction(c, "note", "likes green tea")
    result = crm_cli("timeline", "A1", "--json")
    assert result.exit_code == 0, result
    data = result.json()
    assert {"at", "kind", "source", "summary"} <= set(data[0])
    assert data[-1]["summary"] == "likes green tea" and data[-1]["source"] == "core"
