"""Commands that act on the whole installation check who asks before doing anything:
schema upgrades need 'admin', jobs an active unrestricted writer, the aggregate
rebuild 'write' or 'admin'; unknown principals are refused with one line."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crmcore import AccessDenied, Job, hookimpl
from crmcore import config as config_mod
from crmcore.schema import job_runs, reminders
from crmcore.storage._driver import connection


class Nightly:
    """Two jobs: the first writes, the second refuses anyone without company scope."""

    @hookimpl
    def crm_jobs(self):
        def remind(crm, at):
            crm.tickets.add_reminder("boss", "nightly check", at)
            return {"reminded": 1}

        def strict(crm, at):
            if not crm.db.principal.unrestricted:
                raise AccessDenied(f"{crm.db.principal.key} may not run the strict job")
            return {}

        return [Job(name="nightly.a_remind", run=remind), Job(name="nightly.b_strict", run=strict)]


@pytest.fixture
def staffed(crm_factory):
    crm = crm_factory(plugins=["nightly"], extra_plugins={"nightly": Nightly()})
    crm.staff.add("boss", "Boss", roles=["admin"])
    crm.staff.add("li", "Li", roles=["supervisor"], team="north")
    crm.staff.add("zhang", "Zhang", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("audit", "Auditor", roles=["auditor"])
    crm.staff.add("gone", "Gone", roles=["admin"])
    crm.customers.add("Ann", owner="zhang")
    crm.staff.leave("gone", handover_to="boss")
    return crm


def _count(crm, table):
    with crm.transaction(write=False):
        return connection(crm.db).execute(sa.select(sa.func.count()).select_from(table)).scalar()


REFUSED_UPGRADE = {
    "zhang": "error: zhang may not upgrade the schema: needs the 'admin' permission",
    "li": "error: li may not upgrade the schema: needs the 'admin' permission",
    "audit": "error: audit may not upgrade the schema: needs the 'admin' permission",
    "gone": "error: gone may not upgrade the schema: has departed",
    "ghost": "error: unknown staff member 'ghost': add them with 'crm staff add' or use --as",
}


def test_db_upgrade_needs_admin(staffed, crm_cli):
    for who, line in REFUSED_UPGRADE.items():
        result = crm_cli("--as", who, "db", "upgrade", crm=staffed)
        assert (result.exit_code, result.stderr.strip(), result.stdout) == (1, line, ""), who
    assert crm_cli("--as", "boss", "db", "upgrade", crm=staffed).exit_code == 0
    assert crm_cli("db", "upgrade", crm=staffed).exit_code == 0  # the system


def test_a_new_database_is_created_only_by_the_system_or_the_configured_default(tmp_path):
    from crmcore.migrate import current_heads
    from crmcore.service import CRM

    def fresh(name):
        url = f"sqlite:///{tmp_path / name}"
        cfg = config_mod.from_dict({"crm": {"database": url, "default_principal": "admin"}})
        return CRM(cfg)

    stranger = fresh("a.db").as_("ghost")
    with pytest.raises(AccessDenied, match="^unknown staff member 'ghost': the database has no"):
        stranger.admin.upgrade()
    assert current_heads(stranger.engine) == set()
    default = fresh("b.db")  # acts as the config's default principal, "admin"
    assert default.admin.upgrade() == ["crmcore"]
    for crm in (stranger, default):
        crm.engine.dispose()


@pytest.mark.parametrize(
    ("who", "line"),
    [
        ("gone", "error: gone has departed and may not run jobs; nothing was run"),
        (
            "audit",
            "error: audit may not run jobs: they change data and need the 'write' permission",
        ),
        (
            "li",
            "error: li may not run jobs: they cover every customer; run them as an admin "
            "(scope 'all')",
        ),
        ("ghost", "error: unknown staff member 'ghost': add them with 'crm staff add' or use --as"),
    ],
)
def test_a_refused_jobs_run_runs_and_commits_nothing(staffed, crm_cli, who, line):
    result = crm_cli("--as", who, "jobs", "run", crm=staffed)
    assert (result.exit_code, result.stderr.strip(), result.stdout) == (1, line, "")
    assert _count(staffed, job_runs) == 0 and _count(staffed, reminders) == 0


def test_jobs_run_as_an_admin_or_the_system(staffed):
    assert [r["job"] for r in staffed.as_("boss").jobs.run()] == [
        "core.notify_due",
        "nightly.a_remind",
        "nightly.b_strict",
    ]
    assert _count(staffed, job_runs) == 3


def test_the_auditor_may_read_but_not_rebuild_the_aggregates(staffed, crm_cli):
    refused = crm_cli("--as", "audit", "analytics", "stats", "--rebuild", crm=staffed)
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        "error: audit may not rebuild the aggregates: needs 'write' or 'admin'"
    )
    assert crm_cli("--as", "audit", "analytics", "stats", crm=staffed).exit_code == 0
    assert crm_cli("--as", "boss", "analytics", "stats", "--rebuild", crm=staffed).exit_code == 0


def test_an_unknown_principal_is_refused_with_one_line_everywhere(staffed, crm_cli):
    for args in (
        ("customer", "list"),
        ("customer", "show", "1"),
        ("jobs", "run"),
        ("db", "upgrade"),
        ("outbox", "send"),
        ("sms", "receive", "--from", "13900001111", "--text", "5"),
        ("analytics", "stats", "--rebuild"),
        ("staff", "add", "x", "--name", "X"),
        ("jobs", "list"),  # even commands that read no customer data
        ("plugins", "hooks"),
    ):
        result = crm_cli("--as", "ghost", *args, crm=staffed)
        assert result.exit_code == 1, args
        assert result.stderr.strip().startswith("error: unknown staff member 'ghost'"), args
        assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == "", args
