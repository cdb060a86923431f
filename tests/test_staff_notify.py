"""Staff are told: core.notify_due puts due reminders and overdue tickets in the
assigned member's inbox (or their chosen channel, through the outbox) once;
only they or an admin read their inbox."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, update

from crmcore import Channel, hookimpl
from crmcore.errors import AccessDenied, NotFound, ValidationError
from crmcore.ops.notify import inbox, mark_read, set_channel
from crmcore.ops.worker import Worker
from crmcore.schema import staff
from crmcore.storage._driver import connection

NOW = dt.datetime(2026, 1, 5, 9, 0)


class Capture:
    """An e-mail channel that records what it was given."""

    def __init__(self) -> None:
        self.sent: list[tuple[str | None, str, str]] = []

    @hookimpl
    def crm_delivery_channels(self):
        def send(message, key):
            self.sent.append((message.to_address, message.body, key))

        return [Channel(name="email", send=send)]


@pytest.fixture
def office(crm_factory):
    capture = Capture()
    crm = crm_factory(plugins=["capture"], extra_plugins={"capture": capture})
    crm.staff.add("sup", "Supervisor Sun", roles=["supervisor"], team="north")
    crm.staff.add("ann", "Rep Ann", roles=["rep"], team="north", supervisor="sup")
    crm.staff.add("bob", "Rep Bob", roles=["rep"], team="north", supervisor="sup")
    crm.staff.add("boss", "Admin", roles=["admin"])
    crm.capture = capture
    return crm


def _notify(crm, at):
    (result,) = crm.jobs.run(["core.notify_due"], at=at)
    assert result["status"] == "ok", result
    return result["summary"]


def test_a_due_reminder_reaches_its_rep_once_and_no_one_else(office, crm_clock):
    cust = office.customers.add("Wu Fang", owner="ann")
    office.tickets.add_reminder(
        "ann", "call back about the refund", NOW + dt.timedelta(hours=1), customer=cust
    )
    office.tickets.add_reminder("bob", "later", NOW + dt.timedelta(days=3))
    assert _notify(office, NOW) == {"reminders": 0, "tickets": 0, "by_outbox": 0}  # not due yet
    at = NOW + dt.timedelta(hours=1)
    assert _notify(office, at)["reminders"] == 1
    assert _notify(office, at + dt.timedelta(minutes=5))["reminders"] == 0  # once
    (note,) = inbox(office.as_("ann"))
    assert note["body"] == "call back about the refund" and note["read_at"] is None
    assert inbox(office.as_("bob")) == []
    assert inbox(office.as_("sup")) == []  # a supervisor reads their own inbox only
    with pytest.raises(AccessDenied):
        inbox(office.as_("bob"), staff_key="ann")
    with pytest.raises(NotFound, match=f"notification {note['id']} not found"):
        mark_read(office.as_("bob"), note["id"])  # someone else's: as if it did not exist
    assert [n["id"] for n in inbox(office.as_("boss"), staff_key="ann")] == [note["id"]]
    assert mark_read(office.as_("ann"), note["id"])["read_at"] == NOW
    assert inbox(office.as_("ann"), unread=True) == []


def test_an_overdue_ticket_tells_its_owner_and_each_escalation_tells_the_next(office):
    cust = office.customers.add("Li Lei", owner="ann")
    ticket = office.tickets.open(
        cust, "no hot water", owner="ann", due_at=NOW + dt.timedelta(hours=4)
    )
    assert _notify(office, NOW + dt.timedelta(hours=4))["tickets"] == 0  # due, not past due
    late = NOW + dt.timedelta(hours=5)
    assert _notify(office, late)["tickets"] == 1
    assert _notify(office, late)["tickets"] == 0
    office.tickets.update(ticket.id, owner="sup")  # escalated: the supervisor is told
    assert _notify(office, late)["tickets"] == 1
    (told,) = inbox(office.as_("sup"))
    assert told["about"] == "ticket" and told["about_id"] == ticket.id
    assert "past its due time" in told["title"]
    assert len(inbox(office.as_("ann"))) == 1
    office.tickets.update(ticket.id, due_at=NOW + dt.timedelta(hours=6))  # a new step's due time
    assert _notify(office, NOW + dt.timedelta(hours=7))["tickets"] == 1


def test_a_member_who_chose_email_is_told_through_the_outbox(office, crm_cli):
    assert set_channel(office.as_("ann"), "email", to="Ann@Example.com") == {
        "staff": "ann",
        "channel": "email",
        "address": "ann@example.com",
    }
    with pytest.raises(AccessDenied):
        set_channel(office.as_("bob"), "inbox", staff_key="ann")
    with pytest.raises(ValidationError, match="--to"):
        set_channel(office.as_("bob"), "sms")
    office.tickets.add_reminder("ann", "renewal visit", NOW + dt.timedelta(minutes=30))
    assert _notify(office, NOW + dt.timedelta(hours=1))["by_outbox"] == 1
    assert _notify(office, NOW + dt.timedelta(hours=2))["by_outbox"] == 0
    Worker(office).drain()
    Worker(office).drain()
    (sent,) = office.capture.sent
    assert sent[0] == "ann@example.com" and "renewal visit" in sent[1]
    assert inbox(office.as_("ann"))[0]["channel"] == "email"


def test_done_reminders_and_departed_staff_are_not_told(office):
    done = office.tickets.add_reminder("bob", "done already", NOW + dt.timedelta(minutes=10))
    office.tickets.add_reminder("ann", "handed over", NOW + dt.timedelta(minutes=10))
    office.tickets.add_reminder("boss", "left without handover", NOW + dt.timedelta(minutes=10))
    office.tickets.complete_reminder(done.id)
    office.staff.leave("ann")  # her open reminder moves to her supervisor
    with office.transaction():  # a departure recorded outside the CRM (an HR import)
        connection(office.db).execute(update(staff).where(staff.c.key == "boss").values(active=False))
    assert _notify(office, NOW + dt.timedelta(hours=1))["reminders"] == 1
    assert [n["body"] for n in inbox(office.as_("sup"))] == ["handed over"]


def test_one_statement_finds_everything_due(office):
    for i in range(5):
        cust = office.customers.add(f"C{i}", owner="ann")
        office.tickets.add_reminder("ann", f"r{i}", NOW + dt.timedelta(minutes=5), customer=cust)
        office.tickets.open(cust, f"t{i}", owner="bob", due_at=NOW + dt.timedelta(minutes=5))
    selects: list[str] = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT") and "reminders" in statement:
            selects.append(statement)

    event.listen(office.engine, "before_cursor_execute", count)
    try:
        assert _notify(office, NOW + dt.timedelta(hours=1)) == {
            "reminders": 5,
            "tickets": 5,
            "by_outbox": 0,
        }
    finally:
        event.remove(office.engine, "before_cursor_execute", count)
    assert len(selects) == 1


def test_inbox_commands(office, crm_cli):
    office.tickets.add_reminder("ann", "ring Mr Qiu", NOW + dt.timedelta(minutes=5))
    _notify(office, NOW + dt.timedelta(hours=1))
    ann = office.as_("ann")
    listed = crm_cli("inbox", "--unread", "--json", crm=ann).json()
    assert [n["body"] for n in listed] == ["ring Mr Qiu"]
    assert crm_cli("inbox", "--json", crm=office.as_("bob")).json() == []
    other = crm_cli("inbox", "read", str(listed[0]["id"]), "--json", crm=office.as_("bob"))
    assert other.exit_code == 1 and "not found" in other.stderr
    assert crm_cli("inbox", "read", str(listed[0]["id"]), "--json", crm=ann).json()["read_at"]
    assert crm_cli("inbox", "--unread", "--json", crm=ann).json() == []
    chosen = crm_cli("inbox", "channel", "email", "--to", "ann@example.com", "--json", crm=ann)
    assert chosen.json()["channel"] == "email"
    system = crm_cli("inbox", "--json")
    assert system.exit_code == 1 and "--staff" in system.stderr
