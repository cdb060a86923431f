"""Hook contract v2: singular and batch hooks named alike, a hook named for when it
fires, the replaced names refused at start-up naming the new name, return types
that say what the docstrings say, and batch hooks that read the same
``customer_stats`` on SQLite and PostgreSQL."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from crmcore import PluginError, PluginInfo, hookimpl
from crmcore.config import from_dict
from crmcore.hooks import SPEC_MODULES
from crmcore.hooks.renamed import RENAMED_HOOKS
from crmcore.importer import import_transactions
from crmcore.plugins import build
from crmcore.schema import customer_stats

HEADER = "customer_external_id,occurred_at,amount,external_id,channel\n"


def _specs() -> dict[str, object]:
    return {
        name: fn
        for module in SPEC_MODULES
        for name, fn in vars(module).items()
        if name.startswith("crm_") and callable(fn)
    }


def test_every_batch_hook_has_a_singular_hook_of_the_same_name():
    specs = _specs()
    batch = sorted(n for n in specs if n.endswith("_batch"))
    assert batch == [
        "crm_customer_created_batch",
        "crm_stage_changed_batch",
        "crm_transaction_recorded_batch",
    ]
    assert all(n.removesuffix("_batch") in specs for n in batch)


def test_the_replaced_names_are_specified_no_more_and_their_new_names_are():
    specs = _specs()
    assert not set(RENAMED_HOOKS) & set(specs)
    assert set(RENAMED_HOOKS.values()) <= set(specs)
    assert "crm_before_customers_merge" in specs and "crm_customers_merged" not in specs


@pytest.mark.parametrize("old", sorted(RENAMED_HOOKS))
def test_a_plugin_implementing_a_replaced_name_fails_at_start_up_naming_the_new_one(old):
    class Stale:
        @hookimpl
        def crm_plugin_info(self) -> PluginInfo:
            return PluginInfo(version="1")

    setattr(Stale, old, hookimpl(lambda self, crm, **kw: None))
    config = from_dict({"crm": {"database": "sqlite://", "plugins": ["stale"]}})
    with pytest.raises(PluginError) as refused:
        build(config, extra={"stale": Stale()})
    assert str(refused.value) == (
        f"plugin 'stale' (not from an installed distribution) implements {old!r}, "
        f"renamed {RENAMED_HOOKS[old]!r} in hook contract v2; rename the implementation "
        "(docs/plugins.md, 'Hook contract v2')"
    )


def test_hooks_whose_return_is_ignored_are_specified_as_returning_none():
    ignored = {
        name: inspect.signature(fn).return_annotation
        for name, fn in _specs().items()
        if re.search(
            r"return(?: value)? (?:is )?ignored", " ".join((inspect.getdoc(fn) or "").split()), re.I
        )
    }
    assert "crm_transaction_recorded" in ignored
    assert {n: r for n, r in ignored.items() if r not in ("None", None)} == {}


def test_the_bundled_plugins_use_the_new_names_only():
    plugins = Path(__file__).resolve().parents[1] / "plugins"
    found = [
        f"{p.relative_to(plugins)}: {old}"
        for p in plugins.rglob("*.py")
        for old in RENAMED_HOOKS
        if old in p.read_text(encoding="utf-8")
    ]
    assert found == []


class StatsReader:
    """Records, per batch, the ``customer_stats`` the batch hook reads."""

    def __init__(self) -> None:
        self.seen: list[list[tuple[int, int, int]]] = []

    @hookimpl
    def crm_plugin_info(self) -> PluginInfo:
        return PluginInfo(version="1")

    @hookimpl
    def crm_transaction_recorded_batch(self, crm, batch) -> None:
        s = customer_stats.c
        rows = crm.db.execute(
            select(s.customer_id, s.tx_count, s.spend_cents)
            .where(s.customer_id.in_(batch.customer_ids))
            .order_by(s.customer_id)
        )
        self.seen.append([tuple(r) for r in rows])


def test_a_batch_hook_reads_customer_stats_updated_for_its_batch(crm_factory, tmp_path):
    """Run on SQLite and, with CRM_TEST_POSTGRES_URL set, on PostgreSQL: the
    same values on both."""
    reader = StatsReader()
    crm = crm_factory(plugins=["stats"], extra_plugins={"stats": reader})
    c1 = crm.customers.add("C1", external_id="C1")
    c2 = crm.customers.add("C2", external_id="C2")
    path = tmp_path / "tx.csv"
    path.write_text(
        HEADER
        + "C1,2025-01-01,1.00,T1,\n"
        + "C2,2025-01-02,2.00,T2,\n"
        + "C1,2025-01-03,3.00,T3,\n",
        encoding="utf-8",
    )
    import_transactions(crm, str(path), batch_size=2)
    assert reader.seen == [
        [(c1.id, 1, 100), (c2.id, 1, 200)],
        [(c1.id, 2, 400)],
    ]
