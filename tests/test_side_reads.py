"""SideReads: reads on a second connection while the operation's connection works."""

from __future__ import annotations

import threading

import pytest

from crmcore import CRM
from crmcore.access import SYSTEM
from crmcore.analytics._sql import SideReads
from crmcore.config import from_dict


def _names(query):
    return threading.current_thread().name, [r[0] for r in query("SELECT name FROM customers", ())]


def test_on_a_sqlite_file_a_side_read_sees_the_state_the_operation_started_from(crm):
    if crm.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL reads inline (see the next test)")
    crm.add_customer("Ann")
    with crm.transaction():
        with SideReads(crm) as side:
            crm.add_customer("Bob")  # not committed: the side read must not see it
            thread, names = side.submit(_names)()
        assert thread.startswith("crm-side-read") and names == ["Ann"]
    assert sorted(c.name for c in crm.list_customers()) == ["Ann", "Bob"]


def test_elsewhere_a_side_read_runs_inline_on_the_operation_when_asked(crm, tmp_path):
    memory = CRM(from_dict({"crm": {"database": "sqlite://"}}), principal=SYSTEM)
    memory.upgrade()
    for c in (crm, memory):
        if c is crm and crm.engine.dialect.name == "sqlite":
            continue  # a file: covered above
        c.add_customer("Ann")
        with c.transaction(), SideReads(c) as side:
            later = side.submit(_names)
            c.add_customer("Bob")  # asked for after this: the operation's own view
            thread, names = later()
        assert thread == threading.current_thread().name and sorted(names) == ["Ann", "Bob"]


def test_a_failing_side_read_raises_where_its_result_is_asked_for(crm):
    def broken(query):
        return query("SELECT nope FROM customers", ())

    with crm.transaction(), SideReads(crm) as side:
        result = side.submit(broken)
        with pytest.raises(Exception, match="nope"):
            result()
