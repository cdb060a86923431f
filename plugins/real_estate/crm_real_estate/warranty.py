"""Warranty classification: is a defect reported at a time covered, and why.

Periods count from the handover (the unit's, or for common parts the
building's). ``until`` is exclusive: a request reported before it is in
warranty; the last covered day is the day before.

Seasons: a season of a kind (``heating`` 11-15..03-15 by default) counts when
it *starts* on or after the handover day; a season already under way at
handover does not count. The cover ends at the end of the N-th counted season
of each kind the category lists (the latest of them when there are several).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

Day = tuple[int, int]


@attrs.frozen
class Classification:
    status: str  # in | out | n/a
    reason: str
    until: dt.datetime | None = None


def add_years(day: dt.date, years: int) -> dt.date:
    """The same day ``years`` later; 29 February becomes 1 March in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return dt.date(day.year + years, 3, 1)


def season_end(
    handover: dt.date, count: int, span: tuple[Day, Day]
) -> dt.date:  # the last day of the count-th season starting on/after handover
    (sm, sd), (em, ed) = span
    found: list[dt.date] = []
    year = handover.year - 1
    while len(found) < count:
        start = _day(year, sm, sd)
        end = _day(year if (em, ed) >= (sm, sd) else year + 1, em, ed)
        if start >= handover:
            found.append(end)
        year += 1
    return found[count - 1]


def _day(year: int, month: int, day: int) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:  # 02-29 in a common year
        return dt.date(year, 2, 28)


def _fmt(day: dt.date) -> str:
    return day.isoformat()


def classify(
    *,
    category: str,
    spec: dict[str, Any],
    handover_at: dt.datetime | None,
    reported_at: dt.datetime,
    design_life_years: int,
    seasons: dict[str, tuple[Day, Day]],
    place: str,
) -> Classification:
    """Classify a defect of ``category`` (with config ``spec``) at ``place``."""
    kind = spec["warranty"]
    if kind == "none":
        return Classification("n/a", f"{category} is not a warranty item")
    if handover_at is None or handover_at > reported_at:
        return Classification(
            "in",
            f"{place} is not handed over yet: defects before handover are the developer's to fix",
        )
    start = handover_at.date()
    if kind == "years":
        n = spec["period"]
        end = add_years(start, n)
        what = f"{n} year{'s' if n != 1 else ''}"
    elif kind == "design_life":
        end = add_years(start, design_life_years)
        what = f"the design life of {design_life_years} years"
    else:
        n = spec["period"]
        kinds = spec.get("season_kinds", ["heating"])
        ends = [season_end(start, n, seasons[k]) for k in kinds]
        end = max(ends) + dt.timedelta(days=1)
        spans = " and ".join(
            f"{n} {k} season{'s' if n != 1 else ''}"
            f" ({seasons[k][0][0]:02d}-{seasons[k][0][1]:02d}..{seasons[k][1][0]:02d}"
            f"-{seasons[k][1][1]:02d})"
            for k in kinds
        )
        what = spans
    until = dt.datetime.combine(end, dt.time())
    last = _fmt(end - dt.timedelta(days=1))
    base = f"{category} is covered for {what} from the handover of {place} on {_fmt(start)}"
    if reported_at < until:
        return Classification("in", f"in warranty: {base}, to {last}", until)
    return Classification("out", f"out of warranty: {base}; the cover ended on {last}", until)
