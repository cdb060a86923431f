"""One day's load curve as an SVG chart and as a PNG, written by hand (no
plotting library): SVG is text; the PNG is rasterised here and encoded with
``zlib`` and ``struct`` from the standard library."""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any
from xml.sax.saxutils import escape

W, H = 800, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 20, 36, 64
PLOT_W, PLOT_H = W - LEFT - RIGHT, H - TOP - BOTTOM
BAND_FILL = {"peak": "#fde2e1", "valley": "#e1ecfd"}
BAND_RGB = {"peak": (253, 226, 225), "valley": (225, 236, 253)}


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * exp >= value:
            return m * exp
    return 10 * exp


def _geometry(stats: dict[str, Any]) -> tuple[float, list[tuple[float, float]]]:
    ymax = _nice_max(max(c["kw"] for c in stats["curve"]) * 1.05)
    step = stats["interval_minutes"]
    pts = []
    for c in stats["curve"]:
        minute = c["at"].hour * 60 + c["at"].minute + step / 2  # plot at the interval's middle
        x = LEFT + PLOT_W * minute / 1440
        y = TOP + PLOT_H * (1 - c["kw"] / ymax)
        pts.append((x, y))
    return ymax, pts


def _bands(crm: Any) -> list[tuple[str, float, float]]:
    from crm_utility.config import cfg, parse_periods

    t = cfg(crm)["tariffs"]
    out = []
    for band in ("peak", "valley"):
        for a, b in parse_periods(t[f"{band}_periods"]):
            out.append((band, LEFT + PLOT_W * a / 1440, LEFT + PLOT_W * b / 1440))
    return out


def _fmt(v: float, sep: str = ",") -> str:
    text = f"{v:,.0f}" if v >= 100 or v == 0 else f"{v:,.1f}" if v >= 10 else f"{v:,.2f}"
    return text.replace(",", sep)


def svg(crm: Any, stats: dict[str, Any]) -> str:
    ymax, pts = _geometry(stats)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">'
        f"{escape(stats['meter_no'])} {stats['day']}: load curve (kW, {stats['interval_minutes']}-minute)"
        "</text>",
    ]
    for band, x0, x1 in _bands(crm):
        out.append(
            f'<rect x="{x0:.1f}" y="{TOP}" width="{x1 - x0:.1f}" height="{PLOT_H}" '
            f'fill="{BAND_FILL[band]}"><title>{band}</title></rect>'
        )
    for i in range(6):
        v = ymax * i / 5
        y = TOP + PLOT_H * (1 - i / 5)
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#dddddd"/>'
        )
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    for h in range(0, 25, 3):
        x = LEFT + PLOT_W * h / 24
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + PLOT_H}" stroke="#eeeeee"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{TOP + PLOT_H + 16}" text-anchor="middle">{h:02d}:00</text>'
        )
    out.append(
        f'<line x1="{LEFT}" y1="{TOP + PLOT_H}" x2="{W - RIGHT}" y2="{TOP + PLOT_H}" stroke="#000000"/>'
    )
    out.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + PLOT_H}" stroke="#000000"/>')
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    out.append(f'<polyline points="{points}" fill="none" stroke="#1f5fbf" stroke-width="2"/>')
    for key, colour, label in (("peak", "#c0392b", "peak"), ("valley", "#1e8449", "valley")):
        i = next(j for j, c in enumerate(stats["curve"]) if c["at"] == stats[f"{key}_at"])
        x, y = pts[i]
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
        out.append(
            f'<text x="{x + 6:.1f}" y="{y - 6:.1f}" fill="{colour}">{label} '
            f"{_fmt(stats[f'{key}_kw'])} kW {stats[f'{key}_at']:%H:%M}</text>"
        )
    lf = stats["load_factor"]
    pv = stats["peak_valley_ratio"]
    pf = stats["power_factor"]
    foot = (
        f"average {_fmt(stats['average_kw'])} kW · load factor {'-' if lf is None else f'{lf:.2f}'} · "
        f"peak-valley ratio {'-' if pv is None else f'{pv:.2f}'} · "
        f"power factor {'-' if pf is None else f'{pf:.2f}'} · {stats['total_kwh']:,.1f} kWh"
        + ("" if stats["complete"] else f" · INCOMPLETE ({stats['readings']}/{stats['expected']})")
    )
    out.append(f'<text x="{LEFT}" y="{H - 14}">{escape(foot)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# -- PNG ------------------------------------------------------------------------------
# 3x5 digits for axis labels (rows top to bottom, 3 bits each)
_FONT = {
    "0": (7, 5, 5, 5, 7),
    "1": (2, 6, 2, 2, 7),
    "2": (7, 1, 7, 4, 7),
    "3": (7, 1, 7, 1, 7),
    "4": (5, 5, 7, 1, 1),
    "5": (7, 4, 7, 1, 7),
    "6": (7, 4, 7, 5, 7),
    "7": (7, 1, 1, 1, 1),
    "8": (7, 5, 7, 5, 7),
    "9": (7, 5, 7, 1, 7),
    ":": (0, 2, 0, 2, 0),
    ".": (0, 0, 0, 0, 2),
    ",": (0, 0, 0, 2, 4),
    "-": (0, 0, 7, 0, 0),
}


class _Canvas:
    def __init__(self, w: int, h: int) -> None:
        self.w, self.h = w, h
        self.px = bytearray(b"\xff" * (w * h * 3))

    def set(self, x: int, y: int, rgb: tuple[int, int, int]) -> None:
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            self.px[i : i + 3] = bytes(rgb)

    def rect(self, x0: float, y0: float, x1: float, y1: float, rgb: tuple[int, int, int]) -> None:
        for y in range(int(y0), int(y1)):
            for x in range(int(x0), int(x1)):
                self.set(x, y, rgb)

    def line(
        self, x0: float, y0: float, x1: float, y1: float, rgb: tuple[int, int, int], width: int = 1
    ) -> None:
        steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        r = width // 2
        for s in range(steps + 1):
            t = s / steps
            x, y = round(x0 + (x1 - x0) * t), round(y0 + (y1 - y0) * t)
            for dx in range(-r, width - r):
                for dy in range(-r, width - r):
                    self.set(x + dx, y + dy, rgb)

    def text(self, x: int, y: int, s: str, rgb: tuple[int, int, int], scale: int = 2) -> None:
        for ch in s:
            rows = _FONT.get(ch)
            if rows is not None:
                for ry, bits in enumerate(rows):
                    for rx in range(3):
                        if bits & (4 >> rx):
                            self.rect(
                                x + rx * scale,
                                y + ry * scale,
                                x + (rx + 1) * scale,
                                y + (ry + 1) * scale,
                                rgb,
                            )
            x += 4 * scale

    def png(self) -> bytes:
        raw = b"".join(
            b"\x00" + bytes(self.px[y * self.w * 3 : (y + 1) * self.w * 3]) for y in range(self.h)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            return (
                struct.pack(">I", len(data))
                + kind
                + data
                + struct.pack(">I", zlib.crc32(kind + data))
            )

        header = struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def png(crm: Any, stats: dict[str, Any]) -> bytes:
    """The same chart as :func:`svg` without the title and footer text (the PNG
    has digits only): tariff bands, grid, axes with kW and hour labels, the
    curve, peak (red) and valley (green) markers."""
    ymax, pts = _geometry(stats)
    c = _Canvas(W, H)
    for band, x0, x1 in _bands(crm):
        c.rect(x0, TOP, x1, TOP + PLOT_H, BAND_RGB[band])
    for i in range(6):
        y = TOP + PLOT_H * (1 - i / 5)
        c.line(LEFT, y, W - RIGHT, y, (221, 221, 221))
        label = _fmt(ymax * i / 5, sep="")
        c.text(LEFT - 8 - len(label) * 8, int(y) - 5, label, (0, 0, 0))
    for h in range(0, 25, 3):
        x = LEFT + PLOT_W * h / 24
        c.line(x, TOP, x, TOP + PLOT_H, (238, 238, 238))
        c.text(int(x) - 19, TOP + PLOT_H + 8, f"{h:02d}:00", (0, 0, 0))
    c.line(LEFT, TOP + PLOT_H, W - RIGHT, TOP + PLOT_H, (0, 0, 0))
    c.line(LEFT, TOP, LEFT, TOP + PLOT_H, (0, 0, 0))
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        c.line(x0, y0, x1, y1, (31, 95, 191), width=2)
    for key, rgb in (("peak", (192, 57, 43)), ("valley", (30, 132, 73))):
        i = next(j for j, p in enumerate(stats["curve"]) if p["at"] == stats[f"{key}_at"])
        x, y = pts[i]
        c.rect(x - 4, y - 4, x + 5, y + 5, rgb)
    return c.png()
