"""The one injectable clock.

Nothing in crmcore or its plugins reads the wall clock directly: they ask the
CRM's clock. Tests and ``--at`` on jobs use :class:`FixedClock`, so results are exact.
Times are naive datetimes in the business's local time (see docs/architecture.md):
the zone ``[crm] timezone`` names, else the machine's. ``[crm] clock`` fixes "now"
for every command against a database (the demo's does).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    """Reads the wall clock; the only place in crmcore that does. With ``zone`` (an
    IANA name such as ``Asia/Shanghai``) it gives that zone's local time, whatever
    the machine's zone is."""

    def __init__(self, zone: str | None = None) -> None:
        self.zone = zone

    def now(self) -> dt.datetime:
        if self.zone is None:
            return dt.datetime.now().replace(microsecond=0)
        return dt.datetime.now(load_zone(self.zone)).replace(tzinfo=None, microsecond=0)


class FixedClock:
    """A clock that stands still until moved; for tests and ``--at``."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at

    def set(self, at: dt.datetime) -> None:
        self.at = at

    def advance(self, **delta: float) -> dt.datetime:
        self.at = self.at + dt.timedelta(**delta)
        return self.at


def load_zone(name: str) -> dt.tzinfo:
    """The IANA time zone ``name``; ValueError (with the name) when it is unknown."""
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; expected an IANA name such as 'Asia/Shanghai'"
        ) from None


def fixed_time(text: str, zone: str | None) -> dt.datetime:
    """``[crm] clock``: an ISO date-time as the business's naive local time. An
    offset (``2026-06-15T09:00:00+08:00``) is converted into ``zone`` (else the
    machine's zone); without one the time is taken as local already."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"expected an ISO date-time such as '2026-06-15T09:00:00+08:00', got {text!r}"
        ) from None
    if value.tzinfo is not None:
        local = value.astimezone(load_zone(zone)) if zone else value.astimezone()
        value = local.replace(tzinfo=None)
    return value


def configured_clock(core: Mapping[str, Any]) -> Clock:
    """The clock a CRM uses when none is given: fixed at ``[crm] clock`` if set, else
    the wall clock in ``[crm] timezone`` (validated when the config was loaded)."""
    zone = core.get("timezone")
    if core.get("clock"):
        return FixedClock(fixed_time(core["clock"], zone))
    return SystemClock(zone)
