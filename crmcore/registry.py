"""What a plugin registers: small validated objects, not loose dicts.

A plugin returns these from its ``crm_*`` registration hooks. The core records
which plugin declared each name; two plugins declaring the same name is a
start-up error naming both.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from sqlalchemy import Select

    from crmcore.entities import Message, TimelineEntry
    from crmcore.service import CRM

_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")


def _valid_name(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(
            f"{type(instance).__name__}.{attribute.name}: {value!r} must be lower-case letters, "
            "digits, '_', '.' or '-', starting with a letter"
        )


def _names(values: Iterable[str]) -> tuple[str, ...]:
    """Any iterable of names, kept as a tuple (a typed converter: type checkers
    then accept a list or tuple of strings where ``tuple`` alone is generic)."""
    return tuple(values)


@attrs.frozen(kw_only=True)
class PluginInfo:
    """A plugin's metadata: version, what it needs, what it is.

    ``requires`` names plugins that must be enabled too (set up, and their hooks
    called, first); ``permissions`` the permissions the plugin checks
    (``crm.db.principal.can(name)``) beyond the core's, which roles in crm.toml
    may then grant. ``translations`` is the directory of the plugin's gettext
    catalogues (``<LOCALE>/LC_MESSAGES/<plugin>.mo``; see :mod:`crmcore.i18n`):
    the plugin's name is their domain.

    >>> info = PluginInfo(version="0.3.0", description="greets new customers", requires=["retail"])
    >>> info.requires
    ('retail',)
    """

    version: str = "0"
    requires: tuple[str, ...] = attrs.field(default=(), converter=_names)
    description: str = ""
    permissions: tuple[str, ...] = attrs.field(default=(), converter=_names)
    translations: str | None = None


@attrs.frozen(kw_only=True)
class Attribute:
    """A customer attribute a plugin declares; values live in the customer's
    attribute document and are validated by ``schema`` (JSON Schema) on every write.

    ``pii`` marks the value personal: masked for principals without the ``pii``
    permission. Names are lower-case, prefixed with the plugin's name.

    >>> Attribute(name="greeter.nickname", schema={"type": "string", "maxLength": 20}).schema
    {'type': 'string', 'maxLength': 20}
    >>> Attribute(name="Nick")
    Traceback (most recent call last):
    ...
    ValueError: Attribute.name: 'Nick' must be lower-case letters, digits, '_', '.' or '-', starting with a letter
    """

    name: str = attrs.field(validator=_valid_name)
    schema: dict[str, Any] = attrs.field(factory=lambda: {"type": "string"})
    description: str = ""
    pii: bool = False


def _valid_schedule(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    from crmcore.ops.schedules import check_schedule

    check_schedule(value)


@attrs.frozen(kw_only=True)
class Job:
    """A scheduled job. ``run(crm, at)`` does the work as of ``at`` and returns a
    JSON-able summary. Jobs must be idempotent for the same ``at`` (use keys).

    ``crm jobs run --at TIME`` runs every enabled plugin's jobs as of that time;
    ``crm scheduler`` runs each when its ``schedule`` falls due: a cron
    expression in the deployment's zone (``"0 2 * * *"``), an interval
    (``"every 5 minutes"``) or hourly/daily/weekly/monthly. ``catch_up`` says
    what a tick missed while no scheduler ran does: ``run_once`` (run the latest
    missed tick once) or ``skip``. A failed run is tried again up to
    ``attempts`` times in all, after ``backoff_seconds``, doubled each time.
    crm.toml's ``[jobs.NAME]`` overrides any of them.

    >>> def remind(crm, at):
    ...     return {"reminders": 0}
    >>> Job(name="greeter.remind", run=remind, schedule="30 7 * * *").catch_up
    'run_once'
    >>> Job(name="greeter.remind", run=remind, schedule="at dawn")
    Traceback (most recent call last):
    ...
    ValueError: schedule 'at dawn': expected a cron expression such as '0 2 * * *', 'every N minutes|hours|days' or hourly/daily/weekly/monthly
    """

    name: str = attrs.field(validator=_valid_name)
    run: Callable[[CRM, dt.datetime], dict[str, Any]]
    schedule: str = attrs.field(default="daily", validator=_valid_schedule)
    description: str = ""
    catch_up: str = attrs.field(
        default="run_once", validator=attrs.validators.in_(("run_once", "skip"))
    )
    attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    backoff_seconds: int = attrs.field(default=60, validator=attrs.validators.ge(0))


@attrs.frozen(kw_only=True)
class Template:
    """A message template; ``text`` uses ``{placeholders}`` (str.format).

    ``crm.messages.enqueue(channel, customer=c, template=name, values={...})``
    fills it in when the message is queued, in the deployment's message
    language (``[crm] message_locale``, zh_CN unless configured): ``text`` is
    the English source, translated through the declaring plugin's catalogue
    (mark it with ``crmcore.i18n.N_`` so it is extracted). ``purpose`` is
    ``"transactional"`` (what the recipient asked for or must know) or
    ``"marketing"``: the quiet hours and frequency caps of ``[messages]`` apply
    to marketing only.

    >>> Template(name="greeter.welcome", text="Hello {name}!").render(name="Wu Fang")
    'Hello Wu Fang!'
    """

    name: str = attrs.field(validator=_valid_name)
    channel: str = "sms"
    text: str = ""
    purpose: str = attrs.field(
        default="transactional", validator=attrs.validators.in_(("marketing", "transactional"))
    )

    def render(self, *, locale: str = "en", domain: str = "", **values: Any) -> str:
        """The text in ``locale`` (translated in the catalogue of ``domain``, the
        declaring plugin) with ``values`` filled in (a missing placeholder raises
        KeyError)."""
        from crmcore import i18n

        text = i18n.gettext(self.text, domain=domain, locale=locale) if domain else self.text
        return text.format(**values)


@attrs.frozen(kw_only=True)
class Channel:
    """An outbound delivery channel. ``send(message, key)`` delivers one message
    or raises; it runs after commit, outside any transaction.

    ``key`` is the message's idempotency key (``message.idempotency_key``): one
    per message, the same on every attempt. Delivery is at-least-once — a
    sender stopped between the channel call and recording the result tries
    again — so pass ``key`` to the gateway as its correlation id (or skip a key
    already delivered) and the message arrives once. ``send`` may return the
    gateway's own id for the message (kept as ``provider_id``, which delivery
    receipts are matched on).

    >>> sent = []
    >>> def send(message, key):
    ...     sent.append(key)
    >>> Channel(name="wechat", send=send).name
    'wechat'
    """

    name: str = attrs.field(validator=_valid_name)
    send: Callable[[Message, str], str | None]


@attrs.frozen(kw_only=True)
class Workflow:
    """A ticket workflow: ordered states, allowed moves and per-state due times.

    ``transitions`` maps a state to the states it may move to; by default each
    state moves to the next one. ``due_hours`` gives each state's time allowance.

    >>> flow = Workflow(name="repair", states=["open", "fixing", "done"], due_hours={"open": 4})
    >>> flow.allowed("open"), flow.final
    (('fixing',), 'done')
    >>> Workflow(name="quick", states=["open", "done"], transitions={"open": ["closed"]})
    Traceback (most recent call last):
    ...
    ValueError: workflow 'quick': unknown state 'closed'
    """

    name: str = attrs.field(validator=_valid_name)
    states: tuple[str, ...] = attrs.field(converter=_names)
    transitions: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    due_hours: dict[str, float] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if len(self.states) < 2:
            raise ValueError(f"workflow {self.name!r} needs at least two states")
        for src, dests in self.transitions.items():
            for s in (src, *dests):
                if s not in self.states:
                    raise ValueError(f"workflow {self.name!r}: unknown state {s!r}")

    def allowed(self, state: str) -> Sequence[str]:
        """The states a ticket in ``state`` may move to."""
        if state in self.transitions:
            return self.transitions[state]
        i = self.states.index(state)
        return self.states[i + 1 : i + 2]

    @property
    def final(self) -> str:
        """The last state: a ticket there is closed."""
        return self.states[-1]


@attrs.frozen(kw_only=True)
class TimelineSource:
    """One stream of a customer's timeline kept in a plugin's own tables, read
    a page at a time in the database.

    ``query(customer_id)`` returns a SELECT of that customer's rows with (at
    least) a column labelled ``at`` (when, a timestamp) and one labelled
    ``id`` (an integer unique within the stream), plus whatever ``entry``
    needs; ``entry(row)`` makes one :class:`~crmcore.TimelineEntry` of a row.
    The core adds the paging (a time bound and a limit) to the query, reads
    only the rows of the page and runs the query through ``crm.db``, so it
    is scoped to what the principal may see like any other. An index on the
    table's ``(customer_id, <time column>)`` keeps a page of a long history
    cheap. Entries at the same time keep the order of their streams (the
    core's first, then the plugins' by ``name``), then of ``id``.

    >>> from sqlalchemy import select
    >>> from crmcore import TimelineEntry
    >>> from crmcore.schema import interactions as calls
    >>> source = TimelineSource(
    ...     name="callcentre.calls",
    ...     query=lambda cid: select(calls).where(calls.c.customer_id == cid, calls.c.kind == "call"),
    ...     entry=lambda r: TimelineEntry(
    ...         at=r.at, kind="call", source="callcentre", summary=r.text
    ...     ),
    ... )
    >>> sorted(c.name for c in source.query(7).selected_columns if c.name in ("at", "id"))
    ['at', 'id']
    """

    name: str = attrs.field(validator=_valid_name)
    query: Callable[[int], Select[Any]]
    entry: Callable[[Any], TimelineEntry]
