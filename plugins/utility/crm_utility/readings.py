"""Interval meter readings: CSV import (all or nothing) and daily load curves.

Longer than most modules: the import and the curves read the same interval table, and
splitting them would split its checks."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select

from crm_utility.config import NAME, tariff_bands
from crm_utility.tables import readings, service_points
from crmcore import NotFound, ValidationError
from crmcore.parse import parse_datetime

INTERVALS = (15, 60)
COLUMNS = ("meter_no", "at", "kwh", "kvarh")
ALIASES = {"meter": "meter_no", "timestamp": "at", "time": "at", "datetime": "at"}
MAX_LISTED = 20
MAX_VALUE_KWH = Decimal(10**9)


class ReadingsRejected(ValidationError):
    """A readings file with bad lines; ``errors`` holds every (line, message)."""

    def __init__(self, source: str, errors: list[tuple[int, str]]) -> None:
        self.source = source
        self.errors = errors
        shown = "; ".join(f"line {n}: {m}" for n, m in errors[:MAX_LISTED])
        more = f"; ... and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
        super().__init__(f"{source}: {len(errors)} bad line(s), nothing stored: {shown}{more}")


def _parse_energy(text: str, what: str) -> int:
    """kWh (or kvarh) text -> integer Wh; raises ValueError with the reason."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise ValueError(f"{what} {text.strip()!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{what} {text.strip()!r} is not a number")
    if value < 0:
        raise ValueError(f"negative {what} {text.strip()}")
    if value > MAX_VALUE_KWH:
        raise ValueError(f"{what} {text.strip()} is implausibly large")
    return int((value * 1000).to_integral_value())


def import_readings(
    crm: Any,
    text: str,
    *,
    source: str = "readings.csv",
    meter_no: str | None = None,
    interval: int | None = None,
) -> dict[str, Any]:
    """Import interval readings from CSV text (header: ``meter_no,at,kwh[,kvarh]``;
    ``meter_no`` may be left out when ``meter_no`` is given).

    Every bad line is reported with its number — unparsable dates or numbers,
    negative values, timestamps off the interval grid, duplicate timestamps (in
    the file or already stored), gaps, unknown meters — and then nothing at all
    is stored. ``at`` is the start of the interval.
    """
    if interval is not None and interval not in INTERVALS:
        raise ValidationError(f"interval {interval} minutes; expected one of {list(INTERVALS)}")
    errors: list[tuple[int, str]] = []
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationError(
            f"{source}: empty file; expected a header meter_no,at,kwh[,kvarh]"
        ) from None
    cols = [ALIASES.get(h.strip().lower(), h.strip().lower()) for h in header]
    unknown = [c for c in cols if c not in COLUMNS]
    if unknown or "at" not in cols or "kwh" not in cols or len(set(cols)) != len(cols):
        raise ReadingsRejected(
            source,
            [(1, f"header {header}: expected columns meter_no, at, kwh and optionally kvarh")],
        )
    if "meter_no" not in cols and meter_no is None:
        raise ReadingsRejected(source, [(1, "no meter_no column: give the meter with --meter")])
    with crm.transaction(command="utility readings import"):
        points: dict[str, Any] = {}
        parsed: dict[str, list[tuple[int, dt.datetime, int, int | None]]] = defaultdict(list)
        times: dict[str, list[tuple[int, dt.datetime]]] = defaultdict(
            list
        )  # every parsable time, for detection
        for line_no, fields in enumerate(reader, start=2):
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(cols):
                errors.append(
                    (line_no, f"{len(fields)} fields; expected {len(cols)} ({', '.join(cols)})")
                )
                continue
            rec = dict(zip(cols, fields, strict=True))
            meter = (rec.get("meter_no") or meter_no or "").strip()
            if meter_no is not None and meter != meter_no:
                errors.append((line_no, f"meter {meter!r} differs from --meter {meter_no!r}"))
                continue
            if meter not in points:
                points[meter] = crm.db.execute(
                    select(service_points).where(service_points.c.meter_no == meter)
                ).first()
            if points[meter] is None:
                errors.append((line_no, f"unknown meter {meter!r}: add its service point first"))
                continue
            try:  # 2026/01/05 00:15 is read as 2026-01-05 00:15
                at = parse_datetime(rec["at"].strip().replace("/", "-"), field="at")
            except ValidationError as e:
                errors.append((line_no, str(e)))
                continue
            times[meter].append((line_no, at))
            try:
                wh = _parse_energy(rec["kwh"], "kwh")
                varh = (
                    _parse_energy(rec["kvarh"], "kvarh") if rec.get("kvarh", "").strip() else None
                )
            except ValueError as e:
                errors.append((line_no, str(e)))
                continue
            parsed[meter].append((line_no, at, wh, varh))

        rows: list[dict[str, Any]] = []
        summary: dict[str, Any] = {}
        for meter, stamped in times.items():
            point = points[meter]
            stored = _stored_interval(crm, point.id)
            detected = interval or _detect([t for _, t in stamped])
            if detected is not None and detected not in INTERVALS:
                errors.append(
                    (
                        stamped[0][0],
                        f"meter {meter}: readings every {detected} minutes; expected 15 or 60",
                    )
                )
                continue
            if detected is not None and stored is not None and detected != stored:
                errors.append(
                    (
                        stamped[0][0],
                        f"meter {meter}: readings every {detected} minutes, but its stored "
                        f"readings are every {stored}",
                    )
                )
                continue
            step = detected or stored or (60 if stamped[0][1].minute == 0 else 15)
            # time checks over every line with a readable time, so one bad value
            # is reported once and does not also show up as a gap
            first_line: dict[dt.datetime, int] = {}
            bad_lines: set[int] = set()
            for line_no, at in stamped:
                if at.second or at.microsecond or (at.hour * 60 + at.minute) % step:
                    errors.append(
                        (line_no, f"{at:%Y-%m-%d %H:%M:%S} is not on the {step}-minute grid")
                    )
                    bad_lines.add(line_no)
                elif at in first_line:
                    errors.append(
                        (
                            line_no,
                            f"duplicate timestamp {at:%Y-%m-%d %H:%M} for meter {meter} "
                            f"(first on line {first_line[at]})",
                        )
                    )
                    bad_lines.add(line_no)
                else:
                    first_line[at] = line_no
            ordered = sorted((at, line_no) for at, line_no in first_line.items())
            for (prev_at, prev_line), (at, line_no) in zip(ordered, ordered[1:], strict=False):
                missing = int((at - prev_at) / dt.timedelta(minutes=step)) - 1
                if missing > 0:
                    errors.append(
                        (
                            line_no,
                            f"gap for meter {meter}: {missing} reading(s) missing between "
                            f"{prev_at:%Y-%m-%d %H:%M} (line {prev_line}) and {at:%Y-%m-%d %H:%M}",
                        )
                    )
            good = sorted((r for r in parsed[meter] if r[0] not in bad_lines), key=lambda r: r[1])
            if good:
                stored = crm.db.execute(
                    select(readings.c.at).where(
                        readings.c.service_point_id == point.id,
                        readings.c.at >= good[0][1],
                        readings.c.at <= good[-1][1],
                    )
                ).all()
                clash = {r.at for r in stored}
                for line_no, at, *_ in good:
                    if at in clash:
                        errors.append(
                            (
                                line_no,
                                f"meter {meter} already has a reading at {at:%Y-%m-%d %H:%M}; "
                                "stored readings are never replaced",
                            )
                        )
            rows += [
                {
                    "service_point_id": point.id,
                    "customer_id": point.customer_id,
                    "at": at,
                    "interval_min": step,
                    "wh": wh,
                    "varh": varh,
                }
                for _, at, wh, varh in good
            ]
            if good:
                summary[meter] = {
                    "readings": len(good),
                    "interval_minutes": step,
                    "from": good[0][1],
                    "to": good[-1][1],
                }
        if errors:
            raise ReadingsRejected(source, sorted(errors))
        if not rows:
            raise ValidationError(f"{source}: no readings in the file")
        crm.db.insert_rows(readings, rows, what=f"utility readings import {source}")
        return {"source": source, "stored": len(rows), "meters": summary}


def _stored_interval(crm: Any, point_id: int) -> int | None:
    row = crm.db.execute(
        select(readings.c.interval_min)
        .where(readings.c.service_point_id == point_id)
        .order_by(readings.c.at.desc())
        .limit(1)
    ).first()
    return None if row is None else int(row.interval_min)


def _detect(times: list[dt.datetime]) -> int | None:
    """The smallest step between distinct timestamps on the 15-minute grid;
    None with fewer than two."""
    grid = sorted({t for t in times if not t.second and not t.microsecond and t.minute % 15 == 0})
    steps = [int((b - a).total_seconds() // 60) for a, b in zip(grid, grid[1:], strict=False)]
    return min(steps) if steps else None


# -- daily curves ---------------------------------------------------------------------
def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def day_stats(
    crm: Any, meter_no: str, day: dt.date, *, rows: list[Any] | None = None, point: Any = None
) -> dict[str, Any]:
    """One service point's load curve for one day with peak, valley, average,
    load factor (average / peak), peak-valley ratio, power factor (when kvarh was
    read) and the energy in each tariff band."""
    from crm_utility.accounts import get_point

    with crm.transaction(write=False):
        point = point or get_point(crm, meter_no)
        if rows is None:
            start = dt.datetime.combine(day, dt.time())
            rows = crm.db.execute(
                select(readings)
                .where(
                    readings.c.service_point_id == point.id,
                    readings.c.at >= start,
                    readings.c.at < start + dt.timedelta(days=1),
                )
                .order_by(readings.c.at)
            ).all()
        if not rows:
            raise NotFound(f"no readings for meter {point.meter_no} on {day.isoformat()}")
        step = int(rows[0].interval_min)
        per_hour = 60 / step
        curve = []
        bands = {"peak": 0, "flat": 0, "valley": 0}
        band_of = tariff_bands(crm)
        for r in rows:
            kwh = r.wh / 1000
            curve.append(
                {
                    "at": r.at,
                    "kwh": kwh,
                    "kw": round(kwh * per_hour, 3),
                    "kvarh": None if r.varh is None else r.varh / 1000,
                }
            )
            bands[band_of(r.at)] += r.wh
        kws = [c["kw"] for c in curve]
        peak_i = max(range(len(kws)), key=lambda i: kws[i])
        valley_i = min(range(len(kws)), key=lambda i: kws[i])
        peak, valley = kws[peak_i], kws[valley_i]
        total_wh = sum(r.wh for r in rows)
        average = total_wh / 1000 / (len(rows) / per_hour)
        pf = None
        if all(r.varh is not None for r in rows):
            p, q = total_wh, sum(r.varh for r in rows)
            pf = 1.0 if p == 0 and q == 0 else p / math.hypot(p, q)
        return {
            "meter_no": point.meter_no,
            "service_point_id": point.id,
            "customer_id": point.customer_id,
            "day": day.isoformat(),
            "interval_minutes": step,
            "readings": len(rows),
            "expected": 1440 // step,
            "complete": len(rows) == 1440 // step,
            "total_kwh": _r(total_wh / 1000),
            "peak_kw": peak,
            "peak_at": curve[peak_i]["at"],
            "valley_kw": valley,
            "valley_at": curve[valley_i]["at"],
            "average_kw": _r(average),
            "load_factor": _r(average / peak, 4) if peak > 0 else None,
            "peak_valley_ratio": _r(peak / valley, 3) if valley > 0 else None,
            "power_factor": _r(pf, 4),
            "band_kwh": {k: _r(v / 1000) for k, v in bands.items()},
            "curve": curve,
        }


def days_stats(crm: Any, meter_no: str, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    """Daily statistics (without the curve points) for each day with readings."""
    from crm_utility.accounts import get_point

    if end < start:
        raise ValidationError(f"period: {end} is before {start}")
    with crm.transaction(write=False):
        point = get_point(crm, meter_no)
        lo = dt.datetime.combine(start, dt.time())
        hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
        by_day: dict[dt.date, list[Any]] = defaultdict(list)
        for r in crm.db.execute(
            select(readings)
            .where(readings.c.service_point_id == point.id, readings.c.at >= lo, readings.c.at < hi)
            .order_by(readings.c.at)
        ):
            by_day[r.at.date()].append(r)
        out = []
        for day in sorted(by_day):
            s = day_stats(crm, meter_no, day, rows=by_day[day], point=point)
            s.pop("curve")
            out.append(s)
        return out


def reading_days(crm: Any, point_ids: Any, day: dt.date) -> dict[int, list[Any]]:
    """The readings of ``day`` for many service points in one query."""
    start = dt.datetime.combine(day, dt.time())
    out: dict[int, list[Any]] = defaultdict(list)
    stmt = (
        select(readings)
        .where(
            readings.c.service_point_id.in_(point_ids),
            readings.c.at >= start,
            readings.c.at < start + dt.timedelta(days=1),
        )
        .order_by(readings.c.service_point_id, readings.c.at)
    )
    for r in crm.db.execute(stmt):
        out[r.service_point_id].append(r)
    return out


def count_readings(crm: Any, meter_no: str) -> int:
    from crm_utility.accounts import get_point

    with crm.transaction(write=False):
        point = get_point(crm, meter_no)
        return int(
            crm.db.execute(
                select(func.count())
                .select_from(readings)
                .where(readings.c.service_point_id == point.id)
            ).scalar()
        )


def curve_csv(stats: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["meter_no", "at", "kwh", "kw", "kvarh"])
    for c in stats["curve"]:
        w.writerow(
            [
                stats["meter_no"],
                c["at"].strftime("%Y-%m-%d %H:%M"),
                f"{c['kwh']:.3f}",
                f"{c['kw']:.3f}",
                "" if c["kvarh"] is None else f"{c['kvarh']:.3f}",
            ]
        )
    return buf.getvalue()


__all__ = [
    "NAME",
    "ReadingsRejected",
    "curve_csv",
    "day_stats",
    "days_stats",
    "import_readings",
    "reading_days",
]
