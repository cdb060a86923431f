"""The one injectable clock.

Nothing in crmcore or its plugins reads the wall clock directly: they ask the
CRM's clock. Tests and ``--at`` on jobs use :class:`FixedClock`, so results are exact.
Times are naive datetimes in the business's local time (see docs/architecture.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    """Reads the wall clock; the only place in crmcore that does."""

    def now(self) -> dt.datetime:
        return dt.datetime.now().replace(microsecond=0)


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


def parse_when(text: str, *, what: str = "time") -> dt.datetime:
    """Parse an ISO date or date-time given by a user; a clear error otherwise."""
    from crmcore.errors import ValidationError

    try:
        value = dt.datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise ValidationError(
            f"{what}: {text!r} is not an ISO date or date-time (e.g. 2026-01-31 or 2026-01-31T09:30)"
        ) from None
    if value.tzinfo is not None:
        value = value.astimezone().replace(tzinfo=None)
    return value
