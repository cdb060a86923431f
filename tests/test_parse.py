"""crmcore.parse: every parser either returns the exact value or refuses with one
line naming the field — for any input (property-based) and at the edges."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore import ValidationError
from crmcore.parse import (
    LAST_DAY,
    MAX_CENTS,
    clean_key,
    clean_text,
    format_money,
    parse_date,
    parse_datetime,
    parse_int,
    parse_money,
    parse_number,
)

SETTINGS = settings(max_examples=300, deadline=None)
anything = st.one_of(
    st.text(max_size=60),
    st.from_regex(r"\A[+-]?[0-9]{0,20}(\.[0-9]{0,4})?([eE][+-]?[0-9]{1,4})?\Z"),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e309", "１２", "١٢", "²", "1,000.00", " "]),
    st.none(),
    st.integers(),
    st.floats(),
)


def refused(fn, value, field: str) -> str:
    with pytest.raises(ValidationError) as e:
        fn(value, field=field)
    message = str(e.value)
    assert message.startswith(f"{field}: ") and "\n" not in message
    return message


# -- money ----------------------------------------------------------------------------
@SETTINGS
@given(cents=st.integers(min_value=-MAX_CENTS, max_value=MAX_CENTS))
def test_money_round_trips_through_the_formatter(cents):
    shown = format_money(cents)
    assert shown.endswith(f".{abs(cents) % 100:02d}")
    assert parse_money(shown.replace(",", ""), field="amount", allow_negative=True) == cents


@SETTINGS
@given(text=anything)
def test_money_is_exact_or_refused_naming_the_field(text):
    try:
        cents = parse_money(text, field="--amount")
    except ValidationError as e:
        assert str(e).startswith("--amount: ") and "\n" not in str(e)
        return
    assert isinstance(cents, int) and 0 <= cents <= MAX_CENTS
    whole, _, frac = text.strip().lstrip("+").partition(".")
    assert cents == int(whole) * 100 + int((frac[:2] or "0").ljust(2, "0"))


@pytest.mark.parametrize(
    "text", ["1e2", "１２", "١٢", "1,000.00", "nan", "inf", "-inf", "1e309", "12.345", "", "0x10"]
)
def test_money_refuses_what_the_importer_refuses(text):
    refused(parse_money, text, "--amount")


def test_money_limits_and_negative_amounts_speak_yuan():
    assert parse_money("12.3", field="x") == 1230
    assert parse_money("12.3400", field="x") == 1234
    assert parse_money("-0", field="x") == 0
    assert "-5 yuan is negative" in refused(parse_money, "-5", "--amount")
    assert parse_money("-5", field="x", allow_negative=True) == -500
    assert "out of range" in refused(parse_money, "100000000001", "--amount")
    assert "out of range" in refused(parse_money, "9" * 400, "--amount")
    assert format_money(MAX_CENTS) == "100,000,000,000.00"
    assert format_money(-5) == "-0.05" and format_money(None) == "-"


# -- dates ----------------------------------------------------------------------------
@SETTINGS
@given(when=st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=LAST_DAY))
def test_datetime_round_trips(when):
    assert parse_datetime(when.isoformat(), field="--at") == when
    assert parse_date(when.date().isoformat(), field="--day") == when.date()


@SETTINGS
@given(text=anything)
def test_datetime_is_in_range_or_refused_naming_the_field(text):
    try:
        value = parse_datetime(text, field="--due")
    except ValidationError as e:
        assert str(e).startswith("--due: ") and "\n" not in str(e)
        return
    assert dt.datetime(1900, 1, 1) <= value <= LAST_DAY and value.tzinfo is None


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31",
        "0001-01-01",
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00+14:00",
        "1899-12-31T23:59",
        "3000-01-01",
        "2026-13-01",
        "２０２６-01-01",
        "tomorrow",
    ],
)
def test_dates_at_the_ends_of_the_calendar_are_refused(text):
    refused(parse_datetime, text, "--due")


def test_zones_are_converted_to_local_time_and_dates_must_be_dates():
    utc8 = dt.timezone(dt.timedelta(hours=8))
    assert parse_datetime("2026-01-31T09:30+00:00", field="x", zone=utc8) == dt.datetime(
        2026, 1, 31, 17, 30
    )
    assert "is a date-time" in refused(parse_date, "2026-01-31T09:30", "--from")
    assert parse_date("2026-01-31T00:00", field="x") == dt.date(2026, 1, 31)


# -- numbers --------------------------------------------------------------------------
@SETTINGS
@given(n=st.integers(min_value=-(2**70), max_value=2**70))
def test_int_is_exact_within_64_bits_or_refused(n):
    if -(2**63) <= n < 2**63:
        assert parse_int(str(n), field="--limit") == n
    else:
        assert "out of range" in refused(parse_int, str(n), "--limit")


@SETTINGS
@given(text=anything)
def test_int_is_refused_naming_the_option(text):
    try:
        value = parse_int(text, field="--limit", min=1)
    except ValidationError as e:
        assert str(e).startswith("--limit: ") and "\n" not in str(e)
        return
    assert 1 <= value < 2**63


def test_int_edges():
    assert "out of range" in refused(parse_int, "9" * 5000, "--limit")
    assert "not a whole number" in refused(parse_int, "١٢", "--limit")
    assert "not a whole number" in refused(parse_int, "1.0", "--limit")
    assert "out of range (1 to" in refused(
        lambda v, field: parse_int(v, field=field, min=1), "0", "--limit"
    )


@SETTINGS
@given(x=st.floats(allow_nan=False, allow_infinity=False))
def test_number_round_trips(x):
    assert parse_number(repr(x), field="--grace-days") == x


@SETTINGS
@given(text=anything)
def test_number_is_finite_or_refused(text):
    try:
        value = parse_number(text, field="--horizon")
    except ValidationError as e:
        assert str(e).startswith("--horizon: ") and "\n" not in str(e)
        return
    assert math.isfinite(value)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e309", "Infinity", "１"])
def test_number_refuses_non_finite(text):
    refused(parse_number, text, "--grace-days")


# -- text -----------------------------------------------------------------------------
@SETTINGS
@given(text=st.text(max_size=80))
def test_clean_text_keeps_text_exactly_or_refuses(text):
    try:
        value = clean_text(text, field="--text", max_len=50, multiline=True)
    except ValidationError as e:
        assert str(e).startswith("--text: ") and "\n" not in str(e)
        return
    assert value == text.strip().replace("\r\n", "\n")
    assert len(value) <= 50
    assert "\x1b" not in value and "\x00" not in value and "\u202e" not in value


@pytest.mark.parametrize(
    "text",
    ["red \x1b[31malert", "bell\x07", "nul\x00", "zero\u200bwidth", "rtl \u202eevil", "a\nb"],
)
def test_one_line_text_refuses_escapes_and_invisible_characters(text):
    assert "control characters" in refused(clean_text, text, "--name")


def test_text_limits():
    assert "at most 2000" in refused(clean_text, "x" * 10_000_000, "--text")
    assert clean_text("two\nlines\tand a tab", field="x", multiline=True) == "two\nlines\tand a tab"
    assert clean_text("  Wu Fang 吴芳  ", field="x") == "Wu Fang 吴芳"
    assert clean_text(None, field="x", required=False) is None
    assert "required" in refused(clean_text, "  ", "--name")


@SETTINGS
@given(text=st.text(max_size=40))
def test_clean_key_is_visible_ascii_or_refused(text):
    try:
        value = clean_key(text, field="staff key")
    except ValidationError as e:
        assert str(e).startswith("staff key: ") and "\n" not in str(e)
        return
    assert value == text.strip() and value.isascii() and value.isprintable() and " " not in value


@pytest.mark.parametrize("key", ["zh\u200bang", "\u202ezhang", "zhang\x1b", "zh ang", "张伟", ""])
def test_staff_keys_refuse_invisible_and_non_ascii_characters(key):
    refused(clean_key, key, "staff key")


@pytest.mark.crm(config={"crm": {"timezone": "Asia/Shanghai"}})
def test_an_offset_on_the_command_line_is_read_in_the_deployment_zone(crm, crm_cli):
    """``--at 2026-01-05T01:00+00:00`` is 09:00 in Shanghai, whatever the machine's zone."""
    c = crm.customers.add(name="Zone")
    out = crm_cli(
        "interaction",
        "add",
        str(c.id),
        "--kind",
        "call",
        "--text",
        "hi",
        "--at",
        "2026-01-05T01:00+00:00",
        "--json",
    )
    assert out.exit_code == 0, out
    assert out.json()["at"].startswith("2026-01-05T09:00")
