"""The timeline read a page at a time: pages cut in the database, joined they are the
whole timeline, and a page reads only about its own rows whatever the history's length."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import TimelineEntry, TimelineSource, ValidationError, hookimpl
from crmcore.db import DB
from crmcore.schema import interactions, reminders, timeline_entries, transactions

BASE = dt.datetime(2025, 3, 1, 9, 0)


class Reminders:
    """A plugin stream (over the reminders table) that counts the entries it builds."""

    def __init__(self) -> None:
        self.built = 0

    def entry(self, r):
        self.built += 1
        return TimelineEntry(at=r.at, kind="reminder", source="reminders", summary=r.text)

    @hookimpl
    def crm_timeline_sources(self):
        return [
            TimelineSource(
                name="reminders.due",
                query=lambda cid: sa.select(reminders, reminders.c.due_at.label("at")).where(
                    reminders.c.customer_id == cid
                ),
                entry=self.entry,
            )
        ]


@pytest.fixture
def plugged(crm_factory):
    plugin = Reminders()
    return crm_factory(plugins=["reminders"], extra_plugins={"reminders": plugin}), plugin


def _fill(crm, cid, records):
    """Rows of every stream for customer ``cid``, straight into the tables (one
    transaction): ``records`` are (stream, minutes after BASE)."""
    rows: dict[sa.Table, list[dict]] = {}
    for n, (stream, minutes) in enumerate(records):
        at = BASE + dt.timedelta(minutes=minutes)
        if stream == "interaction":
            rows.setdefault(interactions, []).append(
                {"customer_id": cid, "kind": "call", "text": f"call {n}", "at": at, "data": {}}
            )
        elif stream == "transaction":
            rows.setdefault(transactions, []).append(
                {"customer_id": cid, "amount_cents": 100 + n, "occurred_at": at, "kind": "purchase"}
            )
        elif stream == "entry":
            rows.setdefault(timeline_entries, []).append(
                {"customer_id": cid, "at": at, "kind": "note", "source": "t", "summary": f"e{n}"}
            )
        else:
            rows.setdefault(reminders, []).append(
                {"customer_id": cid, "due_at": at, "text": f"r{n}", "source": "core"}
            )
    with crm.transaction():
        for table, batch in rows.items():
            crm.db.insert_rows(table, batch)


def _walk(crm, ref, limit):
    """Every page from the latest back, by following the cursors."""
    pages, cursor = [], None
    for _ in itertools.count():
        page = crm.records.timeline(ref, limit=limit, cursor=cursor)
        pages.append(page)
        assert len(page) <= limit
        cursor = page.next_cursor
        if cursor is None:
            return pages


records = st.lists(
    st.tuples(
        st.sampled_from(["interaction", "transaction", "entry", "reminder"]),
        st.integers(0, 6),  # few distinct times: many entries share one
    ),
    max_size=30,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(records=records, limit=st.integers(1, 7))
def test_the_pages_joined_are_the_whole_timeline(plugged, records, limit):
    crm, _ = plugged
    c = crm.customers.add("Ann")
    _fill(crm, c.id, records)
    whole = crm.records.timeline(c)
    assert whole.next_cursor is None
    assert [e.at for e in whole] == sorted(e.at for e in whole)
    assert len(whole) == len(records) + 1  # and the stage entry of its creation
    pages = _walk(crm, c, limit)
    joined = [e for page in reversed(pages) for e in page]
    assert [e.to_json() for e in joined] == [e.to_json() for e in whole]
    assert all(len(page) == limit for page in pages[:-1])  # only the oldest page is short
    assert crm.records.timeline(c, limit=limit) == whole[-limit:]  # the first page: the latest
    # a cursor without a limit: everything before that page
    if pages[0].next_cursor is not None:
        rest = crm.records.timeline(c, cursor=pages[0].next_cursor)
        assert rest == whole[: len(whole) - limit]


def test_a_page_of_a_long_history_reads_only_about_its_own_rows(plugged, monkeypatch):
    crm, plugin = plugged
    c = crm.customers.add("Heavy")
    per_stream = 1500
    _fill(
        crm,
        c.id,
        [
            (stream, n)
            for stream in ("interaction", "transaction", "entry", "reminder")
            for n in range(per_stream)
        ],
    )
    fetched: list[int] = []
    real = DB.execute

    def counting(self, stmt, params=None):
        result = real(self, stmt, params)
        if not result.returns_rows:
            return result
        frozen = result.freeze()
        fetched.append(len(frozen.data))
        return frozen()

    monkeypatch.setattr(DB, "execute", counting)
    limit = 10
    page = crm.records.timeline(c, limit=limit)
    assert len(page) == limit and page.next_cursor is not None
    assert plugin.built <= limit  # the plugin built only entries on the page
    # the page's keys (limit + 1) and at most its rows from each stream on it
    assert sum(fetched) <= 2 * limit + 1, fetched
    second = crm.records.timeline(c, limit=limit, cursor=page.next_cursor)
    assert second[-1].at <= page[0].at and plugin.built <= 2 * limit
    fetched.clear()
    assert len(crm.records.timeline(c)) == 4 * per_stream + 1  # the whole history reads it all
    assert sum(fetched) >= 4 * per_stream


def test_a_rep_pages_only_a_customer_they_may_see(plugged):
    crm, _ = plugged
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("chen", "Chen", roles=["rep"])
    mine = crm.customers.add("Mine", owner="zhang")
    theirs = crm.customers.add("Theirs", owner="chen")
    _fill(crm, mine.id, [("interaction", n) for n in range(5)] + [("reminder", 2)])
    zhang = crm.as_("zhang")
    pages = _walk(zhang, mine.id, 2)
    assert [e.to_json() for p in reversed(pages) for e in p] == [
        e.to_json() for e in crm.records.timeline(mine)
    ]
    with pytest.raises(Exception, match=rf"^customer {theirs.id} not found$"):
        zhang.records.timeline(theirs.id, limit=2)


@pytest.mark.parametrize(
    "cursor",
    ["", "nope", "W10", "WyIyMDI1IiwiY29yZS5zdGFnZSIsMV0", "x" * 500],  # W10: [], then a bad date
)
def test_a_cursor_that_no_page_gave_is_refused_in_one_line(plugged, cursor):
    crm, _ = plugged
    c = crm.customers.add("Ann")
    with pytest.raises(
        ValidationError, match="^timeline cursor .* is not one a timeline page gave$"
    ):
        crm.records.timeline(c, limit=2, cursor=cursor)


def test_a_cursor_of_a_stream_no_longer_enabled_says_so(plugged, crm_factory):
    crm, _ = plugged
    c = crm.customers.add("Ann")
    _fill(crm, c.id, [("reminder", n) for n in range(4)])
    cursor = crm.records.timeline(c, limit=2).next_cursor
    assert cursor is not None
    plain = crm_factory()  # no reminders plugin
    other = plain.customers.add("Bo")
    with pytest.raises(ValidationError, match="its stream 'reminders.due' is not enabled"):
        plain.records.timeline(other, limit=2, cursor=cursor)


def test_limit_must_be_a_whole_number(plugged):
    crm, _ = plugged
    c = crm.customers.add("Ann")
    for bad in (0, -1, True, 1.5, "3"):
        with pytest.raises(ValidationError, match="timeline limit"):
            crm.records.timeline(c, limit=bad)


def test_crm_timeline_pages_and_says_how_to_read_the_next(crm_cli, crm):
    c = crm.customers.add("Ann", external_id="A1")
    for n in range(5):
        crm.records.add_interaction(c, "note", f"note {n}", at=crm.now() + dt.timedelta(hours=n + 1))
    first = crm_cli("timeline", "A1", "--limit", "2")
    assert first.exit_code == 0, first
    lines = first.stdout.strip().splitlines()
    assert [line.split()[-1] for line in lines[:2]] == ["3", "4"]
    hint = lines[-1]
    assert hint.startswith("earlier entries: the same command with --cursor ")
    cursor = hint.split()[-1]
    second = crm_cli("timeline", "A1", "--limit", "2", "--cursor", cursor, "--json").json()
    assert [e["summary"] for e in second["entries"]] == ["note 1", "note 2"]
    third = crm_cli("customer", "timeline", "A1", "--limit", "2", "--cursor", second["next_cursor"])
    assert third.stdout.splitlines()[-1].endswith("note 0")  # the last page: no hint
    assert "earlier entries" not in third.stdout
    bad = crm_cli("timeline", "A1", "--limit", "2", "--cursor", "nope")
    assert bad.exit_code == 1
    assert bad.stderr.strip() == "error: timeline cursor 'nope' is not one a timeline page gave"


def test_a_page_reads_each_core_stream_through_its_time_index(crm, crm_backend):
    """Every core stream of one customer is read newest first from an index on
    (customer, time), so the page's arms stop after ``limit`` rows instead of
    sorting the customer's whole history."""
    if crm_backend != "sqlite":
        pytest.skip("the query plan is read with SQLite's EXPLAIN QUERY PLAN")
    c = crm.customers.add(name="Planned")
    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "timeline_keys" in statement:
            statements.append((statement, parameters))

    sa.event.listen(crm.engine, "before_cursor_execute", capture)
    try:
        crm.records.timeline(c.id, limit=5)
    finally:
        sa.event.remove(crm.engine, "before_cursor_execute", capture)
    assert statements, "the page's key query was not seen"
    sql, params = statements[0]
    with crm.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        plan = " | ".join(str(row[-1]) for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    for index in (
        "ix_stage_changes_customer_at",
        "ix_interactions_customer_at",
        "ix_messages_customer_created",
        "ix_timeline_entries_customer_at",
        "ix_ticket_events_ticket_at",
    ):
        assert index in plan, f"{index} not used: {plan}"
