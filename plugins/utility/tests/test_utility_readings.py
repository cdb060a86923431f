"""Load curves: CSV import (all or nothing, line-numbered errors), daily statistics, export."""

from __future__ import annotations

import datetime as dt
import struct
import zlib
from xml.dom import minidom

import pytest
from crm_utility import readings
from crm_utility.readings import ReadingsRejected
from utility_testkit import DAY, csv_text, mill, staff, two_level

from crmcore import NotFound, ValidationError

pytestmark = pytest.mark.crm(plugins=["utility"])


def _count(crm, meter="M1") -> int:
    return readings.count_readings(crm, meter)


def test_import_15_minute_day_and_statistics(crm):
    mill(crm)
    result = readings.import_readings(crm, csv_text("M1", DAY, two_level))
    assert result["stored"] == 96
    assert result["meters"]["M1"]["interval_minutes"] == 15
    s = readings.day_stats(crm, "M1", DAY)
    assert s["complete"] and s["readings"] == 96
    assert s["peak_kw"] == 400.0 and s["peak_at"] == dt.datetime(2026, 1, 4, 8, 0)
    assert s["valley_kw"] == 100.0 and s["valley_at"] == dt.datetime(2026, 1, 4, 0, 0)
    assert s["total_kwh"] == 3300.0
    assert s["average_kw"] == 137.5
    assert s["load_factor"] == pytest.approx(137.5 / 400, abs=1e-4)
    assert s["peak_valley_ratio"] == 4.0
    assert s["power_factor"] is None  # no kvarh read
    assert len(s["curve"]) == 96 and s["curve"][32]["kw"] == 400.0
    # peak tariff hours 08-11 and 18-23, valley 23-07
    assert s["band_kwh"] == {"peak": 1700.0, "flat": 800.0, "valley": 800.0}
    with pytest.raises(NotFound, match="no readings for meter M1 on 2026-01-03"):
        readings.day_stats(crm, "M1", DAY - dt.timedelta(days=1))
    # the next two days; the second one only up to 09:45: flagged incomplete
    more = csv_text("M1", DAY + dt.timedelta(days=1), two_level, days=2).splitlines()
    readings.import_readings(crm, "\n".join(more[: 1 + 96 + 40]) + "\n")
    rows = readings.days_stats(crm, "M1", DAY, DAY + dt.timedelta(days=6))
    assert [r["day"] for r in rows] == ["2026-01-04", "2026-01-05", "2026-01-06"]
    assert all("curve" not in r and r["peak_valley_ratio"] == 4.0 for r in rows)
    assert [(r["readings"], r["complete"]) for r in rows] == [(96, True), (96, True), (40, False)]


def test_import_hourly_with_power_factor(crm):
    mill(crm)
    text = csv_text("M1", DAY, lambda t: 300.0, step=60, pf_kvar=lambda t: 400.0 * 0.75)
    assert readings.import_readings(crm, text)["meters"]["M1"]["interval_minutes"] == 60
    s = readings.day_stats(crm, "M1", DAY)
    assert s["readings"] == 24 and s["complete"] and s["expected"] == 24
    assert s["power_factor"] == pytest.approx(300 / (300**2 + 300**2) ** 0.5, abs=1e-4)
    assert s["load_factor"] == 1.0 and s["peak_valley_ratio"] == 1.0
    # a file without a meter_no column needs --meter
    nxt = DAY + dt.timedelta(days=1)
    with pytest.raises(ReadingsRejected, match="no meter_no column"):
        readings.import_readings(crm, csv_text(None, nxt, two_level, step=60))
    assert (
        readings.import_readings(crm, csv_text(None, nxt, two_level, step=60), meter_no="M1")[
            "stored"
        ]
        == 24
    )


BAD = """meter_no,at,kwh
M1,2026-01-04 00:00,10
M1,2026-01-04 00:15,-2.5
M1,2026-01-04 00:30,10
M1,2026-01-04 00:30,11
M1,2026-01-04 01:30,10
M1,2026-01-04 25:00,10
M1,2026-01-04 01:45,ten
M1,2026-01-04 02:07,10
M9,2026-01-04 02:15,10
M1,2026-01-04 02:30
"""


def test_bad_readings_are_reported_with_line_numbers_and_nothing_is_stored(crm):
    mill(crm)
    with pytest.raises(ReadingsRejected) as err:
        readings.import_readings(crm, BAD, source="bad.csv")
    lines = dict(err.value.errors)
    assert "negative kwh -2.5" in lines[3]
    assert "duplicate timestamp 2026-01-04 00:30" in lines[5] and "first on line 4" in lines[5]
    assert "gap for meter M1: 3 reading(s) missing" in lines[6]
    assert "is not an ISO date" in lines[7]
    assert "'ten' is not a number" in lines[8]
    assert "not on the 15-minute grid" in lines[9]
    assert "unknown meter 'M9'" in lines[10]
    assert "2 fields; expected 3" in lines[11]
    assert str(err.value).startswith("bad.csv: ")
    assert "nothing stored" in str(err.value)
    assert _count(crm) == 0
    # one bad value rejects the whole file, and is reported once (not also as a gap)
    text = csv_text("M1", DAY, two_level).replace("2026-01-04 12:00,25.000", "2026-01-04 12:00,-1")
    with pytest.raises(ReadingsRejected) as err:
        readings.import_readings(crm, text)
    assert err.value.errors == [(50, "negative kwh -1")]
    assert _count(crm) == 0
    # stored readings are never replaced by a second import
    readings.import_readings(crm, csv_text("M1", DAY, two_level))
    with pytest.raises(ReadingsRejected, match="already has a reading at 2026-01-04 00:00"):
        readings.import_readings(crm, csv_text("M1", DAY, lambda t: 1.0))
    assert _count(crm) == 96 and readings.day_stats(crm, "M1", DAY)["peak_kw"] == 400.0
    # header, empty file, an interval that is neither 15 nor 60 minutes
    with pytest.raises(ReadingsRejected, match="line 1: header"):
        readings.import_readings(crm, "meter,when,energy\nM1,2026-01-04 00:00,1\n")
    with pytest.raises(ValidationError, match="empty file"):
        readings.import_readings(crm, "")
    with pytest.raises(ReadingsRejected, match="every 30 minutes; expected 15 or 60"):
        readings.import_readings(
            crm, csv_text("M1", DAY + dt.timedelta(days=1), lambda t: 10.0, step=30)
        )
    with pytest.raises(
        ReadingsRejected, match="every 60 minutes, but its stored readings are every 15"
    ):
        readings.import_readings(
            crm, csv_text("M1", DAY + dt.timedelta(days=1), two_level, step=60)
        )
    assert _count(crm) == 96


def _png_pixels(data: bytes) -> tuple[int, int, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    w = h = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            w, h = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return w, h, zlib.decompress(idat)


def test_cli_import_and_export_as_csv_svg_and_png(crm, crm_cli, tmp_path):
    mill(crm)
    path = tmp_path / "bad.csv"
    path.write_text(BAD, encoding="utf-8")
    r = crm_cli("utility", "readings", "import", str(path), "--json")
    assert r.exit_code == 1
    data = r.json()
    assert data["stored"] == 0
    assert {e["line"] for e in data["errors"]} == {3, 5, 6, 7, 8, 9, 10, 11}
    human = crm_cli("utility", "readings", "import", str(path))
    assert human.exit_code == 1 and "line 3: negative kwh -2.5" in human.stderr
    good = tmp_path / "good.csv"
    good.write_text(csv_text("M1", DAY, two_level), encoding="utf-8")
    ok = crm_cli("utility", "readings", "import", str(good), "--json")
    assert ok.exit_code == 0 and ok.json()["stored"] == 96
    day = crm_cli("utility", "day", "M1", "2026-01-04", "--json").json()
    assert day["peak_kw"] == 400.0 and len(day["curve"]) == 96
    assert (
        crm_cli(
            "utility", "days", "M1", "--from", "2026-01-01", "--to", "2026-01-31", "--json"
        ).json()[0]["load_factor"]
        == day["load_factor"]
    )
    r = crm_cli("utility", "export", "M1", "2026-01-04", "--format", "csv", "--out", "-")
    assert r.exit_code == 0
    rows = r.stdout.splitlines()
    assert rows[0] == "meter_no,at,kwh,kw,kvarh" and len(rows) == 97
    assert rows[33] == "M1,2026-01-04 08:00,100.000,400.000,"
    svg_path = tmp_path / "c.svg"
    r = crm_cli(
        "utility", "export", "M1", "2026-01-04", "--format", "svg", "--out", str(svg_path), "--json"
    )
    assert r.exit_code == 0 and r.json()["points"] == 96
    doc = minidom.parse(str(svg_path))
    poly = doc.getElementsByTagName("polyline")[0].getAttribute("points").split()
    assert len(poly) == 96
    assert "peak 400 kW 08:00" in svg_path.read_text(encoding="utf-8")
    png_path = tmp_path / "c.png"
    r = crm_cli("utility", "export", "M1", "2026-01-04", "--format", "png", "--out", str(png_path))
    assert r.exit_code == 0
    w, h, raw = _png_pixels(png_path.read_bytes())
    assert (w, h) == (800, 360) and len(raw) == h * (1 + 3 * w)
    assert bytes((31, 95, 191)) in raw  # the curve's colour was drawn


def test_readings_of_another_reps_customer_are_invisible(crm):
    staff(crm)
    mill(crm, owner="chen")
    readings.import_readings(crm, csv_text("M1", DAY, two_level))
    zhang = crm.as_("zhang")
    with pytest.raises(NotFound):
        readings.day_stats(zhang, "M1", DAY)
    with pytest.raises(ReadingsRejected, match="unknown meter 'M1'"):
        readings.import_readings(zhang, csv_text("M1", DAY + dt.timedelta(days=1), two_level))
    assert readings.day_stats(crm.as_("chen"), "M1", DAY)["readings"] == 96


def test_cli_export_file_is_private_and_never_written_through_a_link(crm, crm_cli, tmp_path):
    mill(crm)
    readings.import_readings(crm, csv_text("M1", DAY, two_level))
    out = tmp_path / "curve.csv"
    r = crm_cli("utility", "export", "M1", "2026-01-04", "--out", str(out))
    assert r.exit_code == 0 and (out.stat().st_mode & 0o777) == 0o600
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "link.csv"
    link.symlink_to(victim)
    r = crm_cli("utility", "export", "M1", "2026-01-04", "--out", str(link))
    assert r.exit_code == 1 and "symbolic link" in r.stderr
    assert victim.read_text() == "precious"
