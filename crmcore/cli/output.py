"""Output for people and for programs, shared by the core's and the plugins' commands.

- :func:`to_json`: the one JSON encoder of the command line. It refuses NaN and
  infinities (which ``JSON.parse`` and most readers reject) with a clear error
  naming where the value sits, instead of printing invalid JSON.
- :func:`table`: rows under column headers, columns as wide as their content,
  over-long cells cut and marked with an ellipsis, numbers aligned right;
  wide (CJK) characters count two columns.
- :func:`key_values`: ``key: value`` lines, keys aligned.
- :func:`showing`: the "showing 1-50 of 19,927; --limit/--offset for more" line
  under a list that was cut.
- :func:`style`: colour and bold only when writing to a terminal and ``NO_COLOR``
  is not set (https://no-color.org), so piped output stays plain text.
"""

from __future__ import annotations

import json
import math
import os
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

import click

from crmcore.errors import CRMError

ELLIPSIS = "…"
DEFAULT_MAX_WIDTH = 32


class NonFiniteOutput(CRMError):
    """A result to print as JSON holds NaN or an infinity (not valid JSON)."""


def _non_finite_path(value: Any, path: str = "") -> str | None:
    """Where in ``value`` the first NaN or infinity is (``customers.12.p_alive``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "(top level)"
    if isinstance(value, Mapping):
        for k, v in value.items():
            found = _non_finite_path(v, f"{path}.{k}" if path else str(k))
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = _non_finite_path(v, f"{path}.{i}" if path else str(i))
            if found:
                return found
    return None


def to_json(data: Any, *, indent: int | None = 2) -> str:
    """``data`` (already plain: dicts, lists, strings, numbers) as JSON text.

    NaN and infinities are refused with :class:`NonFiniteOutput`: printing
    them would give text that is not JSON."""
    try:
        return json.dumps(data, ensure_ascii=False, indent=indent, allow_nan=False)
    except ValueError as e:
        where = _non_finite_path(data)
        if where is None:
            raise
        raise NonFiniteOutput(
            f"result value at {where} is not a finite number (NaN or infinity); "
            "refusing to print invalid JSON"
        ) from e


# -- colour --------------------------------------------------------------------
def color_enabled(stream: IO[str] | None = None) -> bool:
    """Colour only on a terminal, and never when the ``NO_COLOR`` variable is set."""
    if os.environ.get("NO_COLOR"):
        return False
    stream = stream if stream is not None else sys.stdout
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def style(text: str, *, fg: str | None = None, bold: bool = False, err: bool = False) -> str:
    """``text`` in colour/bold when the output (stdout, or stderr with ``err``)
    is a terminal that may have colour; unchanged otherwise."""
    if not color_enabled(sys.stderr if err else sys.stdout):
        return text
    return click.style(text, fg=fg, bold=bold)


# -- text width ------------------------------------------------------------------
def width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide East Asian characters take two)."""
    if text.isascii():
        return len(text)
    return sum(
        0
        if unicodedata.combining(ch)
        else 2
        if unicodedata.east_asian_width(ch) in ("W", "F")
        else 1
        for ch in text
    )


def truncate(text: str, max_width: int) -> str:
    """``text`` cut to ``max_width`` columns, the cut marked with an ellipsis."""
    if width(text) <= max_width:
        return text
    out, used = [], 0
    for ch in text:
        w = width(ch)
        if used + w > max_width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + ELLIPSIS


def _pad(text: str, size: int, right: bool) -> str:
    gap = " " * max(size - width(text), 0)
    return gap + text if right else text + gap


def cell(value: Any) -> str:
    """A value as table text: ``-`` for nothing, ``yes``/``no`` for flags, one line."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return " ".join(str(value).split())


def table(
    rows: Iterable[Sequence[Any]],
    headers: Sequence[str],
    *,
    max_width: int | Mapping[str, int] = DEFAULT_MAX_WIDTH,
    empty: str = "nothing to show",
) -> str:
    """Rows as an aligned text table under ``headers``.

    Each column is as wide as its widest cell, at most ``max_width`` columns
    (one number for all, or per header); a longer cell ends in an ellipsis.
    Columns whose every value is a number (int or float) are aligned right. ``empty`` is
    printed when there are no rows."""
    raw = [list(row) for row in rows]
    body = [[cell(v) for v in row] for row in raw]
    if not body:
        return empty
    limits = [
        max_width.get(h, DEFAULT_MAX_WIDTH) if isinstance(max_width, Mapping) else max_width
        for h in headers
    ]
    body = [[truncate(v, limits[i]) for i, v in enumerate(row)] for row in body]
    sizes = [max([width(h)] + [width(row[i]) for row in body]) for i, h in enumerate(headers)]
    numeric = [
        all(v is None or (_is_number(v)) for v in (row[i] for row in raw))
        and any(v is not None for v in (row[i] for row in raw))
        for i in range(len(headers))
    ]
    head = "  ".join(_pad(h, sizes[i], numeric[i]) for i, h in enumerate(headers)).rstrip()
    lines = [style(head, bold=True)]
    for row in body:
        lines.append("  ".join(_pad(v, sizes[i], numeric[i]) for i, v in enumerate(row)).rstrip())
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def key_values(pairs: Iterable[tuple[str, Any]] | Mapping[str, Any], *, indent: int = 0) -> str:
    """``key: value`` lines with the values aligned."""
    items = list(pairs.items() if isinstance(pairs, Mapping) else pairs)
    if not items:
        return ""
    size = max(width(k) for k, _ in items) + 1
    pad = " " * indent
    return "\n".join(f"{pad}{_pad(k + ':', size, False)} {cell(v)}" for k, v in items)


def showing(shown: int, total: int, *, offset: int = 0, hint: str = "--limit/--offset") -> str:
    """The line under a list: what part of how many is shown, and how to see more.

    ``showing 1-50 of 19,927; --limit/--offset for more``; ``showing all 12``."""
    if total <= shown and offset == 0:
        return f"showing all {total:,}"
    if shown == 0:
        return f"showing none of {total:,} (offset {offset:,}); {hint} for others"
    return f"showing {offset + 1:,}-{offset + shown:,} of {total:,}; {hint} for more"


def _words(key: Any) -> str:
    return str(key).replace("_", " ")


def summary_text(data: Any, *, depth: int = 0) -> str:
    """A result mapping as one readable line: ``created 2, already reminded 1,
    classes: A (customers 1, spend share 0.89)``. Lists of records are counted,
    short lists of values listed; nothing is printed as a Python repr."""
    if isinstance(data, Mapping):
        if not data:
            return "nothing"
        parts = []
        for k, v in data.items():
            if isinstance(v, Mapping):
                inner = summary_text(v, depth=depth + 1)
                parts.append(f"{_words(k)}: {inner}" if depth == 0 else f"{_words(k)} ({inner})")
            else:
                parts.append(f"{_words(k)} {summary_text(v, depth=depth + 1)}")
        return (
            "; " if depth == 1 and all(isinstance(v, Mapping) for v in data.values()) else ", "
        ).join(parts)
    if isinstance(data, list | tuple):
        if not data:
            return "none"
        if all(not isinstance(v, Mapping | list | tuple) for v in data) and len(data) <= 5:
            return ", ".join(cell(v) for v in data)
        return f"{len(data):,} item{'s' if len(data) != 1 else ''}"
    return cell(data)
