"""Jobs are isolated: a job that fails is rolled back alone, reported and recorded;
the other jobs still run and commit; ``crm jobs run`` exits 1 when any failed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from crmcore import Job, ValidationError, hookimpl
from crmcore.schema import customers, job_runs
from crmcore.storage._driver import connection

WHEN = dt.datetime(2030, 2, 3, 4, 5)


def _adds_a_customer(crm: Any, at: dt.datetime) -> dict[str, Any]:
    crm.customers.add("from a good job")
    return {"added": 1}


def _fails_after_writing(crm: Any, at: dt.datetime) -> dict[str, Any]:
    crm.customers.add("from the failing job")
    raise ValidationError("the season has not started\nsecond line never shown")


def _has_a_bug(crm: Any, at: dt.datetime) -> dict[str, Any]:
    crm.customers.add("from the buggy job")
    return {"ratio": 1 / 0}


class Nightly:
    @hookimpl
    def crm_jobs(self) -> list[Job]:
        return [
            Job(name="nightly.a_first", run=_adds_a_customer),
            Job(name="nightly.b_fails", run=_fails_after_writing),
            Job(name="nightly.c_buggy", run=_has_a_bug),
            Job(name="nightly.d_last", run=_adds_a_customer),
        ]


@pytest.fixture
def nightly(crm_factory: Any) -> Any:
    return crm_factory(plugins=["nightly"], extra_plugins={"nightly": Nightly()})


def _names(crm: Any) -> list[str]:
    with crm.transaction(write=False):
        return list(connection(crm.db).scalars(sa.select(customers.c.name).order_by(customers.c.id)))


def _runs(crm: Any) -> list[tuple[str, Any]]:
    with crm.transaction(write=False):
        rows = connection(crm.db).execute(
            sa.select(job_runs.c.job, job_runs.c.summary).order_by(job_runs.c.id)
        )
        return [(r.job, r.summary) for r in rows]


def test_a_failing_job_rolls_back_alone_and_the_others_run(nightly):
    results = nightly.jobs.run(at=WHEN)
    assert results[0]["job"] == "core.notify_due"  # the core's own job, sorted first
    results = results[1:]
    assert [(r["job"], r["status"]) for r in results] == [
        ("nightly.a_first", "ok"),
        ("nightly.b_fails", "failed"),
        ("nightly.c_buggy", "failed"),
        ("nightly.d_last", "ok"),
    ]
    assert results[0]["summary"] == {"added": 1} and "error" not in results[0]
    assert results[1]["error"] == "the season has not started"
    assert results[2]["error"] == "ZeroDivisionError: division by zero"
    assert "summary" not in results[1]
    # the failing jobs' writes are gone, the others' committed
    assert _names(nightly) == ["from a good job", "from a good job"]


def test_a_failed_run_is_recorded_in_job_runs(nightly):
    nightly.jobs.run(["nightly.b_fails", "nightly.a_first"], at=WHEN)
    assert _runs(nightly) == [
        ("nightly.b_fails", {"failed": True, "error": "the season has not started"}),
        ("nightly.a_first", {"added": 1}),
    ]


def test_jobs_run_prints_the_failure_and_exits_1(nightly, crm_cli):
    result = crm_cli(
        "jobs", "run", "nightly.a_first", "nightly.b_fails", "--at", WHEN.isoformat(), crm=nightly
    )
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "nightly.a_first: added 1",
        "nightly.b_fails: failed: the season has not started",
    ]
    assert result.stderr.strip() == "error: 1 of 2 jobs failed: nightly.b_fails"


def test_jobs_run_json_carries_each_status_and_exits_1(nightly, crm_cli):
    result = crm_cli("jobs", "run", "--at", WHEN.isoformat(), "--json", crm=nightly)
    assert result.exit_code == 1
    assert [(r["job"], r["status"]) for r in result.json()] == [
        ("core.notify_due", "ok"),
        ("nightly.a_first", "ok"),
        ("nightly.b_fails", "failed"),
        ("nightly.c_buggy", "failed"),
        ("nightly.d_last", "ok"),
    ]
    assert result.stderr == ""


def test_jobs_that_all_succeed_exit_0(nightly, crm_cli):
    result = crm_cli(
        "jobs", "run", "nightly.d_last", "--at", WHEN.isoformat(), "--json", crm=nightly
    )
    assert result.exit_code == 0
    assert result.json()[0]["status"] == "ok"


def test_a_refused_run_records_no_failure(nightly):
    from crmcore import AccessDenied

    nightly.staff.add("li", "Li", roles=["rep"])
    with pytest.raises(AccessDenied, match="may not run jobs"):
        nightly.as_("li").jobs.run(at=WHEN)
    assert _runs(nightly) == [] and _names(nightly) == []


def test_a_failure_that_cannot_be_recorded_is_still_reported(nightly, monkeypatch):
    from crmcore import RetryableError
    from crmcore.services import jobs as _admin

    def locked(*args: Any) -> None:
        raise RetryableError("the database is locked")

    monkeypatch.setattr(_admin, "_record_job_run", locked)
    results = nightly.jobs.run(["nightly.b_fails", "nightly.d_last"], at=WHEN)
    assert [(r["job"], r["status"]) for r in results] == [
        ("nightly.b_fails", "failed"),
        ("nightly.d_last", "ok"),
    ]
    assert results[0]["error"] == (
        "the season has not started (not recorded in job_runs: the database is locked)"
    )
