"""crm scheduler: each (job, tick) once, catch-up policies, failures isolated
and retried, the tick records, crm jobs list/history."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select

from crmcore import Job, hookimpl
from crmcore.access import SYSTEM
from crmcore.errors import AccessDenied, ConfigError
from crmcore.ops.scheduler import Scheduler, history
from crmcore.schema import job_runs, job_ticks
from crmcore.service import CRM
from crmcore.storage._driver import connection

ZONE = {"crm": {"timezone": "Asia/Shanghai"}}
MON_0200 = dt.datetime(2026, 1, 5, 2, 0)  # local, Asia/Shanghai: 2026-01-04 18:00 UTC


class Nightly:
    """Three nightly jobs at 02:00: one that counts its runs, one that skips
    missed ticks, one that fails its first ``failures`` runs."""

    def __init__(self, failures: int = 0, pause: float = 0.0) -> None:
        self.runs: list[tuple[str, dt.datetime]] = []
        self.failures = failures
        self.pause = pause
        self.lock = threading.Lock()

    def _count(self, name: str, at: dt.datetime) -> dict[str, int]:
        time.sleep(self.pause)
        with self.lock:
            self.runs.append((name, at))
        return {"ran": 1}

    def count(self, crm, at):
        return self._count("nightly.count", at)

    def skipper(self, crm, at):
        return self._count("nightly.skipper", at)

    def flaky(self, crm, at):
        with self.lock:
            failing = self.failures > 0
            self.failures -= 1
        if failing:
            crm.customers.add("rolled back with the failed run")
            raise ConnectionError("ledger unreachable")
        return self._count("nightly.flaky", at)

    @hookimpl
    def crm_jobs(self):
        return [
            Job(name="nightly.count", run=self.count, schedule="0 2 * * *"),
            Job(name="nightly.skipper", run=self.skipper, schedule="0 2 * * *", catch_up="skip"),
            Job(
                name="nightly.flaky",
                run=self.flaky,
                schedule="0 2 * * *",
                attempts=2,
                backoff_seconds=60,
            ),
        ]


def _mine(results):
    return {r["job"]: r["status"] for r in results if r["job"].startswith("nightly.")}


@pytest.fixture
def nightly():
    return Nightly()


@pytest.fixture
def sched_crm(crm_factory, nightly):
    return crm_factory(plugins=["nightly"], extra_plugins={"nightly": nightly}, config=ZONE)


def test_a_tick_runs_once_across_passes_and_restarts(sched_crm, nightly):
    at = MON_0200 + dt.timedelta(seconds=20)
    first = Scheduler(sched_crm).run_pass(at)
    assert _mine(first) == {"nightly.count": "ok", "nightly.skipper": "ok", "nightly.flaky": "ok"}
    assert Scheduler(sched_crm).run_pass(at + dt.timedelta(minutes=1)) == []  # a restart
    assert sorted(nightly.runs) == [
        ("nightly.count", MON_0200),
        ("nightly.flaky", MON_0200),
        ("nightly.skipper", MON_0200),
    ]
    with sched_crm.transaction(write=False):
        ticks = connection(sched_crm.db).execute(
            select(job_ticks.c.tick_at).where(job_ticks.c.job == "nightly.count")
        ).all()
    assert [t.tick_at for t in ticks] == [dt.datetime(2026, 1, 4, 18, 0)]  # stored in UTC


def test_missed_ticks_follow_the_catch_up_policy(sched_crm, nightly):
    # the scheduler was down from before 02:00 to 09:00
    results = Scheduler(sched_crm).run_pass(dt.datetime(2026, 1, 5, 9, 0))
    assert _mine(results) == {
        "nightly.count": "ok",  # run_once: the missed tick, once, as of its time
        "nightly.flaky": "ok",
        "nightly.skipper": "skipped",
    }
    assert ("nightly.count", MON_0200) in nightly.runs
    assert not [r for r in nightly.runs if r[0] == "nightly.skipper"]
    # two days down: only the latest missed tick runs, never the backlog
    nightly.runs.clear()
    Scheduler(sched_crm).run_pass(dt.datetime(2026, 1, 7, 9, 0))
    assert [at for name, at in nightly.runs if name == "nightly.count"] == [
        dt.datetime(2026, 1, 7, 2, 0)
    ]
    # on time the next night: the skipping job runs too
    nightly.runs.clear()
    Scheduler(sched_crm).run_pass(dt.datetime(2026, 1, 8, 2, 1))
    assert ("nightly.skipper", dt.datetime(2026, 1, 8, 2, 0)) in nightly.runs


def test_a_failing_job_is_isolated_recorded_and_retried(crm_factory):
    flaky = Nightly(failures=1)
    crm = crm_factory(plugins=["nightly"], extra_plugins={"nightly": flaky}, config=ZONE)
    scheduler = Scheduler(crm)
    first = scheduler.run_pass(MON_0200)
    assert _mine(first) == {
        "nightly.count": "ok",
        "nightly.skipper": "ok",
        "nightly.flaky": "retry",
    }
    failed = next(r for r in first if r["job"] == "nightly.flaky")
    assert failed["error"] == "ConnectionError: ledger unreachable"
    assert crm.customers.list() == []  # the failed run's write was rolled back
    assert _mine(scheduler.run_pass(MON_0200 + dt.timedelta(seconds=30))) == {}  # backing off
    again = scheduler.run_pass(MON_0200 + dt.timedelta(seconds=61))
    assert _mine(again) == {"nightly.flaky": "ok"}
    assert again[0]["attempt"] == 2
    runs = history(crm, job="nightly.flaky")
    assert [(r["status"], r["attempts"]) for r in runs] == [("ok", 2)]


def test_a_job_that_keeps_failing_stops_after_its_attempts(crm_factory):
    crm = crm_factory(
        plugins=["nightly"], extra_plugins={"nightly": Nightly(failures=99)}, config=ZONE
    )
    scheduler = Scheduler(crm)
    scheduler.run_pass(MON_0200)
    last = scheduler.run_pass(MON_0200 + dt.timedelta(minutes=2))
    assert _mine(last) == {"nightly.flaky": "failed"}
    assert _mine(scheduler.run_pass(MON_0200 + dt.timedelta(hours=1))) == {}
    with crm.transaction(write=False):
        recorded = connection(crm.db).execute(
            select(job_runs.c.summary).where(job_runs.c.job == "nightly.flaky")
        ).all()
    assert [r.summary["failed"] for r in recorded] == [True, True]


@pytest.mark.parametrize("leader_lock", [True, False])
def test_two_schedulers_at_once_run_each_tick_once(crm_factory, crm_clock, leader_lock):
    slow = Nightly(pause=0.3)
    crm = crm_factory(plugins=["nightly"], extra_plugins={"nightly": slow}, config=ZONE)
    other = CRM(crm.config, clock=crm_clock, extra_plugins={"nightly": slow}, principal=SYSTEM)
    schedulers = [
        Scheduler(c, name=f"s{i}", leader_lock=leader_lock) for i, c in enumerate((crm, other))
    ]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(s: Scheduler) -> None:
        try:
            start.wait()
            for step in range(3):
                s.run_pass(MON_0200 + dt.timedelta(seconds=10 * step))
        except BaseException as e:
            errors.append(e)
        finally:
            s.close()

    threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    other.engine.dispose()
    assert errors == []
    assert sorted(name for name, _ in slow.runs) == [
        "nightly.count",
        "nightly.flaky",
        "nightly.skipper",
    ]


def test_only_an_admin_runs_the_scheduler_and_reads_its_history(sched_crm):
    sched_crm.staff.add("rep1", "Rep One", roles=["rep"])
    sched_crm.staff.add("aud", "Auditor", roles=["auditor"])
    with pytest.raises(AccessDenied):
        Scheduler(sched_crm.as_("rep1")).run_pass(MON_0200)
    with pytest.raises(AccessDenied):
        history(sched_crm.as_("rep1"))
    assert history(sched_crm.as_("aud")) == []
    assert Scheduler(sched_crm).run_pass(MON_0200)


def test_crm_toml_overrides_a_jobs_schedule_and_policy(crm_factory, nightly):
    crm = crm_factory(
        plugins=["nightly"],
        extra_plugins={"nightly": nightly},
        config={**ZONE, "jobs": {"nightly": {"count": {"schedule": "30 3 * * *"}}}},
    )
    ran = _mine(Scheduler(crm).run_pass(dt.datetime(2026, 1, 5, 3, 30)))
    assert ran["nightly.count"] == "ok"
    assert [at for name, at in nightly.runs if name == "nightly.count"] == [
        dt.datetime(2026, 1, 5, 3, 30)
    ]


def test_a_jobs_table_naming_no_job_or_a_bad_schedule_is_refused(crm_factory, nightly):
    crm = crm_factory(
        plugins=["nightly"],
        extra_plugins={"nightly": nightly},
        config={"jobs": {"nightly.cuont": {"schedule": "0 3 * * *"}}},
    )
    with pytest.raises(ConfigError, match=r"jobs\.nightly\.cuont: no enabled job"):
        Scheduler(crm)
    bad = crm_factory(
        plugins=["nightly"],
        extra_plugins={"nightly": nightly},
        config={"jobs": {"nightly.count": {"schedule": "0 25 * * *"}}},
    )
    with pytest.raises(ConfigError, match=r"jobs\.nightly\.count\.schedule"):
        Scheduler(bad)
    with pytest.raises(ConfigError, match=r"jobs\.nightly\.count\.catch_up"):
        crm_factory(config={"jobs": {"nightly.count": {"catch_up": "later"}}})


def test_jobs_list_and_history_commands(sched_crm, crm_cli, crm_clock):
    crm_clock.set(MON_0200)

    def cli(*args):
        return crm_cli(*args, crm=sched_crm)

    listed = {j["name"]: j for j in cli("jobs", "list", "--json").json()}
    count = listed["nightly.count"]
    assert (count["schedule"], count["zone"], count["catch_up"]) == (
        "0 2 * * *",
        "Asia/Shanghai",
        "run_once",
    )
    assert count["next_tick"] == "2026-01-06T02:00:00+08:00"
    assert count["last_status"] is None
    once = cli("scheduler", "--at", "2026-01-05T02:00:10", "--json")
    assert once.exit_code == 0, once.stderr
    assert once.json()["leader"] is True
    assert "nightly.count" in {t["job"] for t in once.json()["ticks"]}
    runs = cli("jobs", "history", "--job", "nightly.count", "--json").json()
    assert [(r["status"], r["tick"]) for r in runs] == [("ok", "2026-01-04T18:00:00+00:00")]
    after = {j["name"]: j for j in cli("jobs", "list", "--json").json()}
    assert after["nightly.count"]["last_status"] == "ok"
    assert cli("jobs", "history", "--job", "nope").exit_code == 1
