"""Alembic: the core branch, one branch per plugin, enabling later adds only its tables."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crmcore import CRM, hookimpl
from crmcore.access import SYSTEM
from crmcore.config import from_dict
from crmcore.migrate import current_heads
from crmcore.schema import metadata
from crmcore.testing import (
    assert_migrations_reversible,
    fresh_database,
    migrate_to,
    schema_differences,
)

CORE_HEAD = "crmcore_0015_lifecycle"  # the core branch's newest revision

REVISION = '''
"""widgets: initial"""
import sqlalchemy as sa
from alembic import op

revision = "widgets_0001"
down_revision = None
branch_labels = ("widgets",)
depends_on = "crmcore_0001"


def upgrade():
    op.create_table("widgets_items", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("customer_id", sa.Integer), sa.Column("name", sa.String(50)))


def downgrade():
    op.drop_table("widgets_items")
'''


def make_widgets(tmp_path):
    versions = tmp_path / "widgets_migrations"
    versions.mkdir()
    (versions / "widgets_0001_initial.py").write_text(REVISION)

    class Widgets:
        @hookimpl
        def crm_migrations(self):
            return str(versions)

    return Widgets()


def tables(engine):
    return set(sa.inspect(engine).get_table_names())


def test_enabling_a_plugin_later_upgrades_only_its_branch(tmp_path):
    url = f"sqlite:///{tmp_path}/m.db"
    widgets = make_widgets(tmp_path)
    bare = CRM(
        from_dict({"crm": {"database": url}}), extra_plugins={"widgets": widgets}, principal=SYSTEM
    )
    assert bare.upgrade() == ["crmcore"]
    assert current_heads(bare.engine) == {CORE_HEAD}
    assert "widgets_items" not in tables(bare.engine)
    before = tables(bare.engine)

    enabled = CRM(
        from_dict({"crm": {"database": url, "plugins": ["widgets"]}}),
        extra_plugins={"widgets": widgets},
        principal=SYSTEM,
    )
    assert enabled.upgrade() == ["crmcore", "widgets"]
    assert tables(enabled.engine) - before == {"widgets_items"}
    # widgets depends on crmcore_0001, so both branches have a head
    assert current_heads(enabled.engine) == {CORE_HEAD, "widgets_0001"}
    assert enabled.upgrade() == ["crmcore", "widgets"]  # idempotent


def test_disabling_keeps_the_data_and_purge_shows_then_deletes(crm_factory):
    greet = sa.Table(
        "greet_log",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer),
    )

    class Greet:
        @hookimpl
        def crm_tables(self):
            return [greet]

    crm = crm_factory(plugins=["greet"], extra_plugins={"greet": Greet()})
    c = crm.add_customer("Ann")
    with crm.transaction():
        crm.db.execute(greet.insert().values(customer_id=c.id))
    disabled = CRM(from_dict({"crm": {"database": crm.config.database}}), principal=SYSTEM)
    disabled.upgrade()
    assert "greet_log" in tables(disabled.engine)  # nothing dropped by disabling


def bare_crm(crm_backend, tmp_path, name, **kwargs):
    """A CRM (the system) on an empty database: no schema yet."""
    url = fresh_database(crm_backend, tmp_path, name)
    plugins = kwargs.pop("plugins", [])
    return CRM(
        from_dict({"crm": {"database": url, "plugins": plugins}}), principal=SYSTEM, **kwargs
    )


def test_upgrade_from_empty_builds_exactly_the_declared_tables(crm_backend, tmp_path):
    crm = bare_crm(crm_backend, tmp_path, "declared")
    crm.upgrade()
    assert schema_differences(crm.engine, metadata.sorted_tables) == []
    assert set(tables(crm.engine)) == set(metadata.tables) | {"alembic_version"}
    crm.engine.dispose()


def test_every_core_revision_downgrades_and_upgrades_again(crm_backend, tmp_path):
    crm = bare_crm(crm_backend, tmp_path, "roundtrip")
    assert_migrations_reversible(crm, "crmcore")
    assert current_heads(crm.engine) == {CORE_HEAD}
    crm.engine.dispose()


def test_a_later_declared_column_is_a_difference(crm_backend, tmp_path):
    """The comparison sees a column the migrations do not create (it is what
    fails the test above when a table changes without a revision)."""
    crm = bare_crm(crm_backend, tmp_path, "undeclared")
    crm.upgrade()
    changed = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["messages"].append_column(sa.Column("priority", sa.Integer))
    diff = schema_differences(crm.engine, changed.sorted_tables)
    assert [(d[0], d[3].name) for d in diff] == [("add_column", "priority")]
    crm.engine.dispose()


GREET_MODULE = """
import sqlalchemy as sa
from crmcore import Attribute, hookimpl
from crmcore.schema import customers

greet_log = sa.Table("greet_log", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("customer_id", sa.Integer, sa.ForeignKey(customers.c.id)))

@hookimpl
def crm_tables():
    return [greet_log]

@hookimpl
def crm_customer_attributes():
    return [Attribute(name="greet.word")]
"""


def test_purge_shows_the_plan_then_deletes_only_a_disabled_plugins_data(
    tmp_path, monkeypatch, crm_backend
):
    import importlib.metadata as md
    import sys

    import pytest

    from crmcore import PluginError
    from crmcore import plugins as plugins_mod

    (tmp_path / "greetmod.py").write_text(GREET_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("greetmod", None)
    ep = md.EntryPoint(name="greet", value="greetmod", group="crmcore.plugins")
    monkeypatch.setattr(plugins_mod, "installed", lambda: {"greet": ep})
    url = f"sqlite:///{tmp_path}/p.db"
    if crm_backend == "postgresql":
        import os

        from crmcore.testing import POSTGRES_ENV, _reset_schema, _with_search_path

        _reset_schema(
            os.environ[POSTGRES_ENV],
            f"crmtest_purge_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}",
        )
        url = _with_search_path(
            os.environ[POSTGRES_ENV],
            f"crmtest_purge_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}",
        )
    on = CRM(from_dict({"crm": {"database": url, "plugins": ["greet"]}}), principal=SYSTEM)
    on.upgrade()
    c = on.add_customer("Ann", attributes={"greet.word": "hi"})
    on.set_label(c, "greet.mood", "happy", source="greet")
    import greetmod

    with on.transaction():
        on.db.execute(greetmod.greet_log.insert().values(customer_id=c.id))
    with pytest.raises(PluginError, match="is enabled; disable it"):
        on.purge_plan("greet")

    off = CRM(from_dict({"crm": {"database": url}}), principal=SYSTEM)
    plan = off.purge_plan("greet")
    assert plan == {
        "plugin": "greet",
        "tables": {"greet_log": 1},
        "attributes": ["greet.word"],
        "labels": 1,
    }
    assert "greet_log" in tables(off.engine)  # showing the plan deleted nothing
    off.purge_plugin("greet")
    assert "greet_log" not in tables(off.engine)
    assert off.get_customer(c.id).attributes == {} and off.labels(c) == {}
    assert off.get_customer(c.id).name == "Ann"


def test_a_database_at_crmcore_0001_gets_the_window_spend_tables(crm_backend, tmp_path):
    crm = bare_crm(crm_backend, tmp_path, "at0001")
    migrate_to(crm, "crmcore_0001")
    assert current_heads(crm.engine) == {"crmcore_0001"}
    assert "customer_window_spend" not in tables(crm.engine)
    indexes = {i["name"] for i in sa.inspect(crm.engine).get_indexes("customer_labels")}
    assert indexes == {"ix_customer_labels_name_value"}
    crm.upgrade()
    assert {"customer_window_spend", "analytics_windows"} <= tables(crm.engine)
    indexes = {i["name"] for i in sa.inspect(crm.engine).get_indexes("customer_labels")}
    assert indexes == {"ix_customer_labels_name_value_customer"}
    kept = sa.inspect(crm.engine)
    assert "next_after_window" in {c["name"] for c in kept.get_columns("customer_window_spend")}
    assert {i["name"] for i in kept.get_indexes("customer_window_spend")} == {
        "ix_customer_window_spend_first_in_window",
        "ix_customer_window_spend_next_after_window",
    }
    assert current_heads(crm.engine) == {CORE_HEAD}
    assert schema_differences(crm.engine, metadata.sorted_tables) == []
    crm.engine.dispose()


def test_a_deployment_with_plugins_at_crmcore_0001_upgrades(tmp_path):
    """With a plugin branch depending on crmcore_0001, Alembic keeps only the
    plugin's head: the core's next revision must still apply."""
    url = f"sqlite:///{tmp_path}/old.db"
    widgets = make_widgets(tmp_path)
    crm = CRM(
        from_dict({"crm": {"database": url, "plugins": ["widgets"]}}),
        extra_plugins={"widgets": widgets},
        principal=SYSTEM,
    )
    migrate_to(crm, "crmcore_0001")
    migrate_to(crm, "widgets@head")  # what the first release left behind
    assert current_heads(crm.engine) == {"widgets_0001"}
    assert crm.upgrade() == ["crmcore", "widgets"]
    assert {"customer_window_spend", "analytics_windows"} <= tables(crm.engine)
    assert current_heads(crm.engine) == {CORE_HEAD, "widgets_0001"}


def _external_id_index_columns(crm) -> int:
    """PostgreSQL: how many columns the unique index of customers' external ids holds."""
    with crm.engine.begin() as conn:
        return conn.exec_driver_sql(
            "SELECT i.indnatts FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = 'uq_customers_external_id' AND pg_table_is_visible(c.oid)"
        ).scalar()


def test_an_external_id_resolves_to_the_id_from_the_index_alone(crm):
    """Imports resolve a batch's external ids to ids; on PostgreSQL the unique
    index carries the id (crmcore_0003), on SQLite every index carries the rowid."""
    if crm.engine.dialect.name == "postgresql":
        assert _external_id_index_columns(crm) == 2  # external_id, INCLUDE (id)
    else:
        with crm.engine.begin() as conn:
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM customers WHERE external_id = 'x'"
            ).all()
        assert "USING COVERING INDEX" in plan[0][-1] and "(external_id=?)" in plan[0][-1]


def test_crmcore_0003_makes_the_external_id_index_covering(crm_backend, tmp_path):
    """A PostgreSQL database at crmcore_0002 gets the covering index on upgrade;
    external ids stay unique."""
    if crm_backend != "postgresql":
        pytest.skip("crmcore_0003 changes nothing on SQLite")
    crm = bare_crm(crm_backend, tmp_path, "at0002")
    migrate_to(crm, "crmcore_0002")
    insert = (
        "INSERT INTO customers (external_id, name, kind, stage, attributes, consent_sms, "
        "consent_email, created_at, updated_at) VALUES ('E1', 'Bob', 'person', 'lead', "
        "'{}', true, true, now(), now())"
    )
    with crm.engine.begin() as conn:
        conn.exec_driver_sql(insert)
    assert _external_id_index_columns(crm) == 1
    crm.upgrade()
    assert CORE_HEAD in current_heads(crm.engine)
    assert _external_id_index_columns(crm) == 2
    assert crm.add_customer("Bob", external_id="E1").id == 1  # matched by external id
    with pytest.raises(sa.exc.IntegrityError), crm.engine.begin() as conn:
        conn.exec_driver_sql(insert)
    crm.engine.dispose()
