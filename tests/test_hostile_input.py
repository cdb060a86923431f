"""Property-based: random and hostile input gets a clear error or is stored exactly —
never a crash with a traceback, never a partial write."""

from __future__ import annotations

import datetime as dt
import itertools

import sqlalchemy as sa
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
        c = crm.add_customer(
            name, phone=phone, email=email, external_id=external_id, on_match="error"
        )
    except CRMError as e:
        assert str(e) and "\n" not in str(e)
        assert n_rows(crm, customers) == before
        return
    stored = crm.get_customer(c.id)
    assert stored.name == name.strip()
    assert stored == c
    assert n_rows(crm, customers) == before + 1


@SETTINGS
@given(amount=anything, when=st.one_of(st.datetimes(), anything))
def test_transaction_api(crm, amount, when):
    c = crm.add_customer(f"tx-{next(counter)}")
    before = n_rows(crm, transactions)
    try:
        t = crm.record_transaction(c, amount, occurred_at=when)
    except CRMError as e:
        assert "\n" not in str(e)
        assert n_rows(crm, transactions) == before
        return
    assert crm.transactions_of(c)[0].amount_cents == t.amount_cents == amount


@SETTINGS
@given(
    phone=hostile_text,
    text=st.one_of(hostile_text, anything),
    at=st.one_of(st.none(), st.datetimes(min_value=dt.datetime(1, 1, 1))),
)
def test_sms_receive(crm, phone, text, at):
    before = n_rows(crm, inbound_messages)
    try:
        result = crm.receive_sms(phone, text, at=at)
    except CRMError as e:
        assert "\n" not in str(e)
        assert n_rows(crm, inbound_messages) == before
        return
    with crm.transaction(write=False):
        stored = crm.db.first(
            sa.select(inbound_messages).where(inbound_messages.c.id == result["id"])
        )
    assert stored.text == text


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
        crm.add_customer("One", external_id="C1")
        crm.add_customer("Two", external_id="C2")
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
