"""The storage package: its modules, the earlier module names that re-export it,
and no public way from the query layer to the raw connection."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import crmcore
from crmcore import AccessDenied
from crmcore.schema import customers

ROOT = Path(crmcore.__file__).resolve().parent
STORAGE = ROOT / "storage"
MAX_LINES = 400


@pytest.fixture
def rep_crm(crm):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.staff.add("lead", "Lead", roles=["supervisor"])
    crm.staff.add("audit", "Auditor", roles=["auditor"])
    crm.customers.add("Mine", owner="zhang")
    crm.customers.add("Not mine")
    return crm


def test_the_package_has_its_modules_each_under_the_size_limit():
    names = {p.name for p in STORAGE.glob("*.py")}
    assert {"engine.py", "query.py", "scope.py", "shapes.py", "audit.py", "_driver.py"} <= names
    long = {
        p.name: n
        for p in STORAGE.glob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_earlier_module_names_re_export_the_same_objects():
    import crmcore.audit
    import crmcore.db
    import crmcore.scope
    from crmcore.storage import audit, engine, query, scope

    assert crmcore.db.DB is query.DB
    assert crmcore.db.make_engine is engine.make_engine
    assert crmcore.db.database_error is engine.database_error
    assert crmcore.scope.Catalog is scope.Catalog
    assert crmcore.scope.catalog_of is scope.catalog_of
    assert crmcore.audit.verify is audit.verify
    assert crmcore.audit.ChainWriter is audit.ChainWriter
    for module in (crmcore.db, crmcore.scope, crmcore.audit):
        assert all(hasattr(module, name) for name in module.__all__)


def _public_values(obj):
    for name in dir(obj):
        if name.startswith("_"):
            continue
        try:
            yield name, getattr(obj, name)
        except Exception:  # a property that needs something the test does not give
            continue


def _raw(value) -> bool:
    return isinstance(value, Connection | Engine) or type(value).__module__ in (
        "sqlite3",
        "psycopg",
        "psycopg.connection",
    )


@pytest.mark.parametrize("who", ["zhang", "lead", "audit"])
def test_no_public_name_of_the_query_layer_reaches_the_connection(rep_crm, who):
    with rep_crm.as_(who).transaction(write=False) as db:
        assert not hasattr(db, "conn")
        assert not hasattr(db, "run") and not hasattr(db, "run_rows")
        seen = []
        for name, value in _public_values(db):
            seen.append(name)
            assert not _raw(value), f"DB.{name}"
            for inner, nested in _public_values(value) if not callable(value) else ():
                assert not _raw(nested), f"DB.{name}.{inner}"
        assert "execute" in seen and "principal" in seen


def test_a_rep_cannot_run_unscoped_sql_through_the_public_methods(rep_crm):
    with rep_crm.as_("zhang").transaction(write=False) as db:
        with pytest.raises(AccessDenied):
            db.execute("SELECT name FROM customers")
        with pytest.raises(AccessDenied):
            db.driver_query("SELECT name FROM customers")
        assert [r.name for r in db.execute(sa.select(customers.c.name))] == ["Mine"]


def test_no_core_module_or_plugin_uses_a_public_connection_attribute():
    pattern = re.compile(r"\.db\.conn\b|\bdb\.conn\b|\.db\.run(_rows)?\(")
    sources = [*ROOT.rglob("*.py"), *(ROOT.parent / "plugins").rglob("*.py")]
    found = [
        f"{p}:{i}"
        for p in sources
        if ".venv" not in p.parts
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []
