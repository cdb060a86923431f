"""Parsing and cleaning what people type: one set of rules for the core and every plugin.

Each function takes the text and the ``field`` it came from (an option such as
``--due``, or a column name) and returns the value, or raises
:class:`~crmcore.errors.ValidationError` with one line naming the field:

- :func:`parse_money` / :func:`format_money`: yuan text such as ``1234.50`` to
  integer cents and back (two decimals, thousands separated);
- :func:`parse_datetime` / :func:`parse_date`: ISO dates and date-times in
  1900-01-01 .. 2999-12-31, a zone offset converted to naive local time;
- :func:`parse_int`: a whole number within bounds (64-bit by default);
- :func:`parse_number`: a finite decimal number within bounds;
- :func:`clean_text`: free text, stripped, length-limited, without terminal
  escapes or other control characters;
- :func:`clean_key`: a short identifier (staff key, code): visible ASCII only.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from typing import Any

from crmcore.errors import ValidationError

MAX_CENTS = 10**13  # a hundred billion yuan: anything larger is a typing error
INT64 = (-(2**63), 2**63 - 1)
FIRST_DAY = dt.datetime(1900, 1, 1)
LAST_DAY = dt.datetime(2999, 12, 31, 23, 59, 59, 999999)
MAX_TEXT = 2000  # default length limit of free text
SHOWN = 40  # characters of a refused value quoted in an error

_MONEY = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]*))?", re.ASCII)
_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?", re.ASCII)
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]*", re.ASCII)
# Unicode format characters (zero-width, bidirectional overrides) and other
# invisible controls: they make text display as something it is not.
_INVISIBLE = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def _shown(text: Any) -> str:
    value = text if isinstance(text, str) else repr(text)
    return repr(value[:SHOWN] + ("..." if len(value) > SHOWN else ""))


def _require_text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{field}: expected text, got {type(value).__name__}")
    return value.strip()


# -- money ----------------------------------------------------------------------------
def parse_money(text: Any, *, field: str, allow_negative: bool = False) -> int:
    """Yuan text (``12``, ``12.5``, ``-3.40``) -> integer cents, exactly.

    Only ASCII digits with an optional sign and at most two decimals (more are
    allowed only as trailing zeros): no exponents, ``nan``/``inf``, thousands
    separators or full-width digits. A negative amount is refused unless
    ``allow_negative``; the error quotes it in yuan, as typed."""
    raw = _require_text(text, field)
    m = _MONEY.fullmatch(raw)
    if m is None:
        raise ValidationError(f"{field}: {_shown(raw)} is not a decimal number like 12.34")
    sign, whole, frac = m.groups()
    frac = frac or ""
    if len(frac) > 2 and frac[2:].strip("0"):
        raise ValidationError(f"{field}: {_shown(raw)} has more than 2 decimal places")
    if len(whole) > 16:
        raise ValidationError(f"{field}: {_shown(raw)} yuan is out of range")
    cents = int(whole) * 100 + int(frac[:2].ljust(2, "0"))
    if cents > MAX_CENTS:
        raise ValidationError(
            f"{field}: {raw} yuan is out of range (at most {format_money(MAX_CENTS)})"
        )
    if sign == "-" and cents:
        if not allow_negative:
            raise ValidationError(f"{field}: {raw} yuan is negative; give a positive amount")
        return -cents
    return cents


def format_money(cents: int | None) -> str:
    """Integer cents -> yuan with two decimals and thousands separators
    (``123456`` -> ``1,234.56``); ``-`` for None. Exact (no float)."""
    if cents is None:
        return "-"
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(int(cents)), 100)
    return f"{sign}{whole:,}.{frac:02d}"


# -- dates ----------------------------------------------------------------------------
def parse_datetime(text: Any, *, field: str, zone: dt.tzinfo | None = None) -> dt.datetime:
    """An ISO date or date-time -> a naive local datetime.

    A date alone is midnight. A zone offset (``2026-01-31T09:30+08:00``) is
    converted to the local time of ``zone`` (default: this machine's zone) and
    dropped. Accepted: 1900-01-01 to 2999-12-31, so that any date arithmetic on
    the result stays inside the calendar."""
    if isinstance(text, dt.datetime):
        value = text
    elif isinstance(text, dt.date):
        value = dt.datetime.combine(text, dt.time())
    else:
        raw = _require_text(text, field)
        example = "(e.g. 2026-01-31 or 2026-01-31T09:30)"
        if not raw.isascii():
            raise ValidationError(
                f"{field}: {_shown(raw)} is not an ISO date or date-time {example}"
            )
        try:
            value = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise ValidationError(
                f"{field}: {_shown(raw)} is not an ISO date or date-time {example}"
            ) from None
    if value.tzinfo is not None:
        try:
            value = value.astimezone(zone).replace(tzinfo=None)
        except (OverflowError, ValueError, OSError):
            value = dt.datetime.max  # refused just below, with the range
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValidationError(
            f"{field}: {_shown(text if isinstance(text, str) else value.isoformat())} "
            f"is out of range ({FIRST_DAY:%Y-%m-%d} to {LAST_DAY:%Y-%m-%d})"
        )
    return value


def parse_date(text: Any, *, field: str, zone: dt.tzinfo | None = None) -> dt.date:
    """An ISO date (``2026-01-31``) -> a date; a date-time is accepted only at
    midnight, in the same range as :func:`parse_datetime`."""
    if isinstance(text, dt.date) and not isinstance(text, dt.datetime):
        value = dt.datetime.combine(text, dt.time())
    else:
        value = parse_datetime(text, field=field, zone=zone)
    if value.time() != dt.time():
        raise ValidationError(
            f"{field}: {_shown(text)} is a date-time; give a date (e.g. 2026-01-31)"
        )
    return value.date()


# -- numbers --------------------------------------------------------------------------
def parse_int(text: Any, *, field: str, min: int | None = None, max: int | None = None) -> int:
    """A whole number in ASCII digits (optional sign) within ``min`` .. ``max``
    (both default to the 64-bit range a database column holds)."""
    if isinstance(text, bool):
        raise ValidationError(f"{field}: expected a whole number, got {text!r}")
    if isinstance(text, int):
        value = text
    else:
        raw = _require_text(text, field)
        if _INT.fullmatch(raw) is None:
            raise ValidationError(f"{field}: {_shown(raw)} is not a whole number")
        # beyond 30 digits it is out of any range: no need to convert it
        value = int(raw) if len(raw) <= 30 else (-1 if raw[0] == "-" else 1) * 10**30
    low = INT64[0] if min is None else min
    high = INT64[1] if max is None else max
    if not low <= value <= high:
        shown = _shown(text if isinstance(text, str) else str(value))
        raise ValidationError(f"{field}: {shown} is out of range ({low} to {high})")
    return value


def parse_number(
    text: Any, *, field: str, min: float | None = None, max: float | None = None
) -> float:
    """A finite decimal number in ASCII (``2.5``, ``-1``, ``1e3``) within
    ``min`` .. ``max``: never ``nan`` or ``inf``, nor one that overflows to it."""
    if isinstance(text, bool):
        raise ValidationError(f"{field}: expected a number, got {text!r}")
    if isinstance(text, int | float):
        value = float(text)
    else:
        raw = _require_text(text, field)
        if _NUMBER.fullmatch(raw) is None:
            raise ValidationError(f"{field}: {_shown(raw)} is not a number like 2.5")
        value = float(raw)
    if not math.isfinite(value):
        raise ValidationError(f"{field}: {_shown(text)} is not a finite number")
    if (min is not None and value < min) or (max is not None and value > max):
        low = "" if min is None else f"at least {min:g}"
        high = "" if max is None else f"at most {max:g}"
        raise ValidationError(
            f"{field}: {_shown(text)} is out of range ({', '.join(p for p in (low, high) if p)})"
        )
    return value


# -- text -----------------------------------------------------------------------------
def clean_text(
    text: Any,
    *,
    field: str,
    max_len: int = MAX_TEXT,
    multiline: bool = False,
    required: bool = True,
) -> str | None:
    """Free text, stripped: at most ``max_len`` characters, no control or
    invisible formatting characters (terminal escapes, NUL, zero-width and
    bidirectional marks); newlines and tabs only when ``multiline``.

    Empty or None is refused when ``required``, else returned as None."""
    if text is None or (isinstance(text, str) and not text.strip()):
        if required:
            raise ValidationError(f"{field}: required")
        return None
    value = _require_text(text, field)
    if len(value) > max_len:
        raise ValidationError(f"{field}: {len(value)} characters; at most {max_len}")
    allowed = "\n\t" if multiline else ""
    if multiline:
        value = value.replace("\r\n", "\n")
    if value.isprintable():  # the common case: no control character at all
        return value
    for ch in value:
        if ch not in allowed and unicodedata.category(ch) in _INVISIBLE:
            raise ValidationError(
                f"{field}: contains control characters (U+{ord(ch):04X}"
                + (", a line break: one line of text expected)" if ch in "\r\n" else ")")
            )
    return value


def clean_key(text: Any, *, field: str, max_len: int = 64) -> str:
    """A short identifier (staff key, code, channel name): visible ASCII letters,
    digits and ``_ . @ + -``, starting with a letter or digit."""
    value = _require_text(text, field)
    if not value:
        raise ValidationError(f"{field}: required")
    if len(value) > max_len:
        raise ValidationError(f"{field}: {len(value)} characters; at most {max_len}")
    if _KEY.fullmatch(value) is None:
        raise ValidationError(
            f"{field}: {_shown(value)} may hold only ASCII letters, digits and _ . @ + -"
        )
    return value
