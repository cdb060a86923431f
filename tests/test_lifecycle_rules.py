"""Lifecycle monitoring: configured rules move customers set-based by their last
purchase, through the stage-change record (reason, audit, hooks, timeline);
the preview changes nothing; the loss report counts per owner and team."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import Recorder
from sqlalchemy import func, select

from crmcore import AccessDenied, ConfigError, NotFound, ValidationError
from crmcore.config import from_dict
from crmcore.schema import audit_log, stage_changes
from crmcore.storage._driver import connection

RULES = [
    {
        "name": "declining-90",
        "when": "no_purchase",
        "days": 90,
        "from": ["new", "developing", "stable"],
        "to": "declining",
    },
    {"name": "lost-180", "when": "no_purchase", "days": 180, "from": ["declining"], "to": "lost"},
    {"name": "win-back", "when": "purchase_since_stage", "from": ["lost"], "to": "developing"},
]
CONFIG = {"crm": {"lifecycle": {"rules": RULES}}}
NOW = dt.datetime(2026, 1, 5, 9, 0)


def _days_ago(n: int) -> dt.datetime:
    return NOW - dt.timedelta(days=n)


def _team(crm):
    crm.staff.add("li", "Li", roles=["supervisor"], team="north")
    crm.staff.add("zhang", "Zhang", roles=["rep"], team="north", supervisor="li")
    crm.staff.add("wang", "Wang", roles=["rep"], team="south")
    crm.staff.add("audit", "Auditor", roles=["auditor"])


def _customer(crm, name, stage, last_purchase_days, owner=None):
    c = crm.customers.add(name, stage=stage, owner=owner)
    if last_purchase_days is not None:
        crm.records.add_transaction(c, 1000, occurred_at=_days_ago(last_purchase_days))
    return c


@pytest.mark.crm(config=CONFIG)
def test_rules_move_by_last_purchase_with_the_rule_as_reason(crm):
    fresh = _customer(crm, "Fresh", "stable", 10)
    quiet = _customer(crm, "Quiet", "stable", 100)
    gone = _customer(crm, "Gone", "stable", 200)  # declining, then lost in the same run
    never = _customer(crm, "Never", "new", None)  # no purchase: nothing to age
    result = crm.jobs.run(["core.lifecycle"], at=NOW)[0]
    assert result["status"] == "ok", result
    assert result["summary"]["moved"] == {"declining-90": 2, "lost-180": 1, "win-back": 0}
    stages = {c.name: crm.customers.get(c.id).stage for c in (fresh, quiet, gone, never)}
    assert stages == {"Fresh": "stable", "Quiet": "declining", "Gone": "lost", "Never": "new"}
    history = crm.customers.stage_history(gone)
    assert [h.to_stage for h in history[-2:]] == ["declining", "lost"]
    assert history[-1].reason == "lifecycle rule lost-180: no purchase in 180 days"
    assert history[-1].at == NOW
    entries = crm.records.timeline(gone)
    assert any("lost-180" in e.summary for e in entries)


@pytest.mark.crm(config=CONFIG)
def test_a_second_run_for_the_same_time_moves_no_one(crm):
    _customer(crm, "Gone", "stable", 200)
    crm.jobs.run(["core.lifecycle"], at=NOW)
    with crm.transaction(write=False):
        before = connection(crm.db).execute(select(func.count()).select_from(stage_changes)).scalar()
    again = crm.jobs.run(["core.lifecycle"], at=NOW)[0]
    assert again["summary"]["total"] == 0
    with crm.transaction(write=False):
        after = connection(crm.db).execute(select(func.count()).select_from(stage_changes)).scalar()
    assert after == before


@pytest.mark.crm(config=CONFIG)
def test_a_purchase_after_lost_wins_the_customer_back(crm):
    c = _customer(crm, "Back", "stable", 200)
    crm.jobs.run(["core.lifecycle"], at=NOW)
    assert crm.customers.get(c.id).stage == "lost"
    crm.records.add_transaction(c, 500, occurred_at=NOW + dt.timedelta(days=1))
    later = NOW + dt.timedelta(days=2)
    moved = crm.jobs.run(["core.lifecycle"], at=later)[0]["summary"]["moved"]
    assert moved["win-back"] == 1
    assert crm.customers.get(c.id).stage == "developing"


@pytest.mark.crm(config=CONFIG)
def test_a_purchase_before_being_marked_lost_is_no_win_back(crm):
    c = _customer(crm, "Old", "declining", 20)
    crm.customers.change_stage(c, "lost", reason="moved away")
    assert crm.jobs.run(["core.lifecycle"], at=NOW)[0]["summary"]["moved"]["win-back"] == 0
    assert crm.customers.get(c.id).stage == "lost"


@pytest.mark.crm(config=CONFIG)
def test_merged_and_forgotten_customers_never_move(crm):
    keep = _customer(crm, "Keep", "new", 10)
    twin = _customer(crm, "Twin", "stable", 200)
    erased = _customer(crm, "Erased", "stable", 200)
    crm.customers.merge(keep, twin)
    crm.customers.forget(erased)
    assert crm.jobs.run(["core.lifecycle"], at=NOW)[0]["summary"]["total"] == 0


@pytest.mark.crm(config=CONFIG)
def test_each_move_is_audited_as_a_customer_update(crm):
    c = _customer(crm, "Quiet", "stable", 100)
    crm.jobs.run(["core.lifecycle"], at=NOW)
    with crm.transaction(write=False):
        rows = connection(crm.db).execute(
            select(audit_log.c.action, audit_log.c.after, audit_log.c.command).where(
                audit_log.c.entity == "customers", audit_log.c.customer_id == c.id
            )
        ).all()
    moves = [r for r in rows if r.action == "update"]
    assert moves and moves[-1].after.get("stage") == "declining"
    assert moves[-1].command == "jobs run core.lifecycle"


class BatchRecorder(Recorder):
    """Records the batch hook too."""

    def __init__(self) -> None:
        super().__init__("batchrec")

    from crmcore import hookimpl

    @hookimpl
    def crm_stage_changed_batch(self, crm, batch):
        self.calls.append(("batch", (batch.rule, batch.count, batch.customer_ids)))


def test_hooks_see_the_moves_batch_or_one_by_one(crm_factory):
    single, batch = Recorder(), BatchRecorder()
    crm = crm_factory(
        plugins=["recorder", "batchrec"],
        config=CONFIG,
        extra_plugins={"recorder": single, "batchrec": batch},
    )
    a = _customer(crm, "A", "stable", 100)
    b = _customer(crm, "B", "developing", 120)
    single.calls.clear()
    batch.calls.clear()
    crm.jobs.run(["core.lifecycle"], at=NOW)
    assert [c for c in single.calls if c[0] == "stage_changed"] == [
        ("stage_changed", ("stable", "declining")),
        ("stage_changed", ("developing", "declining")),
    ]
    assert ("batch", ("declining-90", 2, (a.id, b.id))) in batch.calls
    assert not [c for c in batch.calls if c[0] == "stage_changed"]


def test_a_raising_hook_rolls_the_whole_run_back(crm_factory):
    from crmcore import hookimpl

    class Veto:
        @hookimpl
        def crm_stage_changed_batch(self, crm, batch):
            raise ValidationError("no moves today")

    crm = crm_factory(plugins=["veto"], config=CONFIG, extra_plugins={"veto": Veto()})
    c = _customer(crm, "Quiet", "stable", 100)
    result = crm.jobs.run(["core.lifecycle"], at=NOW)[0]
    assert result["status"] == "failed"
    assert crm.customers.get(c.id).stage == "stable"
    assert [h.to_stage for h in crm.customers.stage_history(c)] == ["stable"]


@pytest.mark.crm(config=CONFIG)
def test_preview_counts_per_rule_and_changes_nothing(crm):
    quiet = _customer(crm, "Quiet", "stable", 100)
    gone = _customer(crm, "Gone", "stable", 200)
    preview = crm.lifecycle.preview(NOW)
    counts = {r["rule"]: r["count"] for r in preview["rules"]}
    assert counts == {"declining-90": 2, "lost-180": 1, "win-back": 0}
    assert preview["rules"][1]["customers"] == [gone.id]
    assert crm.customers.get(quiet.id).stage == "stable"
    assert len(crm.customers.stage_history(gone)) == 1


@pytest.mark.crm(config=CONFIG)
def test_only_someone_who_sees_every_customer_runs_or_previews_the_rules(crm):
    _team(crm)
    _customer(crm, "Theirs", "stable", 100, owner="wang")
    with pytest.raises(AccessDenied, match="cover every customer"):
        crm.as_("zhang").lifecycle.preview(NOW)
    with pytest.raises(AccessDenied, match="cover every customer"):
        crm.as_("li").lifecycle.preview(NOW)
    assert crm.as_("audit").lifecycle.preview(NOW)["total"] == 1


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"name": "r", "when": "no_purchase", "days": 30, "from": ["prospect"], "to": "stable"},
            "cannot move from 'prospect' to 'stable'",
        ),
        (
            {"name": "r", "when": "no_purchase", "from": ["stable"], "to": "declining"},
            "a no_purchase rule needs days",
        ),
        (
            {"name": "r", "when": "no_purchase", "days": 3, "from": ["vip"], "to": "lost"},
            "unknown stage 'vip'",
        ),
    ],
)
def test_a_rule_that_cannot_apply_is_a_config_error(rule, message):
    with pytest.raises(ConfigError, match=message):
        from_dict({"crm": {"lifecycle": {"rules": [rule]}}})


@pytest.mark.crm(config=CONFIG)
def test_loss_report_per_owner_and_team_as_each_principal_sees_it(crm, crm_clock):
    _team(crm)
    start = dt.datetime(2025, 12, 1)
    crm_clock.set(dt.datetime(2025, 11, 1))
    a = _customer(crm, "A", "stable", 10, owner="zhang")
    _customer(crm, "B", "stable", 10, owner="zhang")
    c = _customer(crm, "C", "stable", 10, owner="wang")
    _customer(crm, "D", "stable", 10, owner="wang")
    crm_clock.set(dt.datetime(2025, 12, 10))
    crm.customers.change_stage(a, "lost", reason="moved away")
    crm.customers.change_stage(c, "lost", reason="price")
    crm.lifecycle.exit_reason(a, "moved away")
    crm.lifecycle.exit_reason(c, "price")
    crm_clock.set(NOW)
    whole = crm.lifecycle.report(start, dt.datetime(2026, 1, 1))["periods"][0]
    assert (whole["active_at_start"], whole["lost"], whole["loss_rate"]) == (4, 2, 0.5)
    assert {t["team"]: t["lost"] for t in whole["by_team"]} == {"north": 1, "south": 1}
    assert whole["exit_reasons"] == {"moved away": 1, "price": 1}
    mine = crm.as_("zhang").lifecycle.report(start, dt.datetime(2026, 1, 1))["periods"][0]
    assert (mine["active_at_start"], mine["lost"]) == (2, 1)
    assert [o["owner"] for o in mine["by_owner"]] == ["zhang"]
    assert mine["exit_reasons"] == {"moved away": 1}
    months = crm.lifecycle.report(start, dt.datetime(2026, 2, 1), by="month")["periods"]
    assert [(p["from"][:10], p["lost"]) for p in months] == [
        ("2025-12-01", 2),
        ("2026-01-01", 0),
    ]


@pytest.mark.crm(config=CONFIG)
def test_exit_reasons_only_for_lost_customers_the_principal_may_change(crm):
    _team(crm)
    theirs = _customer(crm, "Theirs", "lost", None, owner="wang")
    mine = _customer(crm, "Mine", "stable", None, owner="zhang")
    with pytest.raises(NotFound):
        crm.as_("zhang").lifecycle.exit_reason(theirs.id, "price")
    with pytest.raises(ValidationError, match="not 'lost'"):
        crm.as_("zhang").lifecycle.exit_reason(mine.id, "price")
    with pytest.raises(AccessDenied):
        crm.as_("audit").lifecycle.exit_reason(theirs.id, "price")
    crm.as_("wang").lifecycle.exit_reason(theirs.id, "price", note="cheaper elsewhere")
    kinds = [e.kind for e in crm.records.timeline(theirs)]
    assert "exit_reason" in kinds


@pytest.mark.crm(config=CONFIG)
def test_cli_preview_report_exit_reason_json(crm, crm_cli):
    c = _customer(crm, "Gone", "stable", 200)
    out = crm_cli("lifecycle", "preview", "--at", NOW.isoformat(), "--json")
    assert out.exit_code == 0, out
    assert out.json()["total"] == 2
    ran = crm_cli("jobs", "run", "core.lifecycle", "--at", NOW.isoformat(), "--json")
    assert ran.exit_code == 0, ran
    reason = crm_cli("lifecycle", "exit-reason", str(c.id), "price", "--json")
    assert reason.exit_code == 0, reason
    assert reason.json()["reason"] == "price"
    report = crm_cli("lifecycle", "report", "--from", "2026-01-01", "--to", "2026-02-01", "--json")
    assert report.exit_code == 0, report
    assert report.json()["periods"][0]["exit_reasons"] == {"price": 1}
    bad = crm_cli("lifecycle", "report", "--from", "2026-02-01", "--to", "2026-01-01")
    assert bad.exit_code == 1 and "must be after" in bad.stderr
