"""SideReads: reads on a second connection while the operation's connection works."""

from __future__ import annotations

import datetime as dt
import importlib
import threading

import pytest
import sqlalchemy as sa

from crmcore import CRM
from crmcore.access import SYSTEM
from crmcore.analytics._sql import SideReads
from crmcore.config import from_dict


def _names(query):
    return threading.current_thread().name, [r[0] for r in query("SELECT name FROM customers", ())]


def test_on_a_sqlite_file_a_side_read_sees_the_state_the_operation_started_from(crm):
    if crm.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL reads inline (see the next test)")
    crm.customers.add("Ann")
    with crm.transaction():
        with SideReads(crm, owned=True) as side:
            crm.customers.add("Bob")  # not committed: the side read must not see it
            thread, names = side.submit(_names)()
        assert thread.startswith("crm-side-read") and names == ["Ann"]
    assert sorted(c.name for c in crm.customers.list()) == ["Ann", "Bob"]


def test_elsewhere_a_side_read_runs_inline_on_the_operation_when_asked(crm, tmp_path):
    memory = CRM(from_dict({"crm": {"database": "sqlite://"}}), principal=SYSTEM)
    memory.admin.upgrade()
    for c in (crm, memory):
        if c is crm and crm.engine.dialect.name == "sqlite":
            continue  # a file: covered above
        c.customers.add("Ann")
        with c.transaction(), SideReads(c, owned=True) as side:
            later = side.submit(_names)
            c.customers.add("Bob")  # asked for after this: the operation's own view
            thread, names = later()
        assert thread == threading.current_thread().name and sorted(names) == ["Ann", "Bob"]


def test_a_failing_side_read_raises_where_its_result_is_asked_for(crm):
    def broken(query):
        return query("SELECT nope FROM customers", ())

    with crm.transaction(), SideReads(crm, owned=True) as side:
        result = side.submit(broken)
        with pytest.raises(Exception, match="nope"):
            result()


# -- who owns the transaction ----------------------------------------------------------------
def _three_with_history(crm):
    """Ann and Bob bought 1.00 each; ABC ran and made both A."""
    from crmcore import analytics

    cs = [crm.customers.add(name) for name in ("Ann", "Bob", "Cai")]
    for c in cs[:2]:
        crm.records.add_transaction(c, 100, occurred_at=dt.datetime(2025, 12, 1))
    first = analytics.abc(crm, as_of=dt.datetime(2026, 1, 1))
    assert [first["customers"][c.id] for c in cs] == ["A", "A", "C"]
    return cs


def _classes(crm, cs):
    from crmcore.schema import customer_labels

    with crm.transaction(write=False):
        rows = crm.db.all(
            sa.select(customer_labels.c.customer_id, customer_labels.c.value).where(
                customer_labels.c.name == "abc"
            )
        )
    stored = dict(rows)
    return [stored[c.id] for c in cs]


def test_abc_inside_the_callers_transaction_counts_the_purchase_just_written(crm):
    from crmcore import analytics

    cs = _three_with_history(crm)
    with crm.transaction():
        crm.records.add_transaction(cs[2], 100_000, occurred_at=dt.datetime(2025, 12, 2))
        inside = analytics.abc(crm, as_of=dt.datetime(2026, 1, 1))
    assert [inside["customers"][c.id] for c in cs] == ["C", "C", "A"]
    assert inside["classes"]["A"]["spend_cents"] == 100_000
    assert _classes(crm, cs) == ["C", "C", "A"]
    # and the kept figures it stored are those of the committed state: a re-run agrees
    again = analytics.abc(crm, as_of=dt.datetime(2026, 1, 1))
    assert [again["customers"][c.id] for c in cs] == ["C", "C", "A"]


def test_abc_reads_on_the_side_only_in_a_transaction_of_its_own(crm, monkeypatch):
    from crmcore import analytics

    abc_module = importlib.import_module("crmcore.analytics.abc")  # the package exports abc()
    cs = _three_with_history(crm)
    threads: list[str] = []
    real = abc_module.stats_fingerprint

    def spy(query):
        threads.append(threading.current_thread().name)
        return real(query)

    monkeypatch.setattr(abc_module, "stats_fingerprint", spy)
    analytics.abc(crm, as_of=dt.datetime(2026, 1, 1))  # its own transaction
    with crm.transaction():
        crm.records.add_transaction(cs[2], 5, occurred_at=dt.datetime(2025, 12, 2))
        analytics.abc(crm, as_of=dt.datetime(2026, 1, 1))  # joins the caller's
    here = threading.current_thread().name
    if crm.engine.dialect.name == "sqlite":
        assert threads[0].startswith("crm-side-read")
    else:
        assert threads[0] == here  # PostgreSQL always reads inline
    assert threads[1] == here
