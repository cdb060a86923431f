"""Property-based: random and hostile input gets a clear error or is stored exactly —
never a crash with a traceback, never a partial write."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
import sqlalchemy as sa
from conftest import Loyalty
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRMError
from crmcore.config import from_dict
from crmcore.importer import import_transactions
from crmcore.schema import customers, inbound_messages, transactions

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SQL_BITS = ["'; DROP TABLE customers; --", '" OR 1=1 --', "%s", "?", "\\x00", "Robert'); --"]
hostile_text = st.one_of(
    st.text(max_size=400),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=31), max_size=20),
    st.sampled_from(SQL_BITS),
    st.text(min_size=300, max_size=2000),
)
anything = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.booleans(),
    hostile_text,
    st.lists(st.integers(), max_size=3),
    st.binary(max_size=20),
)
counter = itertools.count()


def n_rows(crm, table):
    with crm.transaction(write=False):
        return crm.db.scalar(sa.select(sa.func.count()).select_from(table))


@SETTINGS
@given(name=anything, phone=anything, email=anything, external_id=anything)
def test_customer_api_refuses_clearly_or_stores_exactly(crm, name, phone, email, external_id):
    before = n_rows(crm, customers)
    try:
        c = crm.customers.add(
            name, phone=phone, email=email, external_id=external_id, on_match="error"
        )
    except CRMError as e:
        assert str(e) and "\n" not in str(e)
        assert n_rows(crm, customers) == before
        return
    stored = crm.customers.get(c.id)
    assert stored.name == name.strip()
    assert stored == c
    assert n_rows(crm, customers) == before + 1


@SETTINGS
@given(amount=anything, when=st.one_of(st.datetimes(), anything))
def test_transaction_api(crm, amount, when):
    c = crm.customers.add(f"tx-{next(counter)}")
    before = n_rows(crm, transactions)
    try:
        t = crm.records.add_transaction(c, amount, occurred_at=when)
    except CRMError as e:
        assert "\n" not in str(e)
        assert n_rows(crm, transactions) == before
        return
    assert crm.records.transactions(c)[0].amount_cents == t.amount_cents == amount


@SETTINGS
@given(
    phone=hostile_text,
    text=st.one_of(hostile_text, anything),
    at=st.one_of(st.none(), st.datetimes(min_value=dt.datetime(1, 1, 1))),
)
def test_sms_receive(crm, phone, text, at):
    before = n_rows(crm, inbound_messages)
    try:
        result = crm.messages.receive_sms(phone, text, at=at)
    except CRMError as e:
        assert "\n" not in str(e)
        assert n_rows(crm, inbound_messages) == before
        return
    with crm.transaction(write=False):
        stored = crm.db.first(
            sa.select(inbound_messages).where(inbound_messages.c.id == result["id"])
        )
    assert stored.text == text.strip().replace("\r\n", "\n")


toml_values = st.recursive(
    st.one_of(st.integers(), st.text(max_size=20), st.booleans(), st.floats(allow_nan=False)),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    doc=st.dictionaries(
        st.sampled_from(["crm", "plugins", "other"]),
        st.dictionaries(
            st.sampled_from(
                [
                    "database",
                    "plugins",
                    "lifecycle",
                    "roles",
                    "country_code",
                    "outbox_max_attempts",
                    "x",
                ]
            ),
            toml_values,
            max_size=4,
        ),
        max_size=3,
    )
)
def test_config_loader_refuses_clearly(doc):
    try:
        from_dict(doc)
    except CRMError as e:
        assert str(e) and "\n" not in str(e)


row_field = st.one_of(
    st.sampled_from(
        [
            "C1",
            "C2",
            "nobody",
            "",
            "2026-01-01",
            "12.34",
            "-1",
            "1e9",
            "2026-13-45",
            "99999999999999999999",
            "NaN",
        ]
    ),
    hostile_text,
)


@SETTINGS
@given(
    rows=st.lists(st.tuples(row_field, row_field, row_field, row_field), min_size=1, max_size=8),
    raw=st.binary(max_size=60),
)
def test_csv_importer_is_all_or_nothing(crm, tmp_path_factory, rows, raw):
    if n_rows(crm, customers) == 0:
        crm.customers.add("One", external_id="C1")
        crm.customers.add("Two", external_id="C2")
    path = tmp_path_factory.mktemp("imp") / "tx.csv"
    body = b"customer_external_id,occurred_at,amount,external_id\n"
    for r in rows:
        body += (
            ",".join('"' + f.replace('"', '""') + '"' for f in r).encode("utf-8", "surrogatepass")
            + b"\n"
        )
    path.write_bytes(body + raw)
    before = n_rows(crm, transactions)
    try:
        summary = import_transactions(crm, str(path))
    except CRMError as e:
        assert str(e)
        assert n_rows(crm, transactions) == before
        return
    assert n_rows(crm, transactions) == before + summary["imported"]


# -- bad input through the command line: exit 1, one line naming the option ----------
ALL_PLUGINS = pytest.mark.crm(plugins=["retail", "utility", "insurance", "real_estate"])
EDGE_DATES = ["9999-12-31", "0001-01-01", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00+14:00"]
BAD_AMOUNTS = ["1e2", "1e309", "nan", "inf", "１２", "1,000.00", "12.345"]


def one_line_naming(result, option: str) -> str:
    assert result.exit_code == 1, result
    assert result.stderr.startswith(f"error: {option}: "), result
    assert result.stderr.count("\n") == 1 and "internal error" not in result.stderr
    return result.stderr


@pytest.mark.parametrize("ref", ["²", "١٢", "１２", "99999999999999999999999"])
def test_a_ref_of_other_digits_is_not_found(crm, crm_cli, ref):
    shown = crm_cli("customer", "show", ref)
    assert shown.exit_code == 1 and shown.stderr == f"error: customer {ref!r} not found\n"


@pytest.mark.parametrize("number", ["99999999999999999999", "1" + "0" * 40])
def test_a_ticket_number_beyond_64_bits_is_not_found(crm, crm_cli, number):
    for args in (("ticket", "show", number), ("ticket", "move", number, "review")):
        shown = crm_cli(*args)
        assert shown.exit_code == 1 and shown.stderr == f"error: ticket {number!r} not found\n"


@pytest.mark.parametrize("when", [*EDGE_DATES, "2026-13-01"])
@pytest.mark.parametrize(
    "command, option",
    [
        (("reminder", "add", "--staff", "zhang", "--text", "call", "--due"), "--due"),
        (("interaction", "add", "C-1", "--kind", "call", "--text", "hi", "--at"), "--at"),
        (("jobs", "run", "--at"), "--at"),
        (("sms", "receive", "--from", "13800000001", "--text", "hi", "--at"), "--at"),
        (("analytics", "abc", "--as-of"), "--as-of"),
        (("analytics", "clv", "--until"), "--until"),
        (("retail", "survey", "report", "--since"), "--since"),
        (("retail", "member-day", "status", "--date"), "--date"),
        (("retail", "member", "join", "C-1", "--birthday"), "--birthday"),
        (("utility", "compliance", "--to", "2026-01-31", "--from"), "--from"),
        (("insurance", "report", "--from"), "--from"),
        (("insurance", "vip", "list", "--at"), "--at"),
        (("real-estate", "report", "compliance", "--until"), "--until"),
        (("real-estate", "unit", "handover", "A/1/101", "--at"), "--at"),
    ],
)
@ALL_PLUGINS
def test_every_date_option_refuses_the_ends_of_the_calendar(crm, crm_cli, command, option, when):
    crm.staff.add("zhang", "Zhang Wei", roles=["rep"])
    crm.customers.add("Ann", external_id="C-1")
    one_line_naming(crm_cli(*command, when), option)


@pytest.mark.parametrize("amount", [*BAD_AMOUNTS, "-5"])
@pytest.mark.parametrize(
    "command, option",
    [
        (
            (
                "utility",
                "bill",
                "add",
                "U-1",
                "--bill-no",
                "B-1",
                "--period",
                "2025-12",
                "--due",
                "2025-12-01",
                "--issued",
                "2025-11-20",
                "--amount",
            ),
            "--amount",
        ),
        (("utility", "bill", "pay", "B-1", "--amount"), "--amount"),
        (("insurance", "policy", "payout", "P-1", "--kind", "claim", "--amount"), "--amount"),
        (
            (
                "insurance",
                "policy",
                "add",
                "C-1",
                "--no",
                "L-1",
                "--line",
                "life",
                "--term",
                "long",
                "--premium",
                "1",
                "--start",
                "2020-01-01",
                "--sum-at-risk",
            ),
            "--sum-at-risk",
        ),
        (
            (
                "retail",
                "dm",
                "report",
                "C-1",
                "--product",
                "X",
                "--promotion",
                "P",
                "--till-price",
                "2",
                "--poster-price",
            ),
            "--poster-price",
        ),
    ],
)
@ALL_PLUGINS
def test_every_money_option_takes_only_plain_yuan(crm, crm_cli, command, option, amount):
    crm.customers.add("Ann", external_id="C-1")
    message = one_line_naming(crm_cli(*command, amount), option)
    if amount == "-5":
        assert "-5 yuan is negative" in message


@pytest.mark.parametrize(
    "args, option",
    [
        (("customer", "list", "--limit", "99999999999999999999"), "--limit"),
        (("outbox", "send", "--limit", "-99999999999999999999"), "--limit"),
        (("timeline", "C-1", "--limit", "1" + "0" * 30), "--limit"),
        (("reminder", "done", "9223372036854775808"), "reminder id"),
        (("analytics", "abc", "--window-days", "99999999999"), "--window-days"),
        (("analytics", "overdue", "--grace-days", "1e309"), "--grace-days"),
        (("analytics", "overdue", "--grace-days", "nan"), "--grace-days"),
        (("analytics", "clv", "--until", "2026-01-01", "--horizon", "inf"), "--horizon"),
        (("analytics", "abc", "--cutoffs", "nan/20/80"), "--cutoffs"),
    ],
)
def test_number_options_beyond_64_bits_or_not_finite(crm, crm_cli, args, option):
    crm.customers.add("Ann", external_id="C-1")
    one_line_naming(crm_cli(*args), option)


@pytest.mark.parametrize("text", ["\x1b[2J\x1b[31mgotcha", "bell\x07", "\u202eevil", "x" * 100_000])
def test_free_text_refuses_escapes_and_huge_values(crm, crm_cli, text):
    crm.customers.add("Ann", external_id="C-1")
    added = crm_cli("interaction", "add", "C-1", "--kind", "note", "--text", text)
    assert added.exit_code == 1 and added.stderr.startswith("error: text: "), added
    named = crm_cli("customer", "add", "--name", text)
    assert named.exit_code == 1 and named.stderr.startswith("error: name: "), named
    assert crm.records.timeline("C-1") and len(crm.customers.list()) == 1


def test_the_api_refuses_ten_megabytes_of_text(crm):
    c = crm.customers.add("Ann")
    for call in (
        lambda: crm.records.add_interaction(c, "note", "x" * 10_000_000),
        lambda: crm.tickets.open(c, "x" * 10_000_000),
        lambda: crm.customers.update(c, name="x" * 10_000_000),
    ):
        with pytest.raises(CRMError, match="characters; at most"):
            call()


@pytest.mark.parametrize("key", ["zh\u200bang", "\u202ezhang", "zhang\x1b[0m", "zh ang"])
def test_staff_keys_are_visible_ascii(crm, crm_cli, key):
    r = crm_cli("staff", "add", key, "--name", "Zhang Wei", "--role", "rep")
    assert r.exit_code == 1 and r.stderr.startswith("error: staff key: "), r


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"name": {"nested": 1}}', "name: expected text or a number, got an object"),
        ('{"name": ["a"]}', "name: expected text or a number, got an array"),
        ('{"name": NaN}', "NaN is not a JSON value"),
        ('{"name": "Ann", "phone": Infinity}', "Infinity is not a JSON value"),
    ],
)
def test_json_lines_imports_refuse_nested_values_and_nan(crm, crm_cli, tmp_path, line, message):
    path = tmp_path / "customers.jsonl"
    path.write_text(line + "\n")
    r = crm_cli("import", "customers", str(path), "--json")
    assert r.exit_code == 1, r
    assert message in r.stdout + r.stderr
    assert crm.customers.list() == []


@pytest.mark.crm(extra_plugins={"loyalty": Loyalty()}, plugins=["loyalty"])
def test_attributes_follow_the_text_and_number_rules(crm, crm_cli):
    c = crm.customers.add("Ann")
    for bad in ("x" * 10_000_000, "\x1b]0;pwned\x07"):
        with pytest.raises(CRMError, match="attribute loyalty.id_number: "):
            crm.customers.update(c, attributes={"loyalty.id_number": bad})
    r = crm_cli("customer", "update", str(c.id), "--attr", "loyalty.level=١")
    assert r.exit_code == 1 and r.stderr.startswith("error: attribute loyalty.level: "), r
    r = crm_cli("customer", "update", str(c.id), "--attr", "loyalty.level=99999999999999999999")
    assert r.exit_code == 1 and "out of range" in r.stderr, r
    assert crm.customers.get(c).attributes == {}
