"""Follow-ups that are not forgotten: recurring reminders and follow-up playbooks.

A *recurring* reminder carries ``repeat_every`` (``30d`` days, ``2w`` weeks,
``1m`` calendar months): when it is done, the next one is created for the
same member of staff and customer, due one interval after the one done (moved
on by whole intervals until it is after the time it was done).

A *playbook* is a named sequence of steps, each an action on a day after the
start (day 0 call, day 3 SMS, day 14 visit), defined in ``[crm.followups.playbooks]``
or by a plugin (``crm_playbooks``). Starting one for a customer (``crm playbook
start``, or the customer entering a stage named in ``[crm.followups]
start_on_stage``) records a ``playbook_runs`` row and creates one reminder per
step for the customer's owner, keyed ``playbook:<run>:<step>``. The customer
*responding* after the start cancels the steps still open: an interaction of a
kind in ``response_kinds`` (by default visit, complaint and survey), any
interaction recorded with ``{"direction": "in"}`` in its data (a call, SMS or
e-mail the customer made), an inbound SMS from the customer's phone
(``crm sms receive``) or, with ``purchase_is_response`` (the default), a
purchase. Outbound touches (a call the rep made, a note) do not count. Cancelled steps are closed with the reason in their text; the run
shows on the customer's timeline when it starts and when it is cancelled.

Longer than most modules: playbooks and recurring reminders share their step model and
their response rules.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import weakref
from typing import Any

import attrs
from sqlalchemy import Select, String, cast, exists, func, literal, select, update

from crmcore.entities import TimelineEntry
from crmcore.errors import ConfigError, Conflict, NotFound, PluginError, ValidationError
from crmcore.registry import TimelineSource
from crmcore.schema import (
    customers,
    playbook_runs,
    reminders,
    staff,
    stage_changes,
    transactions,
)
from crmcore.services.refs import customer_row, staff_row
from crmcore.storage._driver import connection

PLAYBOOK_SOURCE = "playbook"
_EVERY = re.compile(r"^([1-9][0-9]{0,3})([dwm])$")


@attrs.frozen(kw_only=True)
class PlaybookStep:
    """One step of a playbook: ``action`` (call, sms, visit ...) on ``day`` after the start."""

    day: int
    action: str
    text: str = ""


def _steps(values: Any) -> tuple[PlaybookStep, ...]:
    return tuple(v if isinstance(v, PlaybookStep) else PlaybookStep(**v) for v in values)


@attrs.frozen(kw_only=True)
class Playbook:
    """A named follow-up sequence.

    >>> p = Playbook(name="win-back", steps=[{"day": 0, "action": "call"}, {"day": 3, "action": "sms"}])
    >>> [s.day for s in p.steps]
    [0, 3]
    """

    name: str
    steps: tuple[PlaybookStep, ...] = attrs.field(converter=_steps)
    description: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.steps:
            raise ValueError(f"playbook {self.name!r} needs at least one step")
        days = [s.day for s in self.steps]
        if any(d < 0 for d in days) or days != sorted(days):
            raise ValueError(f"playbook {self.name!r}: step days must be 0 or more, in order")


# -- recurring reminders ------------------------------------------------------


def check_every(text: str | None) -> str | None:
    """A recurrence as given (``--every 30d``), checked; None for no recurrence."""
    if text is None:
        return None
    value = text.strip().lower()
    if not _EVERY.match(value):
        raise ValidationError(
            f"--every {text!r}: give a number and d (days), w (weeks) or m (months), e.g. 30d or 1m"
        )
    return value


def _add_months(at: dt.datetime, months: int) -> dt.datetime:
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def next_due(due_at: dt.datetime, every: str, after: dt.datetime) -> dt.datetime:
    """The first due time one or more intervals after ``due_at`` that is after ``after``.

    >>> next_due(dt.datetime(2026, 1, 31, 9), "1m", dt.datetime(2026, 2, 1))
    datetime.datetime(2026, 2, 28, 9, 0)
    >>> next_due(dt.datetime(2026, 1, 1, 9), "30d", dt.datetime(2026, 3, 1))
    datetime.datetime(2026, 3, 2, 9, 0)
    """
    match = _EVERY.match(every)
    if match is None:
        raise ValidationError(f"repeat_every {every!r} is not a recurrence")
    n, unit = int(match.group(1)), match.group(2)
    k = 1
    while True:
        if unit == "m":
            due = _add_months(due_at, n * k)
        else:
            due = due_at + dt.timedelta(days=n * k * (7 if unit == "w" else 1))
        if due > after:
            return due
        k += 1


def is_response(crm: Any, kind: str, data: Any) -> bool:
    """Whether an interaction is the customer responding: its kind is one of
    ``[crm.followups] response_kinds``, or its data says it came in
    (``{"direction": "in"}``, e.g. a call the customer made)."""
    if kind in crm.config.core["followups"]["response_kinds"]:
        return True
    return isinstance(data, dict) and data.get("direction") == "in"


# -- playbooks -----------------------------------------------------------------

_KNOWN: weakref.WeakKeyDictionary[Any, dict[str, Playbook]] = weakref.WeakKeyDictionary()


def playbooks(crm: Any) -> dict[str, Playbook]:
    """Every playbook by name: crm.toml's and the enabled plugins' (read once per
    plugin manager); a name defined twice is an error naming both places."""
    known = _KNOWN.get(crm.plugins.pm)
    if known is not None:
        return known
    known = {}
    for name, spec in crm.config.core["followups"]["playbooks"].items():
        try:
            known[name] = Playbook(
                name=name, steps=spec["steps"], description=spec.get("description", "")
            )
        except ValueError as e:
            raise ConfigError(f"{crm.config.where}: crm.followups.playbooks.{name}: {e}") from None
    for owner, declared in crm.plugins.each("crm_playbooks"):
        for book in declared or ():
            if not isinstance(book, Playbook):
                raise PluginError(f"plugin {owner!r}: crm_playbooks must return Playbook objects")
            if book.name in known:
                raise PluginError(
                    f"plugin {owner!r}: playbook {book.name!r} is already defined "
                    "(in crm.toml or by another plugin)"
                )
            known[book.name] = book
    _KNOWN[crm.plugins.pm] = known
    return known


def _step_text(book: Playbook, i: int, step: PlaybookStep) -> str:
    head = f"playbook {book.name} step {i + 1}/{len(book.steps)}: {step.action}"
    return f"{head} — {step.text}" if step.text else head


def start(crm: Any, name: str, customer: Any, *, trigger: str = "explicit") -> dict[str, Any]:
    """Start playbook ``name`` for ``customer`` now, in the open transaction: one
    reminder per step for the customer's owner (the acting member of staff
    when the customer has no active owner). A run of the same playbook with
    steps still open is refused."""
    books = playbooks(crm)
    if name not in books:
        raise NotFound(
            f"playbook {name!r} not found; playbooks: {', '.join(sorted(books)) or 'none'}"
        )
    book = books[name]
    row = customer_row(crm.db, customer, write=True)
    owner = staff_row(crm.db, row.owner_id) if row.owner_id is not None else None
    if owner is None or not owner.active:
        staff_id = crm.db.principal.staff_id
        owner = staff_row(crm.db, staff_id) if staff_id is not None else None
    if owner is None:
        raise ValidationError(
            f"customer {row.id} has no active owner to follow up; give them an owner first"
        )
    r = playbook_runs
    open_run = crm.db.execute(
        select(r.c.id)
        .where(r.c.customer_id == row.id, r.c.playbook == name, r.c.cancelled_at.is_(None))
        .where(
            exists(
                select(reminders.c.id).where(
                    reminders.c.key.like(literal("playbook:") + cast(r.c.id, String) + ":%"),
                    reminders.c.done_at.is_(None),
                )
            )
        )
    ).first()
    if open_run is not None:
        raise Conflict(
            f"customer {row.id}: playbook {name!r} is already running (run {open_run.id}); "
            "its open steps must be done or cancelled first"
        )
    now = crm.now()
    res = crm.db.execute(
        r.insert().values(
            customer_id=row.id, playbook=name, started_at=now, trigger=trigger, staff_id=owner.id
        )
    )
    run_id = res.inserted_primary_key[0]
    crm.db.execute(
        reminders.insert(),
        [
            {
                "staff_id": owner.id,
                "customer_id": row.id,
                "due_at": now + dt.timedelta(days=step.day),
                "text": _step_text(book, i, step),
                "key": f"playbook:{run_id}:{i}",
                "source": PLAYBOOK_SOURCE,
            }
            for i, step in enumerate(book.steps)
        ],
    )
    return {
        "run": run_id,
        "playbook": name,
        "customer": row.id,
        "owner": owner.key,
        "trigger": trigger,
        "steps": [
            {
                "day": s.day,
                "action": s.action,
                "due_at": (now + dt.timedelta(days=s.day)).isoformat(),
            }
            for s in book.steps
        ],
    }


def start_for_moves(crm: Any, batch: Any) -> None:
    """Start the playbook configured for ``batch.to_stage`` for every customer the
    batch moved who has an owner: set-based (one INSERT ... SELECT of the runs,
    one per step of their reminders)."""
    name = crm.config.core["followups"]["start_on_stage"].get(batch.to_stage)
    if name is None:
        return
    book = playbooks(crm)[name]
    sc, r = stage_changes, playbook_runs
    trigger = f"stage:{batch.to_stage}"
    moved = (
        select(
            sc.c.customer_id,
            literal(name, String(64)),
            literal(batch.at, r.c.started_at.type),
            literal(trigger, String(100)),
            customers.c.owner_id,
        )
        .join(customers, customers.c.id == sc.c.customer_id)
        .join(staff, staff.c.id == customers.c.owner_id)
        .where(
            sc.c.id.between(batch.first_id, batch.last_id),
            sc.c.reason == batch.reason,
            staff.c.active.is_(True),
        )
    )
    before = connection(crm.db).execute(select(func.coalesce(func.max(r.c.id), 0))).scalar_one()
    crm.db.execute(
        r.insert().from_select(
            ["customer_id", "playbook", "started_at", "trigger", "staff_id"], moved
        )
    )
    runs = (
        select(r.c.id, r.c.customer_id, r.c.staff_id)
        .where(
            r.c.started_at == batch.at,
            r.c.trigger == trigger,
            r.c.playbook == name,
            r.c.customer_id.in_(
                select(sc.c.customer_id).where(
                    sc.c.id.between(batch.first_id, batch.last_id), sc.c.reason == batch.reason
                )
            ),
            r.c.id > before,
        )
        .subquery("new_runs")
    )
    for i, step in enumerate(book.steps):
        crm.db.execute(
            reminders.insert().from_select(
                ["staff_id", "customer_id", "due_at", "text", "key", "source"],
                select(
                    runs.c.staff_id,
                    runs.c.customer_id,
                    literal(batch.at + dt.timedelta(days=step.day), reminders.c.due_at.type),
                    literal(_step_text(book, i, step), String()),
                    literal("playbook:") + cast(runs.c.id, String) + literal(f":{i}"),
                    literal(PLAYBOOK_SOURCE, String(64)),
                ).select_from(runs),
            )
        )


def _cancel(crm: Any, open_runs: Select[Any], at: dt.datetime, why: str) -> None:
    """Close the open steps of the runs ``open_runs`` selects (their ids) and mark
    them cancelled."""
    r = playbook_runs
    ids = open_runs.scalar_subquery()
    note = f" — cancelled: {why}"
    crm.db.execute(
        update(reminders)
        .where(
            reminders.c.done_at.is_(None),
            reminders.c.source == PLAYBOOK_SOURCE,
            exists(
                select(r.c.id).where(
                    r.c.id.in_(ids),
                    reminders.c.key.like(literal("playbook:") + cast(r.c.id, String) + ":%"),
                )
            ),
        )
        .values(done_at=at, text=reminders.c.text + note)
    )
    crm.db.execute(update(r).where(r.c.id.in_(ids)).values(cancelled_at=at, cancel_reason=why))


def cancel_on_response(crm: Any, customer_id: int, at: dt.datetime, why: str) -> None:
    """The customer responded at ``at``: cancel their runs started before then."""
    if not playbooks(crm):
        return
    r = playbook_runs
    _cancel(
        crm,
        select(r.c.id).where(
            r.c.customer_id == customer_id, r.c.cancelled_at.is_(None), r.c.started_at <= at
        ),
        at,
        why,
    )


def cancel_on_purchases(crm: Any, first_id: int, last_id: int) -> None:
    """Bulk-imported transactions ``first_id``..``last_id``: cancel the runs of the
    customers with a purchase among them after the run's start (set-based)."""
    follow = crm.config.core["followups"]
    if not follow["purchase_is_response"] or not playbooks(crm):
        return
    r, t = playbook_runs, transactions
    bought = exists(
        select(t.c.id).where(
            t.c.customer_id == r.c.customer_id,
            t.c.id.between(first_id, last_id),
            t.c.kind == "purchase",
            t.c.occurred_at >= r.c.started_at,
        )
    )
    runs = select(r.c.id).where(r.c.cancelled_at.is_(None), bought)
    _cancel(crm, runs, crm.now(), "the customer responded: purchase")


def timeline_sources() -> list[TimelineSource]:
    """The playbook runs on the customer's timeline: when each started and, if it
    was, when it was cancelled."""
    r = playbook_runs
    return [
        TimelineSource(
            name="core.playbook_started",
            query=lambda cid: select(
                r.c.id, r.c.started_at.label("at"), r.c.playbook, r.c.trigger
            ).where(r.c.customer_id == cid),
            entry=lambda row: TimelineEntry(
                at=row.at,
                kind="playbook_started",
                source="core",
                summary=f"follow-up playbook {row.playbook} started ({row.trigger})",
                data={"run": row.id},
            ),
        ),
        TimelineSource(
            name="core.playbook_cancelled",
            query=lambda cid: select(
                r.c.id, r.c.cancelled_at.label("at"), r.c.playbook, r.c.cancel_reason
            ).where(r.c.customer_id == cid, r.c.cancelled_at.is_not(None)),
            entry=lambda row: TimelineEntry(
                at=row.at,
                kind="playbook_cancelled",
                source="core",
                summary=f"follow-up playbook {row.playbook} cancelled: {row.cancel_reason}",
                data={"run": row.id},
            ),
        ),
    ]


__all__ = [
    "Playbook",
    "PlaybookStep",
    "cancel_on_purchases",
    "cancel_on_response",
    "check_every",
    "next_due",
    "playbooks",
    "start",
    "start_for_moves",
    "timeline_sources",
]
