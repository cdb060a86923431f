"""Alembic: the core branch, one branch per plugin, enabling later adds only its tables."""

from __future__ import annotations

import sqlalchemy as sa

from crmcore import CRM, hookimpl
from crmcore.access import SYSTEM
from crmcore.config import from_dict
from crmcore.migrate import current_heads
from crmcore.schema import metadata

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
    assert current_heads(bare.engine) == {"crmcore_0001"}
    assert "widgets_items" not in tables(bare.engine)
    before = tables(bare.engine)

    enabled = CRM(
        from_dict({"crm": {"database": url, "plugins": ["widgets"]}}),
        extra_plugins={"widgets": widgets},
        principal=SYSTEM,
    )
    assert enabled.upgrade() == ["crmcore", "widgets"]
    assert tables(enabled.engine) - before == {"widgets_items"}
    assert current_heads(enabled.engine) == {"widgets_0001"}  # it depends on crmcore_0001
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


def test_core_migration_matches_the_metadata(crm):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with crm.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [
        d for d in diff if d[0] in ("add_table", "remove_table", "add_column", "remove_column")
    ] == []
