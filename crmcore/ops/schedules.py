"""When each job runs: its schedule, zone, catch-up and retry policy, and ticks.

A schedule is a cron expression (``"0 2 * * *"``: 02:00 every day, read in the
deployment's zone, ``[crm] timezone``), an interval (``"every 5 minutes"``,
``"every 2 hours"``; ticks are multiples of the interval since the Unix epoch,
so every process agrees on them) or one of the words ``hourly``, ``daily``,
``weekly``, ``monthly`` (cron's ``@hourly`` ... : at the start of the hour, day,
week, month). A job's own values are overridden by ``[jobs.NAME]`` in crm.toml.

Ticks are handled in UTC (naive datetimes, UTC by convention) so a tick is one
instant whatever the zone's offset or daylight-saving changes; the job runs as
of the tick's local time in the deployment's zone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import attrs

from crmcore.clock import load_zone
from crmcore.errors import ConfigError
from crmcore.registry import Job

UTC = dt.UTC
WORDS = {"hourly": "@hourly", "daily": "@daily", "weekly": "@weekly", "monthly": "@monthly"}
_INTERVAL = re.compile(r"^every\s+(\d+)\s+(second|minute|hour|day)s?$")
_CRON_CHARS = re.compile(r"^[0-9a-z*/,?#\- ]+$")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400}
# a tick seen later than this after its time is "missed" (catch-up policy applies);
# for frequent jobs the limit is half the interval
LATE_AFTER = dt.timedelta(minutes=5)


def check_schedule(text: str, *, thorough: bool = False) -> str:
    """``text`` if it is a schedule this module reads; ValueError naming it otherwise.

    By default a cron expression is checked for its shape only (five or six
    fields of cron's characters), so declaring a job costs no import at start-up;
    ``thorough`` parses it (the scheduler and ``crm jobs list`` do)."""
    _parse(text, thorough=thorough)
    return text


def _parse(text: str, *, thorough: bool = True) -> tuple[str, int | str]:
    """("interval", seconds) or ("cron", expression)."""
    spec = " ".join(str(text).split()).lower() if isinstance(text, str) else ""
    match = _INTERVAL.match(spec)
    if match:
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        if seconds < 1:
            raise ValueError(f"schedule {text!r}: the interval must be at least one second")
        return "interval", seconds
    expr = WORDS.get(spec, spec)
    if expr in WORDS.values():
        return "cron", expr
    shaped = len(expr.split()) in (5, 6) and _CRON_CHARS.match(expr)
    if thorough and shaped:
        from croniter import croniter

        shaped = croniter.is_valid(expr)
    if not shaped:
        raise ValueError(
            f"schedule {text!r}: expected a cron expression such as '0 2 * * *', "
            "'every N minutes|hours|days' or hourly/daily/weekly/monthly"
        )
    return "cron", expr


def zone_of(name: str | None) -> dt.tzinfo:
    """The deployment's zone: ``[crm] timezone``, else the machine's."""
    if name:
        return load_zone(name)
    local = dt.datetime(2000, 1, 1).astimezone().tzinfo
    return local if local is not None else UTC


def to_utc(local: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """A naive local time of ``zone`` as naive UTC."""
    aware = local if local.tzinfo is not None else local.replace(tzinfo=zone)
    return aware.astimezone(UTC).replace(tzinfo=None)


def to_local(utc: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """A naive UTC time as the naive local time of ``zone``."""
    return utc.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


@attrs.frozen(kw_only=True)
class Plan:
    """One job as the scheduler runs it: the job and its effective policy."""

    job: Job
    schedule: str
    zone: dt.tzinfo
    catch_up: str
    attempts: int
    backoff_seconds: int

    @property
    def name(self) -> str:
        return self.job.name

    def latest_tick(self, now_utc: dt.datetime) -> dt.datetime:
        """The last tick at or before ``now_utc`` (naive UTC)."""
        kind, value = _parse(self.schedule)
        now_utc = now_utc.replace(microsecond=0)
        if kind == "interval":
            assert isinstance(value, int)
            epoch = dt.datetime(1970, 1, 1)
            seconds = int((now_utc - epoch).total_seconds())
            return epoch + dt.timedelta(seconds=seconds - seconds % value)
        from croniter import croniter

        start = (now_utc + dt.timedelta(seconds=1)).replace(tzinfo=UTC).astimezone(self.zone)
        tick = croniter(str(value), start).get_prev(dt.datetime)
        return tick.astimezone(UTC).replace(tzinfo=None)

    def next_tick(self, now_utc: dt.datetime) -> dt.datetime:
        """The first tick after ``now_utc`` (naive UTC)."""
        kind, value = _parse(self.schedule)
        now_utc = now_utc.replace(microsecond=0)
        if kind == "interval":
            assert isinstance(value, int)
            return self.latest_tick(now_utc) + dt.timedelta(seconds=value)
        from croniter import croniter

        start = now_utc.replace(tzinfo=UTC).astimezone(self.zone)
        tick = croniter(str(value), start).get_next(dt.datetime)
        return tick.astimezone(UTC).replace(tzinfo=None)

    def late_after(self, tick_utc: dt.datetime) -> dt.timedelta:
        """How long after ``tick_utc`` the tick still counts as on time."""
        period = self.next_tick(tick_utc) - tick_utc
        return min(LATE_AFTER, period / 2)

    def retry_delay(self, attempt: int) -> dt.timedelta:
        """The wait before the attempt after failed attempt number ``attempt``."""
        return dt.timedelta(seconds=self.backoff_seconds * 2 ** max(attempt - 1, 0))

    def to_json(self, now_utc: dt.datetime) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "catch_up": self.catch_up,
            "attempts": self.attempts,
            "backoff_seconds": self.backoff_seconds,
            "next_tick": self.next_tick(now_utc).replace(tzinfo=UTC).astimezone(self.zone),
        }


def plans(
    jobs: Mapping[str, Job], overrides: Mapping[str, Mapping[str, Any]], core: Mapping[str, Any]
) -> dict[str, Plan]:
    """Every job's :class:`Plan` (its own values, then ``[jobs.NAME]``); a
    ``[jobs.NAME]`` naming no enabled job, or a bad schedule, is a ConfigError."""
    unknown = sorted(set(overrides) - set(jobs))
    if unknown:
        raise ConfigError(
            f"crm.toml: jobs.{unknown[0]}: no enabled job has that name; "
            f"jobs: {', '.join(sorted(jobs)) or 'none'}"
        )
    zone = zone_of(core.get("timezone"))
    found: dict[str, Plan] = {}
    for name, job in sorted(jobs.items()):
        given = overrides.get(name, {})
        schedule = given.get("schedule", job.schedule)
        try:
            check_schedule(schedule, thorough=True)
        except ValueError as e:
            where = f"crm.toml: jobs.{name}.schedule" if "schedule" in given else f"job {name}"
            raise ConfigError(f"{where}: {e}") from None
        found[name] = Plan(
            job=job,
            schedule=schedule,
            zone=zone,
            catch_up=given.get("catch_up", job.catch_up),
            attempts=given.get("attempts", job.attempts),
            backoff_seconds=given.get("backoff_seconds", job.backoff_seconds),
        )
    return found
