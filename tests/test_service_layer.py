"""The service layer: the CRM is a facade over one service per area, the flat
names of before still work for a release (and warn), nothing shipped uses
them, derived tables are declared, and every service module imports alone."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmcore import hookimpl
from crmcore.errors import AccessDenied, NotFound
from crmcore.present import show_phone
from crmcore.schema import audit_log, customer_stats, customers
from crmcore.service import CRM
from crmcore.service.aliases import RENAMED, DeprecatedName
from crmcore.services.tables import derived_customer_tables, is_derived
from crmcore.storage._driver import connection

ROOT = Path(__file__).resolve().parents[1]
AREAS = ("customers", "records", "tickets", "messages", "jobs", "staff", "admin")


# -- access through the services: a rep sees only their own -------------------------
def test_a_rep_can_neither_see_nor_change_another_reps_customer_through_the_services(crm):
    crm.staff.add("li", "Li", roles=["rep"])
    crm.staff.add("wu", "Wu", roles=["rep"])
    theirs = crm.as_("wu").customers.add("Wu's customer", phone="13800000009")
    li = crm.as_("li")
    for read in (
        lambda: li.customers.get(theirs.id),
        lambda: li.records.card(theirs.id),
        lambda: li.records.timeline(theirs.id),
        lambda: li.customers.labels(theirs.id),
    ):
        with pytest.raises(NotFound, match="not found"):
            read()
    with pytest.raises(NotFound, match="not found"):
        li.customers.update(theirs.id, name="taken")
    with pytest.raises(NotFound, match="not found"):
        li.records.add_transaction(theirs.id, 100)
    assert crm.customers.get(theirs.id).name == "Wu's customer"
    assert li.customers.count() == 0 and li.customers.list() == []


def test_a_supervisor_sees_the_team_and_an_auditor_reads_without_writing(crm):
    crm.staff.add("sup", "Sup", roles=["supervisor"], team="north")
    crm.staff.add("li", "Li", roles=["rep"], team="north", supervisor="sup")
    crm.staff.add("aud", "Aud", roles=["auditor"])
    mine = crm.as_("li").customers.add("Li's customer")
    assert crm.as_("sup").customers.get(mine.id).id == mine.id
    auditor = crm.as_("aud")
    assert auditor.customers.get(mine.id).id == mine.id
    with pytest.raises(AccessDenied, match="lacks the 'write' permission"):
        auditor.customers.update(mine.id, name="changed")
    assert crm.customers.get(mine.id).name == "Li's customer"


def test_hooks_receive_the_facade_with_its_services(crm_factory):
    seen = []

    class Watcher:
        @hookimpl
        def crm_customer_created(self, crm, customer):
            seen.append(crm)
            crm.records.add_interaction(customer, "note", "welcome")

    crm = crm_factory(plugins=["watcher"], extra_plugins={"watcher": Watcher()})
    c = crm.customers.add("A")
    assert isinstance(seen[0], CRM)
    assert [i.text for i in crm.records.interactions(c)] == ["welcome"]


def test_an_operation_is_audited_under_its_service_name(crm_factory):
    crm = crm_factory()
    api = crm.as_(crm.principal_ref, command="api")
    c = api.customers.add("A")
    with crm.transaction():
        commands = connection(crm.db).execute(
            sa.select(audit_log.c.command).where(audit_log.c.customer_id == c.id)
        ).scalars()
        assert list(commands) == ["api:customers.add"]


# -- the flat names: aliases that warn -------------------------------------------------
@pytest.mark.parametrize("old", sorted(RENAMED))
def test_every_flat_name_still_works_and_warns_naming_the_new_one(crm, old):
    new = RENAMED[old]
    shown = new.split(":")[-1] if ":" in new else new
    with pytest.warns(DeprecationWarning, match=re.escape(shown)):
        target = getattr(crm, old)
    assert callable(target)
    if ":" not in new:
        area, method = new.split(".")
        assert target == getattr(getattr(crm, area), method)


def test_an_alias_calls_the_service_with_the_same_parameters(crm):
    with pytest.warns(DeprecationWarning, match=r"crm\.customers\.add"):
        c = crm.add_customer("Old Style", phone="13800000001", on_match="error")
    assert crm.customers.get(c.id).phone == "+8613800000001"
    with pytest.warns(DeprecationWarning, match=r"crm\.jobs\.list\(\)"):
        assert crm.jobs() == crm.jobs.list()
    with pytest.warns(DeprecationWarning, match="crmcore.present.show_phone"):
        assert crm.show_phone("+8613800000001") == show_phone(crm, "+8613800000001")


def test_an_alias_cannot_hide_an_operation():
    from crmcore.service import aliases

    class Clash:
        def labels(self) -> None: ...

    with pytest.raises(TypeError, match="both an operation and a deprecated alias"):
        aliases.install(Clash)


def test_the_aliases_are_not_documented_as_methods():
    assert isinstance(vars(CRM)["add_customer"], DeprecatedName)
    assert "add_customer" not in {n for n, m in vars(CRM).items() if callable(m)}


def _flat_calls(text: str) -> list[str]:
    """``crm.OLD(`` (any receiver ending in a CRM name, or ``.as_(...)``) in ``text``."""
    names = "|".join(sorted(RENAMED, key=len, reverse=True))
    pattern = re.compile(
        rf"(?:\bcrm\w*|\bself\.crm|\.as_\([^()]*\)|\.at\([^()]*\))\.(?:({names})\(|jobs\(\))"
    )
    return [m.group(0) for m in pattern.finditer(text)]


def _shipped_sources() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    files += sorted((ROOT / "crmcore").rglob("*.py")) + sorted((ROOT / "plugins").rglob("*.py"))
    files += sorted((ROOT / "plugins").rglob("*.md"))
    files += sorted((ROOT / "crmcore" / "scaffold_template").rglob("*.tmpl"))
    # the aliases themselves say their old names
    left = {
        ROOT / "crmcore" / "service" / "aliases.py",
        ROOT / "crmcore" / "services" / "jobs.py",
    }
    return [f for f in files if f not in left]


def test_nothing_shipped_calls_a_flat_name():
    found = {
        str(path.relative_to(ROOT)): calls
        for path in _shipped_sources()
        if (calls := _flat_calls(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_the_scan_finds_a_flat_call():
    assert _flat_calls("crm.add_customer('A')\nrep = crm.as_('li').labels(c)\ncrm.jobs()") == [
        "crm.add_customer(",
        ".as_('li').labels(",
        "crm.jobs()",
    ]
    assert _flat_calls("crm.customers.add('A'); crm.jobs.list()") == []


def test_the_whole_suite_fails_on_a_flat_name(crm):
    """pytest turns the aliases' warning into an error (pyproject's filterwarnings),
    so a test, plugin or core path that still uses a flat name fails."""
    with pytest.raises(DeprecationWarning, match="crm.add_customer is deprecated"):
        crm.add_customer("A")
    with pytest.raises(DeprecationWarning, match=r"crm.jobs\(\) is deprecated"):
        crm.jobs()
    assert crm.customers.count() == 0


def test_a_module_run_with_warnings_as_errors_refuses_a_flat_name(crm):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        with pytest.raises(DeprecationWarning, match="use crm.records.timeline"):
            crm.timeline(1)


# -- derived tables ------------------------------------------------------------------------
class Scores:
    """A plugin with a derived table (recomputable scores) and a plain one."""

    metadata = sa.MetaData()
    scores = sa.Table(
        "scores_kept",
        metadata,
        sa.Column("customer_id", sa.Integer, sa.ForeignKey(customers.c.id), primary_key=True),
        sa.Column("score", sa.Integer),
        sa.Column("note", sa.String(200)),
        info={"crm_derived": True},
    )
    visits = sa.Table(
        "scores_visits",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey(customers.c.id)),
    )

    @hookimpl
    def crm_tables(self):
        return [self.scores, self.visits]


def test_the_core_declares_its_derived_tables(crm):
    names = {t.name for t in derived_customer_tables(crm.plugins)}
    assert names == {"customer_stats", "customer_labels", "customer_window_spend"}
    assert not is_derived(customers)


def test_a_merge_drops_the_merged_records_derived_rows_and_moves_the_rest(crm_factory):
    crm = crm_factory(plugins=["scores"], extra_plugins={"scores": Scores()})
    keep, other = crm.customers.add("Keep"), crm.customers.add("Other")
    with crm.transaction():
        crm.db.execute(Scores.scores.insert().values(customer_id=keep.id, score=1))
        crm.db.execute(Scores.scores.insert().values(customer_id=other.id, score=9))
        crm.db.execute(Scores.visits.insert().values(customer_id=other.id))
    crm.records.add_transaction(other, 250)
    crm.customers.merge(keep, other)  # moving other's score would clash on the key
    with crm.transaction():
        conn = connection(crm.db)
        assert conn.execute(sa.select(Scores.scores.c.customer_id, Scores.scores.c.score)).all() == [
            (keep.id, 1)
        ]
        assert conn.execute(sa.select(Scores.visits.c.customer_id)).scalars().all() == [keep.id]
    assert crm.records.card(keep)["stats"]["spend_cents"] == 250  # recomputed for keep


def test_forget_deletes_the_customers_derived_rows_and_recomputes_the_aggregates(crm_factory):
    crm = crm_factory(plugins=["scores"], extra_plugins={"scores": Scores()})
    c = crm.customers.add("Wu Fang", phone="13900001111")
    kept = crm.customers.add("Kept")
    crm.records.add_transaction(c, 700)
    crm.customers.set_label(c, "abc", "A")
    with crm.transaction():
        crm.db.execute(Scores.scores.insert().values(customer_id=c.id, score=3, note="Wu Fang"))
        crm.db.execute(Scores.scores.insert().values(customer_id=kept.id, score=5))
    crm.customers.forget(c)
    with crm.transaction():
        conn = connection(crm.db)
        assert conn.execute(sa.select(Scores.scores.c.customer_id)).scalars().all() == [kept.id]
        assert conn.execute(
            sa.select(customer_stats.c.spend_cents).where(customer_stats.c.customer_id == c.id)
        ).scalars().all() == [700]  # the transaction stays, anonymous, in the statistics
    assert crm.customers.labels(c) == {}


# -- the modules ------------------------------------------------------------------------
SERVICE_MODULES = sorted(
    f"crmcore.services.{p.stem}"
    for p in (ROOT / "crmcore" / "services").glob("*.py")
    if p.stem != "__init__"
)


@pytest.mark.parametrize("module", [*SERVICE_MODULES, "crmcore.service", "crmcore.present"])
def test_every_service_module_imports_alone_in_a_fresh_interpreter(module):
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr.splitlines()[-1:]


def test_every_area_is_a_service_of_the_facade(crm):
    for area in AREAS:
        service = getattr(crm, area)
        assert service.crm is crm and service.area == area
    rep = crm.as_("system")
    assert rep.customers.crm is rep  # a facade's services act as its principal
