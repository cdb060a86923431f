"""crmcore.testing.assert_plugin_contract and its checks: each refuses a plugin
that breaks its rule, naming it. The plugins under test are made by the
scaffold (``crm plugin new``) and then broken one way each."""

from __future__ import annotations

import importlib
import sys

import pytest

from crmcore.scaffold import new_plugin
from crmcore.testing import (
    assert_plugin_contract,
    check_cli_conventions,
    check_forget_and_merge,
    check_migrations,
    private_crmcore_imports,
)


def make_plugin(tmp_path, monkeypatch, name, edits=()):
    """Scaffold plugin ``name`` under tmp_path, apply ``edits`` (file, old, new),
    import it from there; return (module, extra_plugins, seed)."""
    root = tmp_path / name
    new_plugin(name, root)
    for relative, old, new in edits:
        path = root / f"crm_{name}" / relative
        text = path.read_text()
        assert old in text, f"{relative}: {old!r} not found"
        path.write_text(text.replace(old, new))
    monkeypatch.syspath_prepend(str(root))
    for loaded in [m for m in sys.modules if m == f"crm_{name}" or m.startswith(f"crm_{name}.")]:
        del sys.modules[loaded]
    module = importlib.import_module(f"crm_{name}.plugin")
    notes = importlib.import_module(f"crm_{name}.notes")

    def seed(crm, customer):
        notes.add_note(crm, customer, "prefers calls after 18:00")

    return module, {name: module}, seed


def test_the_scaffolded_plugin_keeps_the_contract(crm_factory, tmp_path, monkeypatch):
    module, extra, seed = make_plugin(tmp_path, monkeypatch, "toy_ok")
    assert_plugin_contract(module, crm_factory, seed=seed, extra_plugins=extra)


def test_a_private_import_is_named(tmp_path):
    package = tmp_path / "crm_x"
    package.mkdir()
    (package / "a.py").write_text(
        "import crmcore.cli._app\n"
        "from crmcore._secret import thing\n"
        "from crmcore.service import _forget\n"
        "from crmcore.db import _helper as h\n"
        "from crmcore import __version__, hookimpl\n"
        "from crmcore.cli import JSON_OPTION\n"
        "from ._local import mine\n"
    )
    assert private_crmcore_imports(package) == [
        "crm_x/a.py:1: crmcore.cli._app",
        "crm_x/a.py:2: crmcore._secret",
        "crm_x/a.py:2: crmcore._secret.thing",
        "crm_x/a.py:3: crmcore.service._forget",
        "crm_x/a.py:4: crmcore.db._helper",
    ]


def test_the_contract_refuses_a_private_import(crm_factory, tmp_path, monkeypatch):
    module, extra, seed = make_plugin(
        tmp_path,
        monkeypatch,
        "toy_private",
        [
            (
                "plugin.py",
                "from . import __version__",
                "from . import __version__\nfrom crmcore.cli._app import pass_crm as _E  # noqa: F401",
            )
        ],
    )
    with pytest.raises(
        AssertionError,
        match=r"imports private crmcore names: .*plugin.py:\d+: crmcore.cli._app",
    ):
        assert_plugin_contract(module, crm_factory, seed=seed, extra_plugins=extra)


def test_a_migration_that_differs_from_the_declared_table_is_refused(
    crm_factory, tmp_path, monkeypatch
):
    module, extra, _seed = make_plugin(
        tmp_path,
        monkeypatch,
        "toy_mig",
        [
            (
                "migrations/toy_mig_0001_initial.py",
                'sa.Column("text", sa.Text(), nullable=False)',
                'sa.Column("text", sa.String(20), nullable=False)',
            )
        ],
    )
    crm = crm_factory(plugins=["toy_mig"], extra_plugins=extra)
    with pytest.raises(AssertionError, match="differs from the declared tables: modify_type"):
        check_migrations(crm, "toy_mig")


def test_a_downgrade_that_leaves_its_table_is_refused(crm_factory, tmp_path, monkeypatch):
    module, extra, _seed = make_plugin(
        tmp_path,
        monkeypatch,
        "toy_down",
        [
            (
                "migrations/toy_down_0001_initial.py",
                '    op.drop_table("toy_down_notes")',
                "    pass",
            )
        ],
    )
    crm = crm_factory(plugins=["toy_down"], extra_plugins=extra)
    with pytest.raises(AssertionError, match="tables left after downgrading to the base"):
        check_migrations(crm, "toy_down")


def test_forget_that_keeps_personal_data_is_refused(crm_factory, tmp_path, monkeypatch):
    module, extra, seed = make_plugin(
        tmp_path,
        monkeypatch,
        "toy_forget",
        [("plugin.py", "values(text=ERASED)", "values(at=notes.c.at)")],
    )
    crm = crm_factory(plugins=["toy_forget"], extra_plugins=extra)
    with pytest.raises(AssertionError, match=r"toy_forget_notes.text still holds 'prefers calls"):
        check_forget_and_merge(crm, "toy_forget", seed)


def test_a_seed_that_writes_nothing_proves_nothing(crm_factory, tmp_path, monkeypatch):
    module, extra, _seed = make_plugin(tmp_path, monkeypatch, "toy_empty")
    crm = crm_factory(plugins=["toy_empty"], extra_plugins=extra)
    with pytest.raises(AssertionError, match="the seed wrote no row"):
        check_forget_and_merge(crm, "toy_empty", lambda crm, customer: None)


def test_a_row_left_on_a_merged_twin_is_refused(crm_factory, tmp_path, monkeypatch):
    """The core moves customer_id columns; another reference to customers is the
    plugin's to move (crm_before_customers_merge), and the contract finds it if not."""
    column = 'Column("about_id", Id, ForeignKey(customers.c.id)),\n    Column("at"'
    module, extra, _seed = make_plugin(
        tmp_path,
        monkeypatch,
        "toy_merge",
        [
            ("tables.py", 'Column("at"', column),
            (
                "migrations/toy_merge_0001_initial.py",
                'sa.Column("at", sa.DateTime(), nullable=False),',
                'sa.Column("about_id", ID, nullable=True),\n'
                '        sa.Column("at", sa.DateTime(), nullable=False),\n'
                '        sa.ForeignKeyConstraint(["about_id"], ["customers.id"], '
                'name=op.f("fk_toy_merge_notes_about_id_customers")),',
            ),
        ],
    )
    tables = importlib.import_module("crm_toy_merge.tables")

    def seed(crm, customer):  # a note about the customer, kept on someone else's record
        other = crm.customers.add("Someone Else")
        with crm.transaction():
            crm.db.execute(
                tables.notes.insert().values(
                    customer_id=other.id, about_id=customer.id, text="", at=crm.now()
                )
            )

    crm = crm_factory(plugins=["toy_merge"], extra_plugins=extra)
    check_migrations(crm, "toy_merge")  # the edit itself is a consistent schema
    with pytest.raises(
        AssertionError, match=r"toy_merge_notes: 1 row\(s\) still refer to a merged twin"
    ):
        check_forget_and_merge(crm, "toy_merge", seed)


def test_a_command_without_json_is_refused(crm_factory, tmp_path, monkeypatch):
    module, extra, _seed = make_plugin(
        tmp_path,
        monkeypatch,
        "toy_nojson",
        [
            (
                "cli.py",
                '@click.option("--customer", "ref", help="Only this customer\'s notes.")\n@JSON_OPTION\n',
                '@click.option("--customer", "ref", help="Only this customer\'s notes.")\n@click.option("--as-json", "as_json", is_flag=True)\n',
            )
        ],
    )
    crm = crm_factory(plugins=["toy_nojson"], extra_plugins=extra)
    with pytest.raises(AssertionError, match="crm toy-nojson list: takes no --json option"):
        check_cli_conventions(crm, "toy_nojson")


def test_a_command_printing_more_than_json_is_refused(crm_factory, tmp_path, monkeypatch):
    module, extra, _seed = make_plugin(
        tmp_path,
        monkeypatch,
        "toy_noisy",
        [
            (
                "cli.py",
                "    emit(\n        notes.list_notes(crm, ref),",
                '    click.echo("notes:")\n    emit(\n        notes.list_notes(crm, ref),',
            )
        ],
    )
    crm = crm_factory(plugins=["toy_noisy"], extra_plugins=extra)
    with pytest.raises(AssertionError, match="crm toy-noisy list --json: stdout is not only JSON"):
        check_cli_conventions(crm, "toy_noisy")


def test_a_failing_command_must_print_nothing_on_stdout(crm_factory, tmp_path, monkeypatch):
    module, extra, _seed = make_plugin(
        tmp_path,
        monkeypatch,
        "toy_err",
        [
            (
                "cli.py",
                '    """Add a note about customer REF."""\n',
                '    """Add a note about customer REF."""\n    click.echo("adding")\n',
            )
        ],
    )
    crm = crm_factory(plugins=["toy_err"], extra_plugins=extra)
    crm.customers.add("Wu Fang")
    with pytest.raises(
        AssertionError, match="crm toy-err add 1 --text  --json: failed but printed 'adding"
    ):
        check_cli_conventions(crm, "toy_err", [["toy-err", "add", "1", "--text", "", "--json"]])
