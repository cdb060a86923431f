"""What a plugin registers: small validated objects, not loose dicts.

A plugin returns these from its ``crm_*`` registration hooks. The core records
which plugin declared each name; two plugins declaring the same name is a
start-up error naming both.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from crmcore.entities import Message
    from crmcore.service import CRM

_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")


def _valid_name(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(
            f"{type(instance).__name__}.{attribute.name}: {value!r} must be lower-case letters, "
            "digits, '_', '.' or '-', starting with a letter"
        )


@attrs.frozen(kw_only=True)
class PluginInfo:
    """A plugin's metadata: version, what it needs, what it is."""

    version: str = "0"
    requires: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    description: str = ""
    # permissions the plugin checks (``crm.db.principal.can(name)``), beyond the
    # core's; roles in crm.toml may then grant them
    permissions: tuple[str, ...] = attrs.field(default=(), converter=tuple)


@attrs.frozen(kw_only=True)
class Attribute:
    """A customer attribute a plugin declares; values live in the customer's
    attribute document and are validated by ``schema`` (JSON Schema) on every write."""

    name: str = attrs.field(validator=_valid_name)
    schema: dict[str, Any] = attrs.field(factory=lambda: {"type": "string"})
    description: str = ""
    pii: bool = False  # masked for principals without the "pii" permission


@attrs.frozen(kw_only=True)
class Job:
    """A scheduled job. ``run(crm, at)`` does the work as of ``at`` and returns a
    JSON-able summary. Jobs must be idempotent for the same ``at`` (use keys)."""

    name: str = attrs.field(validator=_valid_name)
    run: Callable[[CRM, dt.datetime], dict[str, Any]]
    schedule: str = "daily"
    description: str = ""


@attrs.frozen(kw_only=True)
class Template:
    """A message template; ``text`` uses ``{placeholders}`` (str.format)."""

    name: str = attrs.field(validator=_valid_name)
    channel: str = "sms"
    text: str = ""

    def render(self, **values: Any) -> str:
        return self.text.format(**values)


@attrs.frozen(kw_only=True)
class Channel:
    """An outbound delivery channel. ``send(message, key)`` delivers one message
    or raises; it runs after commit, outside any transaction.

    ``key`` is the message's idempotency key (``message.idempotency_key``): one
    per message, the same on every attempt. Delivery is at-least-once — a
    sender stopped between the channel call and recording the result tries
    again — so pass ``key`` to the gateway as its correlation id (or skip a key
    already delivered) and the message arrives once."""

    name: str = attrs.field(validator=_valid_name)
    send: Callable[[Message, str], None]


@attrs.frozen(kw_only=True)
class Workflow:
    """A ticket workflow: ordered states, allowed moves and per-state due times.

    ``transitions`` maps a state to the states it may move to; by default each
    state moves to the next one. ``due_hours`` gives each state's time allowance.
    """

    name: str = attrs.field(validator=_valid_name)
    states: tuple[str, ...] = attrs.field(converter=tuple)
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
        if state in self.transitions:
            return self.transitions[state]
        i = self.states.index(state)
        return self.states[i + 1 : i + 2]

    @property
    def final(self) -> str:
        return self.states[-1]
